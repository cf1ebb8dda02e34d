"""Shared fixtures: tiny model repositories, short socket dirs, a running hub."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub import Hub, running_hub
from tests.model_builders import build_repository


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Workers started in-process keep their data (tuning cache, routing) in a temp dir, not
    in the user's: a test never reads what an earlier run (or the user) left there."""
    data = tmp_path_factory.mktemp("xdg")
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data)
    try:
        yield data
    finally:
        if saved is None:
            del os.environ["XDG_DATA_HOME"]
        else:
            os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("models"))


@pytest.fixture
def uds_dir() -> Iterator[Path]:
    # NOTE: pytest's tmp_path can exceed the AF_UNIX path limit (uvicorn hit the same).
    with tempfile.TemporaryDirectory(prefix="ih-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def hub(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One real `inferencehub up` shared by a test module (start-up costs seconds)."""
    with running_hub(repository, tmp_path_factory.mktemp("logs")) as running:
        yield running
