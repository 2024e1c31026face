"""``driftwatch operator``: run the kopf operator in this process.

Examples::

    # in a cluster (the chart's Deployment): webhook behind a Service, cluster-wide
    driftwatch operator --webhook-mode service --redis-url redis://driftwatch-redis.driftwatch:6379/0

    # on the local control plane (no kube-proxy): the API server calls 127.0.0.1 directly
    KUBECONFIG=... driftwatch operator --webhook-mode url --webhook-url https://127.0.0.1:9443 -n shop
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from types import ModuleType
from typing import Any, cast

from driftwatch.operator.options import SCRAPE_KEYS, OperatorOptions
from driftwatch.redisconn import ENV_CA_FILE, has_credentials, read_secret
from driftwatch.vocab.names import GATE_PORT, LABEL_INJECT, WEBHOOK_PORT


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _in_cluster() -> bool:
    return os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")


#: flags take their defaults from these variables (the Helm chart sets them), then from OperatorOptions
ENV = {
    "operator_namespace": "POD_NAMESPACE",
    "redis_url": "DRIFTWATCH_REDIS_URL",
    "key_prefix": "DRIFTWATCH_REDIS_KEY_PREFIX",
    "sidecar_image": "DRIFTWATCH_SIDECAR_IMAGE",
    "sidecar_pull_policy": "DRIFTWATCH_SIDECAR_IMAGE_PULL_POLICY",
    "sidecar_resources": "DRIFTWATCH_SIDECAR_RESOURCES",
    "sidecar_security_context": "DRIFTWATCH_SIDECAR_SECURITY_CONTEXT",
    "sidecar_scrape": "DRIFTWATCH_SIDECAR_SCRAPE",
    "allowed_images": "DRIFTWATCH_ALLOWED_IMAGES",
    "sidecar_redis_auth": "DRIFTWATCH_SIDECAR_REDIS_AUTH",
    "webhook_enabled": "DRIFTWATCH_WEBHOOK_ENABLED",
    "webhook_mode": "DRIFTWATCH_WEBHOOK_MODE",
    "webhook_port": "DRIFTWATCH_WEBHOOK_PORT",
    "webhook_path": "DRIFTWATCH_WEBHOOK_PATH",
    "webhook_service": "DRIFTWATCH_WEBHOOK_SERVICE",
    "webhook_config_name": "DRIFTWATCH_WEBHOOK_CONFIGURATION",
    "failure_policy": "DRIFTWATCH_WEBHOOK_FAILURE_POLICY",
    "inject_label": "DRIFTWATCH_INJECT_LABEL",
    "tls_mode": "DRIFTWATCH_CERT_MODE",
    "tls_dir": "DRIFTWATCH_CERT_DIR",
    "tls_secret": "DRIFTWATCH_WEBHOOK_TLS_SECRET",
    "gate_port": "DRIFTWATCH_HTTP_PORT",
    "log_level": "DRIFTWATCH_LOG_LEVEL",
    "leader_election": "DRIFTWATCH_LEADER_ELECTION",
    "lease_duration": "DRIFTWATCH_LEASE_DURATION",
}


EPILOG = """\
examples:
  # in a cluster (the chart's Deployment): webhook behind a Service, cluster-wide
  driftwatch operator --webhook-mode service --redis-url redis://driftwatch-redis.driftwatch:6379/0

  # on the local control plane (no kube-proxy): the API server calls 127.0.0.1 directly
  KUBECONFIG=... driftwatch operator --webhook-mode url --webhook-url https://127.0.0.1:9443 -n shop

exit codes:
  0  stopped (SIGTERM, SIGINT)
  2  bad option, or a credential missing from the environment
