"""StreamJob reconciler: Flink jobs on the platform's session cluster, Spark runs as
Kubernetes objects, and lineage for both.

Flink is driven as a small state machine whose state lives in `status` and in Flink itself,
never only in memory, so an operator restart continues where it stopped:

* `status.jobId` is the current job; the next job's id is derived from the CR's uid and
  `status.submissions` (render/flinkapp.py), so a job submitted just before a crash is found
  and adopted instead of submitted twice (Flink also refuses a duplicate id).
* `status.stopOperation` is a stop in flight (stop-with-savepoint with an idempotent trigger
  id, or a cancel); every pass polls it until it finished.
* One pass does at most one mutating call (submit, stop, cancel) and comes back soon.

Upgrades happen when `status.jobSpecHash` differs from the plan's hash (generation bumps
that change only lineage or alerts confirm the running job). `savepoint`: stop with a
savepoint, resubmit from it. `last-state`: cancel (the latest checkpoint is retained) and
resubmit from it. `stateless`: cancel and start fresh. A failed savepoint leaves the job
running and `lastSavepoint` untouched, reports SavepointFailed and is retried with back-off.

With `checkpointing.storage: objectStore` the platform's checkpoint bucket is created (when
absent) right before a job is submitted: Flink's S3 filesystem does not create buckets, and a
job writing to a missing one fails its first checkpoint and then the job.

A job that stops on its own (FAILED after Flink's restart strategy gave up, CANCELED or
FINISHED outside the operator, or gone after a JobManager restart) is reported first
(Ready=False, a Warning event), then resubmitted from the newest retained state, with a
delay that doubles per attempt until a job runs stably.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, cast

from ..api.dataplatform import DataPlatformSpec
from ..api.streamjob import Endpoint, StreamJobSpec
from ..constants import Reason
from ..dataplane import flink as fl
from ..dataplane.endpoints import resolve_url
from ..dataplane.s3 import ObjectStoreError, ObjectStoreFactory
from ..kube.conditions import now as now_rfc3339
from ..kube.conditions import parse_time
from ..render.common import Owner
from ..render.cron import next_run
from ..render.flinkapp import (
    FlinkFacts,
    FlinkPlan,
    PlanError,
    flink_plan,
    job_id,
    job_name,
    parse_job_name,
    render_submission,
    submission_config,
    trigger_id,
)
from ..render.lakezone import BucketSettings
from ..render.sparkjob import SparkFacts, SparkNames, render_spark, run_digest
from .base import Context, InvalidSpec, NotReady, Obj, Outcome, Retry
from .lakezone import resolve_target

log = logging.getLogger("headwater.streamjob")

ClientFactory = Callable[[str, "str | None", float], fl.FlinkClient]
POLL = 2.0  # seconds between passes while a stop or a new job is in flight
OBSERVE_INTERVAL = 30.0  # seconds between observations of a running Flink job
RECOVERY_BASE_DELAY = 10.0
RECOVERY_MAX_DELAY = 300.0
DELETE_GIVE_UP = dt.timedelta(minutes=10)
# Status fields this reconciler owns; everything else in status belongs to the controller.
_STATUS_KEYS = (
    "jobId",
    "jobState",
    "jobGeneration",
    "jobSpecHash",
    "jobName",
    "submissions",
    "restarts",
    "lastCheckpoint",
    "lastCheckpointTime",
    "lastSavepoint",
    "lastSavepointTime",
    "restoredFrom",
    "stopOperation",
    "savepointFailures",
    "recoveryAttempts",
    "nextAttemptTime",
    "failure",
    "lastRunTime",
    "lastSuccessTime",
    "lastFailureTime",
    "nextScheduleTime",
    "lineage",
)


def _ms_to_rfc3339(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(seconds: float) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- lineage ------------------------------------------------------------------------------------


def _source_uri(source: Obj | None, table: str) -> str | None:
    if source is None:
        return None
    spec = source.get("spec") or {}
    scheme = spec.get("type", "db")
    return f"{scheme}://{spec.get('host')}/{spec.get('database')}/{table}"


def _connector_edges(ctx: Context, ns: str, ep: Endpoint, conn: Obj) -> tuple[list[str], list[Obj]]:
    """(topic nodes, source table -> topic edges) of a CdcConnector input."""
    spec, status = conn.get("spec") or {}, conn.get("status") or {}
    prefix = spec.get("topicPrefix") or conn["metadata"]["name"]
    tables = [t for t in spec.get("tables") or [] if not ep.table or t == ep.table]
    topics = list(status.get("topics") or [])
    by_table: dict[str, str] = {}
    for table in tables:
        found = [t for t in topics if t.endswith("." + table)]
        by_table[table] = found[0] if found else f"{prefix}.{table}"
    source_name = (spec.get("sourceRef") or {}).get("name")
    source = ctx.get("DataSource", ns, source_name) if source_name else None
    nodes, edges = [], []
    for table, topic in by_table.items():
        node = f"kafka://{topic}"
        nodes.append(node)
        upstream = _source_uri(source, table)
        if upstream:
            edges.append({"source": upstream, "target": node})
    return nodes, edges


def _zone_node(zone: Obj, table: str | None) -> str:
    spec, status = zone.get("spec") or {}, zone.get("status") or {}
    template = status.get("pathTemplate")
    if not template:
        from ..api.lakezone import DEFAULT_PATH_TEMPLATES

        layout = spec.get("pathTemplate") or DEFAULT_PATH_TEMPLATES.get(spec.get("tier", ""), "")
        template = f"s3://{spec.get('bucket')}/{spec.get('prefix', '')}{layout}"
    return template.replace("{table}", table) if table else str(template)


def lineage(spec: StreamJobSpec, owner: Owner, ctx: Context) -> tuple[list[Obj], list[str]]:
    """(edges, missing references). Reading through ctx makes a connector's topics or a zone's
    pathTemplate changing re-enqueue this job."""
    job = f"{spec.engine}://{owner.namespace}/{owner.name}"
    edges: list[Obj] = []
    missing: list[str] = []

    def nodes(ep: Endpoint, where: str) -> list[str]:
        if ep.topic:
            return [f"kafka://{ep.topic}"]
        if ep.cdc_connector_ref:
            conn = ctx.get("CdcConnector", owner.namespace, ep.cdc_connector_ref.name)
            if conn is None:
                missing.append(f"{where}: CdcConnector {ep.cdc_connector_ref.name!r} not found")
                return []
            topic_nodes, upstream = _connector_edges(ctx, owner.namespace, ep, conn)
            edges.extend(upstream)
            return topic_nodes
        assert ep.lake_zone_ref is not None
        zone = ctx.get("LakeZone", owner.namespace, ep.lake_zone_ref.name)
        if zone is None:
            missing.append(f"{where}: LakeZone {ep.lake_zone_ref.name!r} not found")
            return []
        return [_zone_node(zone, ep.table)]

    for i, ep in enumerate(spec.inputs):
        edges.extend({"source": n, "target": job} for n in nodes(ep, f"inputs[{i}]"))
    for i, ep in enumerate(spec.outputs):
        edges.extend({"source": job, "target": n} for n in nodes(ep, f"outputs[{i}]"))
    unique: list[Obj] = []
    for edge in edges:
        if edge not in unique:
            unique.append(edge)
    return unique, missing


# --- the reconciler -----------------------------------------------------------------------------


class StreamJobReconciler:
    kind = "StreamJob"

    def __init__(self, resync_seconds: float = 60.0, flink_client: ClientFactory = fl.FlinkClient):
        self.resync_seconds = resync_seconds
        self.flink_client = flink_client

    def needs_finalizer(self, body: Obj) -> bool:
        # Flink jobs live outside Kubernetes; Spark objects go with their owner references.
        return (body.get("spec") or {}).get("engine") == "flink"

    async def reconcile(self, body: Obj, ctx: Context) -> Outcome:
        outcome = await self._reconcile(body, ctx)
        # Absent, not null: a null would be written (and pruned) on every pass.
        outcome.status = {k: v for k, v in outcome.status.items() if v is not None}
        return outcome

    async def _reconcile(self, body: Obj, ctx: Context) -> Outcome:
        spec = StreamJobSpec.model_validate(body.get("spec") or {})
        owner = Owner.from_body(body)
        status = {k: v for k, v in (body.get("status") or {}).items() if k in _STATUS_KEYS}
        edges, missing = lineage(spec, owner, ctx)
        status["lineage"] = edges
        platform = ctx.get("DataPlatform", owner.namespace, spec.platform_ref.name)
        if platform is None:
            missing.insert(0, f"platformRef: DataPlatform {spec.platform_ref.name!r} not found")
        if missing:
            # Nothing is submitted, stopped or changed until every reference exists; a running
            # job keeps running.
            return Outcome(status, False, Reason.MISSING_REFERENCE, "; ".join(missing))
        assert platform is not None
        if spec.engine == "spark":
            return await self._spark(spec, owner, platform, status, ctx)
        run = await self._flink_run(spec, owner, body, platform, status, ctx)
        return await run.reconcile()

    async def finalize(self, body: Obj, ctx: Context) -> Outcome:
        """Cancel the Flink job (fast, predictable; its latest checkpoint is retained)."""
        status = dict(body.get("status") or {})
        done = Outcome(status={}, ready=False, reason=Reason.DELETING, finalized=True)
        current = status.get("jobId")
        if (body.get("spec") or {}).get("engine") != "flink" or not current:
            return done
        spec = StreamJobSpec.model_validate(body.get("spec") or {})
        owner = Owner.from_body(body)
        platform = ctx.get("DataPlatform", owner.namespace, spec.platform_ref.name)
        eps = ((platform or {}).get("status") or {}).get("endpoints") or {}
        if not eps.get("flinkRestUrl"):
            done.events.append(
                (
                    "Warning",
                    Reason.JOB_LOST,
                    f"no Flink endpoint known; job {current} not cancelled",
                )
            )
            return done
        client = self._client(ctx, eps)
        deleting = parse_time(body["metadata"].get("deletionTimestamp"))
        try:
            job = await ctx.blocking(client.job, current)
            if job is not None and job.active:
                await ctx.blocking(client.cancel, current)
                job = await _wait_terminal(ctx, client, current, 20.0)
            checkpoint, _ = await ctx.blocking(client.snapshots, current)
        except fl.FlinkError as err:
            _count_error(ctx, body)
            if deleting and dt.datetime.now(dt.UTC) - deleting > DELETE_GIVE_UP:
                done.events.append(
                    ("Warning", Reason.JOB_LOST, f"Flink unreachable for 10 minutes: {err}")
                )
                return done
            raise Retry(
                f"cancelling Flink job {current}: {err}", Reason.FLINK_UNAVAILABLE, 15
            ) from err
        if job is not None and job.active:
            raise Retry(f"Flink job {current} is still {job.state}", Reason.DELETING, POLL)
        kept = f"; latest checkpoint retained at {checkpoint.path}" if checkpoint else ""
        done.events.append(("Normal", Reason.JOB_CANCELLED, f"cancelled Flink job {current}{kept}"))
        return done

    # --- Flink ----------------------------------------------------------------------------------

    def _client(self, ctx: Context, eps: Obj) -> fl.FlinkClient:
        overrides = ctx.settings.endpoint_overrides
        rest = resolve_url(eps["flinkRestUrl"], overrides)
        gateway = eps.get("flinkSqlGatewayUrl")
        return self.flink_client(
            rest,
            resolve_url(gateway, overrides) if gateway else None,
            ctx.settings.dataplane_timeout,
        )

    async def _flink_run(
        self, spec: StreamJobSpec, owner: Owner, body: Obj, platform: Obj, status: Obj, ctx: Context
    ) -> FlinkRun:
        pspec = DataPlatformSpec.model_validate(platform.get("spec") or {})
        eps = (platform.get("status") or {}).get("endpoints") or {}
        name = spec.platform_ref.name
        if pspec.flink.mode == "disabled":
            raise Retry(f"DataPlatform {name!r} has Flink disabled", Reason.REFERENCE_NOT_READY, 60)
        if not eps.get("flinkRestUrl"):
            raise Retry(
                f"DataPlatform {name!r} publishes no Flink endpoint yet",
                Reason.REFERENCE_NOT_READY,
                30,
            )
        assert spec.flink is not None
        if (
            spec.flink.checkpointing.storage == "objectStore"
            and pspec.object_store.mode == "disabled"
        ):
            raise Retry(
                f"checkpointing.storage objectStore, but DataPlatform {name!r} has no object store",
                Reason.REFERENCE_NOT_READY,
                60,
            )
        try:
            plan = flink_plan(
                spec, owner, FlinkFacts(checkpoint_bucket=pspec.object_store.checkpoint_bucket)
            )
        except PlanError as err:
            raise InvalidSpec(str(err)) from err
        if plan.kind == "sql" and not eps.get("flinkSqlGatewayUrl"):
            raise Retry(
                f"DataPlatform {name!r} publishes no Flink SQL Gateway (needed for SQL jobs)",
                Reason.REFERENCE_NOT_READY,
                60,
            )
        facts = FlinkFacts(checkpoint_bucket=pspec.object_store.checkpoint_bucket)
        await ctx.applier.reconcile(owner, [render_submission(spec, owner, facts)])
        bucket = (
            facts.checkpoint_bucket if spec.flink.checkpointing.storage == "objectStore" else None
        )
        return FlinkRun(spec, owner, body, plan, status, ctx, self._client(ctx, eps), bucket)

    # --- Spark ----------------------------------------------------------------------------------

    async def _spark(
        self, spec: StreamJobSpec, owner: Owner, platform: Obj, status: Obj, ctx: Context
    ) -> Outcome:
        pspec = DataPlatformSpec.model_validate(platform.get("spec") or {})
        eps = (platform.get("status") or {}).get("endpoints") or {}
        name = spec.platform_ref.name
        if pspec.spark.mode == "disabled" or not eps.get("sparkMasterUrl"):
            raise Retry(
                f"DataPlatform {name!r} publishes no Spark master yet",
                Reason.REFERENCE_NOT_READY,
                30,
            )
        ext = pspec.object_store.external
        facts = SparkFacts(
            master_url=eps["sparkMasterUrl"],
            service_account=eps.get("sparkServiceAccount") or "default",
            image=pspec.spark.managed.image,
            s3_endpoint=eps.get("s3Endpoint"),
            s3_secret=eps.get("s3CredentialsSecret"),
            s3_access_key_key=ext.credentials_secret_ref.access_key_key if ext else "accessKey",
            s3_secret_key_key=ext.credentials_secret_ref.secret_key_key if ext else "secretKey",
            s3_path_style=ext.path_style if ext else True,
        )
        await ctx.applier.reconcile(owner, render_spark(spec, owner, facts))
        return spark_status(spec, owner, facts, status, ctx, dt.datetime.now(dt.UTC))


def _count_error(ctx: Context, body: Obj) -> None:
    metrics = ctx.services.get("metrics")
    if metrics is None:
        return
    metrics.dataplane_error("flink", body)  # also counted for this StreamJob's alert rule


async def _wait_terminal(
    ctx: Context, client: fl.FlinkClient, job: str, timeout: float
) -> fl.JobInfo | None:
    """Poll (without holding a thread) until the job left the active states."""
    deadline = asyncio.get_running_loop().time() + timeout
    info = await ctx.blocking(client.job, job)
    while info is not None and info.active and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        info = await ctx.blocking(client.job, job)
    return info


class FlinkRun:
    """One reconcile pass of a Flink StreamJob."""

    def __init__(
        self,
        spec: StreamJobSpec,
        owner: Owner,
        body: Obj,
        plan: FlinkPlan,
        status: Obj,
        ctx: Context,
        client: fl.FlinkClient,
        checkpoint_bucket: str | None = None,
    ):
        assert spec.flink is not None
        self.spec, self.flink, self.owner, self.body = spec, spec.flink, owner, body
        self.plan, self.status, self.ctx, self.client = plan, status, ctx, client
        self.checkpoint_bucket = checkpoint_bucket  # objectStore storage: ensured before submit
        self.events: list[tuple[str, str, str]] = []

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.ctx.blocking(fn, *args)

    def outcome(
        self, ready: bool, reason: str, message: str = "", requeue: float | None = None
    ) -> Outcome:
        return Outcome(
            self.status, ready, reason, message, requeue_after=requeue, events=self.events
        )

    async def reconcile(self) -> Outcome:
        try:
            return await self._reconcile()
        except fl.FlinkUnavailable as err:
            _count_error(self.ctx, self.body)
            raise Retry(f"Flink unreachable: {err}", Reason.FLINK_UNAVAILABLE, 15) from err
        except fl.SubmissionRejected as err:
            _count_error(self.ctx, self.body)
            if err.invalid:
                raise InvalidSpec(f"Flink rejected the program: {err}") from err
            raise Retry(f"Flink rejected the job: {err}", Reason.SUBMISSION_FAILED, 30) from err
        except fl.FlinkError as err:
            _count_error(self.ctx, self.body)
            raise Retry(f"Flink: {err}", Reason.FLINK_UNAVAILABLE, 30) from err

    async def _reconcile(self) -> Outcome:
        await self._adopt()
        current = self.status.get("jobId")
        job: fl.JobInfo | None = await self.call(self.client.job, current) if current else None
        op = self.status.get("stopOperation")
        if op:
            waiting = await self._follow_stop(op)
            if waiting is not None:
                return waiting
            job = await self.call(self.client.job, current) if current else None
        if self.spec.state == "suspended":
            return await self._suspend(job)
        if job is not None and job.active:
            if self.status.get("jobSpecHash") == self.plan.spec_hash:
                return await self._observe(job)
            return await self._upgrade(job)
        if current:
            stopped_by_us = op is not None and op.get("jobId") == current
            if not stopped_by_us and self.status.get("jobState") != "SUSPENDED":
                lost = await self._lost(job, current)
                if lost is not None:
                    return lost
        return await self._submit(job)

    # --- identity -------------------------------------------------------------------------------

    async def _adopt(self) -> None:
        """A job submitted just before a crash (status not written) exists under the id the
        next submission would use: take it over instead of submitting again."""
        seq = int(self.status.get("submissions") or 0)
        candidate = job_id(self.owner.uid, seq + 1)
        job: fl.JobInfo | None = await self.call(self.client.job, candidate)
        if job is None:
            return
        parsed = parse_job_name(job.name)
        self.status.update(
            jobId=candidate,
            submissions=seq + 1,
            jobName=job.name,
            # A terminal job (e.g. failed while being submitted) goes through the lost-job
            # path: reported first, resubmitted after the back-off.
            jobState=job.state if job.active else "CREATED",
            jobGeneration=parsed[2] if parsed else self.owner.generation,
            jobSpecHash=self.plan.spec_hash
            if parsed and self.plan.spec_hash.startswith(parsed[3])
            else (parsed[3] if parsed else None),
            restarts=0,
        )
        self.events.append(("Normal", Reason.JOB_SUBMITTED, f"adopted Flink job {candidate}"))

    # --- stops ----------------------------------------------------------------------------------

    def _backing_off(self) -> float:
        """Seconds until `status.nextAttemptTime` (0 when none or passed)."""
        when = parse_time(self.status.get("nextAttemptTime"))
        if when is None:
            return 0.0
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())

    async def _start_stop(self, job: fl.JobInfo, purpose: str) -> Outcome:
        wait = self._backing_off()
        if wait and int(self.status.get("savepointFailures") or 0):
            kept = self.status.get("lastSavepoint") or "none"
            message = (
                f"savepoint failed {self.status['savepointFailures']} time(s): "
                f"{self.status.get('failure') or 'unknown cause'}; retrying in {wait:.0f}s; "
                f"job keeps running; last good savepoint: {kept}"
            )
            return self.outcome(False, Reason.SAVEPOINT_FAILED, message, wait)
        stateful = self.plan.savepoint_dir is not None
        kind = (
            "savepoint"
            if stateful and (purpose == "suspend" or self.flink.upgrade_mode == "savepoint")
            else "cancel"
        )
        if purpose == "upgrade" and self.flink.upgrade_mode == "last-state":
            kind = "cancel"
        op: Obj = {
            "jobId": job.id,
            "kind": kind,
            "purpose": purpose,
            "attempt": int(self.status.get("savepointFailures") or 0) + 1,
            "startedTime": now_rfc3339(),
        }
        if kind == "savepoint":
            assert self.plan.savepoint_dir is not None
            op["triggerId"] = trigger_id(job.id, purpose, op["attempt"])
            await self.call(
                self.client.stop_with_savepoint, job.id, self.plan.savepoint_dir, op["triggerId"]
            )
            what = "stopping with a savepoint"
        else:
            await self.call(self.client.cancel, job.id)
            what = "cancelling"
        self.status["stopOperation"] = op
        reason = Reason.UPGRADING if purpose == "upgrade" else Reason.PROGRESSING
        return self.outcome(False, reason, f"{what} job {job.id} ({purpose})", POLL)

    async def _follow_stop(self, op: Obj) -> Outcome | None:
        """None when the stop finished (the pass goes on), else the outcome to report."""
        job_of_op = op["jobId"]
        if op["kind"] == "cancel":
            job = await self.call(self.client.job, job_of_op)
            if job is not None and job.active:
                return self.outcome(False, Reason.PROGRESSING, f"cancelling job {job_of_op}", POLL)
            await self._record_checkpoint(job_of_op)
            self.status.pop("stopOperation", None)
            return None
        result: fl.SavepointStatus | None = await self.call(
            self.client.savepoint_status, job_of_op, op["triggerId"]
        )
        if result is None:
            # Flink forgot the trigger (JobManager restart, result expired): the job tells.
            job = await self.call(self.client.job, job_of_op)
            if job is not None and job.active:
                self.status.pop("stopOperation", None)  # start over with a new trigger
                return self.outcome(
                    False, Reason.PROGRESSING, "savepoint state lost; retrying", POLL
                )
            _, savepoint = await self.call(self.client.snapshots, job_of_op)
            location = savepoint.path if savepoint else None
            result = fl.SavepointStatus("COMPLETED" if location else "FAILED", location, None)
        if result.state == "IN_PROGRESS":
            return self.outcome(
                False, Reason.UPGRADING, f"savepoint of job {job_of_op} in progress", POLL
            )
        self.status.pop("stopOperation", None)
        if result.state == "COMPLETED" and result.location:
            self.status.update(
                lastSavepoint=result.location,
                lastSavepointTime=now_rfc3339(),
                savepointFailures=0,
            )
            self.events.append(
                (
                    "Normal",
                    Reason.SAVEPOINT_COMPLETED,
                    f"savepoint of job {job_of_op}: {result.location}",
                )
            )
            # The job reports FINISHED a moment after the savepoint completed.
            await _wait_terminal(self.ctx, self.client, job_of_op, 15.0)
            return None
        failures = int(self.status.get("savepointFailures") or 0) + 1
        self.status["savepointFailures"] = failures
        self.status["failure"] = result.failure or "savepoint failed"
        _count_error(self.ctx, self.body)
        kept = self.status.get("lastSavepoint") or "none"
        message = (
            f"savepoint of job {job_of_op} failed (attempt {failures}): "
            f"{result.failure or 'unknown cause'}; job keeps running; last good savepoint: {kept}"
        )
        self.events.append(("Warning", Reason.SAVEPOINT_FAILED, message))
        delay = min(300.0, 15.0 * failures)
        self.status["nextAttemptTime"] = _later(delay)
        return self.outcome(False, Reason.SAVEPOINT_FAILED, message, delay)

    async def _record_checkpoint(self, job: str) -> None:
        checkpoint, _ = await self.call(self.client.snapshots, job)
        if checkpoint is not None:
            self.status["lastCheckpoint"] = checkpoint.path
            self.status["lastCheckpointTime"] = _ms_to_rfc3339(checkpoint.time_ms)

    # --- desired states -------------------------------------------------------------------------

    async def _suspend(self, job: fl.JobInfo | None) -> Outcome:
        if job is not None and job.active:
            return await self._start_stop(job, "suspend")
        self.status["jobState"] = "SUSPENDED"
        where = self.status.get("lastSavepoint")
        message = f"suspended; resumes from {where}" if where else "suspended"
        return self.outcome(False, Reason.JOB_SUSPENDED, message)

    async def _upgrade(self, job: fl.JobInfo) -> Outcome:
        return await self._start_stop(job, "upgrade")

    async def _observe(self, job: fl.JobInfo) -> Outcome:
        restarts: int = await self.call(self.client.restarts, job.id)
        before = int(self.status.get("restarts") or 0)
        await self._record_checkpoint(job.id)
        self.status.update(
            jobState=job.state, restarts=restarts, jobGeneration=self.owner.generation
        )
        if job.state in ("RESTARTING", "FAILING") or restarts > before:
            cause = await self.call(self.client.root_cause, job.id)
            self.status["failure"] = cause
            return self.outcome(
                False,
                Reason.JOB_FAILING,
                f"job {job.id} is {job.state} after {restarts} restarts: {cause or 'no exception recorded'}",
                POLL * 3 if job.state in ("RESTARTING", "FAILING") else OBSERVE_INTERVAL,
            )
        if job.state != "RUNNING":
            return self.outcome(False, Reason.PROGRESSING, f"job {job.id} is {job.state}", POLL)
        self.status.pop("failure", None)
        self.status["recoveryAttempts"] = 0
        # Flink has no watch API: poll a running job this often to notice failures and
        # external cancels (status is written only when something in it changed).
        return self.outcome(True, Reason.READY, f"job {job.id} is RUNNING", OBSERVE_INTERVAL)

    async def _lost(self, job: fl.JobInfo | None, current: str) -> Outcome | None:
        """A job that stopped without us. First pass: report it; later passes: recover."""
        state = job.state if job is not None else "MISSING"
        attempts = int(self.status.get("recoveryAttempts") or 0)
        if self.status.get("jobState") != state:
            self.status["jobState"] = state
            cause = await self.call(self.client.root_cause, current) if job is not None else None
            if state == "FAILED":
                reason = Reason.JOB_FAILING
                detail = f"job {current} FAILED: {cause or 'no exception recorded'}"
                self.status["failure"] = cause
            elif state == "MISSING":
                reason = Reason.JOB_NOT_RUNNING
                detail = (
                    f"job {current} no longer exists in Flink (JobManager restarted without HA?)"
                )
            else:
                reason = Reason.JOB_NOT_RUNNING
                detail = f"job {current} was {state} outside the operator"
            if job is not None:
                await self._record_checkpoint(current)
            delay = min(RECOVERY_MAX_DELAY, RECOVERY_BASE_DELAY * 2**attempts)
            _count_error(self.ctx, self.body)
            message = (
                f"{detail}; resubmitting in {delay:.0f}s from {self._restore() or 'fresh state'}"
            )
            self.events.append(("Warning", Reason.JOB_LOST, message))
            self.status["nextAttemptTime"] = _later(delay)
            return self.outcome(False, reason, message, delay)
        wait = self._backing_off()
        if wait:
            reason = Reason.JOB_FAILING if state == "FAILED" else Reason.JOB_NOT_RUNNING
            what = " outside the operator" if state in ("CANCELED", "FINISHED") else ""
            message = f"job {current} was {state}{what}; resubmitting in {wait:.0f}s"
            if self.status.get("failure"):
                message += f"; cause: {self.status['failure']}"
            return self.outcome(False, reason, message, wait)
        self.status["recoveryAttempts"] = attempts + 1
        return None

    # --- submission -----------------------------------------------------------------------------

    def _restore(self) -> str | None:
        """Newest retained state: the last savepoint or the last checkpoint (not stateless)."""
        if self.flink.upgrade_mode == "stateless" or self.plan.state_dir is None:
            return None
        candidates = [
            (parse_time(self.status.get("lastSavepointTime")), self.status.get("lastSavepoint")),
            (parse_time(self.status.get("lastCheckpointTime")), self.status.get("lastCheckpoint")),
        ]
        known = [(t or dt.datetime.min.replace(tzinfo=dt.UTC), p) for t, p in candidates if p]
        return max(known, key=lambda c: c[0])[1] if known else None

    async def _ensure_bucket(self) -> Outcome | None:
        """Create the checkpoint bucket when it is absent (None when it exists). An existing
        bucket is left as it is: its versioning, lifecycle and lock belong to whoever runs the
        store. A failure is an outcome, not an exception, so what this pass already learned
        (a completed savepoint) is still written to status."""
        bucket = self.checkpoint_bucket
        assert bucket is not None
        try:
            # resolve_target reads only spec.platformRef (the field LakeZone and StreamJob
            # share): the platform's S3 endpoint and the operator's keys, as tracked reads.
            target = resolve_target(self.ctx, self.owner, cast(Any, self.spec))
        except NotReady as err:
            return self.outcome(False, err.reason, f"checkpoint bucket: {err}", 30)
        factory: ObjectStoreFactory | None = self.ctx.services.get("s3")
        if factory is None:  # a Context built without registry services (tests, tools)
            factory = self.ctx.services["s3"] = ObjectStoreFactory()
        store = factory.get(target.conn)
        try:
            if await self.call(store.bucket_exists, bucket):
                return None
            # A plain bucket: no versioning, no lock, no lifecycle rules of ours.
            want = BucketSettings(
                bucket=bucket,
                prefix="",
                versioning=False,
                object_lock=False,
                lock_mode="",
                lock_days=0,
                rules=(),
                rule_prefix="headwater-checkpoints",
            )
            await self.call(store.ensure_bucket, want)
        except ObjectStoreError as err:
            metrics = self.ctx.services.get("metrics")
            if metrics is not None:
                metrics.dataplane_error("s3", self.body)
            reason = {
                "unavailable": Reason.OBJECT_STORE_UNAVAILABLE,
                "auth": Reason.AUTHENTICATION_FAILED,
            }.get(err.kind, Reason.OBJECT_STORE_REFUSED)
            message = f"checkpoint bucket {bucket} on {target.conn.host}: {err}; nothing submitted"
            return self.outcome(False, reason, message, 30)
        self.events.append(("Normal", Reason.BUCKET_CREATED, f"created checkpoint bucket {bucket}"))
        return None

    async def _submit(self, previous: fl.JobInfo | None) -> Outcome:
        if self.checkpoint_bucket and self.plan.state_dir:
            blocked = await self._ensure_bucket()
            if blocked is not None:
                return blocked
        seq = int(self.status.get("submissions") or 0) + 1
        new_id = job_id(self.owner.uid, seq)
        name = job_name(self.owner, self.owner.generation, self.plan.spec_hash)
        restore = self._restore()
        conf = submission_config(
            self.plan, name, new_id, restore, self.flink.allow_non_restored_state
        )
        try:
            if self.plan.kind == "sql":
                setup, job_statement = self.plan.statements()
                await self.call(self.client.submit_sql, setup, job_statement, conf)
            else:
                await self._submit_jar(new_id, restore, conf)
        except fl.SubmissionRejected as err:
            if not err.duplicate:
                raise
        self.status.update(
            jobId=new_id,
            submissions=seq,
            jobName=name,
            jobState="CREATED",
            jobGeneration=self.owner.generation,
            jobSpecHash=self.plan.spec_hash,
            restoredFrom=restore,
            restarts=0,
        )
        self.status.pop("failure", None)
        started = f" from {restore}" if restore else ""
        self.events.append(
            ("Normal", Reason.JOB_SUBMITTED, f"submitted Flink job {new_id}{started}")
        )
        return self.outcome(False, Reason.PROGRESSING, f"job {new_id} submitted{started}", POLL)

    async def _submit_jar(self, new_id: str, restore: str | None, conf: dict[str, str]) -> None:
        jar = self.flink.jar
        assert jar is not None
        try:
            data, file_name = await self.call(fl.read_jar, jar.uri)
        except OSError as err:
            raise Retry(f"jar {jar.uri}: {err}", Reason.SUBMISSION_FAILED, 60) from err
        conf = {k: v for k, v in conf.items() if not k.startswith("execution.state-recovery")}
        await self.call(
            lambda: self.client.submit_jar(
                data,
                file_name,
                entry_class=jar.entry_class,
                args=list(jar.args),
                parallelism=self.plan.parallelism,
                job_id=new_id,
                restore=restore,
                allow_non_restored=self.flink.allow_non_restored_state,
                config=conf,
            )
        )


# --- Spark status -------------------------------------------------------------------------------


def _job_finish(job: Obj) -> tuple[str | None, str | None]:
    """(state, time) of a batch/v1 Job: Succeeded/Failed with completion time, or Running."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded", status.get("completionTime") or cond.get("lastTransitionTime")
        if cond.get("type") in ("Failed", "FailureTarget"):
            return "Failed", cond.get("lastTransitionTime")
    if status.get("active"):
        return "Running", None
    return "Pending", None


