"""When to restart a crashed child: exponential backoff, reset after a stable run, give up on a
crash loop. Pure: time is passed in, so tests need no clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """Decides whether, and after how long, a crashed child is restarted."""

    max_crashes: int = 5
    window_s: float = 60.0
    base_delay_s: float = 0.1
    max_delay_s: float = 10.0
    stable_s: float = 30.0
    _crashes: deque[float] = field(default_factory=deque, init=False, repr=False)
    _streak: int = field(default=0, init=False, repr=False)

    def next_delay(self, now: float, ran_for_s: float) -> float | None:
        """Seconds to wait before restarting after a crash at `now`, or None to give up.

        Args:
            now: when the child exited (any monotonic clock).
            ran_for_s: how long it had run; a long stable run resets the backoff.
        """
        if ran_for_s >= self.stable_s:
            self._streak = 0
        self._crashes.append(now)
        while now - self._crashes[0] > self.window_s:
            self._crashes.popleft()
        if len(self._crashes) >= self.max_crashes:
            return None
        delay = min(self.base_delay_s * 2**self._streak, self.max_delay_s)
        self._streak += 1
        return delay
