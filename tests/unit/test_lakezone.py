"""LakeZone: naming on a shared store, lifecycle and policy documents, the reconciler's pure
decisions (target resolution, immutability, bucket sharing, the usage timer). The same code
runs against the real MinIO in tests/dataplane/test_lakezone_*.py."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from minio.xml import marshal

from headwater.api.lakezone import LakeZoneSpec
from headwater.constants import Reason
from headwater.dataplane.s3 import (
    Connection,
    ObjectStore,
    Usage,
    _is_lock_refusal,
    _rule_of,
    _to_rule,
    canonical,
    lifecycle_config,
)
from headwater.reconcile.base import Context, InvalidSpec, Settings, Store
from headwater.reconcile.lakezone import (
    LakeZoneReconciler,
    NotReady,
    _conflict,
    check_immutable,
    resolve_target,
)
from headwater.render.common import Owner
from headwater.render.lakezone import (
    GENERATED,
    Credentials,
    LakeContext,
    ZoneIds,
    bucket_policy_statements,
    bucket_settings,
    grants,
    lifecycle_rules,
    offline_context,
    render_lakezone,
)


def spec(**kw: Any) -> LakeZoneSpec:
    base: dict[str, Any] = {"platformRef": {"name": "shop"}, "tier": "bronze", "bucket": "shop-raw"}
    return LakeZoneSpec.model_validate({**base, **kw})


OWNER = Owner(kind="LakeZone", name="bronze", namespace="shop", uid="u-1")


# --- naming ---------------------------------------------------------------------------------


def test_names_of_different_zones_never_collide() -> None:
    a, b = ZoneIds("ns", "a"), ZoneIds("ns", "a.b")
    # principal "b.c" of zone "a" vs principal "c" of zone "a.b"
    assert a.policy_name("b.c") != b.policy_name("c")
    assert a.principal_of_policy(b.policy_name("c")) is None
    assert ZoneIds("n1", "z").access_key("p") != ZoneIds("n2", "z").access_key("p")
    assert not ZoneIds("ns", "a").rule_prefix.startswith(ZoneIds("ns", "ab").rule_prefix)


def test_access_keys_are_stable_aws_shaped() -> None:
    ids = ZoneIds("shop", "bronze")
    key = ids.access_key("spark-etl")
    assert key == ids.access_key("spark-etl")
    assert re.fullmatch(r"HW[A-Z2-7]{18}", key)


def test_default_secret_name() -> None:
    s = spec(access={"readers": [{"name": "bi-team"}, {"name": "etl", "secretName": "mine"}]})
    assert [g.secret_name for g in grants(s, ZoneIds("shop", "bronze"))] == [
        "bronze-bi-team-s3",
        "mine",
    ]


# --- lifecycle and policies -----------------------------------------------------------------


def test_lifecycle_rules_follow_retention_and_prefix() -> None:
    ids = ZoneIds("shop", "silver")
    rules = lifecycle_rules(
        spec(
            prefix="silver/",
            retention={
                "expirationDays": 730,
                "noncurrentVersionExpirationDays": 7,
                "abortIncompleteMultipartUploadDays": 2,
            },
        ),
        ids,
    )
    assert [r.to_json() for r in rules] == [
        {"id": "headwater:shop/silver:expire-current", "prefix": "silver/", "expirationDays": 730},
        {
            "id": "headwater:shop/silver:expire-noncurrent",
            "prefix": "silver/",
            "noncurrentVersionExpirationDays": 7,
        },
        {
            "id": "headwater:shop/silver:abort-multipart",
            "prefix": "silver/",
            "abortIncompleteMultipartUploadDays": 2,
        },
    ]
    # Kept forever when unset: no expiration rule at all.
    assert [r.id.rsplit(":", 1)[1] for r in lifecycle_rules(spec(), ids)] == ["abort-multipart"]


def test_lifecycle_rule_round_trips_and_altered_rules_are_detected() -> None:
    for rule in lifecycle_rules(
        spec(retention={"expirationDays": 3, "noncurrentVersionExpirationDays": 1}),
        ZoneIds("a", "b"),
    ):
        assert _rule_of(_to_rule(rule)) == rule
    from minio.commonconfig import DISABLED, Filter
    from minio.lifecycleconfig import Expiration, Rule, Transition

    assert _rule_of(Rule(DISABLED, Filter(prefix=""), "x", expiration=Expiration(days=3))) is None
    assert (
        _rule_of(
            Rule(
                "Enabled",
                Filter(prefix=""),
                "x",
                expiration=Expiration(days=3),
                transition=Transition(days=1, storage_class="COLD"),
            )
        )
        is None
    )


def _sent_rules(store: ObjectStore, s: LakeZoneSpec) -> dict[str, ET.Element]:
    """Rule ID -> <Rule> of the lifecycle XML the SDK would PUT (the SDK's own marshalling;
    no server involved)."""
    want = bucket_settings(s, ZoneIds("shop", "raw"))
    root = ET.fromstring(marshal(lifecycle_config([], store.applicable_rules(want))))
    for elem in root.iter():  # the S3 namespace, dropped for short paths
        elem.tag = elem.tag.rpartition("}")[2]
    return {r.findtext("ID") or "": r for r in root.iter("Rule")}


def test_abort_multipart_rule_is_sent_to_s3_stores_and_withheld_from_minio() -> None:
    """The real MinIO refuses the AbortIncompleteMultipartUpload action (the dataplane tests
    see it skipped and reported); a non-MinIO store must get it, with the zone's prefix."""
    s = spec(
        prefix="raw/",
        retention={"expirationDays": 30, "abortIncompleteMultipartUploadDays": 3},
    )
    abort_id = "headwater:shop/raw:abort-multipart"
    s3 = ObjectStore(Connection("https://s3.example.com", "AKEXAMPLE", "sk", admin=False))
    sent = _sent_rules(s3, s)
    assert sorted(sent) == [abort_id, "headwater:shop/raw:expire-current"]
    rule = sent[abort_id]
    assert rule.findtext("Status") == "Enabled"
    assert rule.findtext("Filter/Prefix") == "raw/"
    assert rule.findtext("AbortIncompleteMultipartUpload/DaysAfterInitiation") == "3"
    assert rule.find("Expiration") is None  # one action per rule
    assert sent["headwater:shop/raw:expire-current"].findtext("Expiration/Days") == "30"

    minio = ObjectStore(Connection("http://minio:9000", "root", "sk", admin=True))
    assert sorted(_sent_rules(minio, s)) == ["headwater:shop/raw:expire-current"]
    s3.abort_rules_supported = False  # what a refusal of the action teaches the client
    assert abort_id not in _sent_rules(s3, s)


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for st in statements for a in st["Action"]}


