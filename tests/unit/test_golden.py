"""The gate before traffic: golden files are read safely, compared with the documented
tolerances, and checked on every session; versions without them are warmed with zeros."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferencehub.config import WorkerSettings
from inferencehub.errors import ConfigError
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.golden import check_golden, compare, feeds_for, load_case
from inferencehub.worker.onnx_model import OnnxModel
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.repository import GoldenConfig, ModelConfig, scan_model
from inferencehub.worker.signature import synthetic_feeds
from inferencehub.worker.tuning import Layout
from tests.model_builders import int_model, reshape_model, scale_model, string_model

DEFAULTS = GoldenConfig()
ONES = np.ones((1, 4), np.float32)


def save_npz(path: Path, **arrays: Any) -> Path:
    """np.savez with keys like 'input.x', which are not Python identifiers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def golden(path: Path, x: np.ndarray, y: np.ndarray, **extra: Any) -> Path:
    return save_npz(path, **{"input.x": x, "output.y": y}, **extra)


def load(path: Path, instances: int = 1) -> OnnxModel:
    config = ModelConfig(instances=instances)
    layout = Layout(instances=config.instances, threads=1)
    return OnnxModel("m", "1", path, config, None, layout=layout, max_image_pixels=1_000_000)


def spec(name: str, datatype: str, shape: list[int]) -> pb.TensorSpec:
    return pb.TensorSpec(name=name, datatype=datatype, shape=shape)


# --- comparison ---------------------------------------------------------------------------


def test_floats_within_tolerance_match() -> None:
    expected = np.array([[1.0, 1000.0]], np.float32)
    # atol 1e-5 + rtol 1e-4 * 1000 = 0.10001: a 0.05 error on 1000 is close enough.
    actual = np.array([[1.000005, 1000.05]], np.float32)
    assert compare("y", actual, expected, 1e-4, 1e-5) == ""


def test_a_float_beyond_tolerance_is_named_with_its_worst_element() -> None:
    expected = np.zeros((1, 4), np.float32)
    actual = expected.copy()
    actual[0, 2] = 0.31
    actual[0, 1] = 0.01
    message = compare("scores", actual, expected, 1e-4, 1e-5)
    assert message.startswith(
        "output 'scores' differs: max abs diff 0.31 > atol 1e-05 + rtol 0.0001*|expected| "
        "at index (0, 2)"
    )
    assert "2 of 4 elements differ" in message


def test_rtol_scales_with_the_expected_value() -> None:
    expected = np.array([1.0, 1000.0], np.float64)
    actual = expected + 0.05
    message = compare("y", actual, expected, 1e-4, 1e-5)
    assert "at index (0,)" in message and "1 of 2 elements differ" in message


def test_nan_matches_nan_only() -> None:
    expected = np.array([np.nan, 1.0], np.float32)
    assert compare("y", expected.copy(), expected, 1e-4, 1e-5) == ""
    message = compare("y", np.array([0.0, 1.0], np.float32), expected, 1e-4, 1e-5)
    assert "at index (0,)" in message


def test_integers_and_booleans_must_be_exact() -> None:
    expected = np.array([[5, 6]], np.int64)
    message = compare("out", np.array([[5, 7]], np.int64), expected, 1.0, 1.0)
    assert message == (
        "output 'out' differs at index (0, 1): got 7, expected 6 (1 of 2 elements differ)"
    )
    flags = np.array([True, False])
    assert compare("flag", flags.copy(), flags, 0, 0) == ""
    assert "got False, expected True (2 of 2" in compare("flag", ~flags, flags, 0, 0)


def test_dtype_and_shape_must_match() -> None:
    expected = np.zeros((1, 4), np.float64)
    assert compare("y", expected.astype(np.float32), expected, 1e-4, 1e-5) == (
        "output 'y' is float32; the file expects float64"
    )
    assert compare("y", np.zeros((1, 3)), expected, 1e-4, 1e-5) == (
        "output 'y' has shape (1, 3); the file expects (1, 4)"
    )
    assert "is object; the file expects float64" in compare(
        "y", np.array(["a"], dtype=object), expected, 1e-4, 1e-5
    )


