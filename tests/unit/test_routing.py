"""Version routing: labels, weighted splits that hold their proportions, sticky keys."""

from __future__ import annotations

import math

import pytest

from inferencehub.errors import ModelNotFoundError
from inferencehub.protocol.validation import pick_version, resolve_version
from inferencehub.v1 import inference_pb2 as pb

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
