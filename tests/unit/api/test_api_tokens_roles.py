"""Pure logic of issue 9: token minting and hashing, roles and org scope, limit settings."""

from __future__ import annotations

import hashlib

import pytest

from qgjob_api import ratelimits, tokens
from qgjob_api.auth import ACCESS, OPEN, Access, Principal, access_of
from qgjob_api.config import Config
from qgjob_api.errors import ConfigError, Forbidden
from qgjob_contract.roles import Role

ADMIN = "a" * 32


def test_a_minted_token_carries_its_id_and_a_32_byte_secret() -> None:
    token_id, token, hashed = tokens.mint()
    parts = tokens.split(token)
    assert parts is not None
    found_id, secret = parts
    assert found_id == token_id
    assert tokens.is_token_id(token_id)
    assert len(secret) == 43  # 32 bytes, URL-safe base64 without padding
    assert hashed == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in hashed


def test_every_mint_is_different() -> None:
    minted = {tokens.mint()[1] for _ in range(50)}
    assert len(minted) == 50


@pytest.mark.parametrize(
    "token",
    [
        "",
        "qgjob_",
        "qgjob_0123456789abcdef",
        "qgjob_0123456789ABCDEF_" + "A" * 43,  # upper-case hex id
        "qgjob_0123456789abcdef_" + "A" * 42,
        "qgjob_0123456789abcdef_" + "A" * 43 + "\n",
        "qgjob_../../etc_" + "A" * 43,
        "other_0123456789abcdef_" + "A" * 43,
    ],
)
def test_a_malformed_token_does_not_split(token: str) -> None:
    assert tokens.split(token) is None


def test_digests_compare_equal_only_when_equal() -> None:
    assert tokens.same_digest(tokens.digest("s"), tokens.digest("s"))
    assert not tokens.same_digest(tokens.digest("s"), tokens.digest("t"))


def _record(**changes: str | None) -> tokens.TokenRecord:
    fields: dict[str, str | None] = {
        "expires_at": None,
        "revoked_at": None,
        **changes,
    }
    return tokens.TokenRecord(
        token_id="0123456789abcdef",  # noqa: S106 (an id)
        org_id="acme",
        role=Role.VIEWER,
        name="ci",
        created_at="2026-01-01T00:00:00.000Z",
        digest=tokens.digest("x"),
        **fields,
    )


def test_a_record_round_trips_and_never_shows_its_digest() -> None:
    record = _record(expires_at="2026-02-01T00:00:00.000Z")
    assert tokens.TokenRecord.from_redis(record.to_redis()) == record
    assert "digest" not in record.to_api()
    assert record.to_api()["role"] == "viewer"


def test_revoked_and_expired_records_are_not_usable() -> None:
    at = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    assert _record().usable(at)
    assert not _record(revoked_at="2026-01-01T00:00:00.000Z").usable(at)
    expiring = _record(expires_at="2026-01-01T00:00:01.000Z")
    assert expiring.usable(at)
    assert not expiring.usable(at + 1000)


def test_roles_grant_their_access_levels() -> None:
    viewer = Principal("t1", Role.VIEWER, "acme")
    submitter = Principal("t2", Role.SUBMITTER, "acme")
    admin = Principal("t3", Role.ADMIN, "acme")
    assert [viewer.may(a) for a in Access] == [True, True, False, False]
    assert [submitter.may(a) for a in Access] == [True, True, True, False]
    assert all(admin.may(a) for a in Access)


def test_org_tokens_see_their_org_and_admins_every_org() -> None:
    viewer = Principal("t1", Role.VIEWER, "acme")
    admin = Principal("t3", Role.ADMIN, "acme")
    assert viewer.sees("acme")
    assert not viewer.sees("beta")
    assert admin.sees("beta")
    assert OPEN.sees("beta")
    assert viewer.listing_org(None) == ("acme", False)
    assert viewer.listing_org("acme") == ("acme", False)
    assert viewer.listing_org("beta") == ("acme", True)
    assert admin.listing_org("beta") == ("beta", False)
    assert OPEN.listing_org(None) == (None, False)


def test_a_submission_for_another_org_is_forbidden() -> None:
    submitter = Principal("t2", Role.SUBMITTER, "acme")
    submitter.check_submit("acme")
    with pytest.raises(Forbidden):
        submitter.check_submit("beta")