def test_strings_compare_as_text() -> None:
    actual = np.array(["cat", "dog"], dtype=object)  # what ONNX Runtime returns
    assert compare("t", actual, np.array(["cat", "dog"]), 0, 0) == ""
    assert compare("t", actual, np.array([b"cat", b"dog"]), 0, 0) == ""
    assert "got 'dog', expected 'cow'" in compare("t", actual, np.array(["cat", "cow"]), 0, 0)


# --- reading golden files -----------------------------------------------------------------


def test_a_golden_file_is_split_into_inputs_outputs_and_tolerances(tmp_path: Path) -> None:
    plain = load_case(golden(tmp_path / "a.npz", ONES, ONES), DEFAULTS)
    assert (plain.label, plain.rtol, plain.atol) == ("golden/a.npz", 1e-4, 1e-5)
    assert list(plain.inputs) == ["x"] and list(plain.outputs) == ["y"]
    loose = load_case(
        golden(tmp_path / "b.npz", ONES, ONES, rtol=np.float64(0.5)),
        GoldenConfig(rtol=0.1, atol=0.2),
    )
    assert (loose.rtol, loose.atol) == (0.5, 0.2)  # per file wins; the rest from model.toml


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"input.x": ONES}, "needs at least one input.NAME and one output.NAME"),
        ({"output.y": ONES}, "needs at least one input.NAME and one output.NAME"),
        ({"input.x": ONES, "output.y": ONES, "x": ONES}, "unknown arrays ['x']"),
        ({"input.x": ONES, "output.y": ONES, "rtol": np.ones(2)}, "'rtol' must be a non-negative"),
        ({"input.x": ONES, "output.y": ONES, "atol": np.float32(-1)}, "'atol' must be a non-neg"),
        ({"input.x": np.array([ONES], dtype=object), "output.y": ONES}, "holds object arrays"),
    ],
)
def test_malformed_golden_files_are_refused_clearly(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match=r"golden/bad\.npz") as raised:
        load_case(path, DEFAULTS)
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip file", "is not an .npz archive"),
        (b"", "is not an .npz archive"),
    ],
)
def test_unreadable_files_are_refused_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_case(path, DEFAULTS)


def test_a_damaged_archive_is_refused_clearly(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "bad.npz", **{"input.x": np.arange(4000.0), "output.y": ONES})
    data = bytearray(path.read_bytes())
    data[200:4000] = b"\0" * 3800  # inside the first array's data, after the zip header
    path.write_bytes(bytes(data))
    # A CRC mismatch or a corrupt npy header: either way a ConfigError, not a traceback.
    with pytest.raises(ConfigError, match=r"golden/bad\.npz cannot be read"):
        load_case(path, DEFAULTS)


