"""StreamJob: a Flink job (SQL or jar) or a Spark application, streaming or scheduled batch."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    AlertsSpec,
    ConditionList,
    ConfigMap,
    Image,
    JvmSize,
    LocalObjectReference,
    Model,
    cel,
    cel_rules,
)

# Five cron fields (minute hour day-of-month month day-of-week) or a @macro. CRON is the loose
# shape (schema pattern); CRON_STRICT also checks every number's range. No backslashes, so the
# same text is valid in CEL and in Python.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    r"((\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*|[A-Za-z]{3}(-[A-Za-z]{3})?)"
    r"( ((\*|\?|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*|[A-Za-z]{3}(-[A-Za-z]{3})?)){4})$"
)


def _cron_field(num: str, names: str | None = None, any_: str = "[*]") -> str:
    value = f"{num}(-{num})?" + (f"|{names}(-{names})?" if names else "")
    atom = f"({any_}|{value})(/[0-9]{{1,2}})?"
    return f"{atom}(,{atom})*"


_MONTHS = "(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)"
_DAYS = "(SUN|MON|TUE|WED|THU|FRI|SAT)"
CRON_STRICT = (
    "(?i)^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + " ".join(
        (
            _cron_field("([0-5]?[0-9])"),
            _cron_field("([01]?[0-9]|2[0-3])"),
            _cron_field("(0?[1-9]|[12][0-9]|3[01])", any_="[*?]"),
            _cron_field("(0?[1-9]|1[0-2])", _MONTHS),
            _cron_field("[0-7]", _DAYS, any_="[*?]"),
        )
    )
    + ")$"
)
CRON_MESSAGE = (
    "spark.schedule: not a valid cron expression (minute 0-59, hour 0-23, day 1-31, "
    "month 1-12 or JAN-DEC, weekday 0-7 or SUN-SAT; or @hourly/@daily/@weekly/@monthly/@yearly)"
)
URI = r"^(local|file|s3|s3a|https?|hdfs)://.+"
TOPIC = r"^[a-zA-Z0-9._-]{1,249}$"
# A jar for a session cluster is uploaded by the operator: it must be readable from there.
JAR_URI = r"^(file|https?)://.+"

# Flink settings the operator derives from the spec; setting them in `config` (or with SET in
# the SQL) would break job identity, upgrades or state placement, so they are refused.
RESERVED_FLINK_KEYS = (
    "pipeline.name",
    "$internal.pipeline.job-id",
    "parallelism.default",
    "execution.savepoint.path",
    "execution.state-recovery.path",
    "execution.savepoint.ignore-unclaimed-state",
    "execution.state-recovery.ignore-unclaimed-state",
    "execution.checkpointing.dir",
    "execution.checkpointing.savepoint-dir",
    "execution.checkpointing.interval",
    "execution.checkpointing.mode",
    "execution.checkpointing.externalized-checkpoint-retention",
    "state.checkpoints.dir",
    "state.savepoints.dir",
)
RESERVED_FLINK_MESSAGE = (
    "flink.config: this key is set by the operator from the spec "
    "(parallelism, checkpointing, upgrades)"
)
_RESERVED_CEL = "[" + ", ".join(f"'{k}'" for k in RESERVED_FLINK_KEYS) + "]"
# `SET 'key' = ...` inside the SQL for one of those keys.
_RESERVED_SET_RE = (
    "(?i)^[[:space:]]*SET[[:space:]]+'("
    + "|".join(k.replace(".", "[.]").replace("$", "[$]") for k in RESERVED_FLINK_KEYS)
    + ")'"
)
RESERVED_SET_MESSAGE = (
    "flink.sql: SET of a key the operator derives from the spec "
    "(parallelism, checkpointing, upgrades) is not allowed"
)
# Configuration keys that carry credentials: they would put a secret into the CR spec.
CREDENTIAL_KEY_RE = "(?i)^.*(secret|password|passwd|token|access[._-]?key|credential).*$"
CREDENTIAL_MESSAGE = (
    "credential keys are not accepted; S3 credentials come from the platform's object store Secret"
)


def _re2_match(pattern: str, text: str) -> bool:
    """Python's `re` for the RE2 patterns above (only POSIX classes differ)."""
    return re.search(pattern.replace("[[:space:]]", r"\s"), text) is not None


