"""The restart policy backs off exponentially, resets after a stable run, and gives up on loops."""

from __future__ import annotations

from inferencehub.supervisor.policy import RestartPolicy


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(max_crashes=100, window_s=1.0, base_delay_s=0.1, max_delay_s=0.5)
    delays = [policy.next_delay(now=i * 10.0, ran_for_s=1.0) for i in range(5)]
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_a_stable_run_resets_the_backoff() -> None:
    policy = RestartPolicy(base_delay_s=0.1, stable_s=30)
    assert policy.next_delay(now=0, ran_for_s=1) == 0.1
    assert policy.next_delay(now=1, ran_for_s=1) == 0.2
    assert policy.next_delay(now=100, ran_for_s=99) == 0.1


def test_gives_up_after_too_many_crashes_in_the_window() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=60)
    assert policy.next_delay(now=0, ran_for_s=1) is not None
    assert policy.next_delay(now=1, ran_for_s=1) is not None
    assert policy.next_delay(now=2, ran_for_s=1) is None


def test_old_crashes_leave_the_window() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=10)
    for now in (0, 1):
        assert policy.next_delay(now=now, ran_for_s=1) is not None
    assert policy.next_delay(now=20, ran_for_s=1) is not None