"""


def parser() -> argparse.ArgumentParser:
    d = OperatorOptions()

    def env(key: str, default: object) -> str:
        return _env(ENV[key], str(default))

    p = argparse.ArgumentParser(
        prog="driftwatch operator",
        description="Run the kopf operator that reconciles DriftMonitors, in this process.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="serve this namespace (repeatable); default: the whole cluster",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="serve the whole cluster (default)")
    p.add_argument(
        "--operator-namespace",
        default=env("operator_namespace", d.operator_namespace),
        help="the operator's own namespace: TLS Secret, webhook Service, never injected",
    )
    p.add_argument(
        "--redis-url",
        default=env("redis_url", d.redis_url),
        help=f"the Redis of the sidecars' summaries and the history (default ${ENV['redis_url']})",
    )
    p.add_argument("--key-prefix", default=env("key_prefix", d.key_prefix), help="Redis key prefix")
    s = p.add_argument_group("sidecar")
    s.add_argument(
        "--sidecar-image",
        default=env("sidecar_image", d.sidecar_image),
        help="the image of the injected sidecar container",
    )
    s.add_argument(
        "--sidecar-pull-policy",
        default=env("sidecar_pull_policy", d.sidecar_pull_policy),
        choices=["Always", "IfNotPresent", "Never"],
        help="the injected container's imagePullPolicy",
    )
    s.add_argument(
        "--sidecar-resources",
        default=_env(ENV["sidecar_resources"], ""),
        help='JSON {"requests": {...}, "limits": {...}} for the injected container',
    )
    s.add_argument(
        "--sidecar-security-context",
        default=_env(ENV["sidecar_security_context"], ""),
        help="JSON securityContext of the injected container, replacing the restricted default",
    )
    s.add_argument(
        "--sidecar-scrape",
        default=_env(ENV["sidecar_scrape"], ""),
        help=f"JSON endpoint settings of each monitor's ServiceMonitor: {', '.join(SCRAPE_KEYS)}",
    )
    s.add_argument(
        "--allowed-image",
        action="append",
        dest="allowed_images",
        default=[i for i in _env(ENV["allowed_images"], "").split(",") if i],
        help="an image a DriftMonitor's spec.sidecar.image may name (repeatable); any other is refused",
    )
    s.add_argument(
        "--sidecar-redis-auth",
        choices=["acl", "shared", "none"],
        default=env("sidecar_redis_auth", d.sidecar_redis_auth),
        help="acl: one Redis ACL user per monitor, its password (HMAC of "
        f"${CREDENTIAL_KEY}) in the monitor's Secret; shared: ${SIDECAR_USERNAME} / "
        f"${SIDECAR_PASSWORD} in every monitor's Secret; none: no Redis login",
    )
    s.add_argument(
        "--sidecar-publish-interval",
        type=float,
        default=d.sidecar_publish_interval,
        help="seconds between a sidecar's summaries (rendered into its config)",
    )
    g = p.add_argument_group("webhook")
    g.add_argument(
        "--webhook-mode",
        choices=["url", "service", "none"],
        default=_env(ENV["webhook_mode"], "service" if _in_cluster() else "url"),
        help="url: the API server calls --webhook-url (local control plane, no kube-proxy); "
        "service: it calls --webhook-service in --operator-namespace (default in a pod); "
        "none: serve, configure nothing",
    )
    g.add_argument("--webhook-host", default=d.webhook_host, help="address the webhook server listens on")
    g.add_argument(
        "--webhook-port",
        type=int,
        default=int(env("webhook_port", WEBHOOK_PORT)),
        help="0 disables the webhook server",
    )
    g.add_argument("--webhook-url", default=None, help="mode url: default https://127.0.0.1:<port>")
    g.add_argument(
        "--webhook-path", default=env("webhook_path", d.webhook_path), help="the webhook's URL path"
    )
    g.add_argument(
        "--webhook-service",
        default=env("webhook_service", d.webhook_service),
        help="mode service: the Service in --operator-namespace the API server calls",
    )
    g.add_argument(
        "--webhook-config-name",
        default=env("webhook_config_name", d.webhook_config_name),
        help="the MutatingWebhookConfiguration the operator keeps up to date",
    )
    g.add_argument(
        "--failure-policy",
        choices=["Ignore", "Fail"],
        default=env("failure_policy", d.failure_policy),
        help="what the API server does when the webhook is down (Ignore: pods start without it)",
    )
    g.add_argument(
        "--injection-scope",
        choices=["namespace", "pod"],
        default=d.injection_scope,
        help=f"namespace: namespaces with --inject-label; pod: pods labelled {LABEL_INJECT}=true",
    )
    g.add_argument(
        "--inject-label",
        type=_label,
        default=_label(env("inject_label", "=".join(d.inject_label))),
        help="namespace opt-in label KEY=VALUE",
    )
    g.add_argument(
        "--tls",
        dest="tls_mode",
        choices=["self", "operator", "cert-manager"],
        default=env("tls_mode", d.tls_mode),
        help="self (alias operator): own CA in a Secret, caBundle patched; "
        "cert-manager: the Secret mounted at --tls-dir, caBundle by cert-manager's CA injector",
    )
    g.add_argument(
        "--tls-secret",
        default=env("tls_secret", d.tls_secret),
        help="--tls self: the Secret in --operator-namespace holding the webhook's CA and certificate",
    )
    g.add_argument(
        "--tls-dir",
        default=env("tls_dir", d.tls_dir),
        help="the directory of the webhook's tls.crt and tls.key (--tls cert-manager: the mounted Secret)",
    )
    a = p.add_argument_group("status and gate")
    a.add_argument(
        "--aggregate-interval",
        type=float,
        default=d.aggregate_interval,
        help="seconds between status aggregations per monitor",
    )
    a.add_argument(
        "--stale-after",
        type=float,
        default=None,
        help="age out pods silent this long (default 3 x --sidecar-publish-interval, >= 30s)",
    )
    a.add_argument("--heartbeat", type=float, default=d.heartbeat, help="write status.lastUpdate this often")
    a.add_argument(
        "--no-notify",
        action="store_true",
        help="do not subscribe to the sidecars' Redis notifications (status follows the timer only)",
    )
    a.add_argument(
        "--gate-host",
        default=d.gate_host,
        help="address the gate, health, metrics and version server listens on",
    )
    a.add_argument(
        "--gate-port",
        type=int,
        default=int(env("gate_port", GATE_PORT)),
        help="port of /v1/gate, /healthz, /readyz, /metrics, /version; 0 disables",
    )
    a.add_argument("--no-prometheus", action="store_true", help="never create a ServiceMonitor per monitor")
    a.add_argument(
        "--monitoring-label",
        type=_label,
        action="append",
        default=[],
        help="extra label for the ServiceMonitors, e.g. release=kube-prometheus-stack",
    )
    r = p.add_argument_group("replicas")
    r.add_argument(
        "--no-leader-election",
        action="store_true",
        default=env("leader_election", "true").lower() == "false",
        help="lead alone, without the Lease: only for a single replica (every replica serves the "
        "webhook; with election, one leader reconciles, aggregates and cleans up)",
    )
    r.add_argument("--lease-name", default=d.lease_name, help="the leader Lease in --operator-namespace")
    r.add_argument(
        "--lease-duration",
        type=float,
        default=float(env("lease_duration", d.lease_duration)),
        help="seconds the leader's Lease is valid: the longest a dead leader's work waits for another "
        "replica (renewed every lease/7.5 s; a leader that cannot renew for 2/3 of it steps down)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=env("log_level", "info").lower() == "debug",
        help=f"log every handler run (default: on when ${ENV['log_level']}=debug)",
    )
    p.add_argument("--debug", action="store_true", help="kopf's debug logging (API requests and more)")
    return p


#: secrets come from the environment (a Secret via secretKeyRef) or NAME_FILE (a mounted Secret), never flags
CREDENTIAL_KEY = "DRIFTWATCH_SIDECAR_CREDENTIAL_KEY"
SIDECAR_USERNAME = "DRIFTWATCH_SIDECAR_REDIS_USERNAME"
SIDECAR_PASSWORD = "DRIFTWATCH_SIDECAR_REDIS_PASSWORD"
GATE_TOKEN = "DRIFTWATCH_GATE_TOKEN"


def _file(path: str | None) -> str:
    if not path:
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


class OptionError(ValueError):
    """A flag (or its environment variable) that cannot be used; the message names it."""


def json_object(flag: str, text: str) -> dict[str, Any]:
    """``text`` as a JSON object; empty text is an empty object."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise OptionError(f"{flag}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise OptionError(f"{flag}: expected a JSON object, got {type(value).__name__}")
    return value


