"""The handlers register explicitly: on the registry they are given, bound to one context -- importing
the module registers nothing (no import-order dependence) -- and none of them needs a finalizer."""

from __future__ import annotations

import kopf

from driftwatch.operator import handlers
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.options import OperatorOptions


def _handlers(registry: kopf.OperatorRegistry) -> dict[str, object]:
    parts = (
        registry._activities,
        registry._indexing,
        registry._watching,
        registry._spawning,
        registry._changing,
    )
    return {str(h.id): h for part in parts for h in part.get_all_handlers()}


def test_register_binds_every_handler_to_the_given_registry() -> None:
    default_before = len(_handlers(kopf.get_default_registry()))
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorContext(OperatorOptions(aggregate_interval=7.5)))
    got = _handlers(registry)
    # ids are explicit: they name kopf's progress annotations, so they must stay stable across releases
    assert set(got) == {
        "login",
        "startup",
        "shutdown",
        "track",
        "pods",
        "reconcile_children",
        "reconcile_children/spec",
    }
    assert len(_handlers(kopf.get_default_registry())) == default_before


def test_no_handler_puts_a_finalizer_on_driftmonitors() -> None:
    """A finalizer outlives `helm uninstall` (the operator is gone, the finalizer stays): deleting the
    namespace or the CRD then hangs. kopf adds one for any timer or daemon and any mandatory on.delete
    handler; there must be none (and kopf removes the one older versions added)."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorContext(OperatorOptions()))
    assert not list(registry._spawning.get_all_handlers())  # timers and daemons
    assert not any(getattr(h, "requires_finalizer", False) for h in registry._changing.get_all_handlers())
