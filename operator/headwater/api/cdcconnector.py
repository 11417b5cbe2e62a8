"""CdcConnector: a Debezium connector registered through the Kafka Connect REST API."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .common import AlertsSpec, ConditionList, LocalObjectReference, Model, cel, cel_rules
from .datasource import SqlIdentifier, TableName

# Keys of the passthrough `config` that could carry a credential. Credentials reach Connect
# only through config providers resolved inside the worker, never in the REST payload.
CREDENTIAL_KEY = r"(?i).*(password|passwd|secret|credential|token|sasl\.jaas|private\.key|keystore\.key|api\.key|\.key$).*"
_CREDENTIAL_KEY_RE = re.compile(CREDENTIAL_KEY)
# Keys the operator owns; letting `config` override them would break the contract above.
RESERVED_KEYS = frozenset(
    {
        "connector.class",
        "database.hostname",
        "database.port",
        "database.user",
        "database.password",
        "database.dbname",
        "database.names",
        "topic.prefix",
        "name",
    }
)
TOPIC = r"^[a-zA-Z0-9._-]{1,249}$"
BACKOFF_ORDER = "autoRestart.maxBackoffSeconds must be at least initialBackoffSeconds"


class PostgresConnectorSettings(Model):
    """PostgreSQL-specific connector settings."""

    slot_name: SqlIdentifier | None = None
    """Replication slot; derived from namespace and name when unset (one slot per connector)."""
    publication_name: SqlIdentifier | None = None
    """Publication to stream from; the DataSource's `postgres.publicationName` when set there, else one per connector named like the slot."""


class MySQLConnectorSettings(Model):
    """MySQL/MariaDB-specific connector settings."""

    server_id: int | None = Field(default=None, ge=1, le=4294967295)
    """Replication client id, unique among all replicas of the source; derived from the CR's uid when unset."""


class Routing(Model):
    """Topic routing with Kafka Connect's RegexRouter."""

    topic_regex: Annotated[str, Field(min_length=1, max_length=512)]
    """Java regular expression matched against the default topic name."""
    topic_replacement: Annotated[str, Field(min_length=1, max_length=512)]
    """Replacement, may use groups (`$1`)."""


class AutoRestart(Model):
    """Restart failed connector instances and tasks by themselves."""

    enabled: bool = True
    """Restart failed instances and tasks."""
    max_restarts: int = Field(default=10, ge=0, le=10000)
    """Give up after this many restarts in a row (the counter resets once everything runs for `resetAfterSeconds`, and when the connector config changes)."""
    initial_backoff_seconds: int = Field(default=10, ge=1, le=3600)
    """The first restart happens as soon as a failure is seen; the next waits this long after it, and the wait doubles after each further restart."""
    max_backoff_seconds: int = Field(default=600, ge=1, le=86400)
    """Upper bound of the delay."""
    reset_after_seconds: int = Field(default=600, ge=60, le=86400)
    """Running this long without failure resets the restart counter."""

    @model_validator(mode="after")
    def _backoff_order(self) -> AutoRestart:
        if self.max_backoff_seconds < self.initial_backoff_seconds:
            raise ValueError(BACKOFF_ORDER)
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                # has(): the CRD's own `default: {}` is checked before defaults fill it in.
                "!has(self.maxBackoffSeconds) || !has(self.initialBackoffSeconds) || "
                "self.maxBackoffSeconds >= self.initialBackoffSeconds",
                BACKOFF_ORDER,
                field_path=".maxBackoffSeconds",
            )
        )
    }


class DeletionPolicy(Model):
    """What happens outside Kubernetes when the CdcConnector is deleted."""

    replication_slot: Literal["Retain", "Drop"] = "Retain"
    """Retain: keep the PostgreSQL replication slot and the connector's offsets in Kafka Connect, so a CdcConnector of the same name resumes where this one stopped (no new snapshot), while the server keeps WAL for the slot. Drop: also delete the connector's offsets, drop the slot and the publication the operator named for this connector (the server frees the WAL; a new connector starts with a fresh snapshot)."""