def _refuse_credentials(value: dict[str, str], prefix: str) -> None:
    bad = sorted(k for k in value if _re2_match(CREDENTIAL_KEY_RE, k))
    if bad:
        raise ValueError(f"{prefix}{CREDENTIAL_MESSAGE} ({', '.join(bad)})")


class FlinkJar(Model):
    """A Flink job packaged as a jar."""

    uri: Annotated[str, Field(max_length=2048, pattern=JAR_URI)]
    """Where the jar is: `https://` or `file://` (a path the operator can read). The operator
    uploads it to the session cluster's JobManager (`/jars/upload`) and runs it from there."""
    entry_class: (
        Annotated[str, Field(max_length=512, pattern=r"^[A-Za-z_$][A-Za-z0-9_$.]*$")] | None
    ) = None
    """Main class; the jar manifest's when unset."""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)] = Field(
        default_factory=list
    )
    """Program arguments."""


class Checkpointing(Model):
    """Checkpoints and savepoints."""

    interval_seconds: int = Field(default=60, ge=1, le=86400)
    """Checkpoint interval."""
    mode: Literal["EXACTLY_ONCE", "AT_LEAST_ONCE"] = "EXACTLY_ONCE"
    """Checkpointing guarantee."""
    storage: Literal["objectStore", "filesystem", "none"] = "objectStore"
    """Where checkpoints and savepoints live: the platform's object store (under
    `s3://<checkpointBucket>/<namespace>/<job>/`), a filesystem `path` shared by all Flink
    processes, or nowhere (only with upgradeMode stateless)."""
    path: Annotated[str, Field(max_length=2048, pattern=r"^(file|s3|s3a|hdfs)://.+")] | None = None
    """Base URI for storage `filesystem`."""


class FlinkJobSpec(Model):
    """A Flink job."""

    sql: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=65536)]],
            # No CEL for reserved SET statements: a regex over 64 x 64 KiB exceeds the API
            # server's rule cost budget; the model validator (offline and in the operator,
            # which then reports Stalled) enforces it.
            Field(min_length=1, max_length=64),
        ]
        | None
    ) = None
    """Flink SQL statements run in order (CREATE TABLE ... WITH (...), then INSERT INTO ...). Submitted through the SQL Gateway."""
    jar: FlinkJar | None = None
    """A jar job (submitted through the JobManager REST API)."""
    parallelism: int = Field(default=1, ge=1, le=1024)
    """Default parallelism."""
    upgrade_mode: Literal["savepoint", "last-state", "stateless"] = "savepoint"
    """How a running job is upgraded on a spec change: stop with a savepoint and resume from it,
    resume from the latest checkpoint, or start from scratch."""
    checkpointing: Checkpointing = Field(
        default_factory=Checkpointing, json_schema_extra={"default": {}}
    )
    """Checkpoints and savepoints."""
    allow_non_restored_state: bool = False
    """Allow resuming from a savepoint with state the new job no longer uses."""
    config: ConfigMap = Field(
        default_factory=dict,
        json_schema_extra=cel_rules(
            cel(f"self.all(k, !(k in {_RESERVED_CEL}))", RESERVED_FLINK_MESSAGE),
            cel(
                f"self.all(k, !k.matches('{CREDENTIAL_KEY_RE}'))",
                "flink.config: " + CREDENTIAL_MESSAGE,
            ),
        ),
    )
    """Job-level Flink configuration (e.g. `table.exec.mini-batch.enabled`,
    `restart-strategy.type`). Keys the operator derives from the spec are refused."""

    @field_validator("config")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if k in RESERVED_FLINK_KEYS)
        if bad:
            raise ValueError(f"{RESERVED_FLINK_MESSAGE}: {', '.join(bad)}")
        _refuse_credentials(value, "flink.config: ")
        return value

    @field_validator("sql")
    @classmethod
    def _no_reserved_set(cls, value: list[str] | None) -> list[str] | None:
        for statement in value or []:
            if _re2_match(_RESERVED_SET_RE, statement):
                raise ValueError(RESERVED_SET_MESSAGE)
        return value

    @model_validator(mode="after")
    def _one_program(self) -> FlinkJobSpec:
        if (self.sql is None) == (self.jar is None):
            raise ValueError("flink: exactly one of 'sql' and 'jar' must be set")
        if self.upgrade_mode != "stateless" and self.checkpointing.storage == "none":
            raise ValueError(
                "flink.upgradeMode: savepoint and last-state need checkpointing.storage objectStore or filesystem"
            )
        if self.checkpointing.storage == "filesystem" and not self.checkpointing.path:
            raise ValueError("flink.checkpointing.path: storage 'filesystem' requires a path")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "has(self.sql) != has(self.jar)",
                "flink: exactly one of 'sql' and 'jar' must be set",
            ),
            cel(
                "self.upgradeMode == 'stateless' || self.checkpointing.storage != 'none'",
                "flink.upgradeMode: savepoint and last-state need checkpointing.storage objectStore or filesystem",
                field_path=".upgradeMode",
            ),
            cel(
                "self.checkpointing.storage != 'filesystem' || has(self.checkpointing.path)",
                "flink.checkpointing.path: storage 'filesystem' requires a path",
                field_path=".checkpointing.path",
            ),
        )
    }


