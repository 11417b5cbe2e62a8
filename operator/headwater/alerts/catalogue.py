"""Every alert rule Headwater generates: what it watches, its defaults, and which exporter's
metrics it needs.

A rule is a small record plus a function that writes its PromQL for one resource. The
function returns None when the rule does not apply to that resource (a disabled component,
an external one whose metrics cannot be told apart from other clusters', a Flink job not
submitted yet): "not applicable" is decided here, in one place, instead of by emitting a
rule that can never fire.

Series are selected by labels that identify the resource:
  * the operator's own metrics carry `kind`, `namespace` and `name` (scrape the operator with
    `honor_labels: true` so they survive);
  * metrics of managed components carry `namespace` and `platform` (set by the generated
    scrape configs and ServiceMonitors), plus the exporter's own labels (`connector`,
    `job_id`, ...). Components in external mode are selected by the exporter labels only.
No I/O here: `Target` carries the facts the service looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.dataplatform import DataPlatformSpec
from ..constants import ALERT_RULE_NAMES

Severity = Literal["critical", "warning", "info"]
# Shown in annotations: the value that triggered, readable.
VALUE = "{{ $value | humanize }}"
PERCENT = "{{ $value | humanize }}%"
DURATION = "{{ $value | humanizeDuration }}"


@dataclass(frozen=True)
class Target:
    """What a rule expression needs to know about one custom resource."""

    kind: str
    namespace: str
    name: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    # Platform the resource runs on (the DataPlatform itself for kind DataPlatform).
    platform: str | None = None
    platform_spec: DataPlatformSpec | None = None

    @property
    def resource(self) -> dict[str, str]:
        """Selector of the operator's per-resource series."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}

    def component_scope(self, component: str) -> dict[str, str] | None:
        """Selector of a platform component's exporter series: scoped to the platform when
        the component is managed, unscoped (exporter labels only) when external, None when
        disabled or when the platform is unknown."""
        if self.platform_spec is None or self.platform is None:
            return None
        attr = {"objectStore": "object_store"}.get(component, component)
        mode = getattr(self.platform_spec, attr).mode
        if mode == "managed":
            return {"namespace": self.namespace, "platform": self.platform}
        if mode == "external":
            return {}
        return None

    def component_mode(self, component: str) -> str | None:
        if self.platform_spec is None:
            return None
        attr = {"objectStore": "object_store"}.get(component, component)
        return str(getattr(self.platform_spec, attr).mode)


Expr = Callable[[Target, float | None], str | None]


@dataclass(frozen=True)
class RuleDef:
    """One alert rule of the catalogue."""

    alert: str
    kinds: tuple[str, ...]
    expr: Expr
    summary: str
    description: str
    runbook: str
    exporter: str
    severity: Severity = "warning"
    for_: str = "5m"
    threshold: float | None = None
    unit: str = ""
    # Generated only when the user sets a threshold (no universal default exists).
    opt_in: bool = False


# --- selectors --------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def sel(labels: Mapping[str, str] | None = None, **more: str) -> str:
    """A PromQL label selector, e.g. `{namespace="shop",platform="shop"}`."""
    items = {**(labels or {}), **more}
    if not items:
        return ""
    return "{" + ",".join(f"{k}={_quote(v)}" for k, v in items.items()) + "}"


