"""The rules of `inferencehub route`, in process: value syntaxes, how a change merges into the
current policy, and following a rollout under a deadline (a fake clock, no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from inferencehub.cli.route_change import (
    RolloutStillRunning,
    RouteChange,
    UsageError,
    merge_policy,
    parse_duration,
    parse_fraction,
    parse_pair,
    parse_shadow,
    rollout_state,
    wait_for_rollout,
)

RUNNING_CANARY = {"version": "2", "baseline": "1", "state": "RUNNING", "step": 1}
CURRENT: dict[str, Any] = {
    "split": {"1": 90.0, "2": 10.0},
    "labels": {"stable": "1", "canary": "2"},
    "sticky": False,
    "shadow": {"version": "3", "fraction": 0.05},
    "canary": RUNNING_CANARY,
}


def test_nothing_asked_changes_nothing() -> None:
    assert merge_policy(CURRENT, RouteChange()) is None


def test_a_new_rollout_or_a_reset_replaces_the_policy() -> None:
    rollout = {"version": "3", "ramp": [5, 100]}
    assert merge_policy(CURRENT, RouteChange(canary=rollout, reset=True)) == {"canary": rollout}
    assert merge_policy(CURRENT, RouteChange(reset=True, split={"1": 100})) == {"reset": True}


def test_a_new_split_ends_a_running_rollout_and_turns_stickiness_on() -> None:
    assert merge_policy(CURRENT, RouteChange(split={"1": 50, "2": 50})) == {
        "split": {"1": 50, "2": 50},
        "labels": CURRENT["labels"],
        "sticky": True,
        "shadow": CURRENT["shadow"],
        "canary": None,
    }


def test_a_label_merges_and_keeps_split_stickiness_shadow_and_rollout() -> None:
    assert merge_policy(CURRENT, RouteChange(labels={"beta": "3", "canary": "3"})) == {
        "split": CURRENT["split"],
        "labels": {"stable": "1", "canary": "3", "beta": "3"},
        "sticky": False,
        "shadow": CURRENT["shadow"],
        "canary": RUNNING_CANARY,
    }


def test_promote_wins_over_a_split_and_labels_the_version_stable() -> None:
    change = RouteChange(split={"1": 50, "2": 50}, labels={"stable": "1"}, promote="2")
    merged = merge_policy(CURRENT, change)
    assert merged is not None
    assert merged["split"] == {"2": 100.0}
    assert merged["labels"] == {"stable": "2", "canary": "2"}
    assert (merged["sticky"], merged["canary"]) == (True, None)


def test_shadow_is_replaced_or_dropped() -> None:
    mirrored = {"version": "2", "fraction": 0.5}
    replaced = merge_policy(CURRENT, RouteChange(shadow=mirrored))
    dropped = merge_policy(CURRENT, RouteChange(no_shadow=True))
    assert replaced is not None and replaced["shadow"] == mirrored
    assert dropped is not None and dropped["shadow"] is None
    assert dropped["canary"] == RUNNING_CANARY  # a shadow change keeps the rollout going


def test_not_sticky_wins_even_with_a_new_split() -> None:
    merged = merge_policy(CURRENT, RouteChange(split={"1": 100}, not_sticky=True))
    assert merged is not None and merged["sticky"] is False


def test_a_finished_rollout_is_not_carried_over() -> None:
    current = {**CURRENT, "canary": {**RUNNING_CANARY, "state": "PROMOTED"}}
    merged = merge_policy(current, RouteChange(labels={"beta": "1"}))
    assert merged is not None and merged["canary"] is None
    no_rollout = {key: value for key, value in CURRENT.items() if key != "canary"}
    merged = merge_policy(no_rollout, RouteChange(labels={"beta": "1"}))
    assert merged is not None and merged["canary"] is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("500ms", 0.5), ("7", 7.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--every") == pytest.approx(seconds)


def test_values_that_do_not_parse_name_the_option() -> None:
    with pytest.raises(UsageError, match="--timeout takes a duration: 30s, 2m, 1h"):
        parse_duration("soon", "--timeout")
    with pytest.raises(UsageError, match="--shadow takes a fraction"):
        parse_shadow("3")
    with pytest.raises(UsageError, match="expected NAME=VERSION, got 'canary'"):
        parse_pair("canary", "NAME=VERSION")


def test_fractions_pairs_and_shadows() -> None:
    assert parse_fraction(" 5% ", "--max-error-rate") == pytest.approx(0.05)
    assert parse_fraction("0.05", "--max-error-rate") == pytest.approx(0.05)
    assert parse_pair(" canary = 2 ", "NAME=VERSION") == ("canary", "2")
    assert parse_shadow("3:5%") == {"version": "3", "fraction": pytest.approx(0.05)}


class FakeClock:
    """time.monotonic and time.sleep for a wait: sleeping moves the clock, nothing blocks."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def model(state: str | None) -> dict[str, Any]:
    rollout = {} if state is None else {"canary": {**RUNNING_CANARY, "state": state}}
    return {"routing": {"split": {}, "labels": {}, **rollout}}


def follow(states: list[str], timeout_s: float, clock: FakeClock) -> dict[str, Any]:
    """wait_for_rollout over a server whose rollout goes through `states`, one per look."""
    looks = iter(states)
    return wait_for_rollout(
        lambda: model(next(looks)),
        model("RUNNING"),
        timeout_s=timeout_s,
        poll_s=1.0,
        clock=clock.monotonic,
        sleep=clock.sleep,
    )


def test_wait_returns_when_the_rollout_ends() -> None:
    clock = FakeClock()
    info = follow(["RUNNING", "RUNNING", "ROLLED_BACK"], timeout_s=60, clock=clock)
    assert rollout_state(info) == "ROLLED_BACK"
    assert clock.slept == [1.0, 1.0, 1.0]


def test_wait_gives_up_at_the_deadline_after_one_last_look() -> None:
    clock = FakeClock()
    with pytest.raises(RolloutStillRunning) as still:
        follow(["RUNNING"] * 10, timeout_s=2.5, clock=clock)
    assert clock.slept == [1.0, 1.0, 0.5]  # never sleeps past the deadline
    assert clock.now == 1002.5
    assert rollout_state(still.value.info) == "RUNNING"
    assert still.value.timeout_s == 2.5


def test_a_rollout_that_ends_at_the_deadline_counts() -> None:
    clock = FakeClock()
    info = follow(["RUNNING", "PROMOTED"], timeout_s=2.0, clock=clock)
    assert rollout_state(info) == "PROMOTED"


def test_nothing_running_returns_at_once() -> None:
    clock = FakeClock()
    for state in (None, "PROMOTED"):
        info = wait_for_rollout(
            lambda: pytest.fail("no look needed"),
            model(state),
            timeout_s=1.0,
            clock=clock.monotonic,
            sleep=clock.sleep,
        )
        assert rollout_state(info) == state
    assert clock.slept == []
