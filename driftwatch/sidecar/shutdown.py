"""Stopping the sidecar's long-running loops, for certain.

The runtime stops a loop (the Redis task, the stream reader, the scraper) by cancelling its task. A
loop that catches ``Exception`` to survive a failed step must still stop then -- and it would not when
a library turned the cancellation into an ordinary error: on Python 3.11 a ``wait_for`` or a timeout
racing with a cancel can swallow it (gh-86296), and redis-py then raises a timeout, which such a loop
logs and retries. Its task stayed "cancelling" forever and SIGTERM never finished (a sidecar that
outlived its pod's grace period). ``stopping()`` asks the task itself: every such loop checks it.
"""

from __future__ import annotations

import asyncio


def stopping() -> bool:
    """True once the running task was asked to stop (cancelled), whether or not the CancelledError
    reached this frame."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def check() -> None:
    """Raise CancelledError if the running task was asked to stop: at the top of a loop's step."""
    if stopping():
        raise asyncio.CancelledError