def _cron_job_name(cronjob: str, scheduled: str | None) -> str | None:
    """Name the CronJob controller gives the Job of a scheduled time (minutes since epoch)."""
    when = parse_time(scheduled)
    return f"{cronjob}-{int(when.timestamp() // 60)}" if when else None


def spark_status(
    spec: StreamJobSpec,
    owner: Owner,
    facts: SparkFacts,
    status: Obj,
    ctx: Context,
    now: dt.datetime,
) -> Outcome:
    """Status of a Spark StreamJob from the live objects in the informer cache."""
    spark = spec.spark
    assert spark is not None
    names = SparkNames(owner.name)
    ns = owner.namespace
    suspended = spec.state == "suspended"
    if spark.mode == "streaming":
        dep = ctx.cache.get("apps/v1", "Deployment", ns, names.driver)
        ready = int(((dep or {}).get("status") or {}).get("readyReplicas") or 0)
        if suspended:
            status["jobState"] = "Suspended"
            return Outcome(status, False, Reason.JOB_SUSPENDED, "driver scaled to 0")
        status["jobState"] = "Running" if ready else "Pending"
        if ready:
            return Outcome(status, True, Reason.READY, "driver running")
        return Outcome(status, False, Reason.PROGRESSING, f"driver {names.driver} not ready yet")
    if spark.schedule:
        cron = ctx.cache.get("batch/v1", "CronJob", ns, names.cronjob)
        cstatus = (cron or {}).get("status") or {}
        status["lastRunTime"] = cstatus.get("lastScheduleTime") or status.get("lastRunTime")
        if cstatus.get("lastSuccessfulTime"):
            status["lastSuccessTime"] = cstatus["lastSuccessfulTime"]
        nxt = None if suspended else next_run(spark.schedule, now, spark.time_zone)
        status["nextScheduleTime"] = nxt.strftime("%Y-%m-%dT%H:%M:%SZ") if nxt else None
        last = _cron_job_name(names.cronjob, cstatus.get("lastScheduleTime"))
        live = ctx.cache.get("batch/v1", "Job", ns, last) if last else None
        state, when = _job_finish(live) if live else (None, None)
        if state == "Failed":
            status["lastFailureTime"] = when
        if suspended:
            status["jobState"] = "Suspended"
            return Outcome(status, False, Reason.JOB_SUSPENDED, "schedule suspended")
        if cstatus.get("active"):
            status["jobState"] = "Running"
        elif state in ("Succeeded", "Failed"):
            status["jobState"] = state
        else:
            status["jobState"] = "Scheduled"
        if cron is None:
            return Outcome(status, False, Reason.PROGRESSING, "CronJob not created yet")
        if status["jobState"] == "Failed":
            return Outcome(
                status,
                False,
                Reason.JOB_FAILING,
                f"last run {last} failed at {when}; next run {status['nextScheduleTime']}",
            )
        return Outcome(status, True, Reason.READY, f"scheduled {spark.schedule!r}")
    # one-shot batch
    if suspended:
        status["jobState"] = "Suspended"
        return Outcome(status, False, Reason.JOB_SUSPENDED, "not run while suspended")
    job_name_ = names.job(run_digest(spec, facts))
    live = ctx.cache.get("batch/v1", "Job", ns, job_name_)
    if live is None:
        status["jobState"] = "Pending"
        return Outcome(status, False, Reason.PROGRESSING, f"Job {job_name_} not created yet")
    state, when = _job_finish(live)
    status["jobState"] = state
    status["lastRunTime"] = (live.get("status") or {}).get("startTime") or status.get("lastRunTime")
    if state == "Succeeded":
        status["lastSuccessTime"] = when
        return Outcome(status, True, Reason.READY, f"Job {job_name_} succeeded")
    if state == "Failed":
        status["lastFailureTime"] = when
        return Outcome(status, False, Reason.JOB_FAILING, f"Job {job_name_} failed at {when}")
    return Outcome(status, False, Reason.PROGRESSING, f"Job {job_name_} is {state}")
