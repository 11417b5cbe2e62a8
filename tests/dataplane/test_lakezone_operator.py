"""LakeZones through the real operator against the real MinIO (external `kind: minio`
platform, and `kind: s3` for the bucket-policy path). Everything is read back through the S3
and admin APIs with the test's own root client."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from typing import Any

import pytest
from minio.commonconfig import COMPLIANCE, ENABLED, GOVERNANCE, Filter
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.objectlockconfig import DAYS, ObjectLockConfig

from headwater.render.lakezone import ZoneIds
from hwtest.kubectl import condition, wait_for
from hwtest.lake import DedicatedMinio, LakeEnv, MinioServer, secret_data, unique_bucket


def _put(client: Any, bucket: str, key: str, data: bytes = b"{}") -> None:
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def _s3_requests(lake: LakeEnv, bucket: str, query: str = "") -> list[str]:
    """The operator's own requests for `bucket` (its urllib3 debug lines: the suite runs it
    with -v), optionally only those whose query string contains `query`."""
    pattern = re.compile(rf'"(?:GET|HEAD|PUT|POST|DELETE) /{re.escape(bucket)}(?:[ /?])')
    return [
        line for line in lake.operator.logs().splitlines() if pattern.search(line) and query in line
    ]


def _metric(lake: LakeEnv, series: str) -> float:
    """The value of one series of the operator's /metrics; 0 when absent."""
    for line in lake.operator.metrics().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def _no_secret_anywhere(lake: LakeEnv, namespace: str, values: list[str]) -> None:
    """Secret values appear in no CR (spec or status), no Event and no operator log line."""
    crs = lake.kubectl.run("get", "lakezones,dataplatforms", "-n", namespace, "-o", "json").stdout
    events = lake.kubectl.run("get", "events", "-n", namespace, "-o", "json").stdout
    logs = lake.operator.logs()
    for value in values:
        assert value not in crs, "a secret value is in a CR"
        assert value not in events, "a secret value is in an Event"
        assert value not in logs, "a secret value is in the operator log"


