"""Version routing: labels, weighted splits that hold their proportions, sticky keys; policies
checked, started and trimmed; the worker's store of policies."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from inferencehub.errors import InvalidRequestError, ModelNotFoundError
from inferencehub.protocol import routing
from inferencehub.protocol.routing import pick_version, resolve_version
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.repository import ModelEntry, load_model_config
from inferencehub.worker.routing import RoutingStore, default_version

READY = pb.ModelVersion.READY


def model(weights: dict[str, float], sticky: bool = True) -> pb.ModelInfo:
    return pb.ModelInfo(
        name="resnet",
        default_version="2",
        versions=[
            pb.ModelVersion(version="1", state=READY),
            pb.ModelVersion(version="2", state=READY),
        ],
        routing=pb.RoutingPolicy(
            labels={"stable": "1", "canary": "2"}, weights=weights, sticky=sticky
        ),
    )


def within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_labels_and_numbers_and_default() -> None:
    m = model({})
    assert resolve_version(m, "stable").version == "1"
    assert resolve_version(m, "canary").version == "2"
    assert resolve_version(m, "1").version == "1"
    assert resolve_version(m, "").version == "2"
    with pytest.raises(ModelNotFoundError, match=r"labels: canary, stable"):
        resolve_version(m, "beta")


def test_split_over_distinct_keys_holds_its_proportion() -> None:
    m = model({"1": 90, "2": 10})
    chosen = [resolve_version(m, "", f"user-{i}").version for i in range(2000)]
    assert within_binomial(chosen.count("2"), 2000, 0.10)


def test_random_split_without_key_holds_its_proportion() -> None:
    m = model({"1": 90, "2": 10}, sticky=False)
    chosen = [resolve_version(m, "", "ignored").version for _ in range(2000)]
    assert within_binomial(chosen.count("2"), 2000, 0.10)


def test_sticky_keys_never_move_while_the_split_is_unchanged() -> None:
    m = model({"1": 50, "2": 50})
    first = {k: resolve_version(m, "", k).version for k in (f"k{i}" for i in range(200))}
    again = {k: resolve_version(m, "", k).version for k in first}
    assert first == again
    assert set(first.values()) == {"1", "2"}


def test_growing_the_canary_only_moves_keys_onto_it() -> None:
    small = model({"1": 90, "2": 10}).routing
    large = model({"1": 50, "2": 50}).routing
    for key in (f"user-{i}" for i in range(500)):
        if pick_version(small, key, "resnet") == "2":
            assert pick_version(large, key, "resnet") == "2"


# --- policies: checked, started, and trimmed to what can serve (protocol/routing.py) --------

FAILED = pb.ModelVersion.FAILED


def served(ready: list[str], routing: pb.RoutingPolicy | None = None) -> pb.ModelInfo:
    versions = [pb.ModelVersion(version=v, state=READY) for v in ready]
    versions.append(pb.ModelVersion(version="9", state=FAILED, error="broken"))
    return pb.ModelInfo(name="m", default_version=ready[-1], versions=versions, routing=routing)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (pb.RoutingPolicy(weights={"9": 10}), "weight of version 9 names version '9'"),
        (pb.RoutingPolicy(labels={"beta": "7"}), "label 'beta' names version '7'"),
        (pb.RoutingPolicy(weights={"1": -1, "2": 5}), "must not be negative"),
        (pb.RoutingPolicy(weights={"1": 0}), "at least one positive weight"),
        (pb.RoutingPolicy(shadow=pb.Shadow(version="2", fraction=1.5)), r"in \(0, 1\]"),
    ],
)
def test_a_policy_naming_what_cannot_serve_is_refused(
    policy: pb.RoutingPolicy, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        routing.prepare(served(["1", "2"]), policy, now_ms=5)


def test_the_refusal_names_the_ready_versions() -> None:
    with pytest.raises(InvalidRequestError, match=r"ready versions: 1, 2$"):
        routing.prepare(served(["1", "2"]), pb.RoutingPolicy(weights={"9": 1}), now_ms=5)


def test_a_new_canary_starts_from_the_current_policy() -> None:
    current = pb.RoutingPolicy(labels={"stable": "1"}, sticky=False)
    rollout = pb.Canary(
        version="2", ramp=[10, 100], every_s=60, max_error_rate=0.01, max_p99_ratio=1.5
    )
    started = routing.prepare(served(["1", "2"], current), pb.RoutingPolicy(canary=rollout), 7)
    assert started.canary.state == pb.Canary.RUNNING and started.canary.baseline == "1"
    assert started.canary.started_ms == 7
    assert dict(started.weights) == {"1": 90, "2": 10}
    assert dict(started.labels) == {"stable": "1", "canary": "2"} and not started.sticky


def test_what_cannot_serve_is_dropped_from_a_saved_policy() -> None:
    policy = pb.RoutingPolicy(weights={"9": 50}, shadow=pb.Shadow(version="9", fraction=0.5))
    dropped = routing.usable(policy, {"1", "2"})
    assert not policy.weights and not policy.HasField("shadow")
    assert dropped == [
        "split weight for version 9 ignored (not a ready version, or negative)",
        "no usable split weight; serving the default version",
        "shadow version 9 is not ready; no shadow",
    ]


def test_versions_sort_by_number_and_other_names_last() -> None:
    assert sorted(["10", "b", "2", "a", "1"], key=routing.version_order) == [
        "1", "2", "10", "a", "b",
    ]  # fmt: skip


# --- the worker's store of policies (worker/routing.py) ------------------------------------


def entry(tmp_path: Path, toml: str) -> ModelEntry:
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.toml").write_text(toml)
    return ModelEntry(name="m", directory=folder, config=load_model_config(folder)[0])


def test_a_saved_policy_wins_over_model_toml_until_forgotten(tmp_path: Path) -> None:
    model_entry = entry(tmp_path, '[routing]\nsplit = {"1" = 100}\n')
    info = served(["1", "2"])
    store = RoutingStore(tmp_path / "routing")
    assert dict(store.live(model_entry, info).weights) == {"1": 100}
    store.save("m", pb.RoutingPolicy(weights={"2": 100}))
    assert oct((tmp_path / "routing" / "m.json").stat().st_mode & 0o777) == "0o600"
    assert dict(RoutingStore(tmp_path / "routing").live(model_entry, info).weights) == {"2": 100}
    store.forget("m")
    assert dict(store.live(model_entry, info).weights) == {"1": 100}


def test_an_unreadable_saved_policy_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "routing").mkdir()
    (tmp_path / "routing" / "m.json").write_text("{not json")
    assert RoutingStore(tmp_path / "routing").saved("m") is None
    assert RoutingStore(None).saved("m") is None  # no data dir: memory only


def test_the_default_version_is_pinned_or_the_newest_ready(tmp_path: Path) -> None:
    assert default_version(entry(tmp_path, ""), served(["2", "10"])) == "10"
    assert default_version(entry(tmp_path, "default_version = 2\n"), served(["2", "10"])) == "2"
