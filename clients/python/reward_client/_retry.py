"""Retries: which failures are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_INITIAL_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 5.0
DEFAULT_MULTIPLIER = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring the server's pushback.

    Attempt `n` (from 0) waits a uniform random time in `[0, min(max_backoff, initial_backoff *
    multiplier**n)]` ("full jitter", so many clients refused at once do not come back at once). When
    the server says how long to wait (HTTP `Retry-After` on 429/503, gRPC `grpc-retry-pushback-ms`),
    the wait is at least that. A retry that could not start before the call's deadline is not made.

    Retried: no connection or no answer, HTTP 429, 502, 503, gRPC UNAVAILABLE, and
    RESOURCE_EXHAUSTED with a pushback. Never retried: any other 4xx, 500, 504 and
    DEADLINE_EXCEEDED (the deadline has passed), or gRPC codes but those.

    `max_attempts` counts the first one: 1 turns retries off. It defaults to 5; the backoff to
    0.1 s, doubling, capped at 5 s.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    multiplier: float = DEFAULT_MULTIPLIER

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("initial_backoff must be at least 0 and at most max_backoff")

    def backoff(self, attempt: int, pushback: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (0 for the first)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
        jitter = (rng or random).uniform(0, cap)
        return max(jitter, pushback) if pushback is not None else jitter


RETRYABLE_HTTP = frozenset({429, 502, 503})


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (the delta-seconds form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def parse_pushback_ms(value: str | None) -> float | None:
    """`grpc-retry-pushback-ms` in seconds; None when absent or not a non-negative integer
    (gRPC's retry design: a malformed or negative pushback means "do not retry")."""
    if value is None:
        return None
    try:
        ms = int(value.strip())
    except ValueError:
        return None
    return ms / 1000 if ms >= 0 else None
