"""kopf settings that change what users see."""

from __future__ import annotations

import kopf

from driftwatch.operator.kopf_settings import FINALIZER, configure


def test_settings() -> None:
    s = kopf.OperatorSettings()
    configure(s)
    # a delete that races a timer round must not wait kopf's default 60 s for the timer to exit
    assert s.background.cancellation_polling <= 2
    # silent watch stalls are kopf's most reported problem: both timeouts set, client's above server's
    assert s.watching.server_timeout is not None
    assert s.watching.client_timeout is not None
    assert s.watching.client_timeout > s.watching.server_timeout
    assert s.persistence.finalizer == FINALIZER
    assert s.peering.standalone
