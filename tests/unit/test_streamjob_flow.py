"""The Flink state machine of the StreamJob reconciler, pass by pass, against an in-memory
Flink. This fake sits beside the real proofs (tests/e2e/test_streamjob_e2e.py runs the same
paths against the real session cluster); here every branch is cheap to reach, including
the crash between submit and status write."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from typing import Any

import pytest

from headwater.dataplane import flink as fl
from headwater.dataplane.s3 import Connection, ObjectStoreError
from headwater.reconcile.base import Outcome, Retry
from headwater.reconcile.streamjob import StreamJobReconciler
from headwater.render.lakezone import BucketSettings


class FakeFlink:
    def __init__(self) -> None:
        self.jobs: dict[str, fl.JobInfo] = {}
        self.submitted: list[dict[str, str]] = []
        self.savepoints: dict[str, fl.SavepointStatus] = {}
        self.savepoint_fails = False
        self.checkpoint: dict[str, fl.Snapshot] = {}

    def job(self, job_id: str) -> fl.JobInfo | None:
        return self.jobs.get(job_id)

    def set_state(self, job_id: str, state: str) -> None:
        info = self.jobs[job_id]
        self.jobs[job_id] = fl.JobInfo(info.id, info.name, state)

    def restarts(self, job_id: str) -> int:
        return 0

    def snapshots(self, job_id: str) -> tuple[fl.Snapshot | None, fl.Snapshot | None]:
        return self.checkpoint.get(job_id), None

    def root_cause(self, job_id: str) -> str | None:
        return "java.lang.ArithmeticException: / by zero"

    def cancel(self, job_id: str) -> None:
        self.set_state(job_id, "CANCELED")

    def stop_with_savepoint(self, job_id: str, target: str, trigger: str) -> None:
        if self.savepoint_fails:
            self.savepoints[trigger] = fl.SavepointStatus("FAILED", None, "IOException: disk full")
            return
        self.savepoints[trigger] = fl.SavepointStatus("COMPLETED", f"{target}/sp-{job_id[:6]}")
        self.set_state(job_id, "FINISHED")

    def savepoint_status(self, job_id: str, trigger: str) -> fl.SavepointStatus | None:
        return self.savepoints.get(trigger)

    def submit_sql(self, setup: list[str], statement: str, conf: dict[str, str]) -> str:
        job_id = conf["$internal.pipeline.job-id"]
        if job_id in self.jobs:
            raise fl.SubmissionRejected("duplicate", invalid=False, duplicate=True)
        self.submitted.append({**conf, "statement": statement, "setup": "\n".join(setup)})
        self.jobs[job_id] = fl.JobInfo(job_id, conf["pipeline.name"], "RUNNING")
        return job_id


class Applier:
    def __init__(self) -> None:
        self.applied: list[Any] = []

    async def reconcile(self, owner: Any, objects: Any) -> None:
        self.applied.extend(objects)


class Settings:
    endpoint_overrides: dict[str, str] = {}
    dataplane_timeout = 5.0


class Ctx:
    def __init__(self, objects: dict[tuple[str, str], Any]):
        self.objects = objects
        self.applier = Applier()
        self.settings = Settings()
        self.services: dict[str, Any] = {}

    def get(self, kind: str, namespace: str, name: str) -> Any:
        return self.objects.get((kind, name))

    def secret(self, namespace: str, name: str) -> Any:
        return self.objects.get(("Secret", name))

    async def blocking(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


PLATFORM = {
    "spec": {
        "flink": {
            "mode": "external",
            "external": {"restUrl": "http://flink:8081", "sqlGatewayUrl": "http://flink:8083"},
        },
        "objectStore": {"mode": "disabled"},
    },
    "status": {
        "endpoints": {
            "flinkRestUrl": "http://flink:8081",
            "flinkSqlGatewayUrl": "http://flink:8083",
        }
    },
}


class Harness:
    def __init__(self, platform: Any = PLATFORM, **flink: Any) -> None:
        self.fake = FakeFlink()
        self.rec = StreamJobReconciler(flink_client=lambda *a: self.fake)  # type: ignore[arg-type,return-value]
        self.ctx = Ctx({("DataPlatform", "p"): platform})
        spec = {
            "sql": ["CREATE TABLE a (x INT)", "INSERT INTO b SELECT x FROM a"],
            "checkpointing": {"storage": "filesystem", "path": "file:///state"},
            **flink,
        }
        self.body: dict[str, Any] = {
            "kind": "StreamJob",
            "metadata": {"name": "j", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {"platformRef": {"name": "p"}, "engine": "flink", "flink": spec},
            "status": {},
        }

    def run(self) -> Outcome:
        out = asyncio.run(self.rec.reconcile(self.body, self.ctx))  # type: ignore[arg-type]
        self.body["status"] = copy.deepcopy(out.status)
        return out

    def change(self, **flink: Any) -> None:
        self.body["spec"]["flink"].update(flink)
        self.body["metadata"]["generation"] += 1

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body["status"])


def test_submit_then_ready() -> None:
    h = Harness()
    assert h.run().reason == "Progressing"
    out = h.run()
    assert out.ready and h.status["jobState"] == "RUNNING" and h.status["jobGeneration"] == 1
    assert len(h.fake.submitted) == 1
    sent = h.fake.submitted[0]
    assert sent["statement"].startswith("EXECUTE PLAN 'file:///state/ns/j/plans/")
    assert "COMPILE PLAN 'file:///state/ns/j/plans/" in sent["setup"]
    assert sent["pipeline.name"].startswith("headwater/ns/j/g1/")


def test_savepoint_upgrade_resubmits_from_the_savepoint() -> None:
    h = Harness()
    h.run(), h.run()
    first = h.status["jobId"]
    h.change(parallelism=2)
    out = h.run()
    assert out.reason == "Upgrading" and h.status["stopOperation"]["kind"] == "savepoint"
    h.run()  # savepoint completed -> new job submitted
    assert h.status["jobId"] != first and "stopOperation" not in h.status
    assert h.status["restoredFrom"] == h.status["lastSavepoint"]
    assert h.fake.submitted[-1]["execution.state-recovery.path"] == h.status["lastSavepoint"]
    assert h.fake.submitted[-1]["parallelism.default"] == "2"
    assert h.run().ready and h.status["jobGeneration"] == 2


def test_lineage_only_change_does_not_restart() -> None:
    h = Harness()
    h.run(), h.run()
    h.body["spec"]["inputs"] = [{"topic": "orders"}]
    h.body["metadata"]["generation"] += 1
    assert h.run().ready and len(h.fake.submitted) == 1 and h.status["jobGeneration"] == 2


def test_failed_savepoint_keeps_the_last_good_one_and_backs_off() -> None:
    h = Harness()
    h.run(), h.run()
    h.change(parallelism=2)
    h.run(), h.run(), h.run()  # a good upgrade: lastSavepoint set
    good = h.status["lastSavepoint"]
    running = h.status["jobId"]
    h.fake.savepoint_fails = True
    h.change(parallelism=3)
    h.run()
    out = h.run()
    assert out.reason == "SavepointFailed" and f"last good savepoint: {good}" in out.message
    assert h.status["lastSavepoint"] == good and h.status["savepointFailures"] == 1
    assert h.fake.jobs[running].state == "RUNNING"
    out = h.run()  # within the back-off: no new stop request
    assert out.reason == "SavepointFailed" and "stopOperation" not in h.status
    assert out.requeue_after is not None and out.requeue_after > 0


def test_external_cancel_is_reported_then_recovered_from_the_checkpoint() -> None:
    h = Harness()
    h.run(), h.run()
    job = h.status["jobId"]
    h.fake.checkpoint[job] = fl.Snapshot(f"file:/state/ns/j/checkpoints/{job}/chk-7", 2_000, False)
    h.fake.cancel(job)
    out = h.run()
    assert out.reason == "JobNotRunning" and f"job {job} was CANCELED outside" in out.message
    assert h.status["jobState"] == "CANCELED"
    assert any(e[1] == "JobLost" for e in out.events)
    out = h.run()  # back-off pending: no resubmission
    assert out.reason == "JobNotRunning" and len(h.fake.submitted) == 1
    h.body["status"]["nextAttemptTime"] = "2000-01-01T00:00:00Z"
    h.run()
    assert len(h.fake.submitted) == 2
    assert h.fake.submitted[-1]["execution.state-recovery.path"].endswith("/chk-7")


def test_crash_between_submit_and_status_write_adopts_instead_of_duplicating() -> None:
    h = Harness()
    h.run()
    h.body["status"] = {}  # the status write was lost
    out = h.run()
    assert len(h.fake.submitted) == 1, "submitted twice"
    assert h.status["submissions"] == 1 and any("adopted" in e[2] for e in out.events)


def test_suspend_and_resume() -> None:
    h = Harness()
    h.run(), h.run()
    h.body["spec"]["state"] = "suspended"
    h.run()
    out = h.run()
    assert out.reason == "JobSuspended" and h.status["jobState"] == "SUSPENDED"
    kept = h.status["lastSavepoint"]
    h.body["spec"]["state"] = "running"
    h.run()
    assert h.fake.submitted[-1]["execution.state-recovery.path"] == kept


def test_missing_platform_keeps_status() -> None:
    h = Harness()
    h.run(), h.run()
    job = h.status["jobId"]
    h.ctx.objects.clear()
    out = h.run()
    assert out.reason == "MissingReference" and out.status["jobId"] == job


# --- object store for checkpoints ---------------------------------------------------------------

SECRET_KEY = "hunter2-s3-secret"
S3_PLATFORM = {
    "spec": {
        **PLATFORM["spec"],
        "objectStore": {
            "mode": "external",
            "checkpointBucket": "ckpt",
            "external": {
                "endpoint": "http://minio:9000",
                "kind": "minio",
                "credentialsSecretRef": {"name": "s3-admin"},
            },
        },
    },
    "status": {
        "endpoints": {
            **PLATFORM["status"]["endpoints"],
            "s3Endpoint": "http://minio:9000",
            "s3CredentialsSecret": "s3-admin",
        }
    },
}
S3_SECRET = {
    "data": {
        "accessKey": base64.b64encode(b"admin").decode(),
        "secretKey": base64.b64encode(SECRET_KEY.encode()).decode(),
    }
}


class FakeStore:
    """The two ObjectStore calls the reconciler makes (the real ones run against MinIO in
    tests/e2e/test_streamjob_e2e.py::test_flink_state_on_the_object_store)."""

    def __init__(self) -> None:
        self.buckets: set[str] = set()
        self.created: list[BucketSettings] = []
        self.conns: list[Connection] = []
        self.down = False

    def get(self, conn: Connection) -> FakeStore:
        self.conns.append(conn)
        return self

    def bucket_exists(self, bucket: str) -> bool:
        if self.down:
            raise ObjectStoreError("unavailable", "bucket ckpt: minio:9000 unreachable")
        return bucket in self.buckets

    def ensure_bucket(self, want: BucketSettings) -> None:
        self.created.append(want)
        self.buckets.add(want.bucket)


def s3_harness() -> tuple[Harness, FakeStore]:
    h = Harness(S3_PLATFORM, checkpointing={"storage": "objectStore"})
    h.ctx.objects[("Secret", "s3-admin")] = S3_SECRET
    store = FakeStore()
    h.ctx.services["s3"] = store
    return h, store


def test_object_store_disabled_with_object_store_checkpoints_is_reference_not_ready() -> None:
    h = Harness(checkpointing={"storage": "objectStore"})  # PLATFORM: objectStore disabled
    with pytest.raises(Retry) as err:
        h.run()
    assert err.value.reason == "ReferenceNotReady"
    assert "has no object store" in str(err.value)
    assert h.fake.submitted == []


def test_checkpoint_bucket_is_created_before_the_first_submission() -> None:
    h, store = s3_harness()
    out = h.run()
    assert [w.bucket for w in store.created] == ["ckpt"]
    assert not store.created[0].versioning and not store.created[0].object_lock
    assert store.conns[0].endpoint == "http://minio:9000" and store.conns[0].admin
    assert ("Normal", "BucketCreated", "created checkpoint bucket ckpt") in out.events
    sent = h.fake.submitted[0]
    assert sent["execution.checkpointing.dir"] == "s3://ckpt/ns/j/checkpoints"
    # The operator used the key to reach the store; it is nowhere in what it writes.
    assert store.conns[0].secret_key == SECRET_KEY
    written = json.dumps([out.status, out.events, out.message, h.ctx.applier.applied, sent])
    assert SECRET_KEY not in written and base64.b64encode(SECRET_KEY.encode()).decode() not in (
        written
    )
    # An existing bucket is left alone: a resubmission creates nothing.
    h.run()
    h.fake.cancel(h.status["jobId"])
    h.run()
    h.body["status"]["nextAttemptTime"] = "2000-01-01T00:00:00Z"
    h.run()
    assert len(h.fake.submitted) == 2 and len(store.created) == 1


def test_unreachable_object_store_blocks_the_submission() -> None:
    h, store = s3_harness()
    store.down = True
    out = h.run()
    assert out.reason == "ObjectStoreUnavailable" and not out.ready
    assert "checkpoint bucket ckpt" in out.message and "nothing submitted" in out.message
    assert h.fake.submitted == [] and SECRET_KEY not in out.message
    store.down = False
    h.run()
    assert len(h.fake.submitted) == 1


def test_missing_store_secret_blocks_the_submission() -> None:
    h, _ = s3_harness()
    del h.ctx.objects[("Secret", "s3-admin")]
    out = h.run()
    assert out.reason == "SecretNotFound" and "s3-admin" in out.message
    assert h.fake.submitted == []