class SparkApplication(Model):
    """The program Spark runs."""

    type: Literal["python", "jvm"] = "python"
    """Python file or JVM jar."""
    file: Annotated[str, Field(max_length=2048, pattern=URI)]
    """Main file: `local:///opt/app/etl.py` (inside the image), `s3a://...`, `https://...`."""
    main_class: (
        Annotated[str, Field(max_length=512, pattern=r"^[A-Za-z_$][A-Za-z0-9_$.]*$")] | None
    ) = None
    """Main class (jvm only)."""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)] = Field(
        default_factory=list
    )
    """Program arguments."""


class SparkProcess(Model):
    """Driver or executor sizing."""

    cores: int = Field(default=1, ge=1, le=64)
    """CPU cores."""
    memory: JvmSize = "1g"
    """Heap memory in Spark notation, e.g. `2g`."""


class SparkExecutors(SparkProcess):
    """Executor sizing."""

    instances: int = Field(default=2, ge=1, le=1000)
    """Number of executors."""


class SparkJobSpec(Model):
    """A Spark application."""

    mode: Literal["batch", "streaming"] = "batch"
    """batch: runs to completion (once, or on `schedule`); streaming: a driver kept running."""
    application: SparkApplication
    """The program."""
    schedule: Annotated[str, Field(max_length=128, pattern=CRON)] | None = None
    """Cron schedule (batch only), e.g. `0 2 * * *` for the nightly ETL."""
    time_zone: Annotated[str, Field(max_length=64)] | None = None
    """Time zone of the schedule (IANA name); the controller manager's when unset."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Forbid"
    """What to do when a scheduled run is still going."""
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    """Finished runs kept."""
    failed_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    """Failed runs kept."""
    backoff_limit: int = Field(default=2, ge=0, le=100)
    """Retries of a failed submission before the run counts as failed."""
    image: Image | None = None
    """Image of the submitter, driver and executors; the platform's Spark image when unset."""
    driver: SparkProcess = Field(default_factory=SparkProcess, json_schema_extra={"default": {}})
    """Driver sizing."""
    executor: SparkExecutors = Field(
        default_factory=SparkExecutors, json_schema_extra={"default": {}}
    )
    """Executor sizing."""
    conf: ConfigMap = Field(
        default_factory=dict,
        json_schema_extra=cel_rules(
            cel(
                f"self.all(k, !k.matches('{CREDENTIAL_KEY_RE}'))",
                "spark.conf: " + CREDENTIAL_MESSAGE,
            ),
        ),
    )
    """Extra `--conf` entries. Credential keys are refused (S3 keys reach the driver and
    executors from the platform's Secret as environment variables)."""

    @field_validator("conf")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        _refuse_credentials(value, "spark.conf: ")
        return value

    @model_validator(mode="after")
    def _schedule_batch_only(self) -> SparkJobSpec:
        if self.schedule and not _re2_match(CRON_STRICT, self.schedule):
            raise ValueError(CRON_MESSAGE)
        if self.schedule and self.mode != "batch":
            raise ValueError("spark.schedule: only batch applications can be scheduled")
        if self.application.type == "jvm" and not self.application.main_class:
            raise ValueError("spark.application.mainClass: required for type 'jvm'")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                f"!has(self.schedule) || self.schedule.matches('{CRON_STRICT}')",
                CRON_MESSAGE,
                field_path=".schedule",
            ),
            cel(
                "!has(self.schedule) || self.mode == 'batch'",
                "spark.schedule: only batch applications can be scheduled",
                field_path=".schedule",
            ),
            cel(
                "self.application.type != 'jvm' || has(self.application.mainClass)",
                "spark.application.mainClass: required for type 'jvm'",
                field_path=".application.mainClass",
            ),
        )
    }


