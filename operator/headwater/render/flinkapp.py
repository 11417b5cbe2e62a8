"""StreamJob (engine flink) -> what the operator submits to the session cluster.

Pure: the statements, the job-level configuration and the identity of the job, computed from
the spec and the platform facts. The reconciler sends it (SQL Gateway for SQL, JobManager REST
for jars) and records it in a ConfigMap `<name>-flink-submission`, which `headwater render`
prints too.

Identity. Every job gets
  * a name `headwater/<namespace>/<name>/g<generation>/<hash>` (visible in the Flink UI);
  * a fixed job id (`$internal.pipeline.job-id`) derived from the CR's uid and the number of
    jobs submitted before it (`status.submissions`). After an operator crash between submit
    and status write, the next reconcile derives the same id, finds the job in Flink and
    adopts it; a second submission with that id is refused by Flink itself
    (DuplicateApplicationSubmission) — no duplicate job either way.
  * a spec hash: everything that changes the job. Only a change of it upgrades the job
    (a change of inputs/outputs or alerts bumps the generation but does not restart it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from .. import yamlio
from ..api.streamjob import FlinkJobSpec, StreamJobSpec
from .common import Obj, Owner, finalize, stable_hash

_JOB_START = re.compile(r"^\s*(INSERT\b|EXECUTE\b|BEGIN\s+STATEMENT\s+SET\b)", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class FlinkFacts:
    """Platform facts the plan depends on (looked up by the reconciler)."""

    checkpoint_bucket: str | None = None  # objectStore storage: s3://<bucket>/<ns>/<job>/


@dataclass(frozen=True)
class FlinkPlan:
    kind: str  # "sql" or "jar"
    spec_hash: str
    state_dir: str | None
    setup: tuple[str, ...] = ()  # SQL run before the job statement (DDL, SET, USE ...)
    job_statement: str | None = None  # the INSERT / statement set that becomes the job
    config: dict[str, str] = field(default_factory=dict)
    parallelism: int = 1
    # Compiled SQL plan (stateful SQL jobs): written once with COMPILE PLAN ... IF NOT EXISTS,
    # run with EXECUTE PLAN. Its node ids give every operator a stable uid, so a savepoint maps
    # onto the new job even when a parallelism change alters operator chaining (without uids
    # Flink hashes the chained topology and refuses the restore).
    plan_path: str | None = None

    def statements(self) -> tuple[list[str], str]:
        """(statements run first, the statement that creates the job) sent to the gateway."""
        assert self.job_statement is not None
        if self.plan_path is None:
            return list(self.setup), self.job_statement
        body = re.sub(r"^\s*EXECUTE\s+", "", self.job_statement, flags=re.IGNORECASE)
        compile_ = f"COMPILE PLAN '{self.plan_path}' IF NOT EXISTS FOR {body}"
        return [*self.setup, compile_], f"EXECUTE PLAN '{self.plan_path}'"

    @property
    def checkpoint_dir(self) -> str | None:
        return f"{self.state_dir}/checkpoints" if self.state_dir else None

    @property
    def savepoint_dir(self) -> str | None:
        return f"{self.state_dir}/savepoints" if self.state_dir else None


class PlanError(ValueError):
    """The program cannot become exactly one Flink job (reported as InvalidSpec)."""


def state_dir(flink: FlinkJobSpec, owner: Owner, facts: FlinkFacts) -> str | None:
    """Per-job base of checkpoints and savepoints."""
    cp = flink.checkpointing
    if cp.storage == "none":
        return None
    if cp.storage == "filesystem":
        assert cp.path is not None  # the model requires it
        base = cp.path.rstrip("/")
    else:
        if not facts.checkpoint_bucket:
            return None
        base = f"s3://{facts.checkpoint_bucket}"
    return f"{base}/{owner.namespace}/{owner.name}"


def _strip(statement: str) -> str:
    return _COMMENT.sub("", statement).strip().rstrip(";").strip()


def split_sql(statements: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], str]:
    """(setup statements, the one job statement). Several INSERTs become one statement set,
    so one StreamJob is always one Flink job (one id to stop, savepoint and resume)."""
    setup: list[str] = []
    jobs: list[str] = []
    for raw in statements:
        text = _strip(raw)
        if not text:
            continue
        (jobs if _JOB_START.match(text) else setup).append(text)
    if not jobs:
        raise PlanError(
            "flink.sql: no INSERT statement: a StreamJob needs at least one "
            "INSERT INTO ... (a bare SELECT has no sink and would not keep running)"
        )
    if len(jobs) == 1:
        return tuple(setup), jobs[0]
    if any(not j.upper().startswith("INSERT") for j in jobs):
        raise PlanError("flink.sql: use either one statement set or plain INSERT statements")
    return tuple(setup), "EXECUTE STATEMENT SET BEGIN\n" + ";\n".join(jobs) + ";\nEND"


def job_config(flink: FlinkJobSpec, base: str | None) -> dict[str, str]:
    """Job-level Flink configuration (no identity or restore keys: those are per submission)."""
    cp = flink.checkpointing
    conf = {
        "parallelism.default": str(flink.parallelism),
        "execution.checkpointing.interval": f"{cp.interval_seconds}s",
        "execution.checkpointing.mode": cp.mode,
    }
    if base:
        conf.update(
            {
                "execution.checkpointing.dir": f"{base}/checkpoints",
                "execution.checkpointing.savepoint-dir": f"{base}/savepoints",
                # Kept on cancel so last-state upgrades and recovery from an external cancel
                # can restore from the latest checkpoint.
                "execution.checkpointing.externalized-checkpoint-retention": (
                    "RETAIN_ON_CANCELLATION"
                ),
            }
        )
    conf.update(flink.config)
    return conf


def flink_plan(spec: StreamJobSpec, owner: Owner, facts: FlinkFacts) -> FlinkPlan:
    flink = spec.flink
    assert flink is not None
    base = state_dir(flink, owner, facts)
    config = job_config(flink, base)
    program: Any = (
        {"sql": list(flink.sql or [])} if flink.jar is None else {"jar": flink.jar.wire()}
    )
    digest = stable_hash(program, config, flink.allow_non_restored_state, length=12)
    if flink.jar is not None:
        return FlinkPlan("jar", digest, base, config=config, parallelism=flink.parallelism)
    setup, job = split_sql(flink.sql or [])
    plan_path = None
    if base is not None:
        # Keyed by what shapes the plan (SQL and the user's table options), not parallelism.
        key = stable_hash(list(flink.sql or []), flink.config, length=16)
        plan_path = f"{base}/plans/{key}.json"
    return FlinkPlan(
        "sql",
        digest,
        base,
        setup,
        job,
        config=config,
        parallelism=flink.parallelism,
        plan_path=plan_path,
    )


def job_name(owner: Owner, generation: int, spec_hash: str) -> str:
    return f"headwater/{owner.namespace}/{owner.name}/g{generation}/{spec_hash[:8]}"


def parse_job_name(name: str) -> tuple[str, str, int, str] | None:
    """(namespace, name, generation, hash) from a job name this module made."""
    m = re.fullmatch(r"headwater/([^/]+)/([^/]+)/g([0-9]+)/([0-9a-f]+)", name)
    return (m.group(1), m.group(2), int(m.group(3)), m.group(4)) if m else None


def job_id(uid: str, sequence: int) -> str:
    """Fixed Flink job id (32 hex chars) of the `sequence`-th job of the CR with `uid`."""
    return hashlib.sha256(f"{uid}/{sequence}".encode()).hexdigest()[:32]


def trigger_id(job: str, purpose: str, attempt: int) -> str:
    """Idempotent savepoint trigger id: re-sending the same stop request is a no-op in Flink."""
    return hashlib.sha256(f"{job}/{purpose}/{attempt}".encode()).hexdigest()[:32]


def submission_config(
    plan: FlinkPlan, name: str, job: str, restore: str | None, allow_non_restored: bool
) -> dict[str, str]:
    """Everything sent with one submission: the plan's config plus identity and restore."""
    conf = dict(plan.config)
    conf["pipeline.name"] = name
    conf["$internal.pipeline.job-id"] = job
    if restore:
        conf["execution.state-recovery.path"] = restore
        conf["execution.state-recovery.ignore-unclaimed-state"] = str(allow_non_restored).lower()
    return conf


