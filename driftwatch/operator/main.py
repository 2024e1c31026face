"""``driftwatch operator``: run the kopf operator in this process.

Examples::

    # in a cluster (the chart's Deployment): webhook behind a Service, cluster-wide
    driftwatch operator --webhook-mode service --redis-url redis://driftwatch-redis.driftwatch:6379/0

    # on the local control plane (no kube-proxy): the API server calls 127.0.0.1 directly
    KUBECONFIG=... driftwatch operator --webhook-mode url --webhook-url https://127.0.0.1:9443 -n shop
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from driftwatch.operator.options import GATE_PORT, WEBHOOK_PORT, OperatorOptions


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
}


def parser() -> argparse.ArgumentParser:
    d = OperatorOptions()

    def env(key: str, default: object) -> str:
        return _env(ENV[key], str(default))

    p = argparse.ArgumentParser(
        prog="driftwatch operator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    p.add_argument("--redis-url", default=env("redis_url", d.redis_url))
    p.add_argument("--key-prefix", default=env("key_prefix", d.key_prefix), help="Redis key prefix")
    s = p.add_argument_group("sidecar")
    s.add_argument("--sidecar-image", default=env("sidecar_image", d.sidecar_image))
    s.add_argument(
        "--sidecar-pull-policy",
        default=env("sidecar_pull_policy", d.sidecar_pull_policy),
        choices=["Always", "IfNotPresent", "Never"],
    )
    s.add_argument(
        "--sidecar-resources",
        default=_env(ENV["sidecar_resources"], ""),
        help='JSON {"requests": {...}, "limits": {...}} for the injected container',
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
    g.add_argument("--webhook-host", default=d.webhook_host)
    g.add_argument(
        "--webhook-port",
        type=int,
        default=int(env("webhook_port", WEBHOOK_PORT)),
        help="0 disables the webhook server",
    )
    g.add_argument("--webhook-url", default=None, help="mode url: default https://127.0.0.1:<port>")
    g.add_argument("--webhook-path", default=env("webhook_path", d.webhook_path))
    g.add_argument("--webhook-service", default=env("webhook_service", d.webhook_service))
    g.add_argument("--webhook-config-name", default=env("webhook_config_name", d.webhook_config_name))
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
        help="namespace: namespaces with --inject-label; pod: pods labelled driftwatch.io/inject=true",
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
    g.add_argument("--tls-secret", default=env("tls_secret", d.tls_secret))
    g.add_argument("--tls-dir", default=env("tls_dir", d.tls_dir))
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
    a.add_argument("--gate-host", default=d.gate_host)
    a.add_argument(
        "--gate-port",
        type=int,
        default=int(env("gate_port", GATE_PORT)),
        help="gate + health endpoints; 0 disables",
    )
    a.add_argument("--no-prometheus", action="store_true", help="never create ServiceMonitor/PrometheusRule")
    a.add_argument(
        "--monitoring-label",
        type=_label,
        action="append",
        default=[],
        help="extra label for ServiceMonitor/PrometheusRule, e.g. release=kube-prometheus-stack",
    )
    p.add_argument("--workers", type=int, default=20, help="kopf's thread pool for sync handlers")
    p.add_argument(
        "-v", "--verbose", action="store_true", default=env("log_level", "info").lower() == "debug"
    )
    p.add_argument("--debug", action="store_true")
    return p


def options_from(args: argparse.Namespace) -> OperatorOptions:
    d = OperatorOptions()
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
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.all_namespaces and args.namespaces:
        print("driftwatch operator: --all-namespaces and --namespace exclude each other", file=sys.stderr)
        return 2
    options = options_from(args)

    # kopf probes for the official client at import time (to offer its login), which imports it:
    # ~20 MiB the operator never uses (its own client is kube.py). Hide it from this process.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    import kopf

    kopf.configure(debug=args.debug, verbose=args.verbose, log_format=kopf.LogFormat.FULL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not (args.verbose or args.debug):
        # "Handler ... succeeded" for every timer tick of every monitor drowns what matters
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    from driftwatch.operator import runtime

    runtime.set_options(options)
    # registration reads the options (the timer's interval), so import the handlers only now
    importlib.import_module("driftwatch.operator.handlers")
    kopf.run(
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        standalone=True,
        memo=kopf.Memo(),
    )
    return 0
