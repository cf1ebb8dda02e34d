"""The repository scan finds models and versions, and reports bad folders instead of failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferencehub.errors import ConfigError
from inferencehub.worker.repository import scan_repository


def touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_versions_are_numeric_folders_sorted_numerically(tmp_path: Path) -> None:
    for v in ("10", "2", "notes"):
        touch(tmp_path / "m" / v / "model.onnx")
    (entry,) = scan_repository(tmp_path)
    assert [v.version for v in entry.versions] == ["2", "10"]
    assert entry.error is None


def test_folders_without_versions_and_hidden_folders_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "empty" / "README")
    touch(tmp_path / ".git" / "1" / "model.onnx")
    assert scan_repository(tmp_path) == []


def test_model_toml_and_labels_are_read(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "1" / "model.onnx")
    touch(
        tmp_path / "m" / "model.toml",
        "default_version = 1\n[postprocess]\ntop_k = 3\nlabels = 'labels.txt'\n",
    )
    touch(tmp_path / "m" / "labels.txt", "cat\ndog\n")
    (entry,) = scan_repository(tmp_path)
    assert entry.config.default_version == 1
    assert entry.config.postprocess is not None and entry.config.postprocess.top_k == 3
    assert entry.labels == ["cat", "dog"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[preprocess]\nlayout = 'CHW'\n", "preprocess.layout"),
        ("[postprocess]\nlabels = 'missing.txt'\n", "labels file"),
        ("colour = 1\n", "colour"),
        ("[preprocess\n", "not valid TOML"),
    ],
)
def test_bad_model_toml_marks_the_model_not_the_repository(
    tmp_path: Path, toml: str, message: str
) -> None:
    touch(tmp_path / "bad" / "1" / "model.onnx")
    touch(tmp_path / "bad" / "model.toml", toml)
    touch(tmp_path / "good" / "1" / "model.onnx")
    bad, good = scan_repository(tmp_path)
    assert bad.error is not None and message in bad.error
    assert good.error is None


def test_missing_repository_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        scan_repository(tmp_path / "nope")