class _Payload:
    """Unpickling this would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_pickled_payload_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    payload = np.array([_Payload(marker)], dtype=object)
    path = save_npz(tmp_path / "evil.npz", **{"input.x": payload, "output.y": ONES})
    with pytest.raises(ConfigError, match="never unpickled"):
        load_case(path, DEFAULTS)
    assert not marker.exists()


# --- matching a file to the model's signature ---------------------------------------------

SCALE_INPUTS = [spec("x", "FP32", [-1, 4])]
SCALE_OUTPUTS = [spec("y", "FP32", [-1, 4])]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"input.z": ONES, "output.y": ONES}, "has input 'z'; model inputs: ['x']"),
        ({"input.x": ONES, "output.z": ONES}, "has output 'z'; model outputs: ['y']"),
        ({"input.x": ONES.astype(np.float64), "output.y": ONES}, "'x' is float64; the model takes"),
        ({"input.x": np.ones((1, 3), np.float32), "output.y": ONES}, "shape (1, 3); the model"),
        ({"input.x": np.ones(4, np.float32), "output.y": ONES}, "shape (4,); the model"),
    ],
)
def test_a_file_that_does_not_fit_the_signature_is_refused(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    case = load_case(save_npz(tmp_path / "f.npz", **arrays), DEFAULTS)
    with pytest.raises(ConfigError) as raised:
        feeds_for(case, SCALE_INPUTS, SCALE_OUTPUTS)
    assert message in raised.value.message


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    two = [*SCALE_INPUTS, spec("w", "INT64", [])]
    case = load_case(golden(tmp_path / "f.npz", ONES, ONES), DEFAULTS)
    with pytest.raises(ConfigError, match=r"lacks input 'w' \(add input.w\)"):
        feeds_for(case, two, SCALE_OUTPUTS)


def test_string_inputs_become_str_objects(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "s.npz", **{"input.s": np.array(["a", "b"]), "output.t": ONES})
    feeds = feeds_for(load_case(path, DEFAULTS), [spec("s", "BYTES", [-1])], [spec("t", "", [])])
    assert feeds["s"].dtype == object and feeds["s"].tolist() == ["a", "b"]


# --- warm-up synthesis --------------------------------------------------------------------


def test_synthetic_input_is_zeros_with_dynamic_dims_as_one() -> None:
    feeds = synthetic_feeds(
        [spec("x", "FP32", [-1, 3, -1, 8]), spec("n", "INT64", []), spec("b", "BOOL", [2])]
    )
    assert feeds is not None
    assert {k: (v.shape, v.dtype.name) for k, v in feeds.items()} == {
        "x": ((1, 3, 1, 8), "float32"),
        "n": ((), "int64"),
        "b": ((2,), "bool"),
    }
    assert not any(v.any() for v in feeds.values())


def test_warm_up_gives_inner_dynamic_dims_room_and_keeps_the_batch_at_one() -> None:
    feeds = synthetic_feeds([spec("x", "FP32", [-1, 3, -1, -1])], inner_dims=32)
    assert feeds is not None and feeds["x"].shape == (1, 3, 32, 32)


def test_no_synthetic_input_for_strings() -> None:
    assert synthetic_feeds([spec("x", "FP32", [1]), spec("s", "BYTES", [-1])]) is None


# --- the gate on real sessions ------------------------------------------------------------


def record_runs(model: OnnxModel, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict]]:
    """Every run_feeds call, still running the real session."""
    calls: list[tuple[int, dict]] = []
    real = model.run_feeds

    def recording(instance: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append((instance, feeds))
        return real(instance, feeds)

    monkeypatch.setattr(model, "run_feeds", recording)
    return calls


def test_matching_golden_files_pass_on_every_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load(scale_model(tmp_path / "1" / "model.onnx", [1, 2, 3, 4]), instances=2)
    golden(tmp_path / "1" / "golden" / "a.npz", ONES, np.array([[1, 2, 3, 4]], np.float32))
    golden(tmp_path / "1" / "golden" / "b.npz", 2 * ONES, np.array([[2, 4, 6, 8]], np.float32))
    calls = record_runs(model, monkeypatch)
    assert check_golden(model, tmp_path / "1", DEFAULTS) is None
    assert [instance for instance, _ in calls] == [0, 1, 0, 1]
    assert [float(feeds["x"][0, 0]) for _, feeds in calls] == [1, 1, 2, 2]  # no synthetic run


def test_a_mismatching_golden_file_refuses_the_version(tmp_path: Path) -> None:
    model = load(scale_model(tmp_path / "1" / "model.onnx", [1, 2, 3, 4]))
    golden(tmp_path / "1" / "golden" / "a.npz", ONES, np.array([[1, 2, 3, 4]], np.float32))
    golden(tmp_path / "1" / "golden" / "b.npz", ONES, np.array([[1, 2, 3.3, 4]], np.float32))
    refused = check_golden(model, tmp_path / "1", DEFAULTS)
    assert refused is not None
    assert refused.startswith(
        "golden check failed: golden/b.npz output 'y' differs: max abs diff 0.3 > atol 1e-05 "
        "+ rtol 0.0001*|expected| at index (0, 2)"
    )
    loose = check_golden(model, tmp_path / "1", GoldenConfig(atol=0.5))
    assert loose is None  # the model.toml tolerance applies


def test_exact_outputs_of_an_integer_model(tmp_path: Path) -> None:
    model = load(int_model(tmp_path / "1" / "model.onnx"))
    a = np.array([[0, 5]], np.int64)
    good = {"input.a": a, "output.out": a + 1, "output.flag": a > 0}
    save_npz(tmp_path / "1" / "golden" / "ok.npz", **good)
    assert check_golden(model, tmp_path / "1", DEFAULTS) is None
    save_npz(tmp_path / "1" / "golden" / "wrong.npz", **{**good, "output.flag": a >= 0})
    refused = check_golden(model, tmp_path / "1", DEFAULTS)
    assert refused == (
        "golden check failed: golden/wrong.npz output 'flag' differs at index (0, 0): got False, "
        "expected True (1 of 2 elements differ)"
    )


def test_a_run_that_fails_on_golden_input_refuses_the_version(tmp_path: Path) -> None:
    model = load(reshape_model(tmp_path / "1" / "model.onnx"))
    arrays = {
        "input.x": np.ones(3, np.float32),
        "input.shape": np.array([2, 2], np.int64),  # 3 elements cannot become 2 x 2
        "output.y": np.ones((2, 2), np.float32),
    }
    save_npz(tmp_path / "1" / "golden" / "a.npz", **arrays)
    refused = check_golden(model, tmp_path / "1", DEFAULTS)
    assert refused is not None
    assert refused.startswith("golden check failed: golden/a.npz: the model failed on its inputs")


def test_required_golden_files_must_exist(tmp_path: Path) -> None:
    model = load(scale_model(tmp_path / "1" / "model.onnx", [1, 1, 1, 1]))
    (tmp_path / "1" / "golden").mkdir()
    (tmp_path / "1" / "golden" / "notes.txt").write_text("not a golden file")
    refused = check_golden(model, tmp_path / "1", GoldenConfig(required=True))
    assert refused == (
        "golden check failed: no golden/*.npz files, and model.toml [golden] required = true"
    )
    assert check_golden(model, tmp_path / "1", DEFAULTS) is None


def test_without_golden_files_every_session_is_warmed_with_zeros(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load(scale_model(tmp_path / "1" / "model.onnx", [1, 1, 1, 1]), instances=2)
    calls = record_runs(model, monkeypatch)
    assert check_golden(model, tmp_path / "1", DEFAULTS) is None
    assert [instance for instance, _ in calls] == [0, 1]
    for _, feeds in calls:
        assert feeds["x"].shape == (1, 4) and not feeds["x"].any()


def test_a_failing_synthetic_warm_up_is_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = load(reshape_model(tmp_path / "1" / "model.onnx"))  # zeros make a bad shape
    with caplog.at_level(logging.WARNING, logger="inferencehub.worker.golden"):
        assert check_golden(model, tmp_path / "1", DEFAULTS) is None
    assert "warm-up on zeros failed (it still loads)" in caplog.text


def test_string_models_are_not_warmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load(string_model(tmp_path / "1" / "model.onnx"))
    calls = record_runs(model, monkeypatch)
    assert check_golden(model, tmp_path / "1", DEFAULTS) is None
    assert calls == []
    # ... but golden strings are checked.
    save_npz(
        tmp_path / "1" / "golden" / "s.npz",
        **{"input.s": np.array(["héllo"]), "output.t": np.array(["hello"])},
    )
    refused = check_golden(model, tmp_path / "1", DEFAULTS)
    assert refused is not None and "got 'héllo', expected 'hello'" in refused


# --- the registry: FAILED on first load, previous sessions kept on reload -----------------


async def test_the_registry_fails_a_version_and_keeps_a_reloaded_one(tmp_path: Path) -> None:
    root = tmp_path / "models"
    good = scale_model(root / "m" / "1" / "model.onnx", [1, 2, 3, 4])
    golden(good.parent / "golden" / "g.npz", ONES, np.array([[1, 2, 3, 4]], np.float32))
    bad = scale_model(root / "m" / "2" / "model.onnx", [1, 2, 3, 5])
    golden(bad.parent / "golden" / "g.npz", ONES, np.array([[1, 2, 3, 4]], np.float32))
    registry = ModelRegistry(root, WorkerSettings(inference_threads=1, intra_op_threads=1))
    try:
        await registry.load_all()
        versions = {v.version: v for v in registry.model_info("m").versions}
        assert versions["2"].state == pb.ModelVersion.FAILED
        assert versions["2"].error.startswith("golden check failed: golden/g.npz output 'y'")
        assert registry.model_info("m").default_version == "1"
        # Version 1's file is replaced by one that fails the same golden file.
        scale_model(good, [1, 2, 3, 5])
        entry = scan_model(root / "m")
        assert entry is not None
        await registry.reload(entry, {"1"})
        kept = next(v for v in registry.model_info("m").versions if v.version == "1")
        assert kept.state == pb.ModelVersion.READY
        assert kept.error.startswith(
            "reload failed, still serving the previous file: golden check failed:"
        )
        outputs = registry.get("m", "1").model.run_feeds(0, {"x": ONES})
        np.testing.assert_array_equal(outputs["y"], [[1, 2, 3, 4]])
    finally:
        await registry.close()
