"""Limits a shared server needs: questions per client per minute, and a lockout after repeated
failed logins. Pure, in-memory, thread-safe; the app holds one of each. Not a defence against a
distributed attack: they key on what the server sees (the client address, the user name).

>>> limit = RateLimit(per_minute=2, clock=iter([0.0, 1.0, 2.0, 61.0]).__next__)
>>> [limit.wait("1.2.3.4") for _ in range(4)]
[0.0, 0.0, 58.0, 0.0]
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimit:
    """At most `per_minute` events per key in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0.0 and the event is counted, or the seconds until `key` may try again (not counted)."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and now - seen[0] >= 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return round(60 - (now - seen[0]), 1)
            seen.append(now)
            if len(self._seen) > 10_000:  # forget idle clients so memory stays bounded
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < 60}
            return 0.0


class LoginGuard:
    """Checks a login against `user:password`; after `attempts` failures for one user name within
    `window` seconds, that name is refused (even with the right password) for `window` seconds.

    >>> guard = LoginGuard("reader:s3cret", attempts=2, window=300, clock=iter([0, 1, 2, 3, 400]).__next__)
    >>> [guard("reader", p) for p in ("x", "y", "s3cret", "s3cret", "s3cret")]
    [False, False, False, False, True]
    """

    def __init__(self, spec: str, attempts: int = 5, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.user, _, self.password = spec.partition(":")
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        import hmac

        now = self.clock()
        with self._lock:
            failures = self._failures.setdefault(user, deque())
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if len(failures) >= self.attempts:
                return False  # locked out until the oldest failure leaves the window
            ok = hmac.compare_digest(user.encode(), self.user.encode()) and hmac.compare_digest(
                password.encode(), self.password.encode())
            if not ok:
                failures.append(now)
                if len(self._failures) > 10_000:  # forget old names so memory stays bounded
                    self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.window}
            return ok
