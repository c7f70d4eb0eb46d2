"""The psql limit's script: every column copied and merged, nothing it cannot quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.psql import PsqlFailed, merge_script, parse_counts

COLUMNS = ("k", "a", "b")


def test_the_script_copies_the_file_and_merges_every_column_but_the_key() -> None:
    script = merge_script("t", COLUMNS, "k", Path("/data/batch.copy"))
    lines = script.splitlines()
    assert lines[0] == "\\set ON_ERROR_STOP on"
    assert lines[1] == "BEGIN;"
    assert "\\copy bench_stage (k, a, b) FROM '/data/batch.copy'" in lines
    assert "  INSERT INTO t (k, a, b) SELECT k, a, b FROM bench_stage" in lines
    assert "  ON CONFLICT (k) DO UPDATE SET a = EXCLUDED.a, b = EXCLUDED.b" in lines
    assert lines[-1] == "COMMIT;"
    # The temporary table goes with the transaction; the merge's counts are printed.
    assert "ON COMMIT DROP" in script
    assert "count(*) FILTER (WHERE created)" in script


@pytest.mark.parametrize(
    ("table", "columns", "key", "path"),
    [
        ("t", COLUMNS, "missing", "/d/x.copy"),
        ("t; drop", COLUMNS, "k", "/d/x.copy"),
        ("t", ("k", "A"), "k", "/d/x.copy"),
        ("t", COLUMNS, "k", "/d/it's.copy"),
        ("t", COLUMNS, "k", "/d/x\\y.copy"),
        ("t", COLUMNS, "k", "/d/x\n.copy"),
    ],
)
def test_what_cannot_be_written_safely_is_refused(
    table: str, columns: tuple[str, ...], key: str, path: str
) -> None:
    with pytest.raises(ValueError, match=r"identifier|key|path"):
        merge_script(table, columns, key, Path(path))


def test_parse_counts_reads_the_last_counts_line() -> None:
    assert parse_counts("BEGIN\n50000|50000\n") == (50000, 50000)
    assert parse_counts("\n12|0\n\n") == (12, 0)
    with pytest.raises(PsqlFailed, match="no counts"):
        parse_counts("ERROR: relation does not exist\n")