class Endpoint(Model):
    """One input or output of a job: exactly one of the fields."""

    cdc_connector_ref: LocalObjectReference | None = None
    """A CdcConnector: its change topics."""
    topic: Annotated[str, Field(pattern=TOPIC)] | None = None
    """A Kafka topic."""
    lake_zone_ref: LocalObjectReference | None = None
    """A LakeZone."""
    table: Annotated[str, Field(max_length=255)] | None = None
    """Table within the source or zone (e.g. `public.orders`), for lineage."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Endpoint:
        count = sum(x is not None for x in (self.cdc_connector_ref, self.topic, self.lake_zone_ref))
        if count != 1:
            raise ValueError("exactly one of cdcConnectorRef, topic and lakeZoneRef must be set")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "[has(self.cdcConnectorRef), has(self.topic), has(self.lakeZoneRef)].filter(x, x).size() == 1",
                "exactly one of cdcConnectorRef, topic and lakeZoneRef must be set",
            )
        )
    }


class StreamJobSpec(Model):
    """Desired state of a StreamJob."""

    platform_ref: LocalObjectReference
    """DataPlatform whose Flink or Spark runs the job."""
    engine: Literal["flink", "spark"]
    """Processing engine."""
    state: Literal["running", "suspended"] = "running"
    """running, or suspended (Flink: stopped with a savepoint that is kept; Spark: schedule suspended / driver stopped)."""
    flink: FlinkJobSpec | None = None
    """The Flink job (engine flink)."""
    spark: SparkJobSpec | None = None
    """The Spark application (engine spark)."""
    inputs: Annotated[list[Endpoint], Field(max_length=64)] = Field(default_factory=list)
    """What the job reads (for validation and lineage)."""
    outputs: Annotated[list[Endpoint], Field(max_length=64)] = Field(default_factory=list)
    """What the job writes (for validation and lineage)."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, json_schema_extra={"default": {}})
    """Alert rules for this job."""

    @model_validator(mode="after")
    def _engine_block(self) -> StreamJobSpec:
        if self.engine == "flink" and (self.flink is None or self.spark is not None):
            raise ValueError("engine 'flink' requires the 'flink' block and no 'spark' block")
        if self.engine == "spark" and (self.spark is None or self.flink is not None):
            raise ValueError("engine 'spark' requires the 'spark' block and no 'flink' block")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.engine != 'flink' || (has(self.flink) && !has(self.spark))",
                "engine 'flink' requires the 'flink' block and no 'spark' block",
                field_path=".flink",
            ),
            cel(
                "self.engine != 'spark' || (has(self.spark) && !has(self.flink))",
                "engine 'spark' requires the 'spark' block and no 'flink' block",
                field_path=".spark",
            ),
        )
    }


