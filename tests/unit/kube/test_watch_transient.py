"""Which API errors a watch waits out (``driftwatch.kube.watch.transient``): overload and unavailability
always; 401/403 only right after a dropped connection, and not for ever -- a restarting API server
answers them until its caches fill, a user without rights keeps getting them."""

from __future__ import annotations

from driftwatch.kube.client import KubeError
from driftwatch.kube.watch import AUTH_RETRIES, transient


def test_unavailable_is_always_waited_out() -> None:
    for status in (429, 500, 502, 503, 504):
        assert transient(KubeError(status, "x"), failures=0)


def test_forbidden_only_after_a_dropped_connection_and_bounded() -> None:
    assert not transient(KubeError(403, "forbidden"), failures=0)  # a first answer: the user's rights
    assert transient(KubeError(403, "forbidden"), failures=1)
    assert transient(KubeError(401, "unauthorized"), failures=AUTH_RETRIES - 1)
    assert not transient(KubeError(403, "forbidden"), failures=AUTH_RETRIES)


def test_not_found_and_bad_requests_are_not_waited_out() -> None:
    for status in (400, 404, 422):
        assert not transient(KubeError(status, "x"), failures=1)
