"""The Headwater API: one pydantic model per kind, the single source of truth of the CRDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .cdcconnector import CdcConnectorSpec, CdcConnectorStatus
from .dataplatform import DataPlatformSpec, DataPlatformStatus
from .datasource import DataSourceSpec, DataSourceStatus
from .lakezone import LakeZoneSpec, LakeZoneStatus
from .streamjob import StreamJobSpec, StreamJobStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    """Everything the CRD generator, the CLI and the operator need to know about a kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)

    def parse_spec(self, spec: dict[str, Any] | None) -> Any:
        return self.spec.model_validate(spec or {})


def _cols(*extra: PrinterColumn) -> tuple[PrinterColumn, ...]:
    ready = PrinterColumn(
        "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition"
    )
    reason = PrinterColumn(
        "Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Ready reason"
    )
    age = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Age")
    message = PrinterColumn(
        "Message",
        '.status.conditions[?(@.type=="Ready")].message',
        description="Ready message",
        priority=1,
    )
    return (ready, reason, *extra, age, message)


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        kind="DataPlatform",
        plural="dataplatforms",
        singular="dataplatform",
        short_names=("dp", "hwp"),
        spec=DataPlatformSpec,
        status=DataPlatformStatus,
        description=(
            "DataPlatform is the shared stack a namespace's pipelines run on: Kafka (KRaft), "
            "Kafka Connect with Debezium, Flink, Spark, an S3 object store and Prometheus. Each "
            "component is managed (run by the operator), external (an endpoint) or disabled."
        ),
        columns=_cols(
            PrinterColumn("Components", ".status.readyComponents", description="ready/enabled"),
            PrinterColumn(
                "Kafka",
                ".status.endpoints.kafkaBootstrapServers",
                priority=1,
                description="Kafka bootstrap servers",
            ),
        ),
    ),
    KindInfo(
        kind="DataSource",
        plural="datasources",
        singular="datasource",
        short_names=("dsrc", "hws"),
        spec=DataSourceSpec,
        status=DataSourceStatus,
        description=(
            "DataSource is a source database (PostgreSQL, MySQL, MariaDB; SQL Server and Oracle "
            "rendered only). The operator probes it for reachability and CDC prerequisites."
        ),
        columns=_cols(
            PrinterColumn("Type", ".spec.type", description="Database type"),
            PrinterColumn(
                "Reachable",
                '.status.conditions[?(@.type=="Reachable")].status',
                description="Reachable condition",
            ),
            PrinterColumn(
                "CDC",
                '.status.conditions[?(@.type=="CdcReady")].status',
                description="CdcReady condition",
            ),
        ),
    ),
    KindInfo(
        kind="CdcConnector",
        plural="cdcconnectors",
        singular="cdcconnector",
        short_names=("cdc", "hwc"),
        spec=CdcConnectorSpec,
        status=CdcConnectorStatus,
        description=(
            "CdcConnector is a Debezium change-data-capture connector registered in Kafka "
            "Connect, streaming a DataSource's tables into Kafka topics."
        ),
        columns=_cols(
            PrinterColumn("State", ".status.connectorState", description="Connector state"),
            PrinterColumn("Tasks", ".status.tasksReady", description="running/total tasks"),
            PrinterColumn("Restarts", ".status.totalRestarts", "integer", "Automatic restarts"),
        ),
    ),
    KindInfo(
        kind="StreamJob",
        plural="streamjobs",
        singular="streamjob",
        short_names=("sj", "hwj"),
        spec=StreamJobSpec,
        status=StreamJobStatus,
        description=(
            "StreamJob is a Flink job (SQL or jar, with savepoint-based upgrades) or a Spark "
            "application (streaming, or batch on a cron schedule)."
        ),
        columns=_cols(
            PrinterColumn("Engine", ".spec.engine", description="flink or spark"),
            PrinterColumn("Job", ".status.jobState", description="Job state"),
        ),
    ),
    KindInfo(
        kind="LakeZone",
        plural="lakezones",
        singular="lakezone",
        short_names=("lz", "hwz"),
        spec=LakeZoneSpec,
        status=LakeZoneStatus,
        description=(
            "LakeZone is a bronze, silver or gold zone of the data lake: a bucket (or prefix) on "
            "the platform's object store with its layout, format, retention and access."
        ),
        columns=_cols(
            PrinterColumn("Tier", ".spec.tier", description="Medallion tier"),
            PrinterColumn("Bucket", ".spec.bucket", description="Bucket"),
        ),
    ),
)

KINDS_BY_NAME: dict[str, KindInfo] = {k.kind: k for k in KINDS}


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS_BY_NAME[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(KINDS_BY_NAME)}") from None


__all__ = ["KINDS", "KINDS_BY_NAME", "KindInfo", "PrinterColumn", "kind_info"]
