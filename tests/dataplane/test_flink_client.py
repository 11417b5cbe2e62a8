"""dataplane/flink.py against the real Flink session cluster and SQL Gateway (shared instance;
every job here is the test's own and is cancelled at the end)."""

# ruff: noqa: F811  (pytest fixtures imported from hwtest.flink are parameters here)
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.dataplane.flink import FlinkClient, FlinkUnavailable, SubmissionRejected
from headwater.render.flinkapp import job_id, trigger_id
from hwtest.flink import (  # noqa: F401
    NUMBERS_CLASS,
    FlinkRest,
    flink,
    flink_dir,
    flink_rest,
    numbers_jar,
)
from hwtest.kubectl import wait_for

GEN = "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')"
SINK = "CREATE TABLE b (n BIGINT) WITH ('connector' = 'blackhole')"


@pytest.fixture
def client(flink: dict[str, str], flink_rest: FlinkRest) -> Iterator[FlinkClient]:
    flink_rest.wait_slots(1)
    c = FlinkClient(flink["HEADWATER_FLINK_URL"], flink["HEADWATER_FLINK_GATEWAY_URL"])
    mine: list[str] = []
    c.submitted = mine  # type: ignore[attr-defined]
    yield c
    for job in mine:
        c.cancel(job)


def conf(job: str, state: Path | None = None, restore: str | None = None) -> dict[str, str]:
    out = {"pipeline.name": f"headwater/test/{job[:8]}", "$internal.pipeline.job-id": job}
    if state is not None:
        out["execution.checkpointing.interval"] = "1s"
        out["execution.checkpointing.dir"] = f"file://{state}/checkpoints"
    if restore:
        out["execution.state-recovery.path"] = restore
    return out


def running(client: FlinkClient, job: str) -> None:
    wait_for(lambda: (j := client.job(job)) and j.state == "RUNNING", 60, what=f"{job} RUNNING")


def test_sql_job_savepoint_and_restore(client: FlinkClient, flink_dir: Path) -> None:
    uid = str(uuid.uuid4())
    first = job_id(uid, 1)
    got = client.submit_sql([GEN, SINK], "INSERT INTO b SELECT n FROM g", conf(first, flink_dir))
    client.submitted.append(first)  # type: ignore[attr-defined]
    assert got == first  # the fixed id we asked for
    running(client, first)
    assert client.job(first).name == f"headwater/test/{first[:8]}"  # type: ignore[union-attr]
    wait_for(lambda: client.snapshots(first)[0], 30, what="a completed checkpoint")
    checkpoint, _ = client.snapshots(first)
    assert checkpoint is not None and f"{flink_dir}/checkpoints/{first}/chk-" in checkpoint.path

    # The same id again is refused by Flink: no duplicate job is possible.
    with pytest.raises(SubmissionRejected) as dup:
        client.submit_sql([GEN, SINK], "INSERT INTO b SELECT n FROM g", conf(first))
    assert dup.value.duplicate and not dup.value.invalid

    # Stop with a savepoint; re-sending the same trigger is harmless.
    trig = trigger_id(first, "upgrade", 1)
    client.stop_with_savepoint(first, f"file://{flink_dir}/savepoints", trig)
    client.stop_with_savepoint(first, f"file://{flink_dir}/savepoints", trig)
    result = wait_for(
        lambda: (s := client.savepoint_status(first, trig)) and s.state != "IN_PROGRESS" and s,
        60,
        what="savepoint",
    )
    assert result.state == "COMPLETED" and result.location
    wait_for(lambda: client.job(first).state == "FINISHED", 30, what="FINISHED")  # type: ignore[union-attr]
    # The REST API caches checkpoint statistics for a few seconds
    # (rest.cache.checkpoint-statistics.timeout): the savepoint shows up shortly after.
    savepoint = wait_for(
        lambda: client.snapshots(first)[1], 30, what="the savepoint in the job's stats"
    )
    assert savepoint.path == result.location

    second = job_id(uid, 2)
    client.submit_sql(
        [GEN, SINK], "INSERT INTO b SELECT n FROM g", conf(second, restore=result.location)
    )
    client.submitted.append(second)  # type: ignore[attr-defined]
    running(client, second)
    restored = FlinkRest(client.rest_url).get(f"/jobs/{second}/checkpoints")["latest"]["restored"]
    assert restored["external_path"] == result.location and restored["is_savepoint"]


