"""TLS in the sidecar: aiohttp without the system's CA bundle at import, a verified context on demand.

aiohttp builds two client TLS contexts when ``aiohttp.connector`` is imported, and the verified one
loads every system CA certificate (~0.1 s of CPU and ~2 MB in every pod). The sidecar is a server: its
only outgoing HTTP is the scrape of the app's metrics endpoint, nearly always plain ``http://`` on
localhost. So the sidecar imports aiohttp with ``SSL_CERT_FILE`` pointing at an empty file (restored at
once), which leaves aiohttp's default contexts without CAs: a client request that relied on them would
be refused, never accepted unverified. A scraper with an ``https://`` target builds its own context with
``client_context`` -- the system's CAs and hostname checks, as ``ssl.create_default_context`` makes
it -- on a thread, since loading the bundle is blocking file I/O.
"""

from __future__ import annotations

import os
import ssl
import sys


def import_aiohttp() -> None:
    """Import aiohttp without its import-time contexts loading the system's CA bundle. Call it before
    anything imports aiohttp (``driftwatch sidecar`` does, first thing); once aiohttp is loaded this is
    a no-op. The environment is as it was afterwards, so anything that builds a context later (the
    scraper, redis-py) gets the system's CAs."""
    if "aiohttp" in sys.modules:
        return
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = os.devnull
    try:
        import aiohttp  # noqa: F401  (imported for its side effect: the module is cached in sys.modules)
    finally:
        if saved is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = saved


def client_context() -> ssl.SSLContext:
    """A client context that verifies the server's certificate against the system's CAs (honouring
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) and checks its host name. Blocking: call it off the event loop."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