def render_submission(spec: StreamJobSpec, owner: Owner, facts: FlinkFacts) -> Obj:
    """A ConfigMap recording what the operator submits to Flink (statements or jar, job
    configuration, state directories). Applied beside the job so `kubectl get configmap
    <job>-flink-submission -o yaml` shows exactly what runs; Flink never reads it. It holds no
    credentials (the API refuses credential keys in flink.config)."""
    flink = spec.flink
    assert flink is not None
    plan = flink_plan(spec, owner, facts)
    job: Obj = {
        "submitTo": "sqlGateway" if plan.kind == "sql" else "jobManagerRest",
        "specHash": plan.spec_hash,
        "upgradeMode": flink.upgrade_mode,
        "parallelism": plan.parallelism,
        "checkpointDir": plan.checkpoint_dir,
        "savepointDir": plan.savepoint_dir,
    }
    if flink.jar is not None:
        job["jar"] = flink.jar.wire()
    data = {
        "job.yaml": yamlio.dump({k: v for k, v in job.items() if v is not None}),
        "flink-conf.yaml": yamlio.dump(dict(sorted(plan.config.items()))),
    }
    if plan.kind == "sql":
        setup, job_statement = plan.statements()
        data["statements.sql"] = ";\n\n".join([*setup, job_statement]) + ";\n"
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": submission_name(owner.name)},
        "data": data,
    }
    return finalize(obj, owner, "flink-job")


def submission_name(owner_name: str) -> str:
    return f"{owner_name[:234]}-flink-submission"
