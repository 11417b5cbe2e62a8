# ruff: noqa: F811  (pytest fixtures imported from hwtest.flink are parameters here)
"""StreamJob through the real operator: Flink jobs on the real local session cluster (the
platform names it as an external Flink), Spark CronJobs/Jobs on the real control plane."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hwtest.flink import (  # noqa: F401 (fixtures)
    FlinkRest,
    Topic,
    flink,
    flink_dir,
    flink_rest,
    sink_rows,
    sj_kafka,
    sj_topic,
)
from hwtest.kubectl import Kubectl, condition, is_ready, wait_for
from hwtest.lake import MinioServer, buckets, shared_minio, unique_bucket  # noqa: F401
from hwtest.operator import OperatorProcess

API = "headwater.dev/v1alpha1"


@pytest.fixture(autouse=True)
def _delete_streamjobs(kubectl: Kubectl, namespace: str) -> Iterator[None]:
    """Delete the test's StreamJobs while the operator still runs: their finalizer cancels
    the Flink jobs (else a failed test leaves jobs running on the shared cluster)."""
    yield
    kubectl.run("delete", "streamjobs", "--all", "-n", namespace, "--timeout=90s", check=False)


def platform(namespace: str, name: str = "p", **components: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        c: {"mode": "disabled"}
        for c in ("kafka", "connect", "flink", "spark", "objectStore", "monitoring")
    }
    spec.update(components)
    return {
        "apiVersion": API,
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def streamjob(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "StreamJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"platformRef": {"name": "p"}, **spec},
    }


def get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    obj = kubectl.get("streamjob", name, namespace)
    assert obj is not None
    return obj


def patch(kubectl: Kubectl, namespace: str, name: str, spec: dict[str, Any]) -> None:
    kubectl.run(
        "patch",
        "streamjob",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
    )


def wait_ready(
    kubectl: Kubectl, namespace: str, name: str, timeout: float = 120, **expect: Any
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(kubectl, namespace, name)
        status = obj.get("status") or {}
        ok = is_ready(obj) and all(status.get(k) == v for k, v in expect.items())
        return obj if ok else None

    try:
        return wait_for(check, timeout, 0.5, what=f"StreamJob {name} Ready {expect}")
    except AssertionError as err:
        raise AssertionError(
            f"{err}\nlast: {json.dumps(get(kubectl, namespace, name).get('status'), indent=1)}"
        ) from None


def wait_reason(
    kubectl: Kubectl, namespace: str, name: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (o := get(kubectl, namespace, name))
            and (c := condition(o, "Ready"))
            and c["reason"] == reason
            and o
        ),
        timeout,
        0.25,
        what=f"StreamJob {name} Ready reason {reason}",
    )


def events(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return items


def wait_rows(directory: Path, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (rows := sink_rows(directory)) and len(rows) >= count and rows,
        timeout,
        0.5,
        what=f"{count} rows committed in {directory}",
    )


def counting_sql(topic: Topic, out: Path) -> list[str]:
    """Kafka -> filesystem (json): every row with a running count per key. The count lives in
    Flink state (OVER aggregation), the read position too (Kafka source offsets): after a
    resubmission with state the counts continue and no row is read twice."""
    return [
        f"""CREATE TABLE src (id BIGINT, k STRING, proc AS PROCTIME()) WITH (
            'connector' = 'kafka', 'topic' = '{topic.name}',
            'properties.bootstrap.servers' = '{topic.bootstrap}',
            'properties.group.id' = '{topic.name}', 'scan.startup.mode' = 'earliest-offset',
            'format' = 'json')""",
        f"""CREATE TABLE snk (id BIGINT, k STRING, n BIGINT) WITH (
            'connector' = 'filesystem', 'path' = 'file://{out}', 'format' = 'json',
            'sink.rolling-policy.rollover-interval' = '1s',
            'sink.rolling-policy.check-interval' = '1s')""",
        """INSERT INTO snk SELECT id, k, COUNT(*) OVER (PARTITION BY k ORDER BY proc
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM src""",
    ]


def rows(first: int, last: int) -> list[dict[str, Any]]:
    return [{"id": i, "k": "orders"} for i in range(first, last + 1)]


def assert_exactly(directory: Path, last: int) -> None:
    """Rows 1..last each exactly once, the running count equal to the id: nothing lost,
    nothing read twice, the count never restarted."""
    got = wait_rows(directory, last)
    assert sorted(r["id"] for r in got) == list(range(1, last + 1)), got
    assert all(r["n"] == r["id"] for r in got), sorted((r["id"], r["n"]) for r in got)


def test_flink_sql_job_lifecycle(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
    sj_topic: Topic,
    flink_dir: Path,
) -> None:
    """Submit, rows arrive, parallelism change = savepoint + resubmit with state, suspend and
    resume from the savepoint, a job cancelled behind the operator's back is reported and
    recovered from its retained checkpoint, deletion cancels the job."""
    flink_rest.wait_slots(2)
    kubectl.apply(
        platform(
            namespace,
            kafka={"mode": "external", "external": {"bootstrapServers": [sj_topic.bootstrap]}},
            flink={
                "mode": "external",
                "external": {
                    "restUrl": flink["HEADWATER_FLINK_URL"],
                    "sqlGatewayUrl": flink["HEADWATER_FLINK_GATEWAY_URL"],
                },
            },
        )
    )
    out, state = flink_dir / "out", flink_dir / "state"
    spec = {
        "engine": "flink",
        "flink": {
            "sql": counting_sql(sj_topic, out),
            "parallelism": 1,
            "upgradeMode": "savepoint",
            "checkpointing": {
                "storage": "filesystem",
                "path": f"file://{state}",
                "intervalSeconds": 2,
            },
        },
        "inputs": [{"topic": sj_topic.name}],
    }
    kubectl.apply(streamjob(namespace, "counts", spec))

    # 1. submitted and running; rows arrive in the sink
    first = wait_ready(kubectl, namespace, "counts", jobState="RUNNING")
    job1 = first["status"]["jobId"]
    assert flink_rest.job(job1)["name"] == first["status"]["jobName"]
    assert first["status"]["jobName"].startswith(f"headwater/{namespace}/counts/g1/")
    assert first["status"]["jobGeneration"] == 1
    assert first["status"]["lineage"] == [
        {"source": f"kafka://{sj_topic.name}", "target": f"flink://{namespace}/counts"}
    ]
    cm = kubectl.get("configmap", "counts-flink-submission", namespace)
    assert cm is not None and "INSERT INTO snk" in cm["data"]["statements.sql"]
    sj_topic.send(rows(1, 10))
    assert_exactly(out, 10)

    # 2. parallelism 1 -> 2: stop with savepoint, resubmit from it, state kept
    patch(kubectl, namespace, "counts", {"flink": {"parallelism": 2}})
    second = wait_ready(kubectl, namespace, "counts", jobGeneration=2, timeout=180)
    job2, savepoint = second["status"]["jobId"], second["status"]["lastSavepoint"]
    assert job2 != job1
    assert savepoint and f"{state}/{namespace}/counts/savepoints" in savepoint
    assert second["status"]["restoredFrom"] == savepoint
    assert flink_rest.state(job1) == "FINISHED"  # stopped with the savepoint, not cancelled
    assert flink_rest.parallelism(job2) == 2
    sj_topic.send(rows(11, 15))
    assert_exactly(out, 15)

    # 3. suspend: stop with a savepoint that is kept; resume from it
    patch(kubectl, namespace, "counts", {"state": "suspended"})
    suspended = wait_reason(kubectl, namespace, "counts", "JobSuspended", timeout=120)
    assert suspended["status"]["jobState"] == "SUSPENDED"
    kept = suspended["status"]["lastSavepoint"]
    assert kept != savepoint and flink_rest.state(job2) == "FINISHED"
    sj_topic.send(rows(16, 18))  # written while the job is suspended
    patch(kubectl, namespace, "counts", {"state": "running"})
    resumed = wait_ready(kubectl, namespace, "counts", restoredFrom=kept, timeout=180)
    job3 = resumed["status"]["jobId"]
    assert job3 not in (job1, job2)
    assert_exactly(out, 18)

    # 4. cancelled behind the operator's back: reported, then recovered from its checkpoint
    flink_rest.cancel(job3)
    lost = wait_reason(kubectl, namespace, "counts", "JobNotRunning", timeout=60)
    assert lost["status"]["jobState"] == "CANCELED"
    assert f"job {job3} was CANCELED outside the operator" in condition(lost, "Ready")["message"]  # type: ignore[index]
    recovered = wait_for(
        lambda: (
            (o := get(kubectl, namespace, "counts"))
            and is_ready(o)
            and o["status"]["jobId"] not in (job1, job2, job3)
            and o
        ),
        180,
        0.5,
        what="job resubmitted after the external cancel",
    )
    restored = recovered["status"]["restoredFrom"]
    assert restored.startswith(f"file:{state}/{namespace}/counts/checkpoints/{job3}/chk-"), restored
    reasons = {e["reason"] for e in events(kubectl, namespace, "counts")}
    assert {"JobSubmitted", "SavepointCompleted", "JobLost"} <= reasons, reasons
    sj_topic.send(rows(19, 20))
    assert_exactly(out, 20)
    assert recovered["status"]["submissions"] == 4
    # restarts counts Flink's restarts of the current job: the resubmitted job has none
    # (Flink's REST metric store fills within its fetch interval, ~10 s).
    assert recovered["status"]["restarts"] == 0
    metric = wait_for(
        lambda: flink_rest.get(f"/jobs/{recovered['status']['jobId']}/metrics?get=numRestarts"),
        30,
        what="numRestarts of the recovered job",
    )
    assert metric[0]["value"] == "0", metric

    # 5. delete: the finalizer cancels the job
    job4 = recovered["status"]["jobId"]
    kubectl.run("delete", "streamjob", "counts", "-n", namespace, "--timeout=90s")
    assert flink_rest.state(job4) == "CANCELED"


def test_failed_savepoint_keeps_the_last_good_one(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
    flink_dir: Path,
) -> None:
    """A savepoint that cannot be written: the job keeps running, SavepointFailed is reported,
    lastSavepoint stays, and the upgrade succeeds once the storage is writable again."""
    flink_rest.wait_slots(1)
    kubectl.apply(
        platform(
            namespace,
            flink={
                "mode": "external",
                "external": {
                    "restUrl": flink["HEADWATER_FLINK_URL"],
                    "sqlGatewayUrl": flink["HEADWATER_FLINK_GATEWAY_URL"],
                },
            },
        )
    )
    state = flink_dir / "state"
    sql = [
        "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
        "CREATE TABLE b (n BIGINT) WITH ('connector' = 'blackhole')",
        "INSERT INTO b SELECT n FROM g",
    ]
    spec = {
        "engine": "flink",
        "flink": {
            "sql": sql,
            "checkpointing": {
                "storage": "filesystem",
                "path": f"file://{state}",
                "intervalSeconds": 2,
            },
        },
    }
    kubectl.apply(streamjob(namespace, "sp", spec))
    wait_ready(kubectl, namespace, "sp", jobState="RUNNING")
    patch(kubectl, namespace, "sp", {"state": "suspended"})
    suspended = wait_reason(kubectl, namespace, "sp", "JobSuspended", timeout=120)
    good = suspended["status"]["lastSavepoint"]
    patch(kubectl, namespace, "sp", {"state": "running"})
    running = wait_ready(kubectl, namespace, "sp", restoredFrom=good, timeout=120)
    job = running["status"]["jobId"]

    # The savepoint directory becomes a plain file: Flink cannot write the next savepoint.
    savepoints = state / namespace / "sp" / "savepoints"
    moved = savepoints.with_name("savepoints.bak")
    savepoints.rename(moved)
    savepoints.write_text("not a directory")
    patch(kubectl, namespace, "sp", {"flink": {"config": {"pipeline.max-parallelism": "64"}}})
    failed = wait_reason(kubectl, namespace, "sp", "SavepointFailed", timeout=120)
    assert failed["status"]["lastSavepoint"] == good
    assert failed["status"]["savepointFailures"] >= 1
    assert f"last good savepoint: {good}" in condition(failed, "Ready")["message"]  # type: ignore[index]
    assert flink_rest.state(job) == "RUNNING", "a failed savepoint must not stop the job"

    savepoints.unlink()
    moved.rename(savepoints)
    upgraded = wait_ready(kubectl, namespace, "sp", jobGeneration=4, timeout=240)
    assert upgraded["status"]["lastSavepoint"] != good
    assert upgraded["status"]["restoredFrom"] == upgraded["status"]["lastSavepoint"]
    assert upgraded["status"]["savepointFailures"] == 0
    kubectl.run("delete", "streamjob", "sp", "-n", namespace, "--timeout=90s")
    assert flink_rest.state(upgraded["status"]["jobId"]) == "CANCELED"


def test_flink_job_survives_operator_restart_without_duplicates(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
) -> None:
    """Identity comes from status and Flink: a restarted operator keeps the same job."""
    flink_rest.wait_slots(1)
    kubectl.apply(
        platform(
            namespace,
            flink={
                "mode": "external",
                "external": {
                    "restUrl": flink["HEADWATER_FLINK_URL"],
                    "sqlGatewayUrl": flink["HEADWATER_FLINK_GATEWAY_URL"],
                },
            },
        )
    )
    sql = [
        "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1')",
        "CREATE TABLE b (n BIGINT) WITH ('connector' = 'blackhole')",
        "INSERT INTO b SELECT n FROM g",
    ]
    spec = {
        "engine": "flink",
        "flink": {"sql": sql, "upgradeMode": "stateless", "checkpointing": {"storage": "none"}},
    }
    kubectl.apply(streamjob(namespace, "same", spec))
    before = wait_ready(kubectl, namespace, "same", jobState="RUNNING")
    operator.restart()
    # The restarted operator reconciles everything it finds at start-up.
    wait_for(
        lambda: any(
            line.startswith("headwater_reconcile_total{") and 'kind="StreamJob"' in line
            for line in operator.metrics().splitlines()
        ),
        60,
        what="a StreamJob reconcile by the restarted operator",
    )
    after = wait_ready(kubectl, namespace, "same", jobState="RUNNING")
    assert after["status"]["jobId"] == before["status"]["jobId"]
    assert after["status"]["submissions"] == 1
    mine = [
        j
        for j in flink_rest.get("/jobs/overview")["jobs"]
        if j["name"].startswith(f"headwater/{namespace}/same/")
    ]
    assert [j["jid"] for j in mine] == [before["status"]["jobId"]], mine
    kubectl.run("delete", "streamjob", "same", "-n", namespace, "--timeout=90s")


def test_missing_references_are_reported_then_lineage_chains(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    """Missing refs: MissingReference and nothing runs. Once they exist the job runs and its
    lineage is the whole chain: source table -> CDC topic -> job -> zone path."""
    kubectl.apply(platform(namespace, spark={"mode": "managed"}))
    spec = {
        "engine": "spark",
        "spark": {"application": {"file": "local:///opt/etl.py"}},
        "inputs": [{"cdcConnectorRef": {"name": "orders-cdc"}, "table": "public.orders"}],
        "outputs": [{"lakeZoneRef": {"name": "silver"}, "table": "orders"}],
    }
    kubectl.apply(streamjob(namespace, "refs", spec))
    obj = wait_reason(kubectl, namespace, "refs", "MissingReference")
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "inputs[0]: CdcConnector 'orders-cdc' not found" in message
    assert "outputs[0]: LakeZone 'silver' not found" in message
    assert kubectl.items("jobs", namespace) == [], "nothing may run while references are missing"

    # The referenced objects only need to exist (their own data planes are off here).
    for kind, name, ref_spec in (
        (
            "DataSource",
            "orders-db",
            {
                "type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "database": "shop",
                "credentialsSecretRef": {"name": "orders-db"},
            },
        ),
        (
            "CdcConnector",
            "orders-cdc",
            {
                "platformRef": {"name": "p"},
                "sourceRef": {"name": "orders-db"},
                "tables": ["public.orders", "public.customers"],
                "topicPrefix": "shop",
            },
        ),
        (
            "LakeZone",
            "silver",
            {
                "platformRef": {"name": "p"},
                "tier": "silver",
                "bucket": "shop-silver",
                "pathTemplate": "{table}/date={date}",
            },
        ),
    ):
        kubectl.apply(
            {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
            | {"spec": ref_spec}
        )
    done = wait_ready(kubectl, namespace, "refs", jobState="Succeeded", timeout=120)
    assert done["status"]["lineage"] == [
        {
            "source": "postgres://127.0.0.1/shop/public.orders",
            "target": "kafka://shop.public.orders",
        },
        {"source": "kafka://shop.public.orders", "target": f"spark://{namespace}/refs"},
        {"source": f"spark://{namespace}/refs", "target": "s3://shop-silver/orders/date={date}"},
    ]


def test_spark_cronjob_runs_on_schedule(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    """The CronJob exists with the right schedule; a kwok-simulated run completes and the
    status shows the last success and the next run; suspend reaches the CronJob."""
    kubectl.apply(platform(namespace, spark={"mode": "managed"}))
    spec = {
        "engine": "spark",
        "spark": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 2,
            "application": {
                "file": "local:///opt/spark/work-dir/etl.py",
                "args": ["--date", "today"],
            },
        },
    }
    kubectl.apply(streamjob(namespace, "nightly", spec))
    cron = wait_for(lambda: kubectl.get("cronjob", "nightly", namespace), 60, what="CronJob")
    assert cron["spec"]["schedule"] == "* * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["successfulJobsHistoryLimit"] == 2
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "p-spark"
    args = pod["containers"][0]["args"]
    assert args[:4] == [
        "--master",
        "k8s://https://kubernetes.default.svc",
        "--deploy-mode",
        "cluster",
    ]
    done = wait_for(
        lambda: (
            (o := get(kubectl, namespace, "nightly"))
            and (o.get("status") or {}).get("lastSuccessTime")
            and o
        ),
        150,
        1,
        what="a scheduled run completed",
    )
    assert is_ready(done), done["status"]
    nxt = dt.datetime.fromisoformat(done["status"]["nextScheduleTime"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < nxt - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=61)
    runs = kubectl.items("jobs", namespace, "headwater.dev/streamjob=nightly")
    assert runs and all(j["metadata"]["ownerReferences"][0]["kind"] == "CronJob" for j in runs)

    patch(kubectl, namespace, "nightly", {"state": "suspended"})
    wait_reason(kubectl, namespace, "nightly", "JobSuspended")
    cron = kubectl.get("cronjob", "nightly", namespace)
    assert cron is not None and cron["spec"]["suspend"] is True


def test_spark_streaming_driver_is_restarted_and_suspended(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    """mode: streaming on the real control plane: a deleted driver pod is replaced and the job
    is Ready again; the driver carries the object store's keys as Secret references;
    suspend scales it to 0."""
    kubectl.apply(platform(namespace, spark={"mode": "managed"}, objectStore={"mode": "managed"}))
    spec = {
        "engine": "spark",
        "spark": {"mode": "streaming", "application": {"file": "local:///opt/stream.py"}},
    }
    kubectl.apply(streamjob(namespace, "stream", spec))
    wait_ready(kubectl, namespace, "stream", jobState="Running", timeout=120)
    selector = "headwater.dev/streamjob=stream"
    [pod] = kubectl.items("pods", namespace, selector)
    first = pod["metadata"]["name"]
    eps = kubectl.get("dataplatform", "p", namespace)["status"]["endpoints"]  # type: ignore[index]
    env = {e["name"]: e.get("valueFrom") for e in pod["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": eps["s3CredentialsSecret"], "key": "secretKey"}
    }

    kubectl.run("delete", "pod", first, "-n", namespace, "--wait=false")
    replaced = wait_for(
        lambda: [
            p
            for p in kubectl.items("pods", namespace, selector)
            if p["metadata"]["name"] != first and (p.get("status") or {}).get("phase") == "Running"
        ],
        90,
        what="a new driver pod",
    )
    assert len(replaced) == 1
    wait_ready(kubectl, namespace, "stream", jobState="Running", timeout=90)

    patch(kubectl, namespace, "stream", {"state": "suspended"})
    suspended = wait_reason(kubectl, namespace, "stream", "JobSuspended")
    assert suspended["status"]["jobState"] == "Suspended"
    assert condition(suspended, "Ready")["message"] == "driver scaled to 0"  # type: ignore[index]
    dep = kubectl.get("deployment", "stream-driver", namespace)
    assert dep is not None and dep["spec"]["replicas"] == 0


def test_spark_batch_job_completes(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(platform(namespace, spark={"mode": "managed"}))
    spec = {"engine": "spark", "spark": {"application": {"file": "local:///opt/etl.py"}}}
    kubectl.apply(streamjob(namespace, "once", spec))
    done = wait_ready(kubectl, namespace, "once", jobState="Succeeded", timeout=90)
    assert done["status"]["lastSuccessTime"]
    jobs = kubectl.items("jobs", namespace, "headwater.dev/owner-name=once")
    assert len(jobs) == 1 and jobs[0]["metadata"]["ownerReferences"][0]["name"] == "once"
    # A spec change runs the new version as a new Job; the old one is pruned.
    patch(kubectl, namespace, "once", {"spark": {"application": {"args": ["--full"]}}})
    wait_ready(kubectl, namespace, "once", jobState="Succeeded", timeout=90)
    names = [
        j["metadata"]["name"]
        for j in kubectl.items("jobs", namespace, "headwater.dev/owner-name=once")
    ]
    assert len(names) == 1 and names[0] != jobs[0]["metadata"]["name"]


def test_failing_job_reports_root_cause_without_retry_storm(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
) -> None:
    """A job that keeps failing: Ready=False JobFailing with Flink's root-cause line, and the
    operator's resubmissions back off (10 s, 20 s, ...) instead of looping."""
    flink_rest.wait_slots(1)
    kubectl.apply(
        platform(
            namespace,
            flink={
                "mode": "external",
                "external": {
                    "restUrl": flink["HEADWATER_FLINK_URL"],
                    "sqlGatewayUrl": flink["HEADWATER_FLINK_GATEWAY_URL"],
                },
            },
        )
    )
    sql = [
        "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
        "CREATE TABLE b (n BIGINT) WITH ('connector' = 'blackhole')",
        "INSERT INTO b SELECT 10 / (n - n) FROM g",
    ]
    config = {
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1",
        "restart-strategy.fixed-delay.delay": "500 ms",
    }
    spec = {
        "engine": "flink",
        "flink": {
            "sql": sql,
            "config": config,
            "upgradeMode": "stateless",
            "checkpointing": {"storage": "none"},
        },
    }
    kubectl.apply(streamjob(namespace, "boom", spec))
    failing = wait_reason(kubectl, namespace, "boom", "JobFailing", timeout=90)
    message = condition(failing, "Ready")["message"]  # type: ignore[index]
    assert "ArithmeticException" in message, message
    assert "ArithmeticException" in failing["status"]["failure"]
    wait_for(
        lambda: "JobLost" in {e["reason"] for e in events(kubectl, namespace, "boom")},
        90,
        what="JobLost event once the job ended FAILED",
    )
    started = time.monotonic()
    time.sleep(25)
    obj = get(kubectl, namespace, "boom")
    # Since the first loss: at most two recoveries within ~10 s + 20 s of back-off.
    assert obj["status"]["submissions"] <= 3, obj["status"]
    mine = [
        j
        for j in flink_rest.get("/jobs/overview")["jobs"]
        if j["name"].startswith(f"headwater/{namespace}/boom/")
    ]
    assert len(mine) == obj["status"]["submissions"], (len(mine), time.monotonic() - started)
    errors = [
        line
        for line in operator.metrics().splitlines()
        if line.startswith("headwater_dataplane_errors_total{") and '"flink"' in line
    ]
    assert errors and float(errors[0].split()[-1]) >= 1, errors


def flink_platform(namespace: str, flink: dict[str, str], **components: Any) -> dict[str, Any]:
    external = {
        "restUrl": flink["HEADWATER_FLINK_URL"],
        "sqlGatewayUrl": flink["HEADWATER_FLINK_GATEWAY_URL"],
    }
    return platform(namespace, flink={"mode": "external", "external": external}, **components)


BLACKHOLE_SQL = [
    "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
    "CREATE TABLE b (n BIGINT) WITH ('connector' = 'blackhole')",
    "INSERT INTO b SELECT n FROM g",
]


def test_flink_state_on_the_object_store(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
    shared_minio: MinioServer,
    buckets: list[str],
) -> None:
    """checkpointing.storage objectStore against the real MinIO (the platform's external
    store; the local Flink writes s3:// there through its S3 plugin): the operator creates
    the checkpoint bucket, checkpoints and savepoints land under s3://<bucket>/<ns>/<name>/,
    and a savepoint upgrade restores from there."""
    flink_rest.wait_slots(1)
    bucket = unique_bucket("hw-ckpt")
    buckets.append(bucket)
    minio = shared_minio.client()
    assert not minio.bucket_exists(bucket)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-admin", "namespace": namespace},
            "stringData": {
                "accessKey": shared_minio.access_key,
                "secretKey": shared_minio.secret_key,
            },
        }
    )
    store = {
        "mode": "external",
        "checkpointBucket": bucket,
        "external": {
            "endpoint": shared_minio.url,
            "kind": "minio",
            "credentialsSecretRef": {"name": "s3-admin"},
        },
    }
    kubectl.apply(flink_platform(namespace, flink, objectStore=store))
    spec = {
        "engine": "flink",
        "flink": {
            "sql": BLACKHOLE_SQL,
            "upgradeMode": "savepoint",
            "checkpointing": {"storage": "objectStore", "intervalSeconds": 2},
        },
    }
    kubectl.apply(streamjob(namespace, "s3job", spec))
    first = wait_ready(kubectl, namespace, "s3job", jobState="RUNNING", timeout=120)
    assert minio.bucket_exists(bucket), "the operator did not create the checkpoint bucket"
    assert "BucketCreated" in {e["reason"] for e in events(kubectl, namespace, "s3job")}
    base = f"s3://{bucket}/{namespace}/s3job"

    # Checkpoints: recorded by the next observation of the running job (every 30 s).
    checkpointed = wait_for(
        lambda: (
            (o := get(kubectl, namespace, "s3job"))
            and (o["status"].get("lastCheckpoint") or "").startswith(
                f"{base}/checkpoints/{first['status']['jobId']}/chk-"
            )
            and o
        ),
        75,
        1,
        what=f"lastCheckpoint under {base}/checkpoints/",
    )
    assert checkpointed["status"]["lastCheckpointTime"]

    # A spec change: stop with a savepoint in the bucket, resubmit from it.
    patch(kubectl, namespace, "s3job", {"flink": {"config": {"pipeline.max-parallelism": "64"}}})
    upgraded = wait_ready(kubectl, namespace, "s3job", jobGeneration=2, timeout=180)
    savepoint = upgraded["status"]["lastSavepoint"]
    assert savepoint.startswith(f"{base}/savepoints/savepoint-"), savepoint
    assert upgraded["status"]["restoredFrom"] == savepoint
    job2 = upgraded["status"]["jobId"]
    restored = wait_for(
        lambda: flink_rest.get(f"/jobs/{job2}/checkpoints")["latest"]["restored"],
        30,
        what="the restore in Flink's checkpoint stats",
    )
    assert restored["external_path"] == savepoint and restored["is_savepoint"]
    # ... and the state really is in MinIO, under the job's own prefix.
    keys = [
        o.object_name or ""
        for o in minio.list_objects(bucket, prefix=f"{namespace}/s3job/", recursive=True)
    ]
    savepoint_key = savepoint.removeprefix(f"s3://{bucket}/")
    assert any(k.startswith(f"{savepoint_key}/") for k in keys), keys
    assert any(k.startswith(f"{namespace}/s3job/checkpoints/") for k in keys), keys
    kubectl.run("delete", "streamjob", "s3job", "-n", namespace, "--timeout=90s")


