"""Delivery errors and the retry policy shared by the channels."""

from __future__ import annotations

from dataclasses import dataclass


class DeliveryError(Exception):
    """A failed attempt. ``retryable``: the receiver may accept a later attempt (5xx, 429, a timeout,
    a refused connection); otherwise (4xx, bad credentials) retrying cannot help. ``retry_after``: the
    receiver's own hint in seconds. The message must not contain secret values (it is redacted again
    before it is logged or recorded)."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all; the k-th retry waits ``base * factor**(k-1)`` seconds (at most ``cap``,
    or the receiver's Retry-After when that is at most ``cap``)."""

    attempts: int = 4
    base: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    timeout: float = 10.0  # per attempt

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None and 0 <= retry_after <= self.cap:
            return retry_after
        return min(self.cap, self.base * self.factor ** (retry - 1))