def test_medallion_zones_reach_ready_and_the_store_holds_what_they_say(
    lake: LakeEnv, buckets: list[str]
) -> None:
    ns = lake.namespace("medallion")
    lake.external_platform(ns, lake.minio)
    bronze, silver, gold = unique_bucket("bronze"), unique_bucket("silver"), unique_bucket("gold")
    buckets += [bronze, silver, gold]
    # Objects that exist before the zone: the first usage scan counts them.
    lake.minio.client().make_bucket(silver)
    _put(lake.minio.client(), silver, "orders/date=2024-01-01/part-0.parquet", b"x" * 100)
    lake.zone(
        ns,
        "bronze",
        tier="bronze",
        bucket=bronze,
        format="json",
        retention={"noncurrentVersionExpirationDays": 30},
        access={"writers": [{"name": "flink-ingest"}], "readers": [{"name": "spark-etl"}]},
    )
    lake.zone(
        ns,
        "silver",
        tier="silver",
        bucket=silver,
        pathTemplate="{table}/date={date}",
        retention={"expirationDays": 730, "noncurrentVersionExpirationDays": 7},
    )
    lake.zone(
        ns,
        "gold",
        tier="gold",
        bucket=gold,
        objectLock={"enabled": True, "mode": "GOVERNANCE", "days": 1},
        access={"readers": [{"name": "bi-dashboards", "secretName": "bi-s3"}]},
    )
    b = lake.wait_ready(ns, "bronze")
    s = lake.wait_ready(ns, "silver")
    g = lake.wait_ready(ns, "gold")

    # Status publishes the layout StreamJobs share and what was read back from the store.
    assert b["status"]["pathTemplate"] == (
        f"s3://{bronze}/{{source}}/{{table}}/year={{yyyy}}/month={{mm}}/day={{dd}}/hour={{hh}}"
    )
    assert b["status"]["format"] == "json" and s["status"]["format"] == "parquet"
    assert s["status"]["pathTemplate"] == f"s3://{silver}/{{table}}/date={{date}}"
    assert b["status"]["endpoint"] == lake.minio.url
    for obj in (b, s, g):
        st = obj["status"]
        assert st["bucketExists"] is True and st["versioning"] == "Enabled"
        assert condition(obj, "Stalled")["status"] == "False"  # type: ignore[index]
    assert g["status"]["objectLock"] == "GOVERNANCE 1d" and b["status"]["objectLock"] == "Off"
    assert b["status"]["policy"] == "minio-users" and s["status"]["policy"] == "none"
    assert "MinIO aborts stale uploads" in s["status"]["multipartCleanup"]
    assert (s["status"]["objectCount"], s["status"]["sizeBytes"]) == (1, 100)
    assert s["status"]["lastObjectTime"] and s["status"]["lastUsageScanTime"]
    assert b["status"]["objectCount"] == 0

    # The usage gauges the LakeZone alert rules query (docs/observability.md).
    metrics = lake.operator.metrics()
    assert f'headwater_lakezone_size_bytes{{name="silver",namespace="{ns}"}} 100.0' in metrics
    assert f'headwater_lakezone_objects{{name="silver",namespace="{ns}"}} 1.0' in metrics
    assert (
        f'headwater_lakezone_last_object_timestamp_seconds{{name="silver",namespace="{ns}"}}'
        in (metrics)
    )

    # Read back through the S3 API.
    c = lake.minio.client()
    for name in (bronze, silver, gold):
        assert c.bucket_exists(name) and c.get_bucket_versioning(name).status == "Enabled"
    rules = lake.minio.lifecycle_rules(silver)
    assert rules[f"headwater:{ns}/silver:expire-current"]["Expiration/Days"] == "730"
    assert (
        rules[f"headwater:{ns}/silver:expire-noncurrent"][
            "NoncurrentVersionExpiration/NoncurrentDays"
        ]
        == "7"
    )
    assert sorted(s["status"]["lifecycleRules"]) == sorted(rules)
    lock = c.get_object_lock_config(gold)
    assert (lock.mode, lock.duration) == ("GOVERNANCE", 1)
    with pytest.raises(S3Error):
        c.get_object_lock_config(bronze)

    # Access: MinIO users with their policies; keys in the Secrets the user named.
    ids = ZoneIds(ns, "bronze")
    assert set(lake.minio.policies(ids.policy_prefix)) == {
        ids.policy_name("flink-ingest"),
        ids.policy_name("spark-etl"),
    }
    writer_keys = secret_data(lake.kubectl, ns, "bronze-flink-ingest-s3")
    reader_keys = secret_data(lake.kubectl, ns, "bronze-spark-etl-s3")
    bi_keys = secret_data(lake.kubectl, ns, "bi-s3")
    assert writer_keys["endpoint"] == lake.minio.url and writer_keys["bucket"] == bronze
    assert writer_keys["AWS_ACCESS_KEY_ID"] == writer_keys["accessKey"]
    writer = lake.minio.client(writer_keys["accessKey"], writer_keys["secretKey"])
    reader = lake.minio.client(reader_keys["accessKey"], reader_keys["secretKey"])
    _put(writer, bronze, "shop/orders/year=2024/month=01/day=01/hour=00/o.json")
    assert reader.get_object(bronze, "shop/orders/year=2024/month=01/day=01/hour=00/o.json")
    with pytest.raises(S3Error) as err:
        _put(reader, bronze, "shop/orders/nope.json")
    assert err.value.code == "AccessDenied"
    bi = lake.minio.client(bi_keys["accessKey"], bi_keys["secretKey"])
    with pytest.raises(S3Error):
        _put(bi, gold, "x.json")  # a reader of gold
    with pytest.raises(S3Error):
        bi.get_object(bronze, "shop/orders/year=2024/month=01/day=01/hour=00/o.json")
    assert {p["name"]: p["access"] for p in b["status"]["principals"]} == {
        "flink-ingest": "write",
        "spark-etl": "read",
    }
    secret_obj = lake.kubectl.get("secret", "bronze-flink-ingest-s3", ns)
    assert secret_obj is not None
    assert secret_obj["metadata"]["ownerReferences"][0]["uid"] == b["metadata"]["uid"]

    # The layout ConfigMap is what `headwater render` shows for review.
    cm = lake.kubectl.get("configmap", "silver-lakezone", ns)
    assert cm is not None
    assert json.loads(cm["data"]["layout.json"])["pathTemplate"] == s["status"]["pathTemplate"]

    events = {e["reason"] for e in lake.events(ns, "bronze")}
    assert {"BucketCreated", "CredentialsIssued", "Ready"} <= events
    _no_secret_anywhere(
        lake,
        ns,
        [
            writer_keys["secretKey"],
            reader_keys["secretKey"],
            bi_keys["secretKey"],
            lake.minio.secret_key,
        ],
    )

    # Steady state: a resync (every 4s in this suite) writes nothing and rotates nothing.
    before = {
        n: (lake.get(ns, n) or {})["metadata"]["resourceVersion"]
        for n in ("bronze", "silver", "gold")
    }
    secret_rv = secret_obj["metadata"]["resourceVersion"]
    time.sleep(10)
    after = {
        n: (lake.get(ns, n) or {})["metadata"]["resourceVersion"]
        for n in ("bronze", "silver", "gold")
    }
    assert before == after, "status rewritten at steady state"
    again = lake.kubectl.get("secret", "bronze-flink-ingest-s3", ns)
    assert again is not None and again["metadata"]["resourceVersion"] == secret_rv
    assert secret_data(lake.kubectl, ns, "bronze-flink-ingest-s3") == writer_keys

    for name in ("bronze", "silver", "gold"):
        lake.delete_zone(ns, name)


