"""The servers freeze their start-up heap (`claimpay.heap`): what was tracked then is out of
the collector's passes, and what comes later is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI

from claimpay.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap back in the collector's care afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.itself = self


def test_the_start_up_heap_is_frozen_and_later_garbage_still_collected(unfrozen: None) -> None:
    before = _Node()
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert all(generation == 0 for generation in gc.get_count()[1:])
    frozen = weakref.ref(before)
    del before
    gc.collect()
    assert frozen() is not None  # frozen: no pass walks it, so its cycle stays
    later = _Node()
    collected = weakref.ref(later)
    del later
    gc.collect()
    assert collected() is None


def test_claimpay_api_serves_an_app_that_freezes_once_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import producer.main

    monkeypatch.setattr(producer.main, "create_app", FastAPI)
    app = producer.main.create_server_app()
    assert app.router.on_startup == [freeze_startup_heap]


class _Signal:
    """Records its receivers instead of connecting them to Celery's global signal."""

    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, receiver: Any, weak: bool = True) -> None:
        self.receivers.append(receiver)


def test_claimpay_worker_freezes_each_pool_process_and_the_main_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import worker.celery_app

    frozen: list[str] = []
    process_init, ready = _Signal(), _Signal()
    monkeypatch.setattr(worker.celery_app, "worker_process_init", process_init)
    monkeypatch.setattr(worker.celery_app, "worker_ready", ready)
    monkeypatch.setattr(worker.celery_app, "freeze_startup_heap", lambda **_: frozen.append("x"))
    app = object()
    worker.celery_app.freeze_when_set_up(app)
    [pool_process] = process_init.receivers
    [main_process] = ready.receivers
    pool_process(sender=None)
    assert frozen == ["x"]
    main_process(sender=SimpleNamespace(app=object()))  # another app's node: not ours
    assert frozen == ["x"]
    main_process(sender=SimpleNamespace(app=app))
    assert frozen == ["x", "x"]
