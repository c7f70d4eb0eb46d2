"""README's walk-through, run as written against a real `claimpay dev`, after the banner's
own curl example (as a new user would): every answer is the one the README shows."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.devstack import free_port
from tests.e2e.devprocess import start_dev, stop, the_cli_environment

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
STEP_END = "@@ step done @@"


@dataclass
class Step:
    """Commands separated by a blank line, and the answer shown under them (`# ...`)."""

    commands: list[str]
    shown: list[str]

    def pattern(self) -> re.Pattern[str]:
        """The answer shown, as a pattern: `9f…` is a job ID, any other `…` elides text;
        line breaks and indentation of the shown answer are the README's layout."""
        text = "".join(line.strip() for line in self.shown)
        parts = []
        for piece in re.split(r"(9f…|…)", text):
            if piece == "9f…":
                parts.append("[0-9a-f]{32}")
            elif piece == "…":
                parts.append(".*?")
            else:
                parts.append(re.escape(piece))
        return re.compile("".join(parts), re.DOTALL)


def walkthrough() -> list[Step]:
    section = README.read_text().split("## Walk-through with curl", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    steps = []
    for chunk in block.split("\n\n"):
        step = Step([], [])
        for line in chunk.splitlines():
            if line.startswith("#"):
                if step.commands:  # a comment above the commands only says what they do
                    step.shown.append(line.removeprefix("#"))
            else:
                step.commands.append(line)
        steps.append(step)
    return steps


def banner_curl(banner: str) -> str:
    """The banner's first curl example (a submit), with its continuation lines."""
    lines = banner.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("curl -sS -X PUT"))
    command = []
    for line in lines[first:]:
        command.append(line)
        if not line.endswith("\\"):
            break
    return "\n".join(command)


def test_the_readme_walkthrough_shows_what_the_api_answers(tmp_path: Path) -> None:
    steps = walkthrough()
    assert len(steps) >= 4
    assert sum(1 for step in steps if step.shown) >= 4
    process, log = start_dev(tmp_path, free_port(), free_port())
    try:
        banner = log.read_text()
        env = the_cli_environment(banner)
        script = ["set -euo pipefail", banner_curl(banner), f"printf '\\n{STEP_END}\\n'"]
        for step in steps:
            script += [*step.commands, f"printf '\\n{STEP_END}\\n'"]
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop(process)
    assert done.returncode == 0, done.stdout + done.stderr
    answers = done.stdout.split(f"\n{STEP_END}\n")
    assert '"state":"queued"' in answers[0]  # the banner's example: key 1
    for step, answer in zip(steps, answers[1:], strict=False):
        flat = "".join(line.strip() for line in answer.splitlines())
        if step.shown:
            assert step.pattern().fullmatch(flat), f"README shows {step.shown}\ngot {answer}"
        else:
            assert flat == "", answer
