"""StreamJob: the Flink submission plan, job identity, cron next-run, Spark objects and status."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from typing import Any

import pytest

from headwater.api.streamjob import StreamJobSpec
from headwater.dataplane.flink import root_cause_line
from headwater.reconcile.streamjob import _cron_job_name, _job_finish
from headwater.render.common import Owner
from headwater.render.cron import next_run
from headwater.render.flinkapp import (
    FlinkFacts,
    PlanError,
    flink_plan,
    job_id,
    job_name,
    parse_job_name,
    render_submission,
    split_sql,
    submission_config,
    trigger_id,
)
from headwater.render.sparkjob import SparkFacts, render_spark, spark_submit_args

OWNER = Owner("StreamJob", "orders", "shop", "11111111-2222-3333-4444-555555555555", 3)
FACTS = SparkFacts(
    master_url="k8s://https://kubernetes.default.svc",
    service_account="shop-spark",
    image="apache/spark:4.0.1-python3",
    s3_endpoint="http://shop-minio.shop.svc:9000",
    s3_secret="shop-minio-root",
)


def flink_spec(**flink: Any) -> StreamJobSpec:
    body = {
        "sql": [
            "CREATE TABLE a (x INT) WITH ('connector'='datagen')",
            "INSERT INTO b SELECT x FROM a",
        ]
    }
    body.update(flink)
    return StreamJobSpec.model_validate(
        {"platformRef": {"name": "shop"}, "engine": "flink", "flink": body}
    )


def spark_spec(**spark: Any) -> StreamJobSpec:
    body: dict[str, Any] = {
        "application": {"file": "local:///opt/app/etl.py", "args": ["--day", "1"]}
    }
    body.update(spark)
    return StreamJobSpec.model_validate(
        {"platformRef": {"name": "shop"}, "engine": "spark", "spark": body}
    )


# --- Flink plan -------------------------------------------------------------------------------


def test_several_inserts_become_one_statement_set() -> None:
    setup, job = split_sql(
        ["-- comment\nCREATE TABLE a (x INT)", "insert into b select 1;", "INSERT INTO c SELECT 2"]
    )
    assert setup == ("CREATE TABLE a (x INT)",)
    assert (
        job == "EXECUTE STATEMENT SET BEGIN\ninsert into b select 1;\nINSERT INTO c SELECT 2;\nEND"
    )


def test_sql_without_insert_is_refused() -> None:
    with pytest.raises(PlanError, match="no INSERT statement"):
        split_sql(["CREATE TABLE a (x INT)", "SELECT 1"])


def test_state_dirs_per_job() -> None:
    fs = flink_plan(
        flink_spec(checkpointing={"storage": "filesystem", "path": "file:///data/flink/"}),
        OWNER,
        FlinkFacts(),
    )
    assert fs.checkpoint_dir == "file:///data/flink/shop/orders/checkpoints"
    assert fs.savepoint_dir == "file:///data/flink/shop/orders/savepoints"
    s3 = flink_plan(flink_spec(), OWNER, FlinkFacts(checkpoint_bucket="ckpt"))
    assert s3.config["execution.checkpointing.dir"] == "s3://ckpt/shop/orders/checkpoints"
    assert s3.config["execution.checkpointing.externalized-checkpoint-retention"] == (
        "RETAIN_ON_CANCELLATION"
    )
    none = flink_plan(
        flink_spec(upgradeMode="stateless", checkpointing={"storage": "none"}), OWNER, FlinkFacts()
    )
    assert none.state_dir is None and "execution.checkpointing.dir" not in none.config


def test_spec_hash_ignores_lineage_but_not_the_program() -> None:
    base = flink_plan(flink_spec(), OWNER, FlinkFacts(checkpoint_bucket="b"))
    other_parallelism = flink_plan(
        flink_spec(parallelism=2), OWNER, FlinkFacts(checkpoint_bucket="b")
    )
    assert base.spec_hash != other_parallelism.spec_hash
    with_inputs = StreamJobSpec.model_validate(
        {**flink_spec().wire(), "inputs": [{"topic": "orders"}]}
    )
    assert (
        flink_plan(with_inputs, OWNER, FlinkFacts(checkpoint_bucket="b")).spec_hash
        == base.spec_hash
    )


def test_job_identity_is_deterministic() -> None:
    assert job_id(OWNER.uid, 1) == job_id(OWNER.uid, 1) != job_id(OWNER.uid, 2)
    assert len(job_id(OWNER.uid, 1)) == 32 and int(job_id(OWNER.uid, 1), 16) >= 0
    name = job_name(OWNER, 3, "abcdef0123456789")
    assert name == "headwater/shop/orders/g3/abcdef01"
    assert parse_job_name(name) == ("shop", "orders", 3, "abcdef01")
    assert parse_job_name("someone else's job") is None
    assert trigger_id("j", "upgrade", 1) != trigger_id("j", "upgrade", 2)


def test_submission_config_carries_identity_and_restore() -> None:
    plan = flink_plan(flink_spec(parallelism=4), OWNER, FlinkFacts(checkpoint_bucket="b"))
    conf = submission_config(plan, "n", "j" * 32, "s3://b/sp-1", True)
    assert conf["pipeline.name"] == "n" and conf["$internal.pipeline.job-id"] == "j" * 32
    assert conf["parallelism.default"] == "4"
    assert conf["execution.state-recovery.path"] == "s3://b/sp-1"
    assert conf["execution.state-recovery.ignore-unclaimed-state"] == "true"
    fresh = submission_config(plan, "n", "j" * 32, None, False)
    assert "execution.state-recovery.path" not in fresh


def test_submission_configmap_records_what_runs() -> None:
    cm = render_submission(flink_spec(), OWNER, FlinkFacts(checkpoint_bucket="b"))
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "orders-flink-submission"
    assert cm["metadata"]["ownerReferences"][0]["kind"] == "StreamJob"
    assert "INSERT INTO b SELECT x FROM a;" in cm["data"]["statements.sql"]


def test_user_config_cannot_override_identity() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="set by the operator"):
        flink_spec(config={"$internal.pipeline.job-id": "0" * 32})
    with pytest.raises(ValidationError, match="SET of a key the operator derives"):
        flink_spec(sql=["set 'pipeline.name' = 'x'", "INSERT INTO b SELECT 1"])


def test_root_cause_line() -> None:
    trace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed\n\tat x\n"
        "Caused by: java.lang.RuntimeException: Failed to deserialize JSON '{bad'.\n\tat y\n"
        "Caused by: org.apache.flink.shaded.jackson2.JsonParseException: Unexpected character\n"
    )
    assert root_cause_line(trace) == (
        "org.apache.flink.shaded.jackson2.JsonParseException: Unexpected character"
    )
    assert root_cause_line(None) is None


# --- cron ---------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 14, 1, 30, tzinfo=dt.UTC)  # a Saturday


@pytest.mark.parametrize(
    ("expr", "zone", "expected"),
    [
        ("0 2 * * *", None, "2026-03-14T02:00"),
        ("*/15 * * * *", None, "2026-03-14T01:45"),
        ("0 2 * * MON-FRI", None, "2026-03-16T02:00"),
        ("@hourly", None, "2026-03-14T02:00"),
        ("@yearly", None, "2027-01-01T00:00"),
        ("0 2 * * *", "Europe/Berlin", "2026-03-15T01:00"),  # 02:00 CET = 01:00 UTC
        ("30 1 13 * 5", None, "2026-03-20T01:30"),  # day 13 OR Friday (Vixie cron)
        ("0 0 1,15 * ?", None, "2026-03-15T00:00"),
    ],
)
def test_next_run(expr: str, zone: str | None, expected: str) -> None:
    got = next_run(expr, NOW, zone)
    assert got is not None and got.strftime("%Y-%m-%dT%H:%M") == expected


def test_next_run_never() -> None:
    assert next_run("0 0 30 2 *", NOW) is None


def test_cron_job_name_matches_the_controller() -> None:
    # The CronJob controller names a run <cronjob>-<scheduled time in minutes since epoch>.
    assert _cron_job_name("nightly", "2026-03-14T02:00:00Z") == "nightly-29557560"


# --- Spark ----------------------------------------------------------------------------------------


def test_batch_is_a_job_with_spark_submit_in_cluster_mode() -> None:
    [job] = render_spark(spark_spec(), OWNER, FACTS)
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("orders-")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "shop-spark" and pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    assert c["command"] == ["/opt/spark/bin/spark-submit"]
    args = c["args"]
    assert args[:6] == [
        "--master",
        "k8s://https://kubernetes.default.svc",
        "--deploy-mode",
        "cluster",
        "--name",
        "shop-orders",
    ]
    assert args[-3:] == ["local:///opt/app/etl.py", "--day", "1"]
    assert "spark.kubernetes.authenticate.driver.serviceAccountName=shop-spark" in args
    assert "spark.kubernetes.submission.waitAppCompletion=true" in args
    assert (
        "spark.kubernetes.driver.secretKeyRef.AWS_SECRET_ACCESS_KEY=shop-minio-root:secretKey"
        in args
    )
    assert job["spec"]["backoffLimit"] == 2
    assert job["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


def test_batch_job_name_follows_the_spec() -> None:
    a = render_spark(spark_spec(), OWNER, FACTS)[0]["metadata"]["name"]
    b = render_spark(spark_spec(conf={"spark.sql.shuffle.partitions": "8"}), OWNER, FACTS)[0]
    assert a != b["metadata"]["name"]
    assert a == render_spark(spark_spec(), OWNER, FACTS)[0]["metadata"]["name"]


def test_schedule_is_a_cronjob() -> None:
    spec = spark_spec(
        schedule="0 2 * * *",
        timeZone="Europe/Berlin",
        concurrencyPolicy="Replace",
        successfulJobsHistoryLimit=1,
        failedJobsHistoryLimit=5,
    )
    [cron] = render_spark(spec, OWNER, FACTS)
    assert cron["kind"] == "CronJob" and cron["metadata"]["name"] == "orders"
    s = cron["spec"]
    assert (s["schedule"], s["timeZone"], s["concurrencyPolicy"]) == (
        "0 2 * * *",
        "Europe/Berlin",
        "Replace",
    )
    assert (s["successfulJobsHistoryLimit"], s["failedJobsHistoryLimit"], s["suspend"]) == (
        1,
        5,
        False,
    )
    spawned = s["jobTemplate"]["metadata"]["labels"]
    # Jobs the CronJob spawns are visible to the operator's cache but never pruned by it.
    assert spawned["app.kubernetes.io/managed-by"] == "headwater"
    assert "headwater.dev/owner-name" not in spawned
    suspended = StreamJobSpec.model_validate({**spec.wire(), "state": "suspended"})
    assert render_spark(suspended, OWNER, FACTS)[0]["spec"]["suspend"] is True


def test_streaming_is_a_recreate_deployment_with_a_client_mode_driver() -> None:
    [dep] = render_spark(spark_spec(mode="streaming"), OWNER, FACTS)
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][3] == "client"
    assert "spark.driver.host=$(POD_IP)" in c["args"]
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert set(env) == {"POD_NAME", "POD_IP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    # Client mode: Spark ignores spark.kubernetes.driver.secretKeyRef.*, so the driver's
    # keys come from the container's env; executors still get them from Spark.
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "shop-minio-root", "key": "accessKey"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "shop-minio-root", "key": "secretKey"}
    }
    assert not [a for a in c["args"] if a.startswith("spark.kubernetes.driver.secretKeyRef")]
    assert (
        "spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID=shop-minio-root:accessKey"
        in c["args"]
    )
    no_store = SparkFacts(FACTS.master_url, FACTS.service_account, FACTS.image)
    [bare] = render_spark(spark_spec(mode="streaming"), OWNER, no_store)
    bare_env = bare["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"] for e in bare_env} == {"POD_NAME", "POD_IP"}
    suspended = StreamJobSpec.model_validate(
        {**spark_spec(mode="streaming").wire(), "state": "suspended"}
    )
    assert render_spark(suspended, OWNER, FACTS)[0]["spec"]["replicas"] == 0


def test_jvm_application_gets_its_main_class() -> None:
    spec = spark_spec(
        application={"type": "jvm", "file": "local:///opt/app.jar", "mainClass": "shop.Etl"}
    )
    args = spark_submit_args(spec, OWNER, FACTS)
    assert args[args.index("--class") + 1] == "shop.Etl"


class _Ctx:
    """Just what the Spark and lineage paths of the reconciler read."""

    def __init__(self, objects: dict[tuple[str, str], Any]):
        self.objects = objects
        self.applied: list[Any] = []
        self.applier = self
        self.cache = self
        self.services: dict[str, Any] = {}

    def get(self, *key: str) -> Any:  # ctx.get(kind, ns, name) and cache.get(api, kind, ns, name)
        return self.objects.get((key[-3], key[-1]))

    def secret(self, namespace: str, name: str) -> Any:
        return self.objects.get(("Secret", name))

    async def reconcile(self, owner: Any, objects: list[Any]) -> None:
        self.applied.extend(objects)


SECRET_VALUE = "hunter2-spark-key"


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_no_secret_value_reaches_objects_or_status(mode: str) -> None:
    """The platform's S3 Secret (with a real value) is readable by the reconciler; only its
    name and key names may reach the Job/Deployment and the status, never the value."""
    from headwater.reconcile.streamjob import StreamJobReconciler

    platform = {
        "spec": {
            "spark": {"mode": "managed"},
            "objectStore": {
                "mode": "external",
                "external": {
                    "endpoint": "http://s3.local:9000",
                    "credentialsSecretRef": {
                        "name": "s3-admin",
                        "accessKeyKey": "AK",
                        "secretKeyKey": "SK",
                    },
                },
            },
        },
        "status": {
            "endpoints": {
                "sparkMasterUrl": "k8s://https://kubernetes.default.svc",
                "sparkServiceAccount": "shop-spark",
                "s3Endpoint": "http://s3.local:9000",
                "s3CredentialsSecret": "s3-admin",
            }
        },
    }
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    secret = {"data": {"AK": base64.b64encode(b"admin").decode(), "SK": encoded}}
    ctx = _Ctx({("DataPlatform", "shop"): platform, ("Secret", "s3-admin"): secret})
    body = {
        "kind": "StreamJob",
        "metadata": {"name": "orders", "namespace": "shop", "uid": OWNER.uid, "generation": 1},
        "spec": spark_spec(mode=mode).wire(),
    }
    out = asyncio.run(StreamJobReconciler().reconcile(body, ctx))  # type: ignore[arg-type]
    [obj] = ctx.applied
    text = json.dumps([obj, out.status, out.message, out.events])
    assert SECRET_VALUE not in text and encoded not in text
    # ... while the reference to it is there, with the external store's key names.
    assert "s3-admin:SK" in text
    if mode == "streaming":
        env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "s3-admin", "key": "SK"}},
        } in env
    assert "fs.s3a.secret.key" not in text and "fs.s3a.access.key" not in text


def test_lineage_chain_source_table_topic_job_zone() -> None:
    """DataSource table -> the connector's topic (from its status) -> job -> the zone's path."""
    from headwater.reconcile.streamjob import lineage

    source = {"spec": {"type": "postgres", "host": "orders-db.shop.svc", "database": "shop"}}
    connector = {
        "metadata": {"name": "orders-cdc"},
        "spec": {
            "sourceRef": {"name": "orders-db"},
            "topicPrefix": "shop",
            "tables": ["public.orders", "public.customers"],
        },
        # Routed topics: the status names differ from <prefix>.<table>, and win.
        "status": {"topics": ["cdc.v2.public.orders", "cdc.v2.public.customers"]},
    }
    zone = {
        "spec": {"tier": "bronze", "bucket": "ignored-when-status-has-the-path"},
        "status": {"pathTemplate": "s3://shop-bronze/lake/{table}/year={yyyy}/"},
    }
    ctx = _Ctx(
        {
            ("DataSource", "orders-db"): source,
            ("CdcConnector", "orders-cdc"): connector,
            ("LakeZone", "bronze"): zone,
        }
    )
    spec = StreamJobSpec.model_validate(
        {
            **flink_spec().wire(),
            "inputs": [{"cdcConnectorRef": {"name": "orders-cdc"}, "table": "public.orders"}],
            "outputs": [{"lakeZoneRef": {"name": "bronze"}, "table": "orders"}],
        }
    )
    edges, missing = lineage(spec, OWNER, ctx)  # type: ignore[arg-type]
    assert missing == []
    assert edges == [
        {
            "source": "postgres://orders-db.shop.svc/shop/public.orders",
            "target": "kafka://cdc.v2.public.orders",
        },
        {"source": "kafka://cdc.v2.public.orders", "target": "flink://shop/orders"},
        {"source": "flink://shop/orders", "target": "s3://shop-bronze/lake/orders/year={yyyy}/"},
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"conditions": [{"type": "Complete", "status": "True"}], "completionTime": "T1"},
            ("Succeeded", "T1"),
        ),
        (
            {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": "T2"}]},
            ("Failed", "T2"),
        ),
        ({"active": 1}, ("Running", None)),
        ({}, ("Pending", None)),
    ],
)
def test_job_finish(status: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert _job_finish({"status": status}) == expected
