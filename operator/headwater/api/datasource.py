"""DataSource: a source database, probed for reachability and CDC prerequisites."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    AlertsSpec,
    ConditionList,
    CredentialsSecretReference,
    Model,
    SecretKeyReference,
    cel,
    cel_rules,
)

SourceType = Literal["postgres", "mysql", "mariadb", "sqlserver", "oracle"]
DEFAULT_PORTS: dict[str, int] = {
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "sqlserver": 1433,
    "oracle": 1521,
}
# Types the operator can probe. The others are rendered into Debezium configs only.
PREFLIGHT_TYPES = frozenset({"postgres", "mysql", "mariadb"})

PUBLICATION_NAME_REQUIRED = (
    "postgres.publicationName: publicationAutocreateMode 'disabled' needs the name of an "
    "existing publication"
)

HOSTNAME = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$"
TableName = Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")]
SqlIdentifier = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z_][a-z0-9_]*$")]


class SourceTLS(Model):
    """TLS towards the database."""

    mode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    """libpq-style SSL mode, used by the preflight and mapped to each Debezium connector's equivalent (MySQL `database.ssl.mode`, MariaDB, SQL Server `database.encrypt`)."""
    ca_secret_ref: SecretKeyReference | None = None
    """CA certificate (PEM) for verify-ca / verify-full. The preflight uses it; PostgreSQL connectors read it as a file in the Connect workers (see docs/cdc.md), MySQL/MariaDB workers need it in their JVM trust store."""


class PostgresSettings(Model):
    """PostgreSQL logical-decoding settings shared by this source's connectors."""

    publication_name: SqlIdentifier | None = None
    """Publication every connector of this source streams from. Unset (recommended): each
    CdcConnector gets its own publication, named like its replication slot, which Debezium
    keeps in sync with that connector's tables. Set it to share one publication you manage
    (with `publicationAutocreateMode: disabled` or `all_tables`): in `filtered` mode Debezium
    rewrites a publication's table list to the connector's own, so two connectors with
    different tables must not share one."""
    plugin_name: Literal["pgoutput", "decoderbufs"] = "pgoutput"
    """Logical decoding plugin (pgoutput ships with PostgreSQL 10+)."""
    publication_autocreate_mode: Literal["all_tables", "filtered", "no_tables", "disabled"] = (
        "filtered"
    )
    """How Debezium creates the publication when missing (`disabled`: it must exist and list the tables)."""

    @model_validator(mode="after")
    def _disabled_needs_name(self) -> PostgresSettings:
        if self.publication_autocreate_mode == "disabled" and self.publication_name is None:
            raise ValueError(PUBLICATION_NAME_REQUIRED)
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.publicationAutocreateMode != 'disabled' || has(self.publicationName)",
                PUBLICATION_NAME_REQUIRED,
                field_path=".publicationName",
            )
        )
    }


class MySQLSettings(Model):
    """MySQL/MariaDB binlog settings."""

    require_gtid: bool = False
    """Fail preflight when GTID mode is off (recommended for failover)."""


class PreflightSpec(Model):
    """How often CDC prerequisites are probed."""

    enabled: bool = True
    """Run the preflight."""
    interval_seconds: int = Field(default=300, ge=30, le=86400)
    """Seconds between two probes of a healthy source (failures are retried sooner)."""


class DataSourceSpec(Model):
    """Desired state of a DataSource."""

    type: SourceType
    """Database type. postgres, mysql and mariadb are probed; sqlserver and oracle are only rendered into Debezium configs. mariadb uses Debezium's MariaDB connector (Debezium 3's MySQL connector no longer supports MariaDB)."""
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME)]
    """Host name or IP address of the database server."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port; the type's default (5432, 3306, 1433, 1521) when unset."""
    database: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_$-]+$")]
    """Database holding the captured tables (PostgreSQL, SQL Server, Oracle service name); for MySQL/MariaDB the database the preflight logs into (connectors capture the databases named in their tables)."""
    credentials_secret_ref: CredentialsSecretReference
    """Secret with the CDC user's name and password. Plain-text passwords are not accepted anywhere."""
    tls: SourceTLS = Field(default_factory=SourceTLS, json_schema_extra={"default": {}})
    """TLS settings."""
    postgres: PostgresSettings | None = None
    """PostgreSQL settings (type postgres only)."""
    mysql: MySQLSettings | None = None
    """MySQL/MariaDB settings (types mysql and mariadb only)."""
    tables: Annotated[list[TableName], Field(max_length=512)] = Field(default_factory=list)
    """`schema.table` (PostgreSQL) or `database.table` (MySQL) names the preflight checks exist and have a primary key."""
    preflight: PreflightSpec = Field(
        default_factory=PreflightSpec, json_schema_extra={"default": {}}
    )
    """Preflight schedule."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, json_schema_extra={"default": {}})
    """Alert rules for this source (ResourceNotReady, HighPipelineErrorRate)."""

    @model_validator(mode="after")
    def _type_blocks(self) -> DataSourceSpec:
        if self.postgres is not None and self.type != "postgres":
            raise ValueError("postgres: settings are only allowed with type 'postgres'")
        if self.mysql is not None and self.type not in ("mysql", "mariadb"):
            raise ValueError("mysql: settings are only allowed with type 'mysql' or 'mariadb'")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.type]

    @property
    def postgres_settings(self) -> PostgresSettings:
        return self.postgres or PostgresSettings()

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.postgres) || self.type == 'postgres'",
                "postgres: settings are only allowed with type 'postgres'",
                field_path=".postgres",
            ),
            cel(
                "!has(self.mysql) || self.type == 'mysql' || self.type == 'mariadb'",
                "mysql: settings are only allowed with type 'mysql' or 'mariadb'",
                field_path=".mysql",
            ),
        )
    }


class PreflightCheck(Model):
    """One CDC prerequisite as observed on the server."""

    name: Annotated[str, Field(max_length=64)]
    """Check name, e.g. `wal_level`."""
    status: Literal["Pass", "Fail", "Warn", "Skipped"]
    """Outcome."""
    observed: Annotated[str, Field(max_length=1024)] = ""
    """Value seen on the server."""
    expected: Annotated[str, Field(max_length=1024)] = ""
    """Value Debezium needs."""
    hint: Annotated[str, Field(max_length=1024)] = ""
    """One line on how to fix it."""


class DataSourceStatus(Model):
    """Observed state of a DataSource."""

    observed_generation: int | None = None
    """The generation the status reflects."""
    conditions: ConditionList
    """Reachable, CdcReady, Ready, Reconciling, Stalled."""
    endpoint: str | None = None
    """`host:port/database` probed."""
    server_version: str | None = None
    """Version string the server reported."""
    checks: Annotated[
        list[PreflightCheck],
        Field(
            default_factory=list,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ]
    """Preflight checks of the last probe."""
    checks_changed_time: str | None = None
    """When the preflight result last changed (RFC 3339). Probes that find the same result
    leave the status alone, so a healthy source costs no API writes."""
    failed_checks: int | None = None
    """Number of failed checks, for the printer column."""
