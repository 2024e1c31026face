"""``driftwatch history NAMESPACE/NAME``: a DriftMonitor's transitions, scans, alerts and
acknowledgements, newest first -- "alerts for this model, last 7 days" is
``driftwatch history shop/payments --type ALERT --since 7d``.

Asks the operator (``GET /v1/history/...`` on its HTTP port: ``--url``, ``$DRIFTWATCH_OPERATOR_URL``,
default the in-cluster Service), or with ``--redis-url`` reads ``P:history`` directly. The filters are
the endpoint's: ``--feature``, ``--severity`` (a minimum), ``--type`` (comma-separated), ``--since`` /
``--until`` (ISO 8601, epoch seconds, or a duration back from now such as 7d), ``--limit``, ``--cursor``.
Exit codes: 0 shown, 2 bad option, 3 the history could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from driftwatch import cliopts
from driftwatch.history.entries import DEFAULT_LIMIT, SEVERITIES, TYPES, Filters
from driftwatch.vocab.spec import ConfigError

DEFAULT_URL = "http://driftwatch-operator.driftwatch:8080"
ENV_URL = "DRIFTWATCH_OPERATOR_URL"


def fetch(url: str, namespace: str, name: str, filters: Filters) -> dict[str, Any]:
    query = urllib.parse.urlencode(filters.to_params())
    target = f"{url.rstrip('/')}/v1/history/{namespace}/{name}?{query}"
    try:
        with urllib.request.urlopen(target, timeout=30) as r:
            doc: dict[str, Any] = json.loads(r.read())
            return doc
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("error", "")
        except ValueError:
            message = ""
        raise RuntimeError(f"HTTP {e.code}: {message}") from None


def read_redis(
    redis_url: str, key_prefix: str, namespace: str, name: str, filters: Filters
) -> dict[str, Any]:
    from driftwatch.history import stream_log
    from driftwatch.redisconn import connect_url
    from driftwatch.vocab.rediskeys import MonitorKeys

    async def go() -> dict[str, Any]:
        client = connect_url(redis_url, socket_timeout=10)
        try:
            page = await stream_log.query(
                client, MonitorKeys.of(key_prefix, namespace, name).history, filters
            )
            return {"monitor": f"{namespace}/{name}", **page.to_dict()}
        finally:
            await client.aclose()

    return asyncio.run(go())


def render(doc: dict[str, Any]) -> str:
    lines = []
    for e in doc.get("entries") or []:
        when = dt.datetime.fromtimestamp(float(e["time"]), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{when}  {e['type']:<11} {e['severity']:<8} {e['summary']}")
    if not lines:
        lines.append("(no entries)")
    if doc.get("next"):
        lines.append(f"... older: --cursor {doc['next']}")
    return "\n".join(lines)


EXIT_CODES = """\
exit codes:
  0  shown
  2  bad option
  3  the history could not be read (operator or Redis unreachable, HTTP error)
"""
#: the filters of GET /v1/history, as options
FILTER_HELP = {
    "feature": "only this feature's entries",
    "severity": f"at least this severity ({', '.join(SEVERITIES)})",
    "type": f"only these entry types, comma-separated ({', '.join(TYPES)})",
    "since": "entries from this time: ISO 8601, epoch seconds, or a duration back from now (7d)",
    "until": "entries up to this time, in the same forms as --since",
    "cursor": "continue after a previous page (the cursor it printed)",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftwatch history",
        description="A DriftMonitor's transitions, scans, alerts and acknowledgements, newest first.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("monitor", help="the DriftMonitor: NAME (in the namespace of -n) or NAMESPACE/NAME")
    p.add_argument(
        "--url",
        default=None,
        metavar="URL",
        help=f"the operator's HTTP endpoint (default ${ENV_URL}, else {DEFAULT_URL})",
    )
    p.add_argument(
        "--redis-url", default=None, metavar="URL", help="read P:history from Redis instead of the operator"
    )
    p.add_argument("--key-prefix", default="driftwatch", help="Redis key prefix (default driftwatch)")
    for opt, help_ in FILTER_HELP.items():
        p.add_argument(f"--{opt}", default=None, help=help_)
    p.add_argument("--limit", default=str(DEFAULT_LIMIT), help=f"entries per page (default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="print the page as JSON")
    cliopts.add_kube_options(p)
    return p


def main(argv: list[str]) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 0 if not e.code else 2
    try:
        namespace, name = cliopts.monitor_ref(args.monitor, cliopts.namespace_only(args), args.namespace)
    except Exception as e:  # a malformed reference, or a --context the kubeconfig does not have
        print(f"driftwatch history: error: {e}", file=sys.stderr)
        return 2
    args.monitor = f"{namespace}/{name}"
    params = {
        k: v
        for k in ("feature", "severity", "type", "since", "until", "cursor", "limit")
        if (v := getattr(args, k))
    }
    try:
        filters = Filters.parse(params)
    except ConfigError as e:
        print(f"driftwatch history: error: --{e.field}: {e.message}", file=sys.stderr)
        return 2
    try:
        if args.redis_url:
            doc = read_redis(args.redis_url, args.key_prefix, namespace, name, filters)
        else:
            doc = fetch(args.url or os.environ.get(ENV_URL) or DEFAULT_URL, namespace, name, filters)
    except Exception as e:  # Redis: the class only (a message may quote the URL); HTTP: the answer
        why = type(e).__name__ if args.redis_url else f"{type(e).__name__}: {e}"
        print(f"driftwatch history: error: cannot read the history of {args.monitor}: {why}", file=sys.stderr)
        return 3
    print(json.dumps(doc) if args.json else render(doc))
    return 0
