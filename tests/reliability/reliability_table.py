"""docs/reliability.md's table: the static text of every row (what was tried, the test, what held) in
this one module, and the numbers column filled from a run.

Rows whose tests measure something name those tests (``sources``: ``test_file.py::test_name[params]``)
and give the numbers column as a template: ``{field}`` takes a field any source recorded (the
``reliability_record`` fixture, ``reliability_helpers.record``), ``{0[field]}`` the first source's.
Other rows' numbers column is static text.

* During a run, conftest's ``pytest_terminal_summary`` prints the table and writes
  ``build/reliability-table.json`` (every record, which tests failed, the command) and
  ``build/reliability-table.md`` (the table of this run; rows not run say so).
* ``make reliability-table`` (``python tests/reliability/reliability_table.py``) renders the table
  into docs/reliability.md between its markers from that JSON. It refuses a partial run -- a measured
  row whose tests did not all pass in it -- unless ``KEEP=1`` (``--keep``): those rows then keep the
  numbers the document has, and it says which rows are older.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
#: invalid_monitors.yaml's cases by who refuses them ("api", "operator"): the first two rows count them
CORPUS = Counter(
    str(case["stage"])
    for case in yaml.safe_load((Path(__file__).parent / "invalid_monitors.yaml").read_text())
)
DOC = ROOT / "docs" / "reliability.md"
BUILD = ROOT / "build"
JSON_OUT = BUILD / "reliability-table.json"
MD_OUT = BUILD / "reliability-table.md"
START = "<!-- reliability-table:start (make reliability-table writes this table) -->"
END = "<!-- reliability-table:end -->"
HEADER = "| what was tried | test | what held | numbers from the run |\n| --- | --- | --- | --- |\n"
#: what a measured row shows when its tests did not run (or failed) in this run
NOT_RUN = "not run"
#: what ``--keep`` appends to a row whose numbers are from an earlier run
OLDER = " (earlier run)"


@dataclass(frozen=True)
class Row:
    tried: str
    test: str
    held: str
    #: static text, or a template over ``sources``' numbers
    numbers: str = ""
    sources: tuple[str, ...] = ()

    def fill(self, records: Mapping[str, Mapping[str, Any]]) -> str | None:
        """The numbers column from ``records``; None if a source has no numbers there."""
        if not self.sources:
            return self.numbers
        if any(s not in records for s in self.sources):
            return None
        each = [records[s] for s in self.sources]
        merged = {k: v for numbers in each for k, v in numbers.items()}
        try:
            return self.numbers.format(*each, **merged)
        except (KeyError, IndexError) as e:
            raise KeyError(f"row {self.tried[:60]!r}: no number {e} in {self.sources}") from None

    def cells(self, numbers: str) -> str:
        return f"| {self.tried} | {self.test} | {self.held} | {numbers} |".replace("|  |", "| |")


ROWS: list[Row] = [
    Row(
        tried=(
            f"{CORPUS['api']} invalid DriftMonitors the API server can judge (`spec.ingest` unknown "
            "fields, no metrics, non-http scrape URL, bad durations/counts, OTLP without metrics, "
            "`maxSamples: 0` or an empty `keyAttribute`; negative or malformed quantities, unknown "
            "resources, request above its own limit; a password in `spec.redis.url`, a non-Redis URL)"
        ),
        test="`test_rel_invalid_monitors.py`",
        held=(
            "every one refused by `kubectl apply` (schema/CEL) with the field in the message; the "
            "operator's model refuses each of them too"
        ),
        numbers=(
            f"{CORPUS['api']}/{CORPUS['api']} refused at the API server, {CORPUS['api']}/{CORPUS['api']} "
            "by the model"
        ),
    ),
    Row(
        tried=(
            f"{CORPUS['operator']} DriftMonitors only the operator can judge (request above the "
            "operator's default limit, an image not on the allow-list, `block: 2m`, a missing baseline "
            "ConfigMap; OTLP metrics the schema cannot type: not a list or map, a name with a space, a "
            "feature not declared)"
        ),
        test="idem",
        held=(
            "accepted by the API server, `Ready=False` naming the field, an Event, and pods in the "
            "namespace start without a sidecar; the baseline case recovers once the ConfigMap exists"
        ),
        numbers=(
            f"{CORPUS['operator']}/{CORPUS['operator']} refused, 0 pods injected; recovery after the "
            "ConfigMap appeared: within the "
            "operator's retry (< 60 s)"
        ),
    ),
    Row(
        tried="a Job's pod and the app's pods with a broken sidecar",
        test="`tests/unit/operator/test_operator_render_inject.py`, e2e injection tests",
        held=(
            "the sidecar is a native sidecar (init container, `restartPolicy: Always`) with startup "
            "and liveness probes, no readiness probe; everything it references is optional"
        ),
        numbers="API server accepts the injected pods under `restricted`",
    ),
    Row(
        tried=(
            "Redis password in ConfigMaps, DriftMonitor status, Events, the operator's log and "
            "metrics, the Deployment -- including while Redis is down and `RedisAvailable=False` "
            "shows the address"
        ),
        test="`test_rel_install.py::test_no_password_outside_a_secret`",
        held="the password and the credential key appear in none of the 6 places",
        numbers="0 occurrences",
    ),
    Row(
        tried="a tenant's sidecar login used on another monitor's keys, and `FLUSHALL`",
        test="`test_rel_install.py::test_sidecar_login_reaches_its_own_monitor_only`",
        held="`NOPERM` for both; its own keys writable",
        numbers="per-monitor ACL user on the real Redis",
    ),
    Row(
        tried="a ConfigMap `driftwatch-web` a team created before the monitor `web`",
        test="`test_rel_install.py::test_existing_configmap_is_not_adopted`",
        held=(
            "`Ready=False ChildConflict` naming it; the ConfigMap unchanged, no ownerReference (not "
            "garbage-collected)"
        ),
        numbers="",
    ),
    Row(
        tried=(
            "writes by the operator's ServiceAccount in kube-system, over a team's ConfigMap, of an "
            "unlabelled object"
        ),
        test="`test_rel_rbac.py::test_admission_policy_fences_what_rbac_allows`",
        held="denied by the ValidatingAdmissionPolicy in both RBAC shapes",
        numbers="3 denials per shape, 1 allowed write",
    ),
    Row(
        tried="`kubectl auth can-i` for every ServiceAccount the chart installs",
        test="`test_rel_rbac.py`",
        held=(
            "operator: 23 checks per shape + 4 by name as expected; the namespace's `default` "
            "account (Redis pod): nothing"
        ),
        numbers="2 shapes x 27 checks",
    ),
    Row(
        tried="`helm uninstall`, then delete a tenant namespace holding a DriftMonitor, then the CRD",
        test="`test_rel_install.py::test_uninstall_leaves_nothing_stuck` (slow)",
        held=(
            "no finalizer on DriftMonitors; an old `driftwatch.io/cleanup` finalizer is removed by "
            "the operator; both deletions complete"
        ),
        numbers=(
            "namespace deleted in {namespace_seconds} s, CRD in {crd_seconds} s (before: both hung until "
            "the finalizer was removed by hand)"
        ),
        sources=("test_rel_install.py::test_uninstall_leaves_nothing_stuck",),
    ),
    Row(
        tried="admission webhook calls while a monitor of 60 pods x 400 streams aggregates",
        test="`test_rel_webhook_latency.py` (slow)",
        held="the webhook answers within its 5 s timeout throughout",
        numbers=(
            "round {round_seconds} s; webhook p50 {p50_ms} ms, worst {worst_ms} ms over {answers} answers "
            "(before, with the merge on the loop: worst 8.1 s -- past the timeout, pods created without "
            "the sidecar)"
        ),
        sources=(
            "test_rel_webhook_latency.py::test_webhook_answers_within_its_timeout_during_a_large_aggregation",
        ),
    ),
    Row(
        tried="a real three-master Redis Cluster",
        test="`test_rel_redis_topologies.py` (slow)",
        held=(
            "one slot per monitor, the sidecar's MULTI, the notification, the operator's read and "
            "cleanup, ACL users on every master"
        ),
        numbers="6 monitors, each in 1 slot",
    ),
    Row(
        tried="a real Sentinel failover (master SIGKILLed)",
        test="idem",
        held="writes and reads continue through the promoted replica",
        numbers="replica promoted {promoted_seconds} s after the kill",
        sources=("test_rel_redis_topologies.py::test_sentinel_failover",),
    ),
    Row(
        tried="gate and `/metrics` without / with a wrong / with the right bearer token",
        test="`test_rel_gate_auth.py`",
        held="401, 401, answered; probes open",
        numbers="",
    ),
    Row(
        tried=(
            "two operator replicas behind one address (a TCP balancer standing in for the webhook "
            "Service), one Redis; the leader SIGKILLed while pods are created every 0.2 s and a "
            "DriftMonitor is created with no leader; then the killed one restarted and the new "
            "leader stopped with SIGTERM (a rolling update)"
        ),
        test="`test_rel_leader.py`",
        held=(
            "both replicas answer AdmissionReviews (the follower's cache follows the watch); only "
            "the leader reconciles and writes status (follower: 0 reconciles, 0 status writes); a "
            "Redis outage gives one `RedisUnreachable` and one `RedisReachable`; the other replica "
            "leads within the lease, reconciles the monitor created meanwhile, and no Event of m1 is "
            "posted again; an orderly stop hands the Lease over"
        ),
        numbers=(
            "lease {0[lease_seconds]:g} s: failover {0[failover_seconds]} s, new monitor Ready "
            "{0[new_monitor_ready_seconds]} s after the kill; pods created during the failover "
            "{0[pods_injected]}/{0[pods_created_during_failover]} with the sidecar; orderly hand-over "
            "{1[orderly_handover_seconds]} s (before: one replica, `Recreate`: no injection while it was "
            "down)"
        ),
        sources=(
            "test_rel_leader.py::test_leader_killed_the_other_takes_over",
            "test_rel_leader.py::test_orderly_stop_hands_the_lease_over",
        ),
    ),
    Row(
        tried="cert-manager mode",
        test="`tests/integration/test_packaging.py::test_cert_manager_mode_is_a_ca_chain`",
        held="a CA chain, checked link by link (cert-manager cannot run here: rendered and validated only)",
        numbers="",
    ),
    Row(
        tried="SIGTERM under load (4 clients x 500-sample bodies) with a slow upload finishing after it",
        test="`test_sidecar_faults.py::test_sigterm_under_load_drains_checkpoints_and_exits`",
        held=(
            "every 202 is in the final checkpoint; the late body gets 503 or no answer, never a 202 it drops"
        ),
        numbers=(
            "{answered_202:,} answered 202, {in_final_checkpoint:,} in the final checkpoint; exit "
            "{exit_seconds} s"
        ),
        sources=("test_sidecar_faults.py::test_sigterm_under_load_drains_checkpoints_and_exits",),
    ),
    Row(
        tried="SIGTERM with an upload stalled mid-body",
        test="`test_sidecar_faults.py::test_a_stalled_upload_does_not_hold_the_shutdown`",
        held="every shutdown step bounded (20 s in all)",
        numbers="exit {exit_seconds} s",
        sources=("test_sidecar_faults.py::test_a_stalled_upload_does_not_hold_the_shutdown",),
    ),
    Row(
        tried="SIGKILL under load",
        test="`test_sidecar_faults.py::test_sigkill_loses_only_what_no_checkpoint_had_started_for`",
        held=(
            "loss bounded by the last checkpoint and reported by `driftwatch_unsaved_samples` before "
            "the kill; the restarted pod restores its own"
        ),
        numbers=(
            "{answered_202:,} answered, {in_last_checkpoint:,} in the last checkpoint "
            "({answered_before_it_started:,} answered before it started), {lost:,} lost; metric said "
            "{unsaved_metric_just_before:,} just before"
        ),
        sources=("test_sidecar_faults.py::test_sigkill_loses_only_what_no_checkpoint_had_started_for",),
    ),
    Row(
        tried="SIGKILL while consuming the Redis ingest stream",
        test="`test_sidecar_faults.py::test_sigkill_mid_stream_applies_every_entry_exactly_once`",
        held=(
            "entries acknowledged only once a checkpoint holds them; the restart skips what its "
            "checkpoint holds"
        ),
        numbers=(
            "{entries} entries / {samples:,} samples, {pending_at_kill} pending at the kill; "
            "{applied_after_recovery:,} applied after recovery, {duplicated} duplicated, {missing} "
            "missing"
        ),
        sources=("test_sidecar_faults.py::test_sigkill_mid_stream_applies_every_entry_exactly_once",),
    ),
    Row(
        tried="Redis killed mid-stream and restarted (AOF), HTTP load and a drift event during the outage",
        test="`test_sidecar_faults.py::test_redis_killed_mid_stream_and_restarted`",
        held="every 202 applied and checkpointed, every entry once, every event once",
        numbers=(
            "{answered_202:,} answered ({answered_during_outage:,} during the outage), {http_applied:,} "
            "applied, {in_checkpoint:,} checkpointed; {stream_applied:,}/{stream_samples:,} stream "
            "samples; {events_in_redis} events, {duplicated_events} duplicated, {missing_events} missing"
        ),
        sources=("test_sidecar_faults.py::test_redis_killed_mid_stream_and_restarted",),
    ),
    Row(
        tried=(
            "past capacity: 8 clients x 2,000-sample bodies against a 20,000-sample queue that "
            "drains once a second (on this machine the engine outruns HTTP ingest, so capacity is "
            "only passed when the engine is slow -- here by construction)"
        ),
        test="`test_sidecar_faults.py::test_past_capacity_answers_429_stays_bounded_and_applies_every_202`",
        held="429 past capacity, memory bounded by the queue, every 202 applied",
        numbers=(
            "{answered_202:,} answered 202, {answered_429:,} answered 429, {applied:,} applied; RSS "
            "{rss_idle_mb} MB idle, {rss_peak_mb} MB peak"
        ),
        sources=(
            "test_sidecar_faults.py::test_past_capacity_answers_429_stays_bounded_and_applies_every_202",
        ),
    ),
    Row(
        tried=(
            "nesting deeper than 1,024 levels (JSON and NDJSON), 400-digit integers as "
            "`ts`/`timestamp`/`id`, a 1 MiB body of `[0,0,...]`, a lone surrogate as a category"
        ),
        test="`test_sidecar_hostile.py`",
        held=(
            "400 naming the field (or a rejected NDJSON line); rejection lists capped at 100 "
            "examples with counts per reason; text refused at validation, reporting goes on"
        ),
        numbers="the 1 MiB body was a 54 MB answer before",
    ),
    Row(
        tried="a poison entry in `P:ingest`; entries pending on a dead consumer",
        test="`test_sidecar_stream.py`",
        held=(
            "the entry goes to `P:ingest:dead` (bounded, counted) and the rest flows; XAUTOCLAIM "
            "takes the dead consumer's entries"
        ),
        numbers="",
    ),
    Row(
        tried=(
            "a replacement pod (new name); a corrupt checkpoint; a corrupt checkpoint with a "
            "ConfigMap-seeded baseline"
        ),
        test="`test_sidecar_state.py`",
        held=(
            "starts from the newest sibling checkpoint of the monitor; corrupt ones counted and "
            "replaced, never fatal"
        ),
        numbers="",
    ),
    Row(
        tried=(
            "a tight scrape loop: 4 clients getting `/metrics` back to back from a sidecar with "
            "1,000 streams while 2 clients post 500-sample bodies"
        ),
        test="`test_sidecar_scrape_storm.py`",
        held=(
            "no 429, every 202 applied; the per-stream rows built a few times, not once per scrape "
            "(concurrent scrapes share a build, rows that cost >= 10 ms serve for 9 x their cost, "
            "`/v1/status` exact); counters current in every scrape; the engine worker runs jobs in "
            "rounds, so reads cannot starve the batches"
        ),
        numbers=(
            "{seconds:g} s with the scrapers: {storm_applied:,} samples applied ({quiet_applied:,} in "
            "{seconds:g} s without them), {answered_429} answered 429, {scrapes} scrapes ({scrape_errors} "
            "failed), {row_builds:g} row builds. Before: 80 of 480 bodies answered 429, 51 scrapes, a row "
            "build per scrape. `bench/sidecar.py --scrape-storm --before main` (5 s runs, best of 2): "
            "beside `wrk -c4` on `/metrics`, 911,500 samples/s accepted vs 406,094 with 385 answered 429 "
            "on main (0.82 vs 0.36 of ingest alone); 256 vs 41 scrapes; 1 row build for 261 scrapes"
        ),
        sources=("test_sidecar_scrape_storm.py::test_a_scrape_storm_leaves_ingest_its_engine",),
    ),
    Row(
        tried=(
            "kube-apiserver SIGKILLed, down 12 s (past the operator's 10 s renew deadline), "
            "restarted on the same port"
        ),
        test="`test_rel_control_plane_faults.py::test_apiserver_restart_watches_resume`",
        held=(
            "held without a fix: the operator keeps running, steps down and leads again; its watches "
            "resume -- a DriftMonitor created after the restart is Ready, a pod created after it is "
            "injected and counted in status, the older monitor counts a new pod"
        ),
        numbers=(
            "stop to ready {stop_to_ready_seconds} s; after it the new monitor Ready in "
            "{new_monitor_ready_seconds} s, leading again {leading_again_seconds} s, the older monitor "
            "counting a new pod {old_monitor_counts_new_pod_seconds} s; {stepped_down} step-down, "
            "{led_again} re-lead, {operator_restarts} operator restarts"
        ),
        sources=("test_rel_control_plane_faults.py::test_apiserver_restart_watches_resume",),
    ),
    Row(
        tried=(
            "the webhook unreachable: the operator stopped (connection refused), then its port "
            "black-holed (accepts, never answers); a pod created by hand in each case and a "
            "Deployment scaled up meanwhile"
        ),
        test=(
            "`test_rel_control_plane_faults.py::test_webhook_unreachable_pods_start_without_sidecar_and_are_reported`"
        ),
        held=(
            "held without a fix: every pod is created (`failurePolicy: Ignore`) without the sidecar, "
            "within the webhook's timeout; the operator, back, lists them in "
            '`status.pods.withoutSidecar` with `SidecarsReporting=False PodsWithoutSidecar` ("lack '
            'the sidecar ... rollout restart"); the `rollout restart` it suggests gives every pod '
            "the sidecar"
        ),
        numbers=(
            "a pod create took {create_seconds_operator_stopped} s with the operator stopped, "
            "{create_seconds_webhook_black_holed} s black-holed (timeout {webhook_timeout_seconds:g} s); "
            "{pods_created_without_sidecar} pods without the sidecar, named "
            "{named_in_status_seconds_after_restart} s after the operator was ready again; all with the "
            "sidecar {healed_seconds_after_rollout_restart} s after the `rollout restart`"
        ),
        sources=(
            "test_rel_control_plane_faults.py::test_webhook_unreachable_pods_start_without_sidecar_and_are_reported",
        ),
    ),
    Row(
        tried=(
            "the operator SIGKILLed at a write a test-only validating webhook holds open, and started "
            "again at once (its Lease still held: it starts as a follower and leads once the Lease "
            "expires): on a new monitor at the ConfigMap's apply (the Secret and the Service land "
            "beside it), at the scan's Role, at its CronJob; on a spec change at the status write of "
            "its reconcile (kopf has already recorded the change as handled), and mid-scan-removal at "
            "the Role's deletion (the RoleBinding deleted, the CronJob not); a pod created while the "
            "write was held, one while the operator was dead, one after"
        ),
        test="`test_rel_operator_kill.py`",
        held=(
            "held without a fix: every child once, owned by the monitor (controller reference); "
            "`Ready=True ChildrenApplied` for the current generation; no `ChildConflict`, no "
            "DriftWatch Event twice; the pod created while held is injected if the monitor was "
            "already Ready, else (not reconciled yet: the webhook waits for that) named in "
            "`status.pods.withoutSidecar` with the one created while the operator was dead; the "
            "pod created after is injected"
        ),
        numbers=(
            "Ready again after the kill (lease 15 s): ConfigMap {0[ready_seconds_after_kill]} s, "
            "Role {1[ready_seconds_after_kill]} s, CronJob {2[ready_seconds_after_kill]} s, status "
            "write {3[ready_seconds_after_kill]} s, scan removal {4[ready_seconds_after_kill]} s; "
            "children {0[children]}/{1[children]}/{2[children]}/{3[children]}/{4[children]}, each "
            "once; pods named without the sidecar {0[pods_named_without_sidecar]}/"
            "{1[pods_named_without_sidecar]}/{2[pods_named_without_sidecar]}/"
            "{3[pods_named_without_sidecar]}/{4[pods_named_without_sidecar]}, injected "
            "{0[pods_injected]}/{1[pods_injected]}/{2[pods_injected]}/{3[pods_injected]}/"
            "{4[pods_injected]}; DriftWatch Events {0[events]}/{1[events]}/{2[events]}/"
            "{3[events]}/{4[events]} (none twice)"
        ),
        sources=(
            "test_rel_operator_kill.py::test_killed_at_a_child_apply[configmap]",
            "test_rel_operator_kill.py::test_killed_at_a_child_apply[scan-role]",
            "test_rel_operator_kill.py::test_killed_at_a_child_apply[scan-cronjob]",
            "test_rel_operator_kill.py::test_killed_at_the_status_write",
            "test_rel_operator_kill.py::test_killed_mid_scan_removal",
        ),
    ),
    Row(
        tried=(
            "the only operator SIGKILLed, a pod and a DriftMonitor created while none runs, the operator "
            "started again once its Lease had expired (renewTime + leaseDuration past, by the API "
            "server's record too): a rescheduled pod, a crash loop's back-off"
        ),
        test="`test_rel_operator_kill.py::test_restarted_after_its_lease_expired_leads_at_once`",
        held=(
            "it leads at its first election round (the Lease's age judged on the API server's clock: "
            "its `Date` minus the Lease's newest `managedFields` time); its webhook injects from the "
            "start; the monitor created meanwhile is Ready, the pod named in `status.pods.withoutSidecar`"
        ),
        numbers=(
            "lease {lease_seconds:g} s: ready {ready_seconds_after_start} s after the start, leading "
            "{leading_seconds_after_start} s, the new monitor Ready {new_monitor_ready_seconds_after_start} "
            "s; {pods_injected_after_start} pod created after the start injected (before: it watched the "
            "dead holder's record for a whole lease first and led 18.1 s after its start)"
        ),
        sources=("test_rel_operator_kill.py::test_restarted_after_its_lease_expired_leads_at_once",),
    ),
    Row(
        tried=(
            "a DriftMonitor deleted while Redis is SIGSTOPped (the operator's removal of its keys "
            "hangs), the operator SIGKILLed there, Redis continued, the operator started again"
        ),
        test="`test_rel_operator_kill.py::test_killed_mid_deletion`",
        held=(
            "the new leader's start-up sweep removes the deleted monitor's keys and its sidecars' "
            "Redis ACL user (`ACL USERS`: the chart's operator login has `+acl|users`); the other "
            "monitor's keys and user untouched, and it recovers as above"
        ),
        numbers=(
            "keys and ACL user gone {swept_seconds_after_kill} s after the kill (before: the keys "
            "only; the user stayed for good)"
        ),
        sources=("test_rel_operator_kill.py::test_killed_mid_deletion",),
    ),
    Row(
        tried="the operator logged in to Redis with the chart's ACL line; a sidecar's `PUBLISH P:notify`",
        test="`test_rel_operator_kill.py::test_the_charts_operator_login_hears_the_sidecars_notifications`",
        held=(
            "the operator hears it (`&P:*:notify` in the chart's ACL: Redis matches a PSUBSCRIBE "
            "pattern literally against the user's channel patterns); a refused PSUBSCRIBE backs off "
            "and logs once"
        ),
        numbers=(
            "before: NOPERM on every PSUBSCRIBE, retried every 0.5 s with two log lines each, no "
            "notification ever heard (status every aggregation interval only)"
        ),
    ),
    Row(
        tried=(
            "schemathesis 4.32 against a live sidecar's `/openapi.json`: every operation, inputs "
            "valid and invalid by the schema (100 examples each)"
        ),
        test="`test_sidecar_schemathesis.py`",
        held="held without a fix: no 5xx; every status and JSON body as the document describes",
        numbers="{requests} requests over {operations} operations: {statuses}, {answered_5xx} x 5xx",
        sources=("test_sidecar_schemathesis.py::test_no_5xx_and_answers_as_documented",),
    ),
]


def measured(records: Mapping[str, Mapping[str, Any]], failed: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """The records of tests that passed (a failed test's numbers say nothing)."""
    return {k: v for k, v in records.items() if k not in set(failed)}


def table(
    records: Mapping[str, Mapping[str, Any]], older: Mapping[str, str] | None = None
) -> tuple[str, list[Row]]:
    """The Markdown table, and the measured rows that had no numbers in ``records`` (filled from
    ``older`` -- the document's row of the same tried/test cells -- when given, else ``NOT_RUN``)."""
    lines, missing = [], []
    for row in ROWS:
        numbers = row.fill(records)
        if numbers is None:
            missing.append(row)
            kept = (older or {}).get(_key(row))
            numbers = NOT_RUN if kept is None else kept.removesuffix(OLDER) + OLDER
        lines.append(row.cells(numbers))
    return HEADER + "\n".join(lines) + "\n", missing


def _key(row: Row) -> str:
    return f"| {row.tried} | {row.test} |"


def write_run(
    records: Mapping[str, Mapping[str, Any]], failed: Sequence[str], command: str, build: Path = BUILD
) -> str:
    """Write build/reliability-table.{json,md} for this run; returns the Markdown table (every row)."""
    ok = measured(records, failed)
    text, missing = table(ok)
    build.mkdir(exist_ok=True)
    doc = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "records": records,
        "failed": sorted(failed),
        "rows_not_measured": [r.tried[:80] for r in missing],
    }
    (build / JSON_OUT.name).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (build / MD_OUT.name).write_text(text)
    return text