def test_restarting_job_reports_flink_restarts(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    flink: dict[str, str],
    flink_rest: FlinkRest,
) -> None:
    """A job Flink keeps restarting (it never ends FAILED): status.restarts follows Flink's
    numRestarts and Ready=False JobFailing names the count and the root cause."""
    flink_rest.wait_slots(1)
    kubectl.apply(flink_platform(namespace, flink))
    config = {
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000",
        "restart-strategy.fixed-delay.delay": "1 s",
    }
    spec = {
        "engine": "flink",
        "flink": {
            "sql": [*BLACKHOLE_SQL[:2], "INSERT INTO b SELECT 10 / (n - n) FROM g"],
            "config": config,
            "upgradeMode": "stateless",
            "checkpointing": {"storage": "none"},
        },
    }
    kubectl.apply(streamjob(namespace, "flaky", spec))
    failing = wait_for(
        lambda: (
            (o := get(kubectl, namespace, "flaky"))
            and (c := condition(o, "Ready"))
            and c["reason"] == "JobFailing"
            and (o["status"].get("restarts") or 0) >= 1
            and o
        ),
        90,
        0.5,
        what="JobFailing with restarts",
    )
    status, message = failing["status"], condition(failing, "Ready")["message"]  # type: ignore[index]
    job = status["jobId"]
    flink_count = flink_rest.get(f"/jobs/{job}/metrics?get=numRestarts")[0]["value"]
    # Flink's counter only grows: what status recorded is at most what Flink counts now.
    assert 1 <= status["restarts"] <= int(flink_count), (status["restarts"], flink_count)
    assert f"after {status['restarts']} restarts" in message and "ArithmeticException" in message
    assert flink_rest.state(job) in ("RUNNING", "RESTARTING", "INITIALIZING"), "not FAILED"
    assert status["submissions"] == 1, "Flink restarts it; the operator must not resubmit"
    kubectl.run("delete", "streamjob", "flaky", "-n", namespace, "--timeout=90s")