def scrape_settings(text: str) -> dict[str, Any]:
    """``--sidecar-scrape``: the defaults, overridden key by key; an unknown key is an error (a typo
    would otherwise silently scrape with the default)."""
    given = json_object("--sidecar-scrape", text)
    unknown = sorted(set(given) - set(SCRAPE_KEYS))
    if unknown:
        raise OptionError(
            f"--sidecar-scrape: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SCRAPE_KEYS)}"
        )
    for key in ("relabelings", "metricRelabelings"):
        if key in given and not isinstance(given[key], list):
            raise OptionError(f"--sidecar-scrape: {key} must be a list of RelabelConfigs")
    if "honorLabels" in given and not isinstance(given["honorLabels"], bool):
        raise OptionError("--sidecar-scrape: honorLabels must be true or false")
    merged = {**OperatorOptions().sidecar_scrape, **given}
    return {k: v for k, v in merged.items() if v not in (None, "", [])}


def options_from(args: argparse.Namespace) -> OperatorOptions:
    d = OperatorOptions()
    env = os.environ
    webhook_url = args.webhook_url or f"https://127.0.0.1:{args.webhook_port}"
    stale = args.stale_after if args.stale_after is not None else max(30.0, 3 * args.sidecar_publish_interval)
    resources = json.loads(args.sidecar_resources) if args.sidecar_resources else {}
    webhook_enabled = _env(ENV["webhook_enabled"], "true").lower() != "false"
    return OperatorOptions(
        namespaces=tuple(args.namespaces),
        operator_namespace=args.operator_namespace,
        redis_url=args.redis_url,
        key_prefix=args.key_prefix,
        sidecar_image=args.sidecar_image,
        sidecar_pull_policy=args.sidecar_pull_policy,
        sidecar_requests={**d.sidecar_requests, **(resources.get("requests") or {})},
        sidecar_limits={**d.sidecar_limits, **(resources.get("limits") or {})},
        sidecar_publish_interval=args.sidecar_publish_interval,
        sidecar_security_context=json_object("--sidecar-security-context", args.sidecar_security_context),
        sidecar_scrape=scrape_settings(args.sidecar_scrape),
        allowed_images=tuple(args.allowed_images),
        sidecar_redis_auth=args.sidecar_redis_auth,
        sidecar_credential_key=read_secret(env, CREDENTIAL_KEY) or "",
        sidecar_redis_username=read_secret(env, SIDECAR_USERNAME) or "",
        sidecar_redis_password=read_secret(env, SIDECAR_PASSWORD) or "",
        redis_ca=_file(env.get(ENV_CA_FILE)),
        gate_token=read_secret(env, GATE_TOKEN) or "",
        webhook_mode=args.webhook_mode,
        webhook_host=args.webhook_host,
        webhook_port=args.webhook_port if webhook_enabled else 0,
        webhook_url=webhook_url,
        webhook_path=args.webhook_path,
        webhook_service=args.webhook_service,
        webhook_config_name=args.webhook_config_name,
        inject_label=args.inject_label,
        failure_policy=args.failure_policy,
        injection_scope=args.injection_scope,
        tls_mode="self" if args.tls_mode == "operator" else args.tls_mode,
        tls_secret=args.tls_secret,
        tls_dir=args.tls_dir,
        aggregate_interval=args.aggregate_interval,
        stale_after=stale,
        heartbeat=args.heartbeat,
        notify=not args.no_notify,
        gate_host=args.gate_host,
        gate_port=args.gate_port,
        prometheus=not args.no_prometheus,
        monitoring_labels=dict(args.monitoring_label),
        leader_election=not args.no_leader_election,
        lease_duration=args.lease_duration,
        lease_name=args.lease_name,
    )


