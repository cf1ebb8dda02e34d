"""The canary's rules as pure functions, and the latency series it judges with."""

from __future__ import annotations

import random

import pytest

from inferencehub.errors import InvalidRequestError
from inferencehub.gateway.shadow import same_answer
from inferencehub.gateway.traffic import Series
from inferencehub.protocol import canary
from inferencehub.protocol.canary import Window
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb


def rollout(**overrides: object) -> pb.RoutingPolicy:
    fields: dict[str, object] = {
        "version": "2",
        "baseline": "1",
        "ramp": [5, 25, 100],
        "every_s": 60,
        "max_error_rate": 0.01,
        "max_p99_ratio": 1.5,
        "min_requests": 20,
    }
    fields.update(overrides)
    policy = pb.RoutingPolicy(labels={"beta": "3"}, sticky=True, canary=pb.Canary(**fields))
    return canary.start(policy, now_ms=1000)


def test_start_sets_the_first_step_and_keeps_other_labels() -> None:
    policy = rollout()
    assert dict(policy.weights) == {"2": 5, "1": 95}
    assert dict(policy.labels) == {"beta": "3", "stable": "1", "canary": "2"}
    assert policy.canary.state == pb.Canary.RUNNING
    assert policy.canary.started_ms == policy.canary.updated_ms == 1000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "9"}, "not ready"),
        ({"version": "1"}, "both 1"),
        ({"ramp": []}, "ascending"),
        ({"ramp": [50, 25]}, "ascending"),
        ({"ramp": [0, 50]}, "ascending"),
        ({"ramp": [50, 150]}, "ascending"),
        ({"every_s": 0}, "positive duration"),
        ({"max_error_rate": 2}, "between 0 and 100"),
        ({"max_p99_ratio": 0.5}, "at least 1"),
    ],
)
def test_check_refuses_rollouts_that_cannot_run(change: dict, message: str) -> None:
    fields = {"version": "2", "baseline": "1", "ramp": [5, 100], "every_s": 1}
    fields.update({"max_error_rate": 0.01, "max_p99_ratio": 1.5})
    fields.update(change)
    with pytest.raises(InvalidRequestError, match=message):
        canary.check(pb.Canary(**fields), ready={"1", "2"})


def test_one_error_breaches_a_one_percent_budget_without_waiting_for_more() -> None:
    verdict = canary.judge(rollout().canary, Window(3, 1, 0.01), Window(50, 0, 0.01), 1.0)
    assert verdict.action == "rollback"
    assert "1/3" in verdict.reason and "budget of 1.0%" in verdict.reason


def test_errors_within_the_budget_hold_then_advance() -> None:
    policy = rollout(max_error_rate=0.05)
    assert canary.judge(policy.canary, Window(100, 4, 0.01), Window(100, 0, 0.01), 1).action == (
        "hold"
    )
    assert canary.judge(policy.canary, Window(100, 4, 0.01), Window(100, 0, 0.01), 61).action == (
        "advance"
    )


def test_a_step_waits_for_enough_canary_requests() -> None:
    policy = rollout()
    assert canary.judge(policy.canary, Window(19, 0, 0.01), Window(500, 0, 0.01), 600).action == (
        "hold"
    )


def test_p99_compared_only_with_enough_samples_on_both_sides() -> None:
    policy = rollout()
    slow = Window(30, 0, 0.100)
    assert canary.judge(policy.canary, slow, Window(10, 0, 0.010), 1).action == "hold"
    verdict = canary.judge(policy.canary, slow, Window(30, 0, 0.010), 1)
    assert verdict.action == "rollback" and "x10.00" in verdict.reason
    assert canary.judge(policy.canary, Window(30, 0, 0.014), Window(30, 0, 0.010), 1).action == (
        "hold"
    )