def num(value: float) -> str:
    """A threshold as PromQL prints it (no trailing `.0`)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _component_down(component: str, job: str, replicas: int, label: str) -> Expr:
    """Managed: fewer healthy scrape targets than replicas. External: the operator's
    reachability probe of the endpoint failed."""

    def expr(t: Target, threshold: float | None) -> str | None:
        scope = t.component_scope(component)
        if scope is None:
            return None
        if scope:
            # A pod that is not ready stays a target (static names, or DNS that publishes
            # not-ready addresses) with up == 0; no series at all means nothing is scraped,
            # which PrometheusTargetDown and ResourceNotReady report instead of a false alarm.
            return f"{replicas} - sum(up{sel(scope, job=job)}) > {num(threshold or 0)}"
        ready = sel(namespace=t.namespace, name=t.name, component=component)
        return f"1 - max(headwater_platform_component_ready{ready}) > 0"

    expr.__doc__ = f"{label} down"
    return expr


def _replicas(t: Target, component: str) -> int:
    ps = t.platform_spec
    if ps is None:
        return 1
    if component == "kafka":
        return ps.kafka.managed.replicas
    if component == "connect":
        return ps.connect.managed.replicas
    if component == "flink":
        return ps.flink.managed.job_manager.replicas
    return 1


# --- operator (every kind) ---------------------------------------------------------------------


def held_on_purpose(t: Target) -> bool:
    """Paused reconciliation, a paused or stopped connector, a suspended job: the resource
    reports Ready=False by design, and its data naturally stops flowing."""
    spec = t.spec
    if spec.get("paused"):
        return True
    if t.kind in ("CdcConnector", "StreamJob"):
        return bool(spec.get("state", "running") != "running")
    return False


def _not_ready(t: Target, _: float | None) -> str | None:
    if held_on_purpose(t):
        return None
    return f"max(headwater_resource_ready{sel(t.resource)}) == 0"


def _error_rate(t: Target, threshold: float | None) -> str:
    return (
        f"sum(rate(headwater_resource_errors_total{sel(t.resource)}[5m])) > {num(threshold or 0)}"
    )


# --- DataPlatform ------------------------------------------------------------------------------


def _kafka_down(t: Target, threshold: float | None) -> str | None:
    return _component_down("kafka", "kafka", _replicas(t, "kafka"), "Kafka")(t, threshold)


def _connect_down(t: Target, threshold: float | None) -> str | None:
    return _component_down("connect", "kafka-connect", _replicas(t, "connect"), "Connect")(
        t, threshold
    )


def _flink_jm_down(t: Target, threshold: float | None) -> str | None:
    return _component_down("flink", "flink-jobmanager", _replicas(t, "flink"), "JobManager")(
        t, 0 if threshold is None else threshold
    )


def _managed_only(component: str, build: Callable[[dict[str, str], float], str]) -> Expr:
    """Rules on exporter metrics of a managed component (external ones are not ours to scope)."""

    def expr(t: Target, threshold: float | None) -> str | None:
        scope = t.component_scope(component)
        return build(scope, threshold or 0) if scope else None

    return expr


_under_replicated = _managed_only(
    "kafka",
    lambda s, th: f"sum(kafka_server_replicamanager_underreplicatedpartitions{sel(s)}) > {num(th)}",
)
_offline = _managed_only(
    "kafka",
    lambda s, th: (
        f"sum(kafka_controller_kafkacontroller_offlinepartitionscount{sel(s)}) > {num(th)}"
    ),
)
_consumer_lag = _managed_only(
    "kafka",
    lambda s, th: f"sum by (consumergroup) (kafka_consumergroup_lag{sel(s)}) > {num(th)}",
)


def _capacity_expr(scope: dict[str, str], threshold: float) -> str:
    # Every MinIO node reports the cluster totals: max() reads them once.
    free = f"max(minio_cluster_capacity_usable_free_bytes{sel(scope)})"
    total = f"max(minio_cluster_capacity_usable_total_bytes{sel(scope)})"
    return f"100 * (1 - {free} / {total}) > {num(threshold)}"


_store_capacity = _managed_only("objectStore", _capacity_expr)


def _target_down(t: Target, _: float | None) -> str | None:
    if t.component_mode("monitoring") == "disabled":
        return None
    return f"up{sel(namespace=t.namespace, platform=t.name)} == 0"


# --- CdcConnector ------------------------------------------------------------------------------


def connector_name(t: Target) -> str:
    """Name of the connector in Kafka Connect (status first: it is what the reconciler used)."""
    return str(
        t.status.get("connectorName") or t.spec.get("connectorName") or f"{t.namespace}.{t.name}"
    )


def topic_prefix(t: Target) -> str:
    """Debezium's logical server name (`topic.prefix`): the `name` label of its JMX metrics."""
    return str(t.spec.get("topicPrefix") or t.name)


def _connector_failed(t: Target, _: float | None) -> str:
    parts = [
        f"max(headwater_cdc_connector_failed_units{sel(namespace=t.namespace, name=t.name)}) > 0"
    ]
    scope = t.component_scope("connect")
    if scope is not None:
        conn = {**scope, "connector": connector_name(t)}
        parts.append(f"max(kafka_connect_connector_status{sel(conn, status='failed')}) > 0")
        parts.append(f"max(kafka_connect_worker_connector_failed_task_count{sel(conn)}) > 0")
    return " or ".join(parts)


