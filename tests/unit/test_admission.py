"""The door's rules (gateway/admission.py), on a fake clock: pure arithmetic, no sleeps."""

from __future__ import annotations

from inferencehub.errors import OverloadedError
from inferencehub.gateway.admission import MIN_BACKLOG, TARGET_WAIT_S, Pace, refusal


def paced(interval_s: float, answers: int = 5) -> Pace:
    """A pace that saw `answers` answers `interval_s` apart while requests were outstanding."""
    pace = Pace()
    for i in range(answers):
        pace.answered(i * interval_s, outstanding=3)
    return pace


def test_the_pace_is_the_gap_between_answers_while_busy() -> None:
    pace = paced(0.01)
    assert abs(pace.interval_s - 0.01) < 1e-9


def test_an_idle_gap_says_nothing_about_the_pace() -> None:
    pace = paced(0.01)  # answers at 0.00 ... 0.04
    pace.answered(0.05, outstanding=0)  # the last one out: the lane goes idle
    pace.answered(65.0, outstanding=2)  # a minute later: that gap is idleness, not work
    assert abs(pace.interval_s - 0.01) < 1e-9


def test_an_unmeasured_lane_is_bounded_by_max_queue_size_only() -> None:
    assert refusal("v", MIN_BACKLOG * 10, Pace(), 0, 1, 0.001) is None
    refused = refusal("v", 128, Pace(), 128, 1, 60.0)
    assert isinstance(refused, OverloadedError)
    assert "max_queue_size" in refused.message


def test_light_load_is_never_refused_on_a_slow_model() -> None:
    slow = paced(1.0)  # a second per answer: TARGET_WAIT_S is less than one answer
    assert refusal("v", MIN_BACKLOG - 1, slow, 128, 1, 60.0) is None


def test_a_backlog_worth_more_than_the_target_wait_is_refused() -> None:
    fast = paced(0.001)  # TARGET_WAIT_S holds 200 answers
    limit = round(TARGET_WAIT_S / 0.001)
    assert refusal("v", limit - 1, fast, 0, 1, 60.0) is None
    refused = refusal("v", limit, fast, 0, 1, 60.0)
    assert isinstance(refused, OverloadedError)
    assert "retry later" in refused.message


def test_a_request_whose_answer_would_come_after_its_deadline_is_refused() -> None:
    pace = paced(0.1)
    assert refusal("v", 4, pace, 128, 2, 10.0) is None
    late = refusal("v", 4, pace, 128, 2, 0.5)  # ~0.6 s of work ahead of a 0.5 s deadline
    assert isinstance(late, OverloadedError)
    assert "deadline" in late.message


def test_one_clients_batch_is_bounded_by_its_queue_and_deadline_not_the_short_queue() -> None:
    """PredictMany's items reach the hop together: the door's short-queue rule would refuse
    all but 16 of them on a slow model; max_queue_size and the deadline still apply."""
    slow = paced(0.1)  # TARGET_WAIT_S holds 2 answers: the short queue is MIN_BACKLOG
    assert refusal("v", 40, slow, 128, 1, 60.0) is not None
    assert refusal("v", 40, slow, 128, 1, 60.0, short_queue=False) is None
    assert refusal("v", 128, slow, 128, 1, 60.0, short_queue=False) is not None
    assert refusal("v", 40, slow, 128, 1, 2.0, short_queue=False) is not None  # ~4 s ahead