def test_drift_is_repaired_on_the_next_resync_with_an_event(
    lake: LakeEnv, buckets: list[str]
) -> None:
    ns = lake.namespace("drift")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("drift")
    buckets.append(bucket)
    lake.zone(
        ns,
        "raw",
        tier="bronze",
        bucket=bucket,
        retention={"expirationDays": 90},
        access={"readers": [{"name": "analyst"}]},
    )
    lake.wait_ready(ns, "raw")
    ids = ZoneIds(ns, "raw")
    rule_id = f"headwater:{ns}/raw:expire-current"
    c = lake.minio.client()
    c.set_bucket_lifecycle(
        bucket,
        LifecycleConfig([Rule(ENABLED, Filter(prefix=""), rule_id, expiration=Expiration(days=1))]),
    )
    lake.minio.admin().policy_add(
        ids.policy_name("analyst"),
        policy={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}],
        },
    )
    wait_for(
        lambda: lake.minio.lifecycle_rules(bucket).get(rule_id, {}).get("Expiration/Days") == "90",
        60,
        what="lifecycle rule restored",
    )
    wait_for(
        lambda: (
            "s3:*"
            not in json.dumps(lake.minio.policies(ids.policy_prefix)[ids.policy_name("analyst")])
        ),
        60,
        what="policy restored",
    )

    def drift_events() -> list[dict[str, Any]] | None:
        found = [e for e in lake.events(ns, "raw") if e["reason"] == "DriftRepaired"]
        text = " ".join(e["message"] for e in found)
        # One resync may repair both, or two resyncs one each.
        return found if "lifecycle rules restored" in text and "policy" in text else None

    drift = wait_for(drift_events, 30, what="DriftRepaired events for lifecycle and policy")
    assert all(e["type"] == "Warning" for e in drift)
    lake.delete_zone(ns, "raw")