def _debezium(metric: str) -> Expr:
    def expr(t: Target, threshold: float | None) -> str | None:
        scope = t.component_scope("connect")
        if scope is None or held_on_purpose(t):
            return None
        labels = {**scope, "context": "streaming", "name": topic_prefix(t)}
        return f"max(debezium_metrics_{metric}{sel(labels)}) / 1000 > {num(threshold or 0)}"

    return expr


# --- StreamJob ---------------------------------------------------------------------------------


def _job_running(t: Target, _: float | None) -> str | None:
    if held_on_purpose(t):
        return None
    return f"max(headwater_streamjob_running{sel(namespace=t.namespace, name=t.name)}) == 0"


def _flink_job(t: Target) -> dict[str, str] | None:
    """Selector of the job's Flink metrics: its job id once submitted."""
    if t.spec.get("engine") != "flink" or not t.status.get("jobId"):
        return None
    scope = t.component_scope("flink")
    return {**(scope or {}), "job_id": str(t.status["jobId"])}


def _restarting(t: Target, threshold: float | None) -> str | None:
    if t.spec.get("engine") != "flink":
        return None
    th = num(threshold or 0)
    ours = sel(namespace=t.namespace, name=t.name)
    parts = [f"max(increase(headwater_streamjob_restarts{ours}[15m])) > {th}"]
    job = _flink_job(t)
    if job is not None:
        parts.insert(0, f"max(increase(flink_jobmanager_job_numRestarts{sel(job)}[15m])) > {th}")
    return " or ".join(parts)


def _checkpoint_failures(t: Target, threshold: float | None) -> str | None:
    job = _flink_job(t)
    if job is None:
        return None
    metric = "flink_jobmanager_job_numberOfFailedCheckpoints"
    return f"max(increase({metric}{sel(job)}[15m])) > {num(threshold or 0)}"


def _job_lag(t: Target, threshold: float | None) -> str | None:
    job = _flink_job(t)
    if job is None:
        return None
    metric = "flink_taskmanager_job_task_operator_pendingRecords"
    return f"sum({metric}{sel(job)}) > {num(threshold or 0)}"


# --- LakeZone ----------------------------------------------------------------------------------


def _stale(t: Target, threshold: float | None) -> str:
    ts = f"max(headwater_lakezone_last_object_timestamp_seconds{sel(namespace=t.namespace, name=t.name)})"
    return f"time() - {ts} > {num(threshold or 0)}"


_zone_capacity = _managed_only("objectStore", _capacity_expr)


def _zone_size(t: Target, threshold: float | None) -> str:
    size = f"max(headwater_lakezone_size_bytes{sel(namespace=t.namespace, name=t.name)})"
    return f"{size} / 1073741824 > {num(threshold or 0)}"


# --- the catalogue -----------------------------------------------------------------------------

# Every kind the operator reconciles: each reports Ready and counts its errors in the
# operator's metrics, so each gets the operator-level rules. A DataSource has only those (its
# preflight failures already make it not Ready) and no `spec.alerts` field yet, so its rules
# always carry the defaults; it is on no platform of its own (see files.py for where its
# rules go in a managed Prometheus).
ALL = ("DataPlatform", "DataSource", "CdcConnector", "StreamJob", "LakeZone")
OPERATOR = "the Headwater operator's /metrics (scraped with honor_labels)"
KAFKA_JMX = "Prometheus JMX exporter on the Kafka brokers (managed Kafka)"
CONNECT_JMX = (
    "Prometheus JMX exporter on the Kafka Connect workers (Kafka Connect and Debezium MBeans)"
)
FLINK = "Flink PrometheusReporter (metrics.reporter.prom)"
MINIO = "MinIO cluster metrics (/minio/v2/metrics/cluster)"
KAFKA_EXPORTER = "kafka-exporter (kafka_consumergroup_lag)"