class LineageEdge(Model):
    """One hop of data flow."""

    source: Annotated[str, Field(max_length=1024)]
    """Upstream node, e.g. `postgres://orders-db/shop/public.orders` or `kafka://shop.public.orders`."""
    target: Annotated[str, Field(max_length=1024)]
    """Downstream node."""


class StopOperation(Model):
    """A stop of the Flink job the operator started and has not seen finish yet.

    Kept in status (not in memory) so that after an operator restart the same stop is
    followed instead of stopping twice: a savepoint trigger id is derived from job id, purpose
    and attempt, so re-sending the request is idempotent in Flink."""

    job_id: Annotated[str, Field(max_length=64)]
    """Job being stopped."""
    kind: Literal["savepoint", "cancel"]
    """Stop with a savepoint, or cancel (stateless; last-state keeps the latest checkpoint)."""
    purpose: Literal["upgrade", "suspend", "delete"]
    """Why: an upgrade (a new job follows), a suspension, or deletion of the StreamJob."""
    trigger_id: Annotated[str, Field(max_length=64)] | None = None
    """Flink savepoint trigger id (kind savepoint)."""
    attempt: int = Field(default=1, ge=1)
    """Attempt number (a failed savepoint is retried with a new trigger)."""
    started_time: str | None = None
    """When it was requested (RFC 3339)."""


class StreamJobStatus(Model):
    """Observed state of a StreamJob."""

    observed_generation: int | None = None
    """The generation the status reflects."""
    conditions: ConditionList
    """Ready, Reconciling, Stalled."""
    job_id: str | None = None
    """Flink job id of the current run."""
    job_state: Annotated[str, Field(max_length=32)] | None = None
    """Flink job state (RUNNING, FAILED, ...) or Spark run state (Scheduled, Running, Succeeded, Failed, Suspended)."""
    job_generation: int | None = None
    """Spec generation the running job was submitted for (or last confirmed against)."""
    job_spec_hash: Annotated[str, Field(max_length=64)] | None = None
    """Hash of everything the running job was submitted with; a spec change that alters it
    upgrades the job, any other change (lineage, alerts) does not."""
    job_name: Annotated[str, Field(max_length=512)] | None = None
    """Flink job name: `headwater/<namespace>/<name>/g<generation>/<hash>`."""
    submissions: int | None = None
    """Jobs submitted for this StreamJob so far (upgrades, resumes, recoveries)."""
    stop_operation: StopOperation | None = None
    """Stop (savepoint or cancel) in flight."""
    savepoint_failures: int | None = None
    """Consecutive failed savepoint attempts (reset by a successful one)."""
    next_attempt_time: str | None = None
    """Earliest time of the next automatic resubmission or savepoint retry (back-off kept in
    status, so no event or restart can make the operator retry faster)."""
    recovery_attempts: int | None = None
    """Resubmissions after the job stopped on its own (failed, cancelled outside the operator)
    without reaching a stable RUNNING since; the delay before the next one doubles with it."""
    restarts: int | None = None
    """Flink job restarts (numRestarts)."""
    last_checkpoint: str | None = None
    """Path of the latest completed checkpoint."""
    last_checkpoint_time: str | None = None
    """When lastCheckpoint completed."""
    restored_from: str | None = None
    """Savepoint or checkpoint the current job was started from (none: fresh state)."""
    last_savepoint: str | None = None
    """Path of the last good savepoint (kept when a newer one fails)."""
    last_savepoint_time: str | None = None
    """When lastSavepoint was taken."""
    failure: Annotated[str, Field(max_length=2048)] | None = None
    """Root-cause line of the latest failure."""
    last_run_time: str | None = None
    """Spark: start of the latest run."""
    last_success_time: str | None = None
    """Spark: completion of the latest successful run."""
    last_failure_time: str | None = None
    """Spark: completion of the latest failed run."""
    next_schedule_time: str | None = None
    """Spark: next scheduled run."""
    lineage: Annotated[list[LineageEdge], Field(max_length=1024)] = Field(default_factory=list)
    """Data-flow edges: source table → topic → job → zone path."""