def test_default_retention_follows_the_spec_and_drift_is_restored(
    lake: LakeEnv, buckets: list[str]
) -> None:
    """Object Lock itself is fixed at creation; its default retention (mode, days) is not."""
    ns = lake.namespace("retention")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("worm")
    buckets.append(bucket)
    body = lake.zone(
        ns,
        "vault",
        tier="gold",
        bucket=bucket,
        objectLock={"enabled": True, "mode": "GOVERNANCE", "days": 1},
    )
    lake.wait_ready(ns, "vault")
    c = lake.minio.client()
    lock = c.get_object_lock_config(bucket)
    assert (lock.mode, lock.duration) == (GOVERNANCE, 1)

    body["spec"]["objectLock"]["days"] = 2
    lake.kubectl.apply(body)
    obj = lake.wait_ready(ns, "vault")  # Ready for the new generation
    lock = c.get_object_lock_config(bucket)
    assert (lock.mode, lock.duration, lock.duration_unit) == (GOVERNANCE, 2, DAYS)
    assert obj["status"]["objectLock"] == "GOVERNANCE 2d"
    assert not [e for e in lake.events(ns, "vault") if e["reason"] == "DriftRepaired"], (
        "a spec change was reported as drift"
    )

    # Out of band: someone tightens the default (COMPLIANCE is harmless here: the bucket
    # holds no object it could lock).
    c.set_object_lock_config(bucket, ObjectLockConfig(COMPLIANCE, 5, DAYS))

    def restored() -> bool:
        cfg = c.get_object_lock_config(bucket)
        return (cfg.mode, cfg.duration, cfg.duration_unit) == (GOVERNANCE, 2, DAYS)

    wait_for(restored, 30, what="default retention restored")
    drift = wait_for(
        lambda: [
            e
            for e in lake.events(ns, "vault")
            if e["reason"] == "DriftRepaired" and "default retention" in e["message"]
        ],
        30,
        what="DriftRepaired event for the default retention",
    )
    assert drift[0]["type"] == "Warning"
    assert "COMPLIANCE 5d -> GOVERNANCE 2d" in drift[0]["message"]
    assert (lake.get(ns, "vault") or {})["status"]["objectLock"] == "GOVERNANCE 2d"
    lake.delete_zone(ns, "vault")


def test_usage_is_rescanned_on_the_slow_timer_not_on_every_resync(
    lake: LakeEnv, buckets: list[str]
) -> None:
    """Object count and bytes come from listing the zone, every usageScanIntervalSeconds
    (60, the minimum, here); the resyncs in between (every 4 s in this suite) do not list."""
    interval = 60
    ns = lake.namespace("usage")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("usage")
    buckets.append(bucket)
    lake.zone(ns, "meter", tier="bronze", bucket=bucket, usageScanIntervalSeconds=interval)
    obj = lake.wait_ready(ns, "meter")
    first = obj["status"]["lastUsageScanTime"]
    assert (obj["status"]["objectCount"], obj["status"]["sizeBytes"]) == (0, 0)
    # Seconds are truncated in status: the scan ran within the second after `first`.
    due = dt.datetime.strptime(first, "%Y-%m-%dT%H:%M:%S%z") + dt.timedelta(seconds=interval)
    _put(lake.minio.client(), bucket, "shop/orders/a.json", b"x" * 123)

    listings = len(_s3_requests(lake, bucket, "list-type=2"))
    calls = len(_s3_requests(lake, bucket))
    assert listings >= 1, "the first scan's listing is not in the operator log"
    quiet_until = due - dt.timedelta(seconds=5)
    while dt.datetime.now(dt.UTC) < quiet_until:
        st = (lake.get(ns, "meter") or {})["status"]
        assert (st["objectCount"], st["lastUsageScanTime"]) == (0, first), "scanned early"
        time.sleep(3)
    assert len(_s3_requests(lake, bucket, "list-type=2")) == listings, "listed before due"
    assert len(_s3_requests(lake, bucket)) > calls, "no resync reached the bucket meanwhile"

    def rescanned() -> dict[str, Any] | None:
        st = (lake.get(ns, "meter") or {})["status"]
        return st if st["lastUsageScanTime"] != first else None

    st = wait_for(rescanned, 30, interval=1, what="the next usage scan")
    assert (st["objectCount"], st["sizeBytes"]) == (1, 123)
    assert st["lastUsageScanTime"] > first and st["lastObjectTime"] >= first
    assert _metric(lake, f'headwater_lakezone_objects{{name="meter",namespace="{ns}"}}') == 1
    lake.delete_zone(ns, "meter")