def fill(text: str, t: Target) -> str:
    """Put the resource's identity into a summary/description/runbook text. Plain
    replacement, not str.format: the texts also hold Prometheus `{{ $value }}` templates."""
    values = {
        "{kind}": t.kind,
        "{kind_lower}": t.kind.lower(),
        "{namespace}": t.namespace,
        "{name}": t.name,
        "{platform}": t.platform or "",
    }
    for key, value in values.items():
        text = text.replace(key, value)
    return text


CATALOGUE: tuple[RuleDef, ...] = (
    RuleDef(
        alert="ResourceNotReady",
        kinds=ALL,
        expr=_not_ready,
        severity="warning",
        for_="15m",
        summary="{kind} {namespace}/{name} is not Ready",
        description=(
            "{kind} {namespace}/{name} has not been Ready for {for}; its Ready condition says why."
        ),
        runbook="kubectl -n {namespace} describe {kind_lower} {name}: read the Ready condition's reason and message and the Events.",
        exporter=OPERATOR,
    ),
    RuleDef(
        alert="HighPipelineErrorRate",
        kinds=ALL,
        expr=_error_rate,
        severity="warning",
        for_="2m",
        threshold=0.01,
        unit="errors per second",
        summary="{kind} {namespace}/{name}: reconcile and data-plane errors",
        description=(
            "The operator sees " + VALUE + " errors per second (5m average) while "
            "reconciling {kind} {namespace}/{name} (API or data-plane calls failing)."
        ),
        runbook="kubectl -n {namespace} get events --field-selector involvedObject.name={name}; the operator log lines carry kind/namespace/name.",
        exporter=OPERATOR,
    ),
    RuleDef(
        alert="KafkaBrokerDown",
        kinds=("DataPlatform",),
        expr=_kafka_down,
        severity="critical",
        for_="5m",
        threshold=0,
        unit="brokers down tolerated",
        summary="Kafka of platform {namespace}/{name}: brokers down",
        description=(
            "Kafka of DataPlatform {namespace}/{name}: " + VALUE + " broker(s) not answering "
            "(managed: scrape targets down or missing; external: bootstrap servers unreachable)."
        ),
        runbook="kubectl -n {namespace} get pods -l app.kubernetes.io/instance={name}-kafka; check the broker logs and the PVCs.",
        exporter=KAFKA_JMX + "; external mode: " + OPERATOR,
    ),
    RuleDef(
        alert="KafkaUnderReplicatedPartitions",
        kinds=("DataPlatform",),
        expr=_under_replicated,
        severity="warning",
        for_="10m",
        threshold=0,
        unit="partitions",
        summary="Kafka of platform {namespace}/{name}: under-replicated partitions",
        description=(
            "Kafka of DataPlatform {namespace}/{name} has " + VALUE + " under-replicated "
            "partitions: a broker is down or cannot keep up."
        ),
        runbook="Find the lagging broker (kafka_server_replicamanager_underreplicatedpartitions by pod); check its disk and network.",
        exporter=KAFKA_JMX,
    ),
    RuleDef(
        alert="KafkaOfflinePartitions",
        kinds=("DataPlatform",),
        expr=_offline,
        severity="critical",
        for_="1m",
        threshold=0,
        unit="partitions",
        summary="Kafka of platform {namespace}/{name}: offline partitions",
        description=(
            "Kafka of DataPlatform {namespace}/{name} has " + VALUE + " partitions without a "
            "leader: producers and consumers of them are stuck."
        ),
        runbook="Bring the brokers holding those partitions back; never enable unclean leader election without weighing data loss.",
        exporter=KAFKA_JMX,
    ),
    RuleDef(
        alert="KafkaConsumerLag",
        kinds=("DataPlatform",),
        expr=_consumer_lag,
        severity="warning",
        for_="5m",
        threshold=100000,
        unit="messages",
        summary="Kafka consumer group lag is high",
        description=(
            "Consumer group {{ $labels.consumergroup }} on Kafka of DataPlatform "
            "{namespace}/{name} is " + VALUE + " messages behind."
        ),
        runbook="Check the consuming StreamJob (its restarts and checkpoints) or scale its parallelism.",
        exporter=KAFKA_EXPORTER,
    ),
    RuleDef(
        alert="ConnectWorkerDown",
        kinds=("DataPlatform",),
        expr=_connect_down,
        severity="critical",
        for_="5m",
        threshold=0,
        unit="workers down tolerated",
        summary="Kafka Connect of platform {namespace}/{name}: workers down",
        description=(
            "Kafka Connect of DataPlatform {namespace}/{name}: " + VALUE + " worker(s) not "
            "answering; CDC connectors stop or rebalance."
        ),
        runbook="kubectl -n {namespace} get pods -l app.kubernetes.io/instance={name}-connect; read the worker logs.",
        exporter=CONNECT_JMX + "; external mode: " + OPERATOR,
    ),
    RuleDef(
        alert="FlinkJobManagerDown",
        kinds=("DataPlatform",),
        expr=_flink_jm_down,
        severity="critical",
        for_="5m",
        threshold=0,
        unit="JobManagers down tolerated",
        summary="Flink JobManager of platform {namespace}/{name} is down",
        description=(
            "Flink of DataPlatform {namespace}/{name}: " + VALUE + " JobManager(s) not "
            "answering; no StreamJob can be submitted, upgraded or recovered."
        ),
        runbook="kubectl -n {namespace} logs deploy/{name}-flink-jobmanager; check memory (OOMKilled) and the checkpoint store.",
        exporter=FLINK + "; external mode: " + OPERATOR,
    ),
    RuleDef(
        alert="ObjectStoreCapacityHigh",
        kinds=("DataPlatform",),
        expr=_store_capacity,
        severity="warning",
        for_="15m",
        threshold=85,
        unit="percent used",
        summary="Object store of platform {namespace}/{name} is filling up",
        description=(
            "The object store of DataPlatform {namespace}/{name} is " + PERCENT + " full."
        ),
        runbook="Shorten LakeZone retention, expire noncurrent versions, or grow the MinIO volumes.",
        exporter=MINIO,
    ),
    RuleDef(
        alert="PrometheusTargetDown",
        kinds=("DataPlatform",),
        expr=_target_down,
        severity="warning",
        for_="10m",
        summary="A metrics target of platform {namespace}/{name} is down",
        description=(
            "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }} "
            "(DataPlatform {namespace}/{name}): alerts that need its metrics are blind."
        ),
        runbook="Check that the pod runs and its metrics port answers (JMX exporter 9404, Flink 9249, MinIO 9000).",
        exporter="Prometheus itself (up)",
    ),
    RuleDef(
        alert="CdcConnectorFailed",
        kinds=("CdcConnector",),
        expr=_connector_failed,
        severity="critical",
        for_="2m",
        summary="CDC connector {namespace}/{name} failed",
        description=(
            "The Kafka Connect connector of CdcConnector {namespace}/{name}, or one of its "
            "tasks, is FAILED; changes are not captured."
        ),
        runbook="kubectl -n {namespace} get cdcconnector {name} -o yaml: status.tasks[].trace has the error; autoRestart retries it.",
        exporter=OPERATOR + "; managed Connect also: " + CONNECT_JMX,
    ),
    RuleDef(
        alert="CdcConnectorLagHigh",
        kinds=("CdcConnector",),
        expr=_debezium("MilliSecondsBehindSource"),
        severity="critical",
        for_="5m",
        threshold=300,
        unit="seconds",
        summary="CDC connector {namespace}/{name} lags behind its source",
        description=(
            "CdcConnector {namespace}/{name} is " + VALUE + " seconds behind the source "
            "database (Debezium MilliSecondsBehindSource)."
        ),
        runbook="Check Kafka Connect worker load and Kafka produce latency; large transactions and snapshots lag by nature.",
        exporter=CONNECT_JMX,
    ),
    RuleDef(
        alert="CdcConnectorNoEvents",
        kinds=("CdcConnector",),
        expr=_debezium("MilliSecondsSinceLastEvent"),
        severity="warning",
        for_="5m",
        threshold=3600,
        unit="seconds (freshness window)",
        summary="CDC connector {namespace}/{name} has seen no change events",
        description=(
            "CdcConnector {namespace}/{name} has read no change event for " + VALUE + " "
            "seconds; raise the threshold for tables that are quiet by nature."
        ),
        runbook="Write to a captured table and watch the topic; check the replication slot / binlog position and the connector state.",
        exporter=CONNECT_JMX,
    ),
    RuleDef(
        alert="StreamJobNotRunning",
        kinds=("StreamJob",),
        expr=_job_running,
        severity="critical",
        for_="5m",
        summary="StreamJob {namespace}/{name} is not running",
        description=(
            "StreamJob {namespace}/{name} should run but its job is not RUNNING (a failed "
            "Spark run counts as not running)."
        ),
        runbook="kubectl -n {namespace} get streamjob {name} -o yaml: status.jobState and status.failure.",
        exporter=OPERATOR,
    ),
    RuleDef(
        alert="StreamJobRestarting",
        kinds=("StreamJob",),
        expr=_restarting,
        severity="warning",
        for_="0m",
        threshold=2,
        unit="restarts in 15 minutes",
        summary="StreamJob {namespace}/{name} keeps restarting",
        description=(
            "The Flink job of StreamJob {namespace}/{name} restarted " + VALUE + " times in "
            "the last 15 minutes."
        ),
        runbook="The root cause is in status.failure and the JobManager's exception history (Flink UI, Exceptions tab).",
        exporter=FLINK + " or " + OPERATOR,
    ),
    RuleDef(
        alert="StreamJobCheckpointFailures",
        kinds=("StreamJob",),
        expr=_checkpoint_failures,
        severity="warning",
        for_="0m",
        threshold=0,
        unit="failed checkpoints in 15 minutes",
        summary="StreamJob {namespace}/{name}: checkpoints fail",
        description=(
            "StreamJob {namespace}/{name}: " + VALUE + " checkpoints failed in the last 15 "
            "minutes; recovery and upgrades fall back to older state."
        ),
        runbook="Check the checkpoint store (object store reachable, bucket exists) and checkpoint timeouts under backpressure.",
        exporter=FLINK,
    ),
    RuleDef(
        alert="StreamJobConsumerLagHigh",
        kinds=("StreamJob",),
        expr=_job_lag,
        severity="warning",
        for_="10m",
        threshold=100000,
        unit="records",
        summary="StreamJob {namespace}/{name} falls behind its input",
        description=(
            "StreamJob {namespace}/{name} has " + VALUE + " records waiting in its Kafka "
            "sources (Flink pendingRecords)."
        ),
        runbook="Look for backpressure in the Flink UI; raise parallelism or TaskManager slots.",
        exporter=FLINK,
    ),
    RuleDef(
        alert="LakeZoneStale",
        kinds=("LakeZone",),
        expr=_stale,
        severity="warning",
        for_="15m",
        threshold=86400,
        unit="seconds since the newest object",
        summary="LakeZone {namespace}/{name} receives no new data",
        description=("The newest object in LakeZone {namespace}/{name} is " + DURATION + " old."),
        runbook="Check the StreamJobs writing into the zone and their sinks; freshness is measured at each usage scan.",
        exporter=OPERATOR,
    ),
    RuleDef(
        alert="LakeZoneCapacityHigh",
        kinds=("LakeZone",),
        expr=_zone_capacity,
        severity="warning",
        for_="15m",
        threshold=85,
        unit="percent used",
        summary="The object store of LakeZone {namespace}/{name} is filling up",
        description=(
            "The object store holding LakeZone {namespace}/{name} (platform {platform}) is "
            + PERCENT
            + " full."
        ),
        runbook="Shorten the zone's retention (expirationDays, noncurrentVersionExpirationDays) or grow the store.",
        exporter=MINIO,
    ),
    RuleDef(
        alert="LakeZoneSizeHigh",
        kinds=("LakeZone",),
        expr=_zone_size,
        severity="warning",
        for_="15m",
        threshold=None,
        unit="GiB (opt-in: set a threshold)",
        opt_in=True,
        summary="LakeZone {namespace}/{name} is larger than expected",
        description="LakeZone {namespace}/{name} holds " + VALUE + " GiB.",
        runbook="Check retention rules and what writes into the zone.",
        exporter=OPERATOR,
    ),
)

BY_NAME: dict[str, RuleDef] = {r.alert: r for r in CATALOGUE}
assert tuple(BY_NAME) == ALERT_RULE_NAMES, "constants.ALERT_RULE_NAMES is out of date"


def rules_for_kind(kind: str) -> tuple[RuleDef, ...]:
    return tuple(r for r in CATALOGUE if kind in r.kinds)
