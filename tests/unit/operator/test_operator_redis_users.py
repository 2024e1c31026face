"""ACL user names of monitors, read back: the start-up sweep finds a deleted monitor's user by its name."""

from __future__ import annotations

import pytest

from driftwatch.operator.redis_users import acl_username, parse_acl_username


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("shop", "payments"), ("a", "b"), ("team-1", "web.v2"), ("x" * 63, "m" * 253)],
)
def test_round_trip(namespace: str, name: str) -> None:
    assert parse_acl_username(acl_username(namespace, name)) == (namespace, name)


@pytest.mark.parametrize(
    "username",
    [
        "default",
        "driftwatch-operator",  # the operator's own login: never swept
        "driftwatch.",
        "driftwatch.shop",  # no monitor
        "driftwatch.shop.",
        "driftwatch..payments",  # no namespace
        "driftwatch.Shop.payments",  # not a namespace name
        "driftwatch.-shop.payments",
        "test-admin",
    ],
)
def test_other_users_are_not_monitors(username: str) -> None:
    assert parse_acl_username(username) is None