def test_steps_advance_then_promote_at_the_end() -> None:
    policy = rollout()
    good, stable = Window(100, 0, 0.01), Window(100, 0, 0.01)
    for expected in ({"2": 25, "1": 75}, {"2": 100}):
        verdict = canary.judge(policy.canary, good, stable, 61)
        assert verdict.action == "advance"
        policy = canary.apply(policy, verdict, now_ms=2000)
        assert dict(policy.weights) == expected
        assert policy.canary.updated_ms == 2000
    verdict = canary.judge(policy.canary, good, Window(0, 0, 0), 61)
    assert verdict.action == "promote"
    promoted = canary.apply(policy, verdict, now_ms=3000)
    assert dict(promoted.weights) == {"2": 100}
    assert dict(promoted.labels) == {"beta": "3", "stable": "2"}
    assert promoted.canary.state == pb.Canary.PROMOTED and "3 steps" in promoted.canary.reason


def test_rollback_returns_everything_to_the_baseline() -> None:
    policy = rollout()
    verdict = canary.Verdict("rollback", "because")
    ended = canary.apply(policy, verdict, now_ms=5)
    assert dict(ended.weights) == {"1": 100}
    assert dict(ended.labels) == {"beta": "3", "stable": "1"}
    assert ended.canary.state == pb.Canary.ROLLED_BACK and ended.canary.reason == "because"


def test_series_percentiles_are_close_and_never_flatter() -> None:
    rng = random.Random(7)
    samples = [rng.uniform(0.001, 0.100) for _ in range(5000)]
    series = Series()
    for s in samples:
        series.record(s, ok=True)
    exact = sorted(samples)[int(0.99 * len(samples)) - 1]
    assert exact <= series.percentile(99) <= exact * 1.13
    assert Series().percentile(99) == 0.0


def test_series_windows_subtract() -> None:
    series = Series()
    for _ in range(100):
        series.record(0.001, ok=True)
    before = series.copy()
    for _ in range(10):
        series.record(0.5, ok=False)
    window = series.minus(before)
    assert (window.requests, window.errors) == (10, 10)
    assert 0.5 <= window.percentile(50) <= 0.57
    assert series.percentile(50) < 0.0012  # the whole history is still mostly fast


def response(*values: float, top: int | None = None) -> pb.PredictResponse:
    import numpy as np

    answer = pb.PredictResponse(outputs=[tensor_from_numpy("y", np.asarray(values, np.float32))])
    if top is not None:
        answer.classifications.append(pb.Classification(classes=[pb.ClassScore(index=top)]))
    return answer


def test_shadow_answers_compare_within_float_tolerance_or_by_top_class() -> None:
    assert same_answer(response(1.0, 2.0), response(1.0, 2.0000001))
    assert not same_answer(response(1.0, 2.0), response(1.0, 2.1))
    assert not same_answer(response(1.0, 2.0), response(1.0, 2.0, 3.0))
    assert same_answer(response(0.1, top=4), response(0.9, top=4))
    assert not same_answer(response(0.1, top=4), response(0.1, top=5))


def test_recent_traffic_and_history_come_from_one_second_snapshots() -> None:
    from inferencehub.gateway.traffic import HISTORY_S, TrafficStats

    stats = TrafficStats()
    series = stats.counters("m", "1").primary
    for second in range(15):
        for _ in range(second):  # 0, 1, 2, ... requests in successive seconds
            series.record(0.002, ok=True, batch_size=2)
        stats.tick()
    (seen,) = stats.to_proto("m", {("m", "1"): 3})
    assert seen.requests == sum(range(15))
    assert seen.requests_per_s == sum(range(5, 15)) / 10  # the last ten seconds
    assert list(seen.requests_history)[-15:] == list(range(15))
    assert len(seen.requests_history) == HISTORY_S
    assert seen.avg_batch_size == 2 and seen.queue_depth == 3


def test_text_log_lines_carry_the_request_id() -> None:
    import logging

    from inferencehub.logging import TextFormatter, current_request_id

    record = logging.makeLogRecord({"msg": "predict m", "levelname": "INFO", "role": "worker"})
    assert TextFormatter().format(record).endswith("worker     predict m")
    record.request_id = "abc"
    assert TextFormatter().format(record).endswith("predict m [request abc]")
    assert current_request_id.get() == ""
