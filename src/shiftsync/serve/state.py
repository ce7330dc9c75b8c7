"""What one `shiftsync serve` holds: the workspace folder, the guard, the background jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from shiftsync.engine.runs import RunStore
from shiftsync.serve.jobs import CheckJobs, RunJobs
from shiftsync.serve.security import Guard
from shiftsync.workspace import Workspace


@dataclass
class ServeState:
    folder: Path
    guard: Guard
    runs: RunJobs
    checks: CheckJobs

    def workspace(self) -> Workspace:
        # A fresh Workspace each time: shiftsync.yaml may have changed (a connection added
        # from the console, or an edit by hand) since the last request.
        return Workspace(self.folder)

    def store(self) -> RunStore:
        return RunStore(self.workspace().runs_dir)


def serve_state(request: Request) -> ServeState:
    state: ServeState = request.app.state.shiftsync
    return state


__all__ = ["ServeState", "serve_state"]