def test_retain_keeps_bucket_and_data_and_revokes_access(lake: LakeEnv, buckets: list[str]) -> None:
    ns = lake.namespace("retain")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("retain")
    buckets.append(bucket)
    lake.zone(
        ns,
        "keep",
        tier="silver",
        bucket=bucket,
        retention={"expirationDays": 30},
        access={"writers": [{"name": "etl"}]},
    )
    obj = lake.wait_ready(ns, "keep")
    assert obj["metadata"]["finalizers"] == ["headwater.dev/cleanup"]
    keys = secret_data(lake.kubectl, ns, "keep-etl-s3")
    _put(lake.minio.client(keys["accessKey"], keys["secretKey"]), bucket, "t/part-0.parquet")
    lake.delete_zone(ns, "keep")

    c = lake.minio.client()
    assert c.bucket_exists(bucket)
    assert [o.object_name for o in c.list_objects(bucket, recursive=True)] == ["t/part-0.parquet"]
    # The bucket's settings stay too: its lifecycle rules keep expiring data as configured.
    assert c.get_bucket_versioning(bucket).status == "Enabled"
    rules = lake.minio.lifecycle_rules(bucket)
    assert rules[f"headwater:{ns}/keep:expire-current"]["Expiration/Days"] == "30"
    # The keys' Secret is owned by the zone and garbage-collected with it: a user left
    # behind would hold access nobody can see or rotate. Revoking it is deliberate.
    wait_for(
        lambda: lake.kubectl.get("secret", "keep-etl-s3", ns) is None,
        60,
        what="credentials Secret garbage-collected with the zone",
    )
    assert lake.minio.user(keys["accessKey"]) is None, "the zone's user outlived the zone"
    events = {e["reason"]: e["message"] for e in lake.events(ns, "keep")}
    assert "deletionPolicy Retain" in events["BucketRetained"]


def _ready_zone_to_delete(lake: LakeEnv, buckets: list[str], stem: str) -> tuple[str, str]:
    """A namespace with an external-MinIO platform and a Ready zone `tmp` whose
    deletionPolicy is Delete; returns (namespace, bucket)."""
    ns = lake.namespace(stem)
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket(stem[:8])
    buckets.append(bucket)
    lake.zone(ns, "tmp", tier="bronze", bucket=bucket, deletionPolicy="Delete")
    lake.wait_ready(ns, "tmp")
    return ns, bucket


def test_delete_removes_objects_and_bucket(lake: LakeEnv, buckets: list[str]) -> None:
    ns, bucket = _ready_zone_to_delete(lake, buckets, "delete")
    c = lake.minio.client()
    for i in range(3):
        _put(c, bucket, f"a/{i}.json")
    _put(c, bucket, "a/0.json", b"v2")  # versions and delete markers go too
    c.remove_object(bucket, "a/1.json")
    lake.delete_zone(ns, "tmp")
    assert not c.bucket_exists(bucket)
    events = {e["reason"]: e["message"] for e in lake.events(ns, "tmp")}
    assert "bucket " + bucket in events["BucketDeleted"]


