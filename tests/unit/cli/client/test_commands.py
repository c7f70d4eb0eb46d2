"""What the client commands say before they reach the network: usage and input errors."""

from __future__ import annotations

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
    assert "unknown entity 'x'; one of: claim-prompt-pays, place-codes" in result.output


def test_an_unreachable_api_exits_1_with_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["status", "0" * 32], env=ENV)
    assert result.exit_code == 1
    assert f"cannot reach the claimpay API at {NOWHERE} (connection refused)" in result.output