def test_jar_job_savepoint_and_restore(
    client: FlinkClient, flink_dir: Path, numbers_jar: Path
) -> None:
    """A DataStream jar through the JobManager REST API: the fixed job id, program arguments
    and flinkConfiguration arrive; stop with a savepoint; a new job restores from it."""
    uid, jar = str(uuid.uuid4()), numbers_jar.read_bytes()

    def submit(job: str, restore: str | None, args: list[str]) -> str:
        return client.submit_jar(
            jar,
            "numbers.jar",
            entry_class=NUMBERS_CLASS,
            args=args,
            parallelism=1,
            job_id=job,
            restore=restore,
            allow_non_restored=False,
            config=conf(job, flink_dir),
        )

    # The program refuses to start without its arguments: Flink's answer names the cause.
    with pytest.raises(SubmissionRejected) as bad:
        submit(job_id(uid, 0), None, [])
    assert "usage: --rate" in str(bad.value) and not bad.value.invalid

    first = job_id(uid, 1)
    assert submit(first, None, ["--rate", "5"]) == first
    client.submitted.append(first)  # type: ignore[attr-defined]
    running(client, first)
    assert client.job(first).name == f"headwater/test/{first[:8]}"  # type: ignore[union-attr]
    wait_for(lambda: client.snapshots(first)[0], 30, what="a completed checkpoint of the jar job")

    trig = trigger_id(first, "upgrade", 1)
    client.stop_with_savepoint(first, f"file://{flink_dir}/savepoints", trig)
    result = wait_for(
        lambda: (s := client.savepoint_status(first, trig)) and s.state != "IN_PROGRESS" and s,
        60,
        what="savepoint of the jar job",
    )
    assert result.state == "COMPLETED" and result.location
    assert f"{flink_dir}/savepoints/savepoint-" in result.location
    wait_for(lambda: client.job(first).state == "FINISHED", 30, what="FINISHED")  # type: ignore[union-attr]

    second = job_id(uid, 2)
    submit(second, result.location, ["--rate", "5"])
    client.submitted.append(second)  # type: ignore[attr-defined]
    running(client, second)
    rest = FlinkRest(client.rest_url)
    restored = wait_for(
        lambda: rest.get(f"/jobs/{second}/checkpoints")["latest"]["restored"],
        30,
        what="the restore in the new job's checkpoint stats",
    )
    assert restored["external_path"] == result.location and restored["is_savepoint"]
    # Every upload (the refused one too) was deleted after its run.
    assert not [f for f in rest.get("/jars")["files"] if f["name"] == "numbers.jar"]


def test_invalid_sql_is_reported_as_invalid(client: FlinkClient) -> None:
    with pytest.raises(SubmissionRejected) as err:
        client.submit_sql([SINK], "INSERT INTO b SELECT n FROM missing_table", conf(job_id("x", 1)))
    assert err.value.invalid
    assert "missing_table" in str(err.value) and "not found" in str(err.value)
    with pytest.raises(SubmissionRejected) as parse:
        client.submit_sql([], "INSERTT INTO b SELECT 1", conf(job_id("x", 2)))
    assert parse.value.invalid


def test_failing_job_reports_its_root_cause(client: FlinkClient) -> None:
    job = job_id(str(uuid.uuid4()), 1)
    properties = {**conf(job), "restart-strategy.type": "fixed-delay"}
    properties["restart-strategy.fixed-delay.attempts"] = "1"
    properties["restart-strategy.fixed-delay.delay"] = "500 ms"
    client.submit_sql([GEN, SINK], "INSERT INTO b SELECT 10 / (n - n) FROM g", properties)
    client.submitted.append(job)  # type: ignore[attr-defined]
    wait_for(lambda: client.job(job).state == "FAILED", 90, what="job FAILED")  # type: ignore[union-attr]
    cause = client.root_cause(job)
    assert cause is not None and "ArithmeticException" in cause, cause


def test_cancel_and_missing_job(client: FlinkClient) -> None:
    job = job_id(str(uuid.uuid4()), 1)
    client.submit_sql([GEN, SINK], "INSERT INTO b SELECT n FROM g", conf(job))
    running(client, job)
    client.cancel(job)
    wait_for(lambda: client.job(job).state == "CANCELED", 30, what="CANCELED")  # type: ignore[union-attr]
    assert client.job("0" * 32) is None
    assert client.savepoint_status("0" * 32, "1" * 32) is None


def test_unreachable_flink_is_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(FlinkUnavailable):
        FlinkClient("http://127.0.0.1:9", timeout=2).job("0" * 32)
    assert time.monotonic() - started < 10


def test_managed_flink_gets_the_jdk_flags_of_flinks_own_config(flink: dict[str, str]) -> None:
    """Managed Flink's config.yaml replaces the image's, so it must carry the JDK 17 module
    flags the distribution's own config sets (without them jar jobs fail, as the jar test
    above showed on this Flink before the test bed passed them on)."""
    from headwater.render.platform import FLINK_JDK17_OPTS

    own = (Path(flink["HEADWATER_FLINK_HOME"]) / "conf" / "config.yaml").read_text()
    flags = own.split("all:", 1)[1].splitlines()[0].split()
    assert flags and all(f.startswith("--add-") for f in flags)
    assert FLINK_JDK17_OPTS.split() == flags