def test_actor_is_the_token_id_or_anonymous() -> None:
    assert Principal("t2", Role.SUBMITTER, "acme").actor == "t2"
    assert OPEN.actor == "anonymous"
    assert OPEN.token_id is None


def test_routes_missing_from_the_table_are_admin_only() -> None:
    assert access_of("some.new_route") is Access.ADMIN
    assert access_of(None) is Access.READ
    assert ACCESS["healthz"] is Access.PUBLIC
    assert ACCESS["readyz"] is Access.PUBLIC


def test_auth_settings_from_the_environment() -> None:
    assert Config.from_env({}).auth_mode == "off"
    config = Config.from_env({"QGJOB_AUTH": "tokens", "QGJOB_ADMIN_TOKEN": ADMIN})
    assert (config.auth_mode, config.admin_token) == ("tokens", ADMIN)
    assert ADMIN not in repr(config)
    with pytest.raises(ConfigError, match="QGJOB_ADMIN_TOKEN"):
        Config.from_env({"QGJOB_AUTH": "tokens"})
    with pytest.raises(ConfigError, match="at least 32"):
        Config.from_env({"QGJOB_AUTH": "tokens", "QGJOB_ADMIN_TOKEN": "short"})
    with pytest.raises(ConfigError, match="QGJOB_AUTH"):
        Config.from_env({"QGJOB_AUTH": "maybe"})


def test_limit_settings_from_the_environment() -> None:
    defaults = Config.from_env({})
    assert (defaults.rate_limit_submit, defaults.rate_limit_read) == (
        ratelimits.DEFAULT_SUBMIT,
        ratelimits.DEFAULT_READ,
    )
    config = Config.from_env(
        {"QGJOB_RATE_LIMIT_SUBMIT": "10/second;300/hour", "QGJOB_RATE_LIMIT_READ": "off"}
    )
    assert (config.rate_limit_submit, config.rate_limit_read) == ("10/second;300/hour", "off")
    for bad in ("lots", "10 per fortnight", "-1/minute"):
        with pytest.raises(ConfigError, match="QGJOB_RATE_LIMIT_SUBMIT"):
            Config.from_env({"QGJOB_RATE_LIMIT_SUBMIT": bad})


def test_writes_and_reads_count_against_their_own_budget() -> None:
    assert ratelimits.budget_of("create_jobs") == "submit"
    assert ratelimits.budget_of("runs.create_run") == "submit"
    assert ratelimits.budget_of("list_jobs") == "read"
    assert ratelimits.budget_of("runs.lookup_jobs") == "read"
    assert ratelimits.budget_of("healthz") is None
    assert ratelimits.budget_of("readyz") is None


def test_every_route_that_changes_something_counts_against_the_submit_budget() -> None:
    """A submitter's writes (submit, cancel, runs) all share the submit budget: a cancel
    storm is limited like a submit storm, never through the (larger) read budget."""
    for endpoint, access in ACCESS.items():
        if access is Access.SUBMIT:
            assert ratelimits.budget_of(endpoint) == "submit", endpoint


def test_tokens_without_an_admin_token_never_fail_open() -> None:
    """An app built for QGJOB_AUTH=tokens but given no admin token refuses to start instead
    of answering every route unchecked."""
    import redis  # noqa: PLC0415
    from flask import Flask  # noqa: PLC0415

    from qgjob_api import auth  # noqa: PLC0415

    with pytest.raises(ValueError, match="QGJOB_ADMIN_TOKEN"):
        auth.install(Flask("t"), redis.Redis(port=1), mode="tokens", admin_token=None)


@pytest.mark.parametrize(
    ("redis_url", "uri"),
    [
        ("unix:///run/redis/redis.sock", "redis+unix:///run/redis/redis.sock"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("rediss://redis:6380/1", "rediss://redis:6380/1"),
    ],
)
def test_every_redis_url_the_config_accepts_is_a_rate_limit_storage(
    redis_url: str, uri: str
) -> None:
    """REDIS_URL may name a Unix socket (`unix://`, as redis-py says it); `limits` calls that
    scheme `redis+unix://` and refuses `unix://` at start."""
    from limits.storage import storage_from_string  # noqa: PLC0415 (only this test)

    assert ratelimits.limits_uri(redis_url) == uri
    storage_from_string(uri, key_prefix="qgjob:test")  # refuses an unknown scheme at once
