"""A monitor's pods grouped by pod template: which are a rollout's canary, which its stable pods.

Every pod a ReplicaSet creates carries its template's hash: ``rollouts-pod-template-hash`` under Argo
Rollouts, ``pod-template-hash`` under a Deployment (Flagger's primary and canary Deployments are two
of those). Pods of one hash run one revision. During a rollout there are two: the **stable** group is
the older template (the group whose first pod was created first), the **canary** the newest. A third
group (a revision replaced mid-rollout, still scaling down) is neither and is left out of the
comparison. Pods are the operator's kopf index entries (``status_rules.PodInfo``): no extra API call.

Flagger's two Deployments say which is which themselves: the primary's pods carry the target's
selector label value with ``-primary`` appended (``app: web-primary`` beside ``app: web``). Where the
groups show exactly one such pair, the target's newest group is the canary and the primary's oldest the
stable one, whatever their ages: while Flagger promotes, the primary rolls out the canary's revision
(the newest pods then, which the age rule would call the canary), and a primary whose pods were all
recreated during the analysis (a drained node) would otherwise look newer than its canary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from driftwatch.operator.driftmonitor import Selector
from driftwatch.operator.status_rules import PodInfo
from driftwatch.vocab.names import TEMPLATE_HASH_LABELS


@dataclass(frozen=True)
class PodGroup:
    """The selected, active pods of one pod template."""

    template_hash: str
    pods: tuple[str, ...]
    #: the earliest creationTimestamp among them (RFC 3339)
    created: str


@dataclass(frozen=True)
class PodGroups:
    """canary and stable, or None with ``reason`` saying why there is nothing to compare."""

    canary: PodGroup | None
    stable: PodGroup | None
    #: groups that are neither (older revisions still scaling down)
    others: tuple[PodGroup, ...] = ()
    reason: str = ""


#: the pod labels Flagger selects a Deployment's pods by (its ``-selector-labels`` default), in its order
FLAGGER_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
#: what Flagger appends to that label's value on its primary Deployment's pods
FLAGGER_PRIMARY_SUFFIX = "-primary"


def template_hash(labels: Mapping[str, str]) -> str:
    """The pod's template hash ("" when it has none)."""
    for label in TEMPLATE_HASH_LABELS:
        if labels.get(label):
            return labels[label]
    return ""


def group(pods: Iterable[PodInfo], selector: Selector) -> PodGroups:
    """Group the selected, active pods by template hash and name the canary and the stable group."""
    by_hash: dict[str, list[PodInfo]] = {}
    unhashed = 0
    for p in pods:
        if not (p.active and selector.matches(p.labels)):
            continue
        h = template_hash(p.labels)
        if h:
            by_hash.setdefault(h, []).append(p)
        else:
            unhashed += 1
    groups = sorted(
        (
            PodGroup(h, tuple(sorted(p.name for p in members)), min(p.created for p in members))
            for h, members in by_hash.items()
        ),
        key=lambda g: (g.created, g.template_hash),
    )
    if len(groups) < 2:
        what = (
            f"one pod template ({groups[0].template_hash}, {len(groups[0].pods)} pods)"
            if groups
            else "no selected pod with a template hash"
        )
        labels = " or ".join(TEMPLATE_HASH_LABELS)
        extra = f"; {unhashed} selected pods have no {labels} label" if unhashed else ""
        return PodGroups(None, None, tuple(groups), f"{what}: no canary to compare with stable pods{extra}")
    template_labels = {h: members[0].labels for h, members in by_hash.items()}  # one template, one set
    flagger = flagger_roles(groups, template_labels)
    return flagger or PodGroups(groups[-1], groups[0], tuple(groups[1:-1]))


def flagger_roles(
    groups: Sequence[PodGroup], template_labels: Mapping[str, Mapping[str, str]]
) -> PodGroups | None:
    """Flagger's canary (the target Deployment's newest group) and stable pods (the primary's oldest),
    told apart by Flagger's ``-primary`` label value; None unless the groups hold exactly one target and
    primary pair. ``groups`` oldest first, ``template_labels`` by template hash."""
    for label in FLAGGER_SELECTOR_LABELS:
        value = {g.template_hash: template_labels[g.template_hash].get(label, "") for g in groups}
        primaries = [g for g in groups if value[g.template_hash].endswith(FLAGGER_PRIMARY_SUFFIX)]
        targets = {value[g.template_hash].removesuffix(FLAGGER_PRIMARY_SUFFIX) for g in primaries}
        if len(targets) != 1:
            continue
        target = targets.pop()
        canaries = [g for g in groups if target and value[g.template_hash] == target]
        if canaries:
            canary, stable = canaries[-1], primaries[0]
            return PodGroups(canary, stable, tuple(g for g in groups if g not in (canary, stable)))
    return None
