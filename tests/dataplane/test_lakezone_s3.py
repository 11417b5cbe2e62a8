"""dataplane/s3.py against the real MinIO: every setting is read back through the S3 and
admin APIs with the test's own root client, never through the code under test."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from typing import Any

import pytest
from minio.commonconfig import ENABLED, GOVERNANCE, Filter
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.retention import Retention

from headwater.api.lakezone import LakeZoneSpec
from headwater.dataplane.s3 import Connection, ObjectStore, ObjectStoreError
from headwater.render.lakezone import ZoneIds, bucket_policy_statements, bucket_settings, grants
from hwtest.lake import MinioServer, unique_bucket
from hwtest.operator import free_port


def spec(bucket: str, **kw: Any) -> LakeZoneSpec:
    return LakeZoneSpec.model_validate(
        {"platformRef": {"name": "p"}, "tier": "silver", "bucket": bucket, **kw}
    )


def store(minio: MinioServer, admin: bool = True) -> ObjectStore:
    return ObjectStore(
        Connection(minio.url, minio.access_key, minio.secret_key, admin=admin, timeout=5)
    )


def put(minio: MinioServer, bucket: str, key: str, data: bytes = b"{}", **kw: Any) -> Any:
    return minio.client().put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def test_bucket_settings_are_applied_and_read_back(
    shared_minio: MinioServer, buckets: list[str]
) -> None:
    name = unique_bucket("silver")
    buckets.append(name)
    ids = ZoneIds("ns1", "silver")
    want = bucket_settings(
        spec(
            name,
            prefix="orders/",
            retention={"expirationDays": 730, "noncurrentVersionExpirationDays": 7},
        ),
        ids,
    )
    report = store(shared_minio).ensure_bucket(want)
    assert report.created and report.versioning == "Enabled"

    c = shared_minio.client()
    assert c.bucket_exists(name)
    assert c.get_bucket_versioning(name).status == "Enabled"
    rules = shared_minio.lifecycle_rules(name)
    assert rules == {
        "headwater:ns1/silver:expire-current": {
            "Status": "Enabled",
            "Prefix": "orders/",
            "Expiration/Days": "730",
        },
        "headwater:ns1/silver:expire-noncurrent": {
            "Status": "Enabled",
            "Prefix": "orders/",
            "NoncurrentVersionExpiration/NoncurrentDays": "7",
        },
    }
    # MinIO has no AbortIncompleteMultipartUpload rule; the report says what happens instead.
    assert sorted(report.rule_ids) == sorted(rules)
    assert "stale uploads after 24h" in report.multipart_cleanup

    again = store(shared_minio).ensure_bucket(want)
    assert again.changes == [] and not again.created


def test_object_lock_is_set_at_creation_and_cannot_be_added_later(
    shared_minio: MinioServer, buckets: list[str]
) -> None:
    locked, plain = unique_bucket("gold"), unique_bucket("plain")
    buckets += [locked, plain]
    ids = ZoneIds("ns1", "gold")
    s = store(shared_minio)
    report = s.ensure_bucket(
        bucket_settings(spec(locked, objectLock={"enabled": True, "days": 1}), ids)
    )
    cfg = shared_minio.client().get_object_lock_config(locked)
    assert (cfg.mode, cfg.duration) == (GOVERNANCE, 1)
    assert report.object_lock == "GOVERNANCE 1d"
    # The default retention is not fixed: a new mode or period is applied and reported.
    report = s.ensure_bucket(
        bucket_settings(spec(locked, objectLock={"enabled": True, "days": 2}), ids)
    )
    assert report.changes == ["default retention GOVERNANCE 1d -> GOVERNANCE 2d"]
    cfg = shared_minio.client().get_object_lock_config(locked)
    assert (cfg.mode, cfg.duration) == (GOVERNANCE, 2)

    shared_minio.client().make_bucket(plain)
    with pytest.raises(ObjectStoreError) as err:
        s.ensure_bucket(bucket_settings(spec(plain, objectLock={"enabled": True}), ids))
    assert err.value.kind == "immutable"
    assert "can only be chosen when a bucket is created" in str(err.value)
    with pytest.raises(ObjectStoreError) as err:
        s.ensure_bucket(bucket_settings(spec(locked), ids))
    assert err.value.kind == "immutable"


def test_lifecycle_drift_is_restored_and_foreign_rules_kept(
    shared_minio: MinioServer, buckets: list[str]
) -> None:
    name = unique_bucket("bronze")
    buckets.append(name)
    want = bucket_settings(spec(name, retention={"expirationDays": 30}), ZoneIds("ns1", "b"))
    s = store(shared_minio)
    s.ensure_bucket(want)
    c = shared_minio.client()
    ours = "headwater:ns1/b:expire-current"
    # Someone shortens our rule and adds their own.
    c.set_bucket_lifecycle(
        name,
        LifecycleConfig(
            [
                Rule(ENABLED, Filter(prefix=""), ours, expiration=Expiration(days=1)),
                Rule(ENABLED, Filter(prefix="tmp/"), "team-tmp", expiration=Expiration(days=2)),
            ]
        ),
    )
    report = s.ensure_bucket(want)
    assert report.changes == ["lifecycle rules restored"]
    rules = shared_minio.lifecycle_rules(name)
    assert rules[ours]["Expiration/Days"] == "30"
    assert rules["team-tmp"] == {"Status": "Enabled", "Prefix": "tmp/", "Expiration/Days": "2"}
    # Suspended versioning is drift too.
    from minio.versioningconfig import SUSPENDED, VersioningConfig

    c.set_bucket_versioning(name, VersioningConfig(SUSPENDED))
    assert s.ensure_bucket(want).changes == ["versioning Suspended -> Enabled"]
    assert c.get_bucket_versioning(name).status == "Enabled"


def test_reader_reads_writer_writes_nobody_leaves_the_prefix(
    shared_minio: MinioServer, buckets: list[str]
) -> None:
    name = unique_bucket("lake")
    buckets.append(name)
    ids = ZoneIds("ns-grant", "raw")
    zone = spec(
        name,
        prefix="raw/",
        access={"readers": [{"name": "bi-dash"}], "writers": [{"name": "ingest"}]},
    )
    s = store(shared_minio)
    s.ensure_bucket(bucket_settings(zone, ids))
    put(shared_minio, name, "raw/existing.json")
    put(shared_minio, name, "private/secret.json")
    keys = {}
    try:
        for g in grants(zone, ids):
            keys[g.principal] = f"k-{g.principal}-0123456789abcdef"
            assert s.ensure_grant(g, keys[g.principal], set_key=True)
            assert s.ensure_grant(g, keys[g.principal], set_key=False) == []
        reader = shared_minio.client(ids.access_key("bi-dash"), keys["bi-dash"])
        writer = shared_minio.client(ids.access_key("ingest"), keys["ingest"])

        assert reader.get_object(name, "raw/existing.json").read() == b"{}"
        assert [o.object_name for o in reader.list_objects(name, prefix="raw/")] == [
            "raw/existing.json"
        ]
        with pytest.raises(S3Error) as err:
            reader.put_object(name, "raw/new.json", io.BytesIO(b"x"), 1)
        assert err.value.code == "AccessDenied"
        writer.put_object(name, "raw/new.json", io.BytesIO(b"x"), 1)
        assert shared_minio.client().stat_object(name, "raw/new.json").size == 1
        for client in (reader, writer):
            with pytest.raises(S3Error):
                client.get_object(name, "private/secret.json")
            with pytest.raises(S3Error):
                list(client.list_objects(name, prefix="private/"))
        with pytest.raises(S3Error):
            writer.put_object(name, "private/x", io.BytesIO(b"x"), 1)

        # Out-of-band: policy widened, user disabled -> both put back.
        shared_minio.admin().policy_add(
            ids.policy_name("bi-dash"),
            policy={
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}
                ],
            },
        )
        shared_minio.admin().user_disable(ids.access_key("bi-dash"))
        bi = next(g for g in grants(zone, ids) if g.principal == "bi-dash")
        changes = s.ensure_grant(bi, keys["bi-dash"], set_key=False)
        assert any("restored" in c for c in changes) and any("re-enabled" in c for c in changes)
        with pytest.raises(S3Error):
            reader.put_object(name, "raw/new2.json", io.BytesIO(b"x"), 1)
        assert reader.get_object(name, "raw/existing.json").read() == b"{}"

        # A principal removed from the spec loses its user and policy.
        assert s.revoke(ids.policy_prefix, ["ingest"], ids.access_key) == ["bi-dash"]
        assert shared_minio.user(ids.access_key("bi-dash")) is None
        assert shared_minio.user(ids.access_key("ingest")) is not None
        assert list(shared_minio.policies(ids.policy_prefix)) == [ids.policy_name("ingest")]
    finally:
        s.revoke(ids.policy_prefix, [], ids.access_key)
    assert shared_minio.policies(ids.policy_prefix) == {}


def test_bucket_policy_statements_merge_with_foreign_ones(
    shared_minio: MinioServer, buckets: list[str]
) -> None:
    name = unique_bucket("ext")
    buckets.append(name)
    ids = ZoneIds("ns1", "ext")
    zone = spec(name, prefix="z/", access={"readers": [{"name": "bi-dash"}]})
    s = store(shared_minio, admin=False)
    s.ensure_bucket(bucket_settings(zone, ids))
    foreign = {
        "Sid": "public-docs",
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{name}/docs/*"],
    }
    shared_minio.client().set_bucket_policy(
        name, json.dumps({"Version": "2012-10-17", "Statement": [foreign]})
    )
    mine = bucket_policy_statements(zone, ids)
    assert s.ensure_bucket_policy(name, mine, ids.sid_prefix) == ["bucket policy applied"]
    doc = shared_minio.bucket_policy(name)
    sids = {st["Sid"] for st in doc["Statement"]}
    assert sids == {"public-docs", *(st["Sid"] for st in mine)}
    read_objects = next(st for st in doc["Statement"] if st["Sid"] == f"{ids.sid_prefix}read-2")
    assert read_objects["Resource"] in (
        [f"arn:aws:s3:::{name}/z/*"],
        f"arn:aws:s3:::{name}/z/*",
    )
    assert s.ensure_bucket_policy(name, mine, ids.sid_prefix) == []
    # Drift: our statements removed out-of-band.
    shared_minio.client().set_bucket_policy(
        name, json.dumps({"Version": "2012-10-17", "Statement": [foreign]})
    )
    assert s.ensure_bucket_policy(name, mine, ids.sid_prefix) == ["bucket policy applied"]
    # Revoking leaves only the foreign statement.
    s.ensure_bucket_policy(name, [], ids.sid_prefix)
    assert [st["Sid"] for st in shared_minio.bucket_policy(name)["Statement"]] == ["public-docs"]


def test_purge_never_deletes_locked_versions(shared_minio: MinioServer, buckets: list[str]) -> None:
    name = unique_bucket("locked")
    buckets.append(name)
    s = store(shared_minio)
    s.ensure_bucket(
        bucket_settings(spec(name, objectLock={"enabled": True, "days": 1}), ZoneIds("n", "z"))
    )
    # Default retention locks these for a day; a short explicit lock expires in seconds.
    put(shared_minio, name, "z/a.json")
    put(shared_minio, name, "z/a.json", b"{1}")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    put(shared_minio, name, "z/short.json", retention=Retention(GOVERNANCE, until))
    result = s.purge(name, "z/")
    assert (result.deleted, result.locked, result.other_failures) == (0, 3, [])
    assert result.locked_until is not None and result.locked_until > until
    time.sleep(4)
    result = s.purge(name, "z/")
    assert (result.deleted, result.locked) == (1, 2)
    versions = list(shared_minio.client().list_objects(name, recursive=True, include_version=True))
    assert sorted(v.object_name for v in versions) == ["z/a.json", "z/a.json"]
    assert not s.remove_bucket_if_empty(name)


def test_purge_and_usage_of_a_prefix(shared_minio: MinioServer, buckets: list[str]) -> None:
    name = unique_bucket("usage")
    buckets.append(name)
    s = store(shared_minio)
    s.ensure_bucket(bucket_settings(spec(name), ZoneIds("n", "u")))
    for i in range(5):
        put(shared_minio, name, f"in/{i}.json", b"x" * (i + 1))
    put(shared_minio, name, "in/0.json", b"overwritten")  # a noncurrent version
    put(shared_minio, name, "out/keep.json")
    usage = s.usage(name, "in/")
    assert (usage.objects, usage.bytes) == (5, len(b"overwritten") + 2 + 3 + 4 + 5)
    assert usage.newest is not None
    result = s.purge(name, "in/")
    assert (result.deleted, result.locked) == (6, 0)
    assert s.usage(name, "in/").objects == 0
    assert not s.remove_bucket_if_empty(name)  # out/ is still there
    s.purge(name, "")
    assert s.remove_bucket_if_empty(name)
    assert not shared_minio.client().bucket_exists(name)


def test_unreachable_store_fails_fast_as_unavailable() -> None:
    dead = ObjectStore(
        Connection(f"http://127.0.0.1:{free_port()}", "AKEXAMPLE", "s3cr3t-value", timeout=2)
    )
    with pytest.raises(ObjectStoreError) as err:
        dead.bucket_exists("anything")
    assert err.value.kind == "unavailable"
    assert "s3cr3t-value" not in str(err.value)


def test_wrong_credentials_are_reported_as_auth(shared_minio: MinioServer) -> None:
    bad = ObjectStore(
        Connection(shared_minio.url, shared_minio.access_key, "not-the-secret-key", timeout=5)
    )
    with pytest.raises(ObjectStoreError) as err:
        bad.bucket_exists("anything")
    assert err.value.kind == "auth"
    assert "not-the-secret-key" not in str(err.value)
