"""The supervisor's small state file (runtime dir/state.json): children, pids, restarts, exits.

Written atomically by the supervisor, read by the gateway for GET /v1/status (and later the
status view). Stdlib only: the supervisor stays lean.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inferencehub.runtime import write_private_atomically

STATE_FILE = "state.json"


@dataclass
class ProcessState:
    role: str
    pid: int | None = None
    state: str = "starting"  # starting | running | restarting | failed | stopped
    started_at: float | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    last_exit_reason: str = ""


@dataclass
class HubState:
    supervisor_pid: int
    started_at: float
    processes: list[ProcessState] = field(default_factory=list)

    def process(self, role: str) -> ProcessState:
        for process in self.processes:
            if process.role == role:
                return process
        process = ProcessState(role=role)
        self.processes.append(process)
        return process


def write_state_atomic(path: Path, state: HubState) -> None:
    """Readers never see half a file (0600)."""
    write_private_atomically(path, json.dumps(asdict(state)))


def read_state(path: Path) -> dict[str, Any] | None:
    """The state as JSON data, or None when there is none (no supervisor, or not written yet)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
