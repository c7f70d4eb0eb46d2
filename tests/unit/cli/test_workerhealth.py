"""Node names: unique per host and process, and recognisable as this host's."""

from __future__ import annotations

from cli.workerhealth import default_node_name, runs_on


def test_default_node_names_differ_per_host_and_process() -> None:
    names = {
        default_node_name("h1", 10),
        default_node_name("h1", 11),
        default_node_name("h2", 10),
    }
    assert names == {"claimpay@h1-10", "claimpay@h1-11", "claimpay@h2-10"}


def test_a_node_runs_on_the_host_it_is_named_after() -> None:
    assert runs_on(default_node_name("worker-a", 42), "worker-a")
    assert runs_on("celery@worker-a", "worker-a")  # Celery's own default
    assert not runs_on("claimpay@worker-a-42", "worker")  # another host, a longer name
    assert not runs_on("claimpay@worker-b-42", "worker-a")
    assert not runs_on("claimpay@worker-a-x", "worker-a")
