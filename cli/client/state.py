"""What this machine's `claimpay submit` remembers of the files it sent: per job ID, the
file, its format and entity, and its size and modification time when sent (to tell if it
changed since). `claimpay results --line-numbers` reads it.

The state file is `jobs.json` in the user's claimpay directory (`~/.config/claimpay` on
Linux, under `XDG_CONFIG_HOME` when set); it keeps the newest `MAX_REMEMBERED` jobs.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import typer

STATE_FILE = "jobs.json"
MAX_REMEMBERED = 500


@dataclass(frozen=True, slots=True)
class SubmittedFile:
    """A batch file as it was when a job was submitted from it."""

    path: str
    format: str
    entity: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path, form: str, entity: str) -> SubmittedFile:
        stat = path.stat()
        return cls(str(path.resolve()), form, entity, stat.st_size, stat.st_mtime_ns)

    def changed(self) -> bool:
        """The file is gone, or its size or modification time differ from when it was sent."""
        try:
            stat = Path(self.path).stat()
        except OSError:
            return True
        return (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns)


def state_path() -> Path:
    return Path(typer.get_app_dir("claimpay")) / STATE_FILE


def remember(job_id: str, submitted: SubmittedFile, path: Path | None = None) -> None:
    """Record the job's file; a state file that cannot be written is skipped silently
    (remembering is a convenience, never a reason for a submit to fail)."""
    path = path or state_path()
    jobs = _load(path)
    jobs.pop(job_id, None)
    jobs[job_id] = asdict(submitted)
    newest = dict(list(jobs.items())[-MAX_REMEMBERED:])
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        partial.write_bytes(orjson.dumps(newest))
        partial.replace(path)


def recall(job_id: str, path: Path | None = None) -> SubmittedFile | None:
    """The file the job was submitted from on this machine, if remembered."""
    found = _load(path or state_path()).get(job_id)
    if not isinstance(found, dict):
        return None
    try:
        return SubmittedFile(**found)
    except TypeError:
        return None


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