class CdcConnectorSpec(Model):
    """Desired state of a CdcConnector."""

    platform_ref: LocalObjectReference
    """DataPlatform whose Kafka Connect runs the connector."""
    source_ref: LocalObjectReference
    """DataSource to capture."""
    connector_name: Annotated[str, Field(max_length=249, pattern=r"^[a-zA-Z0-9._-]+$")] | None = (
        None
    )
    """Name in Kafka Connect; `<namespace>.<name>` when unset."""
    tables: Annotated[list[TableName], Field(min_length=1, max_length=512)]
    """Tables to capture, as `schema.table` (PostgreSQL, SQL Server, Oracle) or `database.table` (MySQL, MariaDB)."""
    topic_prefix: Annotated[str, Field(pattern=TOPIC)] | None = None
    """Prefix of the change topics (`<prefix>.<schema>.<table>`); the CR's name when unset."""
    snapshot_mode: Literal[
        "initial", "initial_only", "no_data", "never", "when_needed", "always", "recovery"
    ] = "initial"
    """Debezium snapshot.mode."""
    format: Literal["json", "avro"] = "json"
    """Record format: JSON (schemas embedded) or Avro (needs schemaRegistryUrl)."""
    schema_registry_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://.+")] | None = (
        None
    )
    """Confluent-compatible schema registry for Avro."""
    tasks_max: int = Field(default=1, ge=1, le=64)
    """tasks.max (PostgreSQL and MySQL connectors use one task)."""
    heartbeat_interval_ms: int = Field(default=10000, ge=0, le=3600000)
    """heartbeat.interval.ms; keeps the slot advancing on quiet databases (0 disables)."""
    extract_new_record_state: bool = False
    """Flatten change events to the row's new state (ExtractNewRecordState)."""
    routing: Routing | None = None
    """Rename topics with a regular expression."""
    postgres: PostgresConnectorSettings | None = None
    """PostgreSQL settings."""
    mysql: MySQLConnectorSettings | None = None
    """MySQL/MariaDB settings."""
    state: Literal["running", "paused", "stopped"] = "running"
    """Target state in Kafka Connect: running, paused (tasks kept, no records polled) or stopped (tasks shut down; config and offsets kept)."""
    auto_restart: AutoRestart = Field(
        default_factory=AutoRestart, json_schema_extra={"default": {}}
    )
    """Automatic restarts of failed instances and tasks."""
    config: Annotated[
        dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]],
        Field(max_length=256),
    ] = Field(
        default_factory=dict,
        json_schema_extra=cel_rules(
            cel(
                "self.all(k, !k.matches('" + CREDENTIAL_KEY.replace("\\", "\\\\") + "'))",
                "config: credential keys are not accepted; credentials come from the DataSource's credentialsSecretRef",
            ),
            cel(
                "self.all(k, !(k in " + str(sorted(RESERVED_KEYS)).replace("'", '"') + "))",
                "config: this key is set by the operator from sourceRef and the spec",
            ),
        ),
    )
    """Extra Debezium/Connect properties passed through as-is. Credential keys are refused."""
    deletion_policy: DeletionPolicy = Field(
        default_factory=DeletionPolicy, json_schema_extra={"default": {}}
    )
    """Clean-up on deletion."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, json_schema_extra={"default": {}})
    """Alert rules for this connector."""

    @field_validator("config")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if _CREDENTIAL_KEY_RE.match(key):
                raise ValueError(
                    "config: credential keys are not accepted; credentials come from "
                    f"the DataSource's credentialsSecretRef (key {key!r})"
                )
            if key in RESERVED_KEYS:
                raise ValueError(
                    f"config: this key is set by the operator from sourceRef and the spec ({key!r})"
                )
        return value

    @model_validator(mode="after")
    def _avro_needs_registry(self) -> CdcConnectorSpec:
        if self.format == "avro" and not self.schema_registry_url:
            raise ValueError("schemaRegistryUrl: format 'avro' requires a schema registry")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.format != 'avro' || has(self.schemaRegistryUrl)",
                "schemaRegistryUrl: format 'avro' requires a schema registry",
                field_path=".schemaRegistryUrl",
            ),
        )
    }


class TaskStatus(Model):
    """State of one connector task in Kafka Connect."""

    id: int
    """Task id."""
    state: Annotated[str, Field(max_length=32)]
    """RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED or RESTARTING."""
    worker_id: Annotated[str, Field(max_length=256)] | None = None
    """Worker running the task."""
    trace: Annotated[str, Field(max_length=1024)] | None = None
    """First line of the failure trace, and its root cause when that differs."""


class CdcConnectorStatus(Model):
    """Observed state of a CdcConnector."""

    observed_generation: int | None = None
    """The generation the status reflects."""
    conditions: ConditionList
    """Ready, Reconciling, Stalled."""
    connector_name: str | None = None
    """Name in Kafka Connect."""
    connect_url: str | None = None
    """Kafka Connect REST endpoint used."""
    connector_state: Annotated[str, Field(max_length=32)] | None = None
    """Connector instance state in Kafka Connect (RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING)."""
    trace: Annotated[str, Field(max_length=1024)] | None = None
    """First line (and root cause) of the connector instance's failure trace."""
    worker_id: Annotated[str, Field(max_length=256)] | None = None
    """Worker running the connector instance."""
    tasks: list[TaskStatus] = Field(default_factory=list, max_length=256)
    """Task states."""
    topics: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=1024)] = Field(
        default_factory=list
    )
    """Topics the connector writes (Connect's active-topics, else the expected names)."""
    restarts: int = 0
    """Automatic restarts performed since the last healthy period."""
    total_restarts: int = 0
    """Automatic restarts performed over the CR's life."""
    last_restart_time: str | None = None
    """When the operator last restarted something (RFC 3339)."""
    config_hash: str | None = None
    """Hash of the config last written to Connect (set once the connector exists there)."""
    slot_name: str | None = None
    """PostgreSQL replication slot the connector uses."""
    publication_name: str | None = None
    """PostgreSQL publication the connector streams from."""
    tasks_ready: str | None = None
    """`running/total` tasks, for the printer column."""
