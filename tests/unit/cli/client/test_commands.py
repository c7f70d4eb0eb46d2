"""What the client commands say before they reach the network: usage and input errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import cli

NOWHERE = "http://127.0.0.1:9"
ENV = {
    "CLAIMPAY_URL": NOWHERE,
    "CLAIMPAY_API_KEY": "key",
    "CLAIMPAY_TOKEN": "token",
    "COLUMNS": "200",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("claimPromptPay_Key,prompt_Pay_Duration\n1,30\n2,x\n", encoding="utf-8")
    return path


def test_a_missing_token_is_a_usage_error_with_a_hint(runner: CliRunner, csv_file: Path) -> None:
    result = runner.invoke(
        cli, ["submit", str(csv_file), "-d", "demo"], env={**ENV, "CLAIMPAY_TOKEN": None}
    )
    assert result.exit_code == 2
    assert "no bearer token" in result.output
    assert "claimpay token --user U" in result.output


def test_a_malformed_csv_is_refused_before_connecting(runner: CliRunner, csv_file: Path) -> None:
    result = runner.invoke(cli, ["submit", str(csv_file), "-d", "demo"], env=ENV)
    assert result.exit_code == 2
    assert "rows.csv, line 3: column prompt_Pay_Duration: 'x' is not an integer" in result.output
    assert "cannot reach" not in result.output


def test_an_unknown_entity_is_a_usage_error(runner: CliRunner, csv_file: Path) -> None:
    result = runner.invoke(cli, ["submit", str(csv_file), "-d", "demo", "--entity", "x"], env=ENV)
    assert result.exit_code == 2
    assert "--entity x: unknown; one of: claim-prompt-pays, place-codes" in result.output


def test_an_unreachable_api_exits_1_with_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["status", "0" * 32], env=ENV)
    assert result.exit_code == 1
    assert f"cannot reach the claimpay API at {NOWHERE} (connection refused)" in result.output


def test_every_bad_csv_line_is_listed_up_to_a_bound(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    lines = ["claimPromptPay_Key,prompt_Pay_Duration"]
    lines += [f"{n},{'x' if n % 2 else n}" for n in range(1, 51)]  # 25 bad lines
    lines.insert(3, "99,1,extra")  # line 4: one field too many
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = runner.invoke(cli, ["submit", str(path), "-d", "demo"], env=ENV)

    assert result.exit_code == 2
    lines = [line.removeprefix("Error: ") for line in result.output.splitlines()]
    reported = [line for line in lines if line.startswith("many.csv, line")]
    assert len(reported) == 20
    assert reported[0] == "many.csv, line 2: column prompt_Pay_Duration: 'x' is not an integer"
    assert reported[1] == "many.csv, line 4: expected 2 fields, found 3"
    assert "... and 6 more bad lines" in result.output
    assert "many.csv: 26 bad lines; nothing was sent" in result.output
    assert "cannot reach" not in result.output


def test_an_unknown_output_extension_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    result = runner.invoke(cli, ["results", "0" * 32, "-o", str(out)], env=ENV)
    assert result.exit_code == 2
    assert "unknown extension '.xlsx'" in result.output
    assert "--format" in result.output
    assert not out.exists()


def test_line_numbers_need_a_file_and_a_format_with_a_line_column(
    runner: CliRunner, tmp_path: Path
) -> None:
    env = {**ENV, "XDG_CONFIG_HOME": str(tmp_path)}
    unknown = runner.invoke(cli, ["results", "0" * 32, "--line-numbers"], env=env)
    assert unknown.exit_code == 2
    assert f"no file remembered for job {'0' * 32}" in unknown.output
    assert "--input-file" in unknown.output

    source = tmp_path / "rows.ndjson"
    source.write_text('{"claimPromptPay_Key": 1}\n')
    as_json = runner.invoke(cli, ["results", "0" * 32, "--input-file", str(source)], env=env)
    assert as_json.exit_code == 2
    assert "-o FILE.csv or -o FILE.ndjson" in as_json.output


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"claimpay \d+\.\d+\.\d+\S*\n", result.output)


def test_jobs_refuses_an_unknown_state(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["jobs", "--state", "done"], env=ENV)
    assert result.exit_code == 2
    assert "--state done: unknown; one of: queued, running" in result.output