def test_delete_never_removes_locked_objects_and_gives_up_after_the_timeout(
    lake: LakeEnv, buckets: list[str]
) -> None:
    ns = lake.namespace("locked")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("locked")
    buckets.append(bucket)
    lake.zone(
        ns,
        "vault",
        tier="gold",
        bucket=bucket,
        deletionPolicy="Delete",
        deletionTimeoutSeconds=20,
        objectLock={"enabled": True, "days": 1},
    )
    lake.wait_ready(ns, "vault")
    c = lake.minio.client()
    _put(c, bucket, "facts/locked.parquet")
    lake.kubectl.run("delete", "lakezone", "vault", "-n", ns, "--wait=false")

    obj = lake.wait_reason(ns, "vault", "RetentionLocked", timeout=30)
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert "1 object versions are under retention lock" in ready["message"]
    assert "until" in ready["message"] and "Giving up in" in ready["message"]
    wait_for(lambda: lake.get(ns, "vault") is None, 60, what="finalizer removed after timeout")

    versions = list(c.list_objects(bucket, recursive=True, include_version=True))
    assert [v.object_name for v in versions] == ["facts/locked.parquet"]
    gave_up = [e for e in lake.events(ns, "vault") if e["reason"] == "RetentionLocked"]
    assert any(e["type"] == "Warning" and "gave up" in e["message"] for e in gave_up)


def test_object_lock_on_an_existing_bucket_is_stalled_immutable(
    lake: LakeEnv, buckets: list[str]
) -> None:
    ns = lake.namespace("immutable")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("nolock")
    buckets.append(bucket)
    lake.minio.client().make_bucket(bucket)  # created without Object Lock
    lake.zone(ns, "late", tier="gold", bucket=bucket, objectLock={"enabled": True})
    obj = lake.wait_reason(ns, "late", "ImmutableField", type_="Stalled")
    stalled, ready = condition(obj, "Stalled"), condition(obj, "Ready")
    assert stalled is not None and stalled["status"] == "True"
    assert ready is not None and ready["status"] == "False"
    assert "can only be chosen when a bucket is created" in ready["message"]
    # A stalled zone is not retried until its spec changes: neither the resync (every 4 s in
    # this suite) nor a back-off runs it again. Counted where a retry would show even if it
    # wrote the same status: the operator's requests for the bucket, and its stalled passes
    # (no other zone of this operator is stalled meanwhile).
    stalled = 'headwater_reconcile_total{kind="LakeZone",result="stalled"}'
    time.sleep(2)  # the pass the finalizer's own update triggers may still be under way
    rv = (lake.get(ns, "late") or {})["metadata"]["resourceVersion"]
    calls, passes = len(_s3_requests(lake, bucket)), _metric(lake, stalled)
    assert calls >= 1 and passes >= 1, "the stalled pass left no trace to count"
    time.sleep(10)
    assert len(_s3_requests(lake, bucket)) == calls, "the stalled zone went back to the store"
    assert _metric(lake, stalled) == passes, "the stalled zone was reconciled again"
    again = lake.get(ns, "late")
    assert again is not None and again["metadata"]["resourceVersion"] == rv
    lake.delete_zone(ns, "late")
    assert lake.minio.client().bucket_exists(bucket)


def test_removed_principal_loses_user_and_secret(lake: LakeEnv, buckets: list[str]) -> None:
    ns = lake.namespace("principals")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("people")
    buckets.append(bucket)
    body = lake.zone(
        ns,
        "team",
        tier="silver",
        bucket=bucket,
        access={"readers": [{"name": "alice"}, {"name": "bobby"}]},
    )
    lake.wait_ready(ns, "team")
    bobby = secret_data(lake.kubectl, ns, "team-bobby-s3")
    body["spec"]["access"] = {"readers": [{"name": "alice"}]}
    lake.kubectl.apply(body)
    wait_for(
        lambda: lake.kubectl.get("secret", "team-bobby-s3", ns) is None, 60, what="Secret pruned"
    )
    assert lake.minio.user(bobby["accessKey"]) is None
    obj = lake.wait_ready(ns, "team")
    assert [p["name"] for p in obj["status"]["principals"]] == ["alice"]
    # Deleting a credentials Secret issues new keys (how to rotate them).
    alice = secret_data(lake.kubectl, ns, "team-alice-s3")
    lake.kubectl.run("delete", "secret", "team-alice-s3", "-n", ns)
    fresh = wait_for(
        lambda: (
            lake.kubectl.get("secret", "team-alice-s3", ns)
            and secret_data(lake.kubectl, ns, "team-alice-s3")
        ),
        60,
        what="new Secret",
    )
    assert fresh["secretKey"] != alice["secretKey"]
    reader = lake.minio.client(fresh["accessKey"], fresh["secretKey"])
    wait_for(lambda: _can_list(reader, bucket), 30, what="new keys work")
    assert not _can_list(lake.minio.client(alice["accessKey"], alice["secretKey"]), bucket)
    lake.delete_zone(ns, "team")


