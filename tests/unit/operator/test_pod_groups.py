"""Canary and stable pods under Flagger: its primary Deployment's pods (``app: web-primary``) are the
stable group and the target Deployment's (``app: web``) the canary, by Flagger's labels, not by age.

The label sets are the ones Flagger v1.36.1 gives its Deployments' pod templates (``makePrimaryLabels``
in ``pkg/canary/util.go``: the selector label's value gets ``-primary``, the other labels are kept)."""

from __future__ import annotations

from driftwatch.operator import pod_groups
from driftwatch.operator.driftmonitor import Selector
from driftwatch.operator.status_rules import PodInfo

#: the shipped Flagger DriftMonitor's selector (deploy/rollouts/flagger-canary.yaml), for app `web`
SELECTOR = Selector.parse(
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "web-primary"]}]}
)


def pod(name: str, app: str, template: str, created: str, label: str = "app") -> PodInfo:
    """A Deployment's pod: ``label`` carries ``app``, the ReplicaSet's hash ``template``."""
    labels = {"app": app, label: app, "tier": "front", "pod-template-hash": template}
    return PodInfo(name, labels, True, True, created)


def roles(groups: pod_groups.PodGroups) -> tuple[str, str, list[str]]:
    assert groups.canary is not None, groups.reason
    assert groups.stable is not None, groups.reason
    return groups.canary.template_hash, groups.stable.template_hash, [g.template_hash for g in groups.others]


def test_during_the_analysis_the_target_is_the_canary_and_the_primary_stable() -> None:
    pods = [
        pod("web-primary-p1-a", "web-primary", "p1", "2026-01-01T00:00:00Z"),
        pod("web-primary-p1-b", "web-primary", "p1", "2026-01-01T00:00:01Z"),
        pod("web-c2-a", "web", "c2", "2026-01-01T06:00:00Z"),
    ]
    groups = pod_groups.group(pods, SELECTOR)
    assert roles(groups) == ("c2", "p1", [])
    assert groups.stable is not None
    assert groups.stable.pods == ("web-primary-p1-a", "web-primary-p1-b")


def test_a_primary_recreated_after_its_canary_is_still_the_stable_group() -> None:
    """A drained node: every primary pod is newer than the canary's, which the age rule would swap."""
    pods = [
        pod("web-c2-a", "web", "c2", "2026-01-01T06:00:00Z"),
        pod("web-primary-p1-x", "web-primary", "p1", "2026-01-01T06:05:00Z"),
    ]
    assert roles(pod_groups.group(pods, SELECTOR)) == ("c2", "p1", [])


def test_while_flagger_promotes_the_new_primary_pods_are_left_out() -> None:
    """Promotion copies the canary's template to the primary: its new pods (the newest of all) run the
    canary's revision; the comparison stays canary against the primary it is replacing."""
    pods = [
        pod("web-primary-p1-a", "web-primary", "p1", "2026-01-01T00:00:00Z"),
        pod("web-c2-a", "web", "c2", "2026-01-01T06:00:00Z"),
        pod("web-primary-p2-a", "web-primary", "p2", "2026-01-01T06:30:00Z"),
    ]
    assert roles(pod_groups.group(pods, SELECTOR)) == ("c2", "p1", ["p2"])


def test_a_canary_restarted_mid_analysis_compares_its_newest_revision() -> None:
    pods = [
        pod("web-primary-p1-a", "web-primary", "p1", "2026-01-01T00:00:00Z"),
        pod("web-c2-a", "web", "c2", "2026-01-01T06:00:00Z"),
        pod("web-c3-a", "web", "c3", "2026-01-01T06:10:00Z"),
    ]
    assert roles(pod_groups.group(pods, SELECTOR)) == ("c3", "p1", ["c2"])


def test_flaggers_other_selector_labels_count_too() -> None:
    selector = Selector.parse({"matchLabels": {"tier": "front"}})
    pods = [
        pod("shop-c2-a", "shop", "c2", "2026-01-01T00:00:00Z", label="app.kubernetes.io/name"),
        pod(
            "shop-primary-p1-a", "shop-primary", "p1", "2026-01-01T06:00:00Z", label="app.kubernetes.io/name"
        ),
    ]
    assert roles(pod_groups.group(pods, selector)) == ("c2", "p1", [])


def test_without_exactly_one_flagger_pair_the_age_rule_decides() -> None:
    selector = Selector.parse({"matchLabels": {"tier": "front"}})
    two_canaries = [
        pod("web-primary-p1-a", "web-primary", "p1", "2026-01-01T00:00:00Z"),
        pod("db-primary-q1-a", "db-primary", "q1", "2026-01-01T01:00:00Z"),
        pod("web-c2-a", "web", "c2", "2026-01-01T06:00:00Z"),
    ]
    assert roles(pod_groups.group(two_canaries, selector)) == ("c2", "p1", ["q1"])
    no_target = [
        pod("web-c2-a", "web", "c2", "2026-01-01T00:00:00Z"),
        pod("api-primary-p1-a", "api-primary", "p1", "2026-01-01T06:00:00Z"),
    ]
    assert roles(pod_groups.group(no_target, selector)) == ("p1", "c2", [])
    assert pod_groups.flagger_roles([], {}) is None
