"""The API in-process on fakeredis, with a recording enqueuer and an in-process worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from claimpay.jobstore import JobStore
from claimpay.settings import Settings
from producer.main import create_app
from tests.factories import make_settings
from tests.fakes import RecordingEnqueuer
from worker.chunks import run_chunk
from worker.context import WorkerContext
from worker.engines import EngineRegistry


@dataclass
class Api:
    client: TestClient
    enqueuer: RecordingEnqueuer
    store: JobStore
    settings: Settings

    def run_queued(self, reverse: bool = True) -> None:
        """Apply every queued chunk, last first, as parallel workers might, and then those
        they queued (`job_window_chunks`), until none is left."""
        context = WorkerContext(
            settings=self.settings,
            store=self.store,
            engines=EngineRegistry(self.settings.databases),
            enqueuer=self.enqueuer,
        )
        while self.enqueuer.queued:
            queued = self.enqueuer.queued[::-1] if reverse else list(self.enqueuer.queued)
            self.enqueuer.queued.clear()
            for job_id, chunk_no in queued:
                run_chunk(context, job_id, chunk_no)
        context.engines.dispose()


@pytest.fixture
def make_api(job_store: JobStore, tmp_path: object) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def build(**overrides: object) -> Api:
        from worker.migrate import upgrade

        databases = {
            "demo": f"sqlite:///{tmp_path}/demo.db",
            "acme": f"sqlite:///{tmp_path}/acme.db",
        }
        for url in databases.values():
            upgrade(url)
        settings = make_settings(databases=databases, **overrides)
        enqueuer = RecordingEnqueuer()
        app = create_app(settings, store=job_store, enqueuer=enqueuer)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return Api(client, enqueuer, job_store, settings)

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