def run_rows(records: Mapping[str, Mapping[str, Any]], failed: Sequence[str]) -> str:
    """The rows this run measured, as a table (for the terminal; the files hold every row)."""
    ok = measured(records, failed)
    lines = [row.cells(text) for row in ROWS if row.sources and (text := row.fill(ok)) is not None]
    return HEADER + "\n".join(lines) + "\n" if lines else ""


def doc_rows(doc: str) -> dict[str, str]:
    """The numbers column of each row now in the document, by its tried/test cells."""
    out = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().removeprefix("|").removesuffix("|").split(" | ")]
        if line.startswith("| ") and len(cells) >= 4:
            out[f"| {cells[0]} | {cells[1]} |"] = cells[-1]
    return out


def render(keep: bool, run_file: Path = JSON_OUT, doc_file: Path = DOC) -> int:
    """docs/reliability.md's table from build/reliability-table.json; 1 (and why) if it cannot."""
    if not run_file.is_file():
        print(f"no {run_file}: run `make reliability` first", file=sys.stderr)
        return 1
    run = json.loads(run_file.read_text())
    doc = doc_file.read_text()
    if START not in doc or END not in doc:
        print(f"{doc_file} has no table markers ({START} ... {END})", file=sys.stderr)
        return 1
    before, rest = doc.split(START, 1)
    current, after = rest.split(END, 1)
    ok = measured(run["records"], run["failed"])
    text, missing = table(ok, doc_rows(current) if keep else None)
    names = "\n".join(f"  - {r.tried[:100]} ({r.test})" for r in missing)
    if missing and not keep:
        print(
            f"the run in {run_file} ({run['command']}) has no numbers for "
            f"{len(missing)} row(s) -- not run, or failed:\n{names}\n"
            "run them (`make reliability`), or KEEP=1 to keep the document's numbers for these rows",
            file=sys.stderr,
        )
        return 1
    doc_file.write_text(f"{before}{START}\n{text}{END}{after}")
    print(f"{doc_file}: table from the run of {run['generated']} ({run['command']})")
    if missing:
        print(f"{len(missing)} row(s) keep numbers from an earlier run (marked{OLDER}):\n{names}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep older numbers for rows not in the run")
    return render(parser.parse_args(argv).keep)


if __name__ == "__main__":
    sys.exit(main())
