"""driftwatch version: this client's version and the operator's, as ``kubectl version`` shows client and
server.

The operator answers ``GET /version`` on its HTTP port. From a laptop that port is inside the cluster,
so by default the request goes through the API server's Service proxy
(``/api/v1/namespaces/driftwatch/services/driftwatch-operator:http/proxy/version``: the user needs
``get`` on ``services/proxy`` there, and a NetworkPolicy must let the API server in); ``--operator-url``
(or ``$DRIFTWATCH_OPERATOR_URL``) asks the operator directly instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from driftwatch import buildinfo, cliopts, statusview
from driftwatch.kube import client

ENV_URL = "DRIFTWATCH_OPERATOR_URL"
#: where the chart and the kustomize base put the operator's Service (release "driftwatch")
OPERATOR_NAMESPACE, OPERATOR_SERVICE, OPERATOR_PORT = "driftwatch", "driftwatch-operator", "http"
EXIT_CODES = """\
exit codes:
  0  shown
  1  the operator could not be asked (the client version is still shown)
  2  bad option
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftwatch version",
        description="This client's version and the operator's (its /version endpoint).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--client", action="store_true", help="only this client's version; do not ask the operator"
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        metavar="FORMAT",
        help="text (default), json or yaml",
    )
    p.add_argument(
        "--operator-url",
        default=os.environ.get(ENV_URL) or None,
        metavar="URL",
        help=f"ask the operator at this URL, not through the API server (default ${ENV_URL})",
    )
    p.add_argument(
        "--operator-namespace",
        default=OPERATOR_NAMESPACE,
        metavar="NAMESPACE",
        help=f"the operator's namespace, for the API server's proxy (default {OPERATOR_NAMESPACE})",
    )
    p.add_argument(
        "--operator-service",
        default=OPERATOR_SERVICE,
        metavar="NAME",
        help=f"the operator's Service, for the API server's proxy (default {OPERATOR_SERVICE})",
    )
    cliopts.add_kube_options(p, namespace=False)
    return p


def proxy_path(namespace: str, service: str, port: str = OPERATOR_PORT) -> str:
    """The API server's proxy to a Service port: ``services/NAME:PORT/proxy/...``."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/version"


def ask_directly(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/version", timeout=15) as r:
            doc: dict[str, Any] = json.loads(r.read())
            return doc
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{url}/version answered HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise RuntimeError(f"{url}: {e.reason}") from None


def ask_through_api_server(args: argparse.Namespace) -> dict[str, Any]:
    creds = cliopts.resolve(args).creds
    path = proxy_path(args.operator_namespace, args.operator_service)

    async def go(kube: client.Kube) -> dict[str, Any]:
        doc: dict[str, Any] = await kube.request("GET", path, retry=False)
        return doc

    try:
        return client.run(creds, go)
    except client.KubeError as e:
        raise RuntimeError(
            f"service {args.operator_namespace}/{args.operator_service} through the API server: {e}"
        ) from None


def render(doc: dict[str, Any], output: str) -> str:
    if output != "text":
        return statusview.dump(doc, output)
    lines = [f"Client Version: {doc['clientVersion']['version']}"]
    if "operatorVersion" in doc:
        lines.append(f"Operator Version: {doc['operatorVersion'].get('version', '<unknown>')}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    doc: dict[str, Any] = {"clientVersion": buildinfo.info()}
    error = ""
    if not args.client:
        try:
            operator = ask_directly(args.operator_url) if args.operator_url else ask_through_api_server(args)
            doc["operatorVersion"] = operator
        except Exception as exc:  # printed after the client's version, as kubectl does
            error = str(exc)
    print(render(doc, args.output))
    if error:
        print(f"driftwatch version: cannot ask the operator: {error}", file=sys.stderr)
        return 1
    return 0