def test_reader_and_writer_policies_stay_inside_the_prefix() -> None:
    s = spec(prefix="raw/", access={"readers": [{"name": "bi-team"}], "writers": [{"name": "etl"}]})
    by_name = {g.principal: g for g in grants(s, ZoneIds("shop", "bronze"))}
    reader, writer = by_name["bi-team"].policy, by_name["etl"].policy
    assert "s3:PutObject" not in _actions(reader["Statement"])
    assert {"s3:PutObject", "s3:DeleteObject"} <= _actions(writer["Statement"])
    for doc in (reader, writer):
        actions = _actions(doc["Statement"])
        # History and locks are never the principals' to remove.
        assert not {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:*"} & actions
        for st in doc["Statement"]:
            for res in st["Resource"]:
                assert res in ("arn:aws:s3:::shop-raw", "arn:aws:s3:::shop-raw/raw/*")
            if st["Action"] == ["s3:ListBucket"]:
                assert st["Condition"] == {"StringLike": {"s3:prefix": ["raw/", "raw/*"]}}


def test_bucket_policy_statements_name_principals_and_carry_zone_sids() -> None:
    ids = ZoneIds("shop", "gold")
    s = spec(access={"readers": [{"name": "bi-team"}, {"name": "audit"}]})
    stmts = bucket_policy_statements(s, ids)
    assert all(st["Sid"].startswith(ids.sid_prefix) for st in stmts)
    assert {tuple(st["Principal"]["AWS"]) for st in stmts} == {
        ("arn:aws:iam:::user/audit", "arn:aws:iam:::user/bi-team")
    }
    assert bucket_policy_statements(spec(), ids) == []


def test_canonical_policy_comparison() -> None:
    a = {"Version": "2012-10-17", "Statement": [{"Action": ["b", "a"], "Resource": "r"}]}
    b = {"Statement": [{"Action": ["a", "b"], "Resource": ["r"]}]}
    assert canonical(a) == canonical(b)
    assert canonical(a) != canonical({"Statement": [{"Action": ["a"], "Resource": ["r"]}]})


def test_lock_refusals_are_told_apart_from_other_failures() -> None:
    assert _is_lock_refusal("InvalidRequest", "Object is WORM protected and cannot be overwritten")
    assert _is_lock_refusal(
        "AccessDenied", "Access Denied because object protected by object lock."
    )
    assert not _is_lock_refusal("AccessDenied", "Access Denied.")
    assert not _is_lock_refusal("InternalError", "WORM")


# --- render ---------------------------------------------------------------------------------


def test_render_secrets_only_for_principals_with_keys() -> None:
    s = spec(access={"readers": [{"name": "bi-team"}]})
    objs = render_lakezone(s, OWNER, LakeContext())
    assert [o["kind"] for o in objs] == ["ConfigMap"]
    creds = {"bi-team": Credentials("HWKEY", "s3cr3t")}
    objs = render_lakezone(s, OWNER, LakeContext("http://m:9000", "eu-1", creds))
    secret = next(o for o in objs if o["kind"] == "Secret")
    assert secret["metadata"]["name"] == "bronze-bi-team-s3"
    assert secret["stringData"]["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert secret["stringData"]["endpoint"] == "http://m:9000"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert "s3cr3t" not in repr(creds["bi-team"])
    configmap = objs[0]
    assert "s3cr3t" not in str(configmap)


def test_offline_render_shows_placeholders_never_keys() -> None:
    s = spec(access={"writers": [{"name": "etl"}]})
    objs = render_lakezone(s, OWNER, offline_context(s, OWNER))
    secret = next(o for o in objs if o["kind"] == "Secret")
    assert secret["stringData"]["secretKey"] == GENERATED


# --- reconciler decisions -------------------------------------------------------------------


def test_bucket_and_prefix_cannot_move_once_the_bucket_exists() -> None:
    check_immutable(spec(bucket="new-one"), {})  # nothing observed yet
    with pytest.raises(InvalidSpec) as err:
        check_immutable(spec(bucket="new-one"), {"bucketExists": True, "bucket": "shop-raw"})
    assert err.value.reason == Reason.IMMUTABLE_FIELD
    with pytest.raises(InvalidSpec):
        check_immutable(
            spec(prefix="b/"), {"bucketExists": True, "bucket": "shop-raw", "prefix": ""}
        )


def test_sharing_a_bucket_needs_disjoint_prefixes_and_equal_bucket_settings() -> None:
    assert _conflict(spec(prefix="raw/"), spec(prefix="gold/")) is None
    assert "empty prefix" in str(_conflict(spec(), spec(prefix="gold/")))
    assert "overlap" in str(_conflict(spec(prefix="raw/"), spec(prefix="raw/x/")))
    assert "versioning" in str(_conflict(spec(prefix="a/"), spec(prefix="b/", versioning=False)))
    assert "objectLock" in str(
        _conflict(spec(prefix="a/"), spec(prefix="b/", objectLock={"enabled": True}))
    )


class _Cache:
    def __init__(self, secrets: dict[str, dict[str, str]]):
        self.secrets = secrets

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        data = self.secrets.get(name)
        if data is None:
            return None
        return {
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }


def _ctx(platform: dict[str, Any] | None, secrets: dict[str, dict[str, str]]) -> Context:
    store = Store()
    if platform is not None:
        store.put(("DataPlatform", "shop", "shop"), platform)
    return Context(
        kube=None,  # type: ignore[arg-type]
        cache=_Cache(secrets),  # type: ignore[arg-type]
        applier=None,  # type: ignore[arg-type]
        store=store,
        events=None,  # type: ignore[arg-type]
        settings=Settings(endpoint_overrides={"shop-minio.shop.svc:9000": "127.0.0.1:59000"}),
        executor=ThreadPoolExecutor(1),
    )


def _platform(object_store: dict[str, Any], endpoints: dict[str, str] | None) -> dict[str, Any]:
    return {
        "kind": "DataPlatform",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"objectStore": object_store},
        "status": {"endpoints": endpoints} if endpoints else {},
    }


MANAGED_EPS = {
    "s3Endpoint": "http://shop-minio.shop.svc:9000",
    "s3CredentialsSecret": "shop-minio-root",
}


@pytest.mark.parametrize(
    ("platform", "secrets", "reason", "text"),
    [
        (None, {}, Reason.MISSING_REFERENCE, "DataPlatform 'shop' not found"),
        (_platform({"mode": "disabled"}, None), {}, Reason.REFERENCE_NOT_READY, "disabled"),
        (_platform({"mode": "managed"}, None), {}, Reason.REFERENCE_NOT_READY, "not published"),
        (
            _platform({"mode": "managed"}, MANAGED_EPS),
            {},
            Reason.SECRET_NOT_FOUND,
            "shop-minio-root",
        ),
        (
            _platform({"mode": "managed"}, MANAGED_EPS),
            {"shop-minio-root": {"accessKey": "a"}},
            Reason.SECRET_NOT_FOUND,
            "lacks key",
        ),
    ],
)
def test_target_resolution_reports_what_is_missing(
    platform: dict[str, Any] | None, secrets: dict[str, dict[str, str]], reason: str, text: str
) -> None:
    with pytest.raises(NotReady) as err:
        resolve_target(_ctx(platform, secrets), OWNER, spec())
    assert err.value.reason == reason and text in str(err.value)


def test_managed_target_uses_the_override_only_for_the_operator() -> None:
    ctx = _ctx(
        _platform({"mode": "managed"}, MANAGED_EPS),
        {"shop-minio-root": {"accessKey": "root", "secretKey": "pw-123456"}},
    )
    target = resolve_target(ctx, OWNER, spec())
    assert target.endpoint == "http://shop-minio.shop.svc:9000"
    assert target.conn.endpoint == "http://127.0.0.1:59000"
    assert target.conn.admin and target.conn.access_key == "root"
    assert "pw-123456" not in repr(target)


def test_external_target_reads_its_key_names_kind_and_region() -> None:
    ext = {
        "mode": "external",
        "external": {
            "endpoint": "https://s3.example:9000",
            "kind": "s3",
            "region": "eu-west-1",
            "credentialsSecretRef": {"name": "s3", "accessKeyKey": "id", "secretKeyKey": "key"},
            "tls": {"insecureSkipVerify": True},
        },
    }
    eps = {"s3Endpoint": "https://s3.example:9000", "s3CredentialsSecret": "s3"}
    ctx = _ctx(_platform(ext, eps), {"s3": {"id": "AK", "key": "SK"}})
    target = resolve_target(ctx, OWNER, spec())
    assert (target.conn.access_key, target.conn.secret_key) == ("AK", "SK")
    assert not target.admin and target.region == "eu-west-1" and not target.conn.verify


class _CountingStore:
    def __init__(self) -> None:
        self.scans = 0

    def usage(self, bucket: str, prefix: str) -> Usage:
        self.scans += 1
        return Usage(3, 30, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_usage_is_scanned_only_when_due() -> None:
    """The usage scan stays off the fast path (the real listing is tested against MinIO)."""
    now = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
    rec = LakeZoneReconciler(resync_seconds=60, clock=lambda: now)
    store = _CountingStore()
    ctx = _ctx(None, {})
    s = spec(usageScanIntervalSeconds=600)
    status: dict[str, Any] = {}
    wait = asyncio.run(rec._usage(ctx, s, status, store))  # type: ignore[arg-type]
    assert store.scans == 1 and wait == 600
    assert status["objectCount"] == 3 and status["lastUsageScanTime"] == "2024-01-01T12:00:00Z"
    assert status["lastObjectTime"] == "2024-01-01T00:00:00Z"
    now += dt.timedelta(seconds=200)
    wait = asyncio.run(rec._usage(ctx, s, status, store))  # type: ignore[arg-type]
    assert store.scans == 1 and wait == 400
    now += dt.timedelta(seconds=400)
    asyncio.run(rec._usage(ctx, s, status, store))  # type: ignore[arg-type]
    assert store.scans == 2


def test_bucket_settings_fingerprint_tracks_what_matters() -> None:
    ids = ZoneIds("shop", "bronze")
    a = bucket_settings(spec(retention={"expirationDays": 3}), ids).fingerprint()
    assert a == bucket_settings(spec(retention={"expirationDays": 3}), ids).fingerprint()
    assert a != bucket_settings(spec(retention={"expirationDays": 4}), ids).fingerprint()
    assert (
        a
        == bucket_settings(spec(retention={"expirationDays": 3}, format="avro"), ids).fingerprint()
    )


def test_a_zone_holding_the_bucket_wins_over_one_created_in_the_same_second() -> None:
    """creationTimestamp has one-second resolution; a newcomer whose name sorts first must
    not take over a bucket an elder holds (it stalls with BucketConflict instead)."""
    from headwater.reconcile.lakezone import check_siblings

    def zone(name: str, prefix: str, holds: bool) -> dict[str, Any]:
        return {
            "kind": "LakeZone",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": "T1"},
            "spec": {
                "platformRef": {"name": "shop"},
                "tier": "bronze",
                "bucket": "shop-raw",
                "prefix": prefix,
            },
            "status": {"bucket": "shop-raw", "bucketExists": True} if holds else {},
        }

    ctx = _ctx(None, {})
    raw, newcomer = zone("raw", "raw/", True), zone("all", "", False)
    for z in (raw, newcomer):
        ctx.store.put(("LakeZone", "shop", z["metadata"]["name"]), z)
    with pytest.raises(InvalidSpec) as err:
        check_siblings(ctx, newcomer, spec(prefix=""))
    assert err.value.reason == Reason.BUCKET_CONFLICT and "'raw'" in str(err.value)
    check_siblings(ctx, raw, spec(prefix="raw/"))  # the holder is not told anything
    # neither holds yet: the older (here: by name at the same second) wins
    ctx.store.put(("LakeZone", "shop", "raw"), zone("raw", "raw/", False))
    check_siblings(ctx, newcomer, spec(prefix=""))
    with pytest.raises(InvalidSpec):
        check_siblings(ctx, ctx.store.get("LakeZone", "shop", "raw"), spec(prefix="raw/"))