def _can_list(client: Any, bucket: str) -> bool:
    try:
        list(client.list_objects(bucket))
        return True
    except S3Error:
        return False


def test_foreign_secret_is_never_overwritten(lake: LakeEnv, buckets: list[str]) -> None:
    ns = lake.namespace("conflict")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("conflict")
    buckets.append(bucket)
    lake.kubectl.run(
        "create", "secret", "generic", "mine", "-n", ns, "--from-literal=token=keep-me"
    )
    lake.zone(
        ns,
        "zone",
        tier="silver",
        bucket=bucket,
        access={"readers": [{"name": "reader", "secretName": "mine"}]},
    )
    obj = lake.wait_reason(ns, "zone", "SecretConflict")
    assert "not managed by this LakeZone" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert secret_data(lake.kubectl, ns, "mine") == {"token": "keep-me"}
    lake.kubectl.run("delete", "secret", "mine", "-n", ns)
    lake.wait_ready(ns, "zone")
    assert "secretKey" in secret_data(lake.kubectl, ns, "mine")
    lake.delete_zone(ns, "zone")


def test_external_s3_gets_bucket_policy_statements(lake: LakeEnv, buckets: list[str]) -> None:
    """`kind: s3` has no admin API: principals are granted in the bucket policy."""
    ns = lake.namespace("bucketpolicy")
    lake.external_platform(ns, lake.minio, kind="s3")
    bucket = unique_bucket("ext")
    buckets.append(bucket)
    lake.zone(
        ns,
        "shared",
        tier="gold",
        bucket=bucket,
        prefix="gold/",
        access={"readers": [{"name": "bi-team"}], "writers": [{"name": "etl-job"}]},
    )
    obj = lake.wait_ready(ns, "shared")
    assert obj["status"]["policy"] == "bucket-policy"
    assert all("secretName" not in p for p in obj["status"]["principals"])
    doc = lake.minio.bucket_policy(bucket)
    prefix = f"headwater:{ns}/shared:"
    ours = [st for st in doc["Statement"] if st["Sid"].startswith(prefix)]
    principals = {json.dumps(st["Principal"]) for st in ours}
    assert any("arn:aws:iam:::user/bi-team" in p for p in principals)
    assert any("arn:aws:iam:::user/etl-job" in p for p in principals)
    assert lake.kubectl.get("secret", "shared-bi-team-s3", ns) is None
    assert not [e for e in lake.events(ns, "shared") if e["reason"] == "DriftRepaired"]
    # Drift: the statements removed out-of-band come back, and an Event says so.
    lake.minio.client().delete_bucket_policy(bucket)
    wait_for(
        lambda: any(
            st["Sid"].startswith(prefix) for st in lake.minio.bucket_policy(bucket)["Statement"]
        ),
        60,
        what="bucket policy restored",
    )
    drift = wait_for(
        lambda: [
            e
            for e in lake.events(ns, "shared")
            if e["reason"] == "DriftRepaired" and "bucket policy" in e["message"]
        ],
        30,
        what="DriftRepaired event for the bucket policy",
    )
    assert drift[0]["type"] == "Warning" and bucket in drift[0]["message"]
    lake.delete_zone(ns, "shared")
    assert not [
        st for st in lake.minio.bucket_policy(bucket)["Statement"] if st["Sid"].startswith(prefix)
    ]