def credential_problem(options: OperatorOptions) -> str | None:
    """What is wrong with how the options say Redis credentials travel, or None."""
    if has_credentials(options.redis_url):
        return (
            "--redis-url must not carry a password (it would be logged and copied): put it in a Secret "
            "and pass it as DRIFTWATCH_REDIS_PASSWORD (or DRIFTWATCH_REDIS_PASSWORD_FILE)"
        )
    if options.sidecar_redis_auth == "acl" and not options.sidecar_credential_key:
        return f"--sidecar-redis-auth acl needs ${CREDENTIAL_KEY} (or {CREDENTIAL_KEY}_FILE)"
    if options.sidecar_redis_auth == "shared" and not options.sidecar_redis_password:
        return f"--sidecar-redis-auth shared needs ${SIDECAR_PASSWORD} (or {SIDECAR_PASSWORD}_FILE)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.all_namespaces and args.namespaces:
        print("driftwatch operator: --all-namespaces and --namespace exclude each other", file=sys.stderr)
        return 2
    try:
        options = options_from(args)
    except OptionError as e:
        print(f"driftwatch operator: {e}", file=sys.stderr)
        return 2
    if options.lease_duration < 1:
        print("driftwatch operator: --lease-duration must be at least 1 (seconds)", file=sys.stderr)
        return 2
    problem = credential_problem(options)
    if problem:
        print(f"driftwatch operator: {problem}", file=sys.stderr)
        return 2

    run(options, verbose=args.verbose, debug=args.debug)
    return 0


def run(options: OperatorOptions, *, verbose: bool = False, debug: bool = False) -> None:
    """kopf with DriftWatch's settings and handlers, bound to one context built from ``options``."""
    # kopf probes for the official client at import time (to offer its login), which imports it when
    # installed (the dev extra): ~20 MiB the operator never uses. Hide it from this process.
    sys.modules.setdefault("kubernetes", cast(ModuleType, None))
    import kopf

    from driftwatch.operator import handlers, kopf_settings
    from driftwatch.operator.context import OperatorContext

    kopf.configure(debug=debug, verbose=verbose, log_format=kopf.LogFormat.FULL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not (verbose or debug):
        # "Handler ... succeeded" for every timer tick of every monitor drowns what matters
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorContext(options))
    kopf.run(
        registry=registry,
        settings=kopf_settings.build(),
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        standalone=True,
    )
