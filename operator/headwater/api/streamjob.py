"""StreamJob: a Flink job (SQL or jar) or a Spark application, streaming or scheduled batch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

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

# Five cron fields (minute hour day-of-month month day-of-week) or a @macro.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    r"((\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*|[A-Za-z]{3}(-[A-Za-z]{3})?)"
    r"( ((\*|\?|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*|[A-Za-z]{3}(-[A-Za-z]{3})?)){4})$"
)
URI = r"^(local|file|s3|s3a|https?|hdfs)://.+"
TOPIC = r"^[a-zA-Z0-9._-]{1,249}$"


class FlinkJar(Model):
    """A Flink job packaged as a jar."""

    uri: Annotated[str, Field(max_length=2048, pattern=URI)]
    """Where the jar is: `local://` (inside the image), `file://`, `s3://` or `https://`."""
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
        Annotated[list[Annotated[str, Field(min_length=1, max_length=65536)]], Field(max_length=64)]
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
    config: ConfigMap = Field(default_factory=dict)
    """Job-level Flink configuration (e.g. `table.exec.mini-batch.enabled`)."""

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
    conf: ConfigMap = Field(default_factory=dict)
    """Extra `--conf` entries."""

    @model_validator(mode="after")
    def _schedule_batch_only(self) -> SparkJobSpec:
        if self.schedule and self.mode != "batch":
            raise ValueError("spark.schedule: only batch applications can be scheduled")
        if self.application.type == "jvm" and not self.application.main_class:
            raise ValueError("spark.application.mainClass: required for type 'jvm'")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
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
    """Spec generation the running job was submitted for."""
    restarts: int | None = None
    """Flink job restarts (numRestarts)."""
    last_checkpoint: str | None = None
    """Path of the latest completed checkpoint."""
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
