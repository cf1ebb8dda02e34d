"""A model's live routing on the worker: model.toml's [routing], or the policy last set with
SetRouting (kept as JSON in <data_dir>/routing/NAME.json, so it survives restarts and is shared
by workers on one data dir), without what cannot serve now. The rules themselves are pure and
live in protocol/routing.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

from google.protobuf import json_format

from inferencehub.protocol import routing
from inferencehub.runtime import write_private_atomically
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.repository import ModelEntry, RoutingConfig

logger = logging.getLogger(__name__)


class RoutingStore:
    def __init__(self, directory: Path | None) -> None:
        """`directory`: None keeps policies in memory only (no data dir)."""
        self.directory = directory

    def saved(self, name: str) -> pb.RoutingPolicy | None:
        path = self._file(name)
        if path is None or not path.is_file():
            return None
        try:
            return json_format.Parse(path.read_text(), pb.RoutingPolicy())
        except (OSError, json_format.ParseError) as exc:
            logger.error("ignoring the saved routing of %s: %s", name, exc)
            return None

    def save(self, name: str, policy: pb.RoutingPolicy) -> None:
        path = self._file(name)
        if path is not None:
            write_private_atomically(path, json_format.MessageToJson(policy))

    def forget(self, name: str) -> None:
        path = self._file(name)
        if path is not None:
            path.unlink(missing_ok=True)

    def live(self, entry: ModelEntry, info: pb.ModelInfo) -> pb.RoutingPolicy:
        """The saved policy if any, else model.toml's; either without what cannot serve."""
        saved = self.saved(entry.name)
        return usable(saved if saved is not None else policy_from(entry.config.routing), info)

    def _file(self, name: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{name}.json"


def policy_from(config: RoutingConfig) -> pb.RoutingPolicy:
    """model.toml's [routing] as a policy."""
    policy = pb.RoutingPolicy(
        labels={label: str(v) for label, v in config.labels.items()},
        weights={str(int(version)): weight for version, weight in config.split.items()},
        sticky=config.sticky,
    )
    if config.shadow is not None:
        policy.shadow.version = str(config.shadow.version)
        policy.shadow.fraction = config.shadow.fraction
    return policy


def usable(policy: pb.RoutingPolicy, info: pb.ModelInfo) -> pb.RoutingPolicy:
    """A copy of `policy` without what cannot serve now; what was dropped is logged."""
    kept = pb.RoutingPolicy()
    kept.CopyFrom(policy)
    for problem in routing.usable(kept, routing.ready_versions(info)):
        logger.error("%s: %s", info.name, problem)
    return kept


def default_version(entry: ModelEntry, info: pb.ModelInfo) -> str:
    """model.toml's default_version (logged when it cannot serve), else the newest ready."""
    ready = sorted(routing.ready_versions(info), key=routing.version_order)
    pinned = entry.config.default_version
    if pinned is not None:
        if str(pinned) not in ready:
            logger.error(
                "%s: model.toml default_version %s is not a loaded version (%s)",
                entry.name,
                pinned,
                ", ".join(ready) or "none",
            )
        return str(pinned)  # requests without a version then get an error naming the versions
    return ready[-1] if ready else ""


def adopted(info: pb.ModelInfo, policy: pb.RoutingPolicy, why: str = "") -> pb.ModelInfo:
    """The model's info serving with `policy` from now on (logged)."""
    updated = pb.ModelInfo()
    updated.CopyFrom(info)
    updated.routing.CopyFrom(policy)
    shown = json_format.MessageToDict(policy) or "default"
    logger.info("routing of %s is now %s%s", info.name, shown, why)
    return updated
