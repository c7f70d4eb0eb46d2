"""The dispatch window (`job_window_chunks`), in-process: a job's first chunks are queued
when it is accepted, each chunk recorded queues the next one, and every chunk is queued
exactly once; a cancelled job queues the rest at once; a chunk lost in the hand-off is
queued by the sweep."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from claimpay.jobs import JobState
from tests.factories import make_rows
from tests.fakes import RecordingEnqueuer
from tests.unit.producer.conftest import Api
from worker.chunks import run_chunk
from worker.context import WorkerContext
from worker.engines import EngineRegistry
from worker.recovery import sweep

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def submit(api: Api, rows: list[dict[str, object]], headers: dict[str, str]) -> str:
    accepted = api.client.put(BATCH, content=json.dumps(rows), headers=headers)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["data"]["jobId"]
    return job_id


def test_the_first_chunks_are_queued_and_each_recorded_one_queues_the_next(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=10, job_window_chunks=2, fast_queue_max_rows=0)
    job_id = submit(api, make_rows(45, first_key=100), auth_headers())
    assert api.enqueuer.sent == [(job_id, 0, api.settings.queue), (job_id, 1, api.settings.queue)]
    context = WorkerContext(
        api.settings, api.store, EngineRegistry(api.settings.databases), enqueuer=api.enqueuer
    )
    try:
        run_chunk(context, job_id, 1)
        assert api.enqueuer.sent[-1] == (job_id, 2, api.settings.queue)
        assert api.store.meta(job_id).window == 2  # type: ignore[union-attr]
    finally:
        context.engines.dispose()
    api.enqueuer.queued.remove((job_id, 1))
    api.run_queued()
    meta = api.store.meta(job_id)
    assert meta is not None
    assert (meta.state, meta.processed, meta.created) == (JobState.COMPLETED, 45, 45)
    assert sorted(chunk for _, chunk, _ in api.enqueuer.sent) == [0, 1, 2, 3, 4]
    assert api.store.take_waiting(job_id) == []


def test_window_zero_queues_every_chunk_at_once(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=10, job_window_chunks=0)
    job_id = submit(api, make_rows(45, first_key=100), auth_headers())
    assert [chunk for _, chunk in api.enqueuer.queued] == [0, 1, 2, 3, 4]
    assert api.store.take_waiting(job_id) == []
    api.run_queued()
    meta = api.store.meta(job_id)
    assert meta is not None
    assert (meta.window, meta.processed) == (0, 45)


def test_a_cancelled_job_queues_every_waiting_chunk_at_once(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=10, job_window_chunks=1, fast_queue_max_rows=0)
    job_id = submit(api, make_rows(50, first_key=100), auth_headers())
    assert api.client.delete(f"/jobs/{job_id}", headers=auth_headers()).status_code == 202
    context = WorkerContext(
        api.settings, api.store, EngineRegistry(api.settings.databases), enqueuer=api.enqueuer
    )
    try:
        run_chunk(context, job_id, 0)
    finally:
        context.engines.dispose()
    assert [chunk for _, chunk, _ in api.enqueuer.sent] == [0, 1, 2, 3, 4]
    api.enqueuer.queued.remove((job_id, 0))
    api.run_queued()
    meta = api.store.meta(job_id)
    assert meta is not None
    assert (meta.state, meta.not_processed) == (JobState.CANCELLED, 50)


class _BrokerDown(RecordingEnqueuer):
    def enqueue_chunks(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")


def test_a_chunk_that_could_not_be_queued_is_queued_by_the_sweep_once_the_job_stalls(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=10, job_window_chunks=1, fast_queue_max_rows=0, stuck_after_s=60)
    job_id = submit(api, make_rows(30, first_key=100), auth_headers())
    context = WorkerContext(
        api.settings, api.store, EngineRegistry(api.settings.databases), enqueuer=_BrokerDown()
    )
    try:
        assert run_chunk(context, job_id, 0) is False  # recorded; queuing chunk 1 failed
    finally:
        context.engines.dispose()
    assert api.store.chunk_states(job_id).waiting == {2}
    later = api.store.now() + 61
    requeued = sweep(api.store, api.enqueuer, api.settings, lambda: 0, now=later)
    assert requeued == {job_id: [1]}  # lost in the hand-off; chunk 2 keeps waiting its turn
    api.enqueuer.queued.remove((job_id, 0))
    api.run_queued()
    meta = api.store.meta(job_id)
    assert meta is not None
    assert (meta.state, meta.processed) == (JobState.COMPLETED, 30)
