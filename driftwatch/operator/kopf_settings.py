"""kopf's settings for DriftWatch, in one place with the reason for each.

* Watch timeouts: a watch that silently stops delivering events is kopf's most reported failure;
  a server-side timeout makes the API server close the stream regularly, a client-side one catches a
  dead connection, and kopf re-lists and re-watches either way.
* Peering off (standalone): kopf's peering pauses every watch of a lower-priority operator -- the ones
  feeding the webhook's monitor cache too -- and freezes replicas of equal priority. The replicas elect
  a leader on a Lease of their own instead (``election.py``, ``leadership.py``); no KopfPeering CRDs.
* Progress and diff-base in annotations under ``driftwatch.io``, never in ``status``: our status has a
  declared schema and kopf's own ``status.kopf`` would be pruned (kopf then logs "Patching failed with
  inconsistencies").
* Our finalizer name, so ``kubectl get -o yaml`` says whose it is.
* Events: posted at INFO and above, so transitions are visible in ``kubectl describe``.
* Scanning off: kopf would list/watch Namespaces and CRDs to follow new resources at runtime; the
  DriftMonitor CRD exists before the operator starts, and not asking keeps the RBAC smaller.
"""

from __future__ import annotations

import logging

import kopf

from driftwatch.vocab.names import FINALIZER, GROUP, MANAGER

#: kopf's thread pool, for the one synchronous handler (the pods index)
WORKERS = 20


def build() -> kopf.OperatorSettings:
    """Settings for ``kopf.run(settings=...)``: fixed before the operator starts, not at import time."""
    settings = kopf.OperatorSettings()
    configure(settings)
    return settings


def configure(settings: kopf.OperatorSettings) -> None:
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.peering.standalone = True
    settings.peering.mandatory = False
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.scanning.disabled = True
    settings.posting.enabled = True
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = MANAGER
    settings.execution.max_workers = WORKERS
    # A deletion waits for the object's timer to exit; if a timer round is mid-flight when the delete
    # arrives, kopf re-checks only every `cancellation_polling` seconds (default 60) -- `kubectl delete`
    # then hung for a minute. Timer rounds take milliseconds, so check every second.
    settings.background.cancellation_polling = 1
    # retry a failed handler quickly at first (API server blips), then back off
    settings.queueing.error_delays = (1, 2, 5, 10, 30, 60, 120)