def test_zones_share_a_bucket_by_prefix_and_overlaps_are_refused(
    lake: LakeEnv, buckets: list[str]
) -> None:
    ns = lake.namespace("shared")
    lake.external_platform(ns, lake.minio)
    bucket = unique_bucket("data")
    buckets.append(bucket)
    keep = {"expirationDays": 365}
    lake.zone(
        ns,
        "raw",
        tier="bronze",
        bucket=bucket,
        prefix="raw/",
        deletionPolicy="Delete",
        retention=keep,
    )
    lake.wait_ready(ns, "raw")
    lake.zone(ns, "curated", tier="gold", bucket=bucket, prefix="curated/", retention=keep)
    lake.wait_ready(ns, "curated")
    lake.zone(ns, "all", tier="silver", bucket=bucket, deletionPolicy="Delete")
    obj = lake.wait_reason(ns, "all", "BucketConflict", type_="Stalled")
    assert "empty prefix" in condition(obj, "Ready")["message"]  # type: ignore[index]
    rules = lake.minio.lifecycle_rules(bucket)
    assert {r["Prefix"] for r in rules.values()} == {"raw/", "curated/"}
    assert condition(lake.get(ns, "raw"), "Ready")["status"] == "True"  # type: ignore[index]

    c = lake.minio.client()
    _put(c, bucket, "raw/x.json")
    _put(c, bucket, "curated/y.parquet")
    lake.delete_zone(ns, "all")  # never took hold of the bucket: deletes nothing
    assert sorted(o.object_name for o in c.list_objects(bucket, recursive=True)) == [
        "curated/y.parquet",
        "raw/x.json",
    ]
    lake.delete_zone(ns, "raw")  # Delete: its prefix only; the bucket is shared
    assert [o.object_name for o in c.list_objects(bucket, recursive=True)] == ["curated/y.parquet"]
    assert all(r["Prefix"] != "raw/" for r in lake.minio.lifecycle_rules(bucket).values())
    lake.delete_zone(ns, "curated")


def test_store_outage_degrades_and_recovers(lake: LakeEnv, dedicated_minio: DedicatedMinio) -> None:
    """A dedicated MinIO (never the shared one) is stopped under a Ready zone."""
    server: MinioServer = dedicated_minio.start()
    ns = lake.namespace("outage")
    lake.external_platform(ns, server)
    bucket = unique_bucket("outage")
    lake.zone(ns, "flaky", tier="bronze", bucket=bucket)
    lake.wait_ready(ns, "flaky")

    dedicated_minio.stop()
    obj = lake.wait_reason(ns, "flaky", "ObjectStoreUnavailable", timeout=60)
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert "unreachable" in ready["message"]
    assert obj["status"]["bucketExists"] is True  # last known facts are kept
    assert condition(obj, "Stalled")["status"] == "False"  # type: ignore[index]
    metrics = lake.operator.metrics()
    assert any(
        line.startswith('headwater_dataplane_errors_total{system="s3"}')
        and float(line.split()[-1]) >= 1
        for line in metrics.splitlines()
    ), "s3 errors not counted"

    dedicated_minio.start()
    lake.wait_ready(ns, "flaky", timeout=120)
    reasons = [e["reason"] for e in lake.events(ns, "flaky")]
    assert "ObjectStoreUnavailable" in reasons and reasons.count("Ready") >= 2
    lake.delete_zone(ns, "flaky")


def test_deleting_the_namespace_deletes_the_bucket(lake: LakeEnv, buckets: list[str]) -> None:
    """The namespace controller deletes the DataPlatform and the credentials Secret before
    the zone its finalizer holds; deletionPolicy Delete must still empty and remove the
    bucket, and the namespace must not hang in Terminating."""
    ns, bucket = _ready_zone_to_delete(lake, buckets, "nsdelete")
    c = lake.minio.client()
    _put(c, bucket, "a/0.json")
    lake.kubectl.run("delete", "namespace", ns, "--wait=false")
    wait_for(
        lambda: lake.kubectl.get("namespace", ns) is None,
        120,
        what=f"namespace {ns} deleted\n{lake.operator.tail()}",
    )
    assert not c.bucket_exists(bucket), f"bucket left behind\n{lake.operator.tail()}"
