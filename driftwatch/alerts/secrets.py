"""Secret references, the resolver interface the operator implements, and redaction.

A channel never holds a URL or password in its configuration: it holds a ``SecretRef`` and asks a
``SecretResolver`` at every delivery, so a rotated Secret takes effect on the next alert. Every value
resolved is registered with the ``Redactor``, which scrubs it from any text that leaves this package
(log lines, outcome errors, exceptions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

MASK = "***"
#: shorter values are not redacted on their own (they would mask ordinary words); URLs are split
MIN_REDACT = 4


@dataclass(frozen=True)
class SecretRef:
    """``secretKeyRef: {name, key}`` in the monitor's namespace."""

    name: str
    key: str

    def __str__(self) -> str:
        return f"secret {self.name!r} key {self.key!r}"


class SecretError(Exception):
    """A Secret or key that cannot be read. The message names the reference, never a value."""


class SecretResolver(Protocol):
    """What the alert library needs from its host. The operator implements it with the Kubernetes API
    (reading each time, or caching with a watch); tests and local runs use ``StaticSecrets``."""

    async def resolve(self, namespace: str, ref: SecretRef) -> str:
        """The value of ``ref`` in ``namespace``; ``SecretError`` when it cannot be read."""
        ...


class StaticSecrets:
    """Values given directly: ``{(namespace, name, key): value}``. Assign to ``values`` to rotate."""

    def __init__(self, values: Mapping[tuple[str, str, str], str]) -> None:
        self.values = dict(values)

    async def resolve(self, namespace: str, ref: SecretRef) -> str:
        try:
            return self.values[(namespace, ref.name, ref.key)]
        except KeyError:
            raise SecretError(f"{namespace}/{ref.name}: no key {ref.key!r} (or no such Secret)") from None


class Redactor:
    """Remembers secret values and masks them (and their URL-encoded forms and, for URLs, the parts
    that carry the secret: credentials, path, query) in any text."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        for v in _forms(value):
            if len(v) >= MIN_REDACT:
                self._values.add(v)

    def __call__(self, text: str) -> str:
        for v in sorted(self._values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, MASK)
        return text


def _forms(value: str) -> list[str]:
    forms = [value, value.strip(), quote(value, safe="")]
    if "://" in value:
        parts = urlsplit(value.strip())
        forms += [parts.path, parts.query, parts.netloc.rpartition("@")[0]]
        if parts.password:
            forms.append(parts.password)
        forms += [seg for seg in parts.path.split("/") if len(seg) >= 8]  # tokens in the path
    return [f for f in forms if f]
