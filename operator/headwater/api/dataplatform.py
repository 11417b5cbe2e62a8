"""DataPlatform: the shared stack every pipeline in a namespace runs on."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .common import (
    AccessKeySecretReference,
    AlertsSpec,
    ComponentMode,
    ConditionList,
    ConfigMap,
    CredentialsSecretReference,
    Image,
    JvmSize,
    K8sName,
    Model,
    Resources,
    Storage,
    TLSConfig,
    cel,
    cel_rules,
)

HOST_PORT = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"
HTTP_URL = r"^https?://[^\s/$.?#][^\s]*$"
HostPortList = Annotated[
    list[Annotated[str, Field(max_length=255, pattern=HOST_PORT)]],
    Field(min_length=1, max_length=32),
]
HttpUrl = Annotated[str, Field(max_length=2048, pattern=HTTP_URL)]

# Default images. Versions move together with the component `version` fields below.
KAFKA_IMAGE = "apache/kafka:4.1.1"
CONNECT_IMAGE = "quay.io/debezium/connect:3.6.1.Final"
FLINK_IMAGE = "flink:2.3.0-java17"
SPARK_IMAGE = "apache/spark:4.0.1-python3"
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
PROMETHEUS_IMAGE = "prom/prometheus:v3.7.3"


def _mode_rules(component: str) -> dict[str, Any]:
    """CEL: `external` needs the external block; `managed` must not carry one."""
    return cel_rules(
        cel(
            "self.mode != 'external' || has(self.external)",
            f"{component}: mode 'external' requires the 'external' block",
            field_path=".external",
        ),
        cel(
            "self.mode == 'external' || !has(self.external)",
            f"{component}: the 'external' block is only allowed with mode 'external'",
            field_path=".external",
        ),
    )


class _Component(Model):
    """Common checks of every component block."""

    component: ClassVar[str] = ""

    @model_validator(mode="after")
    def _external_matches_mode(self) -> _Component:
        mode = getattr(self, "mode", None)
        external = getattr(self, "external", None)
        name = self.component
        if mode == "external" and external is None:
            raise ValueError(f"{name}: mode 'external' requires the 'external' block")
        if mode != "external" and external is not None:
            raise ValueError(f"{name}: the 'external' block is only allowed with mode 'external'")
        return self


# --- Kafka ----------------------------------------------------------------------------------


class KafkaManaged(Model):
    """Kafka run by the operator: KRaft combined broker/controller nodes in one StatefulSet,
    listening in PLAINTEXT inside the cluster. The KRaft cluster id derives from the
    platform's namespace and name (not its uid): the log volumes outlive the DataPlatform, and
    a platform re-created under the same name finds its data again with the same id."""

    replicas: int = Field(default=3, ge=1, le=9)
    """Number of combined broker/controller nodes. Use an odd number (1 for development, 3 for production)."""
    image: Image = KAFKA_IMAGE
    """Container image with Apache Kafka (KRaft capable, 3.7+)."""
    version: Annotated[str, Field(max_length=32, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = "4.1.1"
    """Kafka version the image contains (recorded as a label; drives nothing else)."""
    storage: Storage = Field(default_factory=Storage, json_schema_extra={"default": {}})
    """Log directory volume of each node. The claims are kept when the DataPlatform is
    deleted; delete them yourself to start a re-created platform of the same name empty."""
    resources: Resources = Field(
        default_factory=lambda: Resources.model_validate(
            {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
        ),
        json_schema_extra={
            "default": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
        },
    )
    """Resources of each Kafka container."""
    heap: JvmSize = "1g"
    """JVM heap (-Xmx/-Xms), e.g. `1g`. Keep it well below the memory limit (page cache)."""
    default_replication_factor: int = Field(default=3, ge=1, le=9)
    """Replication factor of auto-created and internal topics; capped at `replicas` (so a single-node development cluster needs no change here)."""
    config: ConfigMap = Field(default_factory=dict)
    """Extra `server.properties` entries; they override the operator's."""


class KafkaExternal(Model):
    """An existing Kafka cluster. The managed Kafka Connect workers use these settings for
    their own clients and, through the `producer.`, `consumer.` and `admin.` worker
    prefixes, for the clients of the connectors they run. Nothing else the platform runs
    talks to an external Kafka: StreamJobs set the Kafka client properties in their own SQL
    or jar, and the consumer-lag exporter runs only beside a managed Kafka."""

    bootstrap_servers: HostPortList
    """Bootstrap servers as `host:port` entries."""
    credentials_secret_ref: CredentialsSecretReference | None = None
    """SASL credentials, when the cluster needs them (security.protocol SASL_SSL with
    `tls.enabled`, else SASL_PLAINTEXT). The workers get them as environment variables from
    this Secret and resolve them with Kafka's EnvVarConfigProvider: they never appear in a
    ConfigMap. They are placed in a JAAS line, so neither may contain `"` or `\\`. A changed
    Secret restarts the workers."""
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    """SASL mechanism used with credentialsSecretRef: PLAIN uses Kafka's PlainLoginModule,
    SCRAM-SHA-256/512 its ScramLoginModule."""
    tls: TLSConfig = Field(default_factory=TLSConfig, json_schema_extra={"default": {}})
    """TLS towards the brokers. `caSecretRef` is mounted into the workers as a PEM trust
    store (the JVM's trust store otherwise). `insecureSkipVerify` turns off host name
    verification only: Kafka's Java clients always verify the certificate chain."""


class KafkaSpec(_Component):
    """The Kafka cluster (KRaft mode)."""

    component: ClassVar[str] = "kafka"

    mode: ComponentMode = "managed"
    """managed: the operator runs it; external: use an existing one; disabled: none."""
    managed: KafkaManaged = Field(default_factory=KafkaManaged, json_schema_extra={"default": {}})
    """Settings used when mode is managed."""
    external: KafkaExternal | None = None
    """Endpoint used when mode is external."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("kafka"))


# --- Kafka Connect ----------------------------------------------------------------------------


class ConnectManaged(Model):
    """Kafka Connect in distributed mode with the Debezium connector plugins."""

    replicas: int = Field(default=1, ge=1, le=16)
    """Number of Connect workers."""
    image: Image = CONNECT_IMAGE
    """Container image with Kafka Connect and the Debezium plugins."""
    version: Annotated[str, Field(max_length=32)] = "3.6.1.Final"
    """Debezium version the image contains (recorded as a label)."""
    resources: Resources = Field(
        default_factory=lambda: Resources.model_validate(
            {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        ),
        json_schema_extra={
            "default": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        },
    )
    """Resources of each worker."""
    heap: JvmSize = "512m"
    """JVM heap of each worker."""
    config: ConfigMap = Field(default_factory=dict)
    """Extra worker properties; they override the operator's."""


class ConnectExternal(Model):
    """An existing Kafka Connect cluster, reached through its REST API."""

    url: HttpUrl
    """REST endpoint, e.g. `http://connect.kafka.svc:8083`."""
    credentials_secret_ref: CredentialsSecretReference | None = None
    """HTTP basic-auth credentials of the REST API, when it needs them."""
    secrets_provider: Literal["directory", "kubernetes"] = "directory"
    """How the external workers resolve connector credentials: `directory` — the DataSource
    Secret is mounted at `secretsMountPath/<namespace>/<secret>/` in the workers and read with
    Kafka's DirectoryConfigProvider (`config.providers=dir`); `kubernetes` — the workers run
    Strimzi's KubernetesSecretConfigProvider (`config.providers=secrets`) and read the Secret
    through the Kubernetes API."""
    secrets_mount_path: Annotated[str, Field(max_length=512, pattern=r"^/.*")] = (
        "/opt/headwater/secrets"
    )
    """Where the workers mount DataSource Secrets (secretsProvider: directory)."""
    tls: TLSConfig = Field(default_factory=TLSConfig, json_schema_extra={"default": {}})
    """TLS towards the REST API."""


class ConnectSpec(_Component):
    """Kafka Connect with Debezium, used by CdcConnectors."""

    component: ClassVar[str] = "connect"

    mode: ComponentMode = "managed"
    """managed, external or disabled."""
    managed: ConnectManaged = Field(
        default_factory=ConnectManaged, json_schema_extra={"default": {}}
    )
    """Settings used when mode is managed."""
    external: ConnectExternal | None = None
    """Endpoint used when mode is external."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("connect"))


# --- Flink ----------------------------------------------------------------------------------


class FlinkProcess(Model):
    """One Flink process type (JobManager or TaskManager)."""

    replicas: int = Field(default=1, ge=1, le=64)
    """Number of pods."""
    resources: Resources = Field(default_factory=Resources, json_schema_extra={"default": {}})
    """Resources of each pod."""
    memory: JvmSize = "1600m"
    """Flink total process memory (`*.memory.process.size`)."""


class FlinkManaged(Model):
    """A Flink session cluster run by the operator; StreamJobs are submitted to it."""

    image: Image = FLINK_IMAGE
    """Container image with Apache Flink."""
    version: Annotated[str, Field(max_length=32)] = "2.3.0"
    """Flink version the image contains."""
    job_manager: FlinkProcess = Field(
        default_factory=FlinkProcess, json_schema_extra={"default": {}}
    )
    """JobManager pods."""
    task_manager: FlinkProcess = Field(
        default_factory=FlinkProcess, json_schema_extra={"default": {}}
    )
    """TaskManager pods."""
    task_slots: int = Field(default=2, ge=1, le=64)
    """Task slots per TaskManager."""
    sql_gateway: bool = True
    """Run Flink's SQL Gateway beside the JobManager (used to submit SQL StreamJobs)."""
    config: ConfigMap = Field(default_factory=dict)
    """Extra `config.yaml` entries; they override the operator's."""


class FlinkExternal(Model):
    """An existing Flink session cluster."""

    rest_url: HttpUrl
    """JobManager REST endpoint, e.g. `http://flink-jobmanager:8081`."""
    sql_gateway_url: HttpUrl | None = None
    """SQL Gateway REST endpoint; needed for SQL StreamJobs."""


class FlinkSpec(_Component):
    """Apache Flink for streaming StreamJobs."""

    component: ClassVar[str] = "flink"

    mode: ComponentMode = "managed"
    """managed, external or disabled."""
    managed: FlinkManaged = Field(default_factory=FlinkManaged, json_schema_extra={"default": {}})
    """Settings used when mode is managed."""
    external: FlinkExternal | None = None
    """Endpoint used when mode is external."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("flink"))


# --- Spark ----------------------------------------------------------------------------------


class SparkManaged(Model):
    """Spark on Kubernetes: the operator prepares the identity StreamJobs submit with."""

    image: Image = SPARK_IMAGE
    """Default container image of drivers and executors."""
    version: Annotated[str, Field(max_length=32)] = "4.0.1"
    """Spark version of the image."""
    service_account_name: K8sName | None = None
    """ServiceAccount drivers run as; `<platform>-spark` when unset."""


class SparkExternal(Model):
    """An existing Spark master."""

    master_url: Annotated[str, Field(max_length=2048, pattern=r"^(k8s|spark|yarn)(://.*)?$")]
    """Spark master URL, e.g. `spark://spark-master:7077` or `k8s://https://api:6443`."""


class SparkSpec(_Component):
    """Apache Spark for batch StreamJobs."""

    component: ClassVar[str] = "spark"

    mode: ComponentMode = "managed"
    """managed, external or disabled."""
    managed: SparkManaged = Field(default_factory=SparkManaged, json_schema_extra={"default": {}})
    """Settings used when mode is managed."""
    external: SparkExternal | None = None
    """Master used when mode is external."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("spark"))


# --- Object store ---------------------------------------------------------------------------


# MinIO settings the spec may not carry: the root user comes from the generated Secret, and
# anything naming a password, secret, token or key would put a credential into the CR.
MINIO_ENV_KEY = r"^MINIO_[A-Z0-9_]+$"
MINIO_CREDENTIAL_KEY = r".*(ROOT_USER|PASSWORD|SECRET|TOKEN|_KEY$).*"
_MINIO_CREDENTIAL_KEY_RE = re.compile(MINIO_CREDENTIAL_KEY)
MINIO_CONFIG_CREDENTIAL = (
    "config: credential settings are not accepted; the root user comes from the generated "
    "Secret <platform>-minio-root"
)
# Prometheus flags the pod is wired to: its volumes, probes and Service depend on them.
PROMETHEUS_RESERVED_FLAGS = ("config.file", "storage.tsdb.path", "web.listen-address")
PROMETHEUS_CONFIG_RESERVED = (
    "config: config.file, storage.tsdb.path and web.listen-address are set by the operator"
)


class MinioManaged(Model):
    """A MinIO server run by the operator."""

    replicas: Literal[1, 4, 8, 16] = 1
    """1 (single drive) or 4/8/16 (distributed erasure coding)."""
    image: Image = MINIO_IMAGE
    """Container image of MinIO."""
    version: Annotated[str, Field(max_length=63)] = "RELEASE.2025-09-07T16-13-09Z"
    """MinIO release the image contains (recorded as a label; drives nothing else)."""
    storage: Storage = Field(default_factory=Storage, json_schema_extra={"default": {}})
    """Data volume of each server."""
    resources: Resources = Field(default_factory=Resources, json_schema_extra={"default": {}})
    """Resources of each server."""
    region: Annotated[str, Field(max_length=64)] = "us-east-1"
    """Region MinIO reports."""
    config: Annotated[
        dict[
            Annotated[str, Field(max_length=256, pattern=MINIO_ENV_KEY)],
            Annotated[str, Field(max_length=4096)],
        ],
        Field(max_length=256),
    ] = Field(
        default_factory=dict,
        json_schema_extra=cel_rules(
            cel(f"self.all(k, !k.matches('{MINIO_CREDENTIAL_KEY}'))", MINIO_CONFIG_CREDENTIAL)
        ),
    )
    """Extra MinIO server settings as environment variables (`MINIO_*`, e.g.
    `MINIO_API_REQUESTS_MAX: "1600"`); they override the operator's (`MINIO_REGION` over
    `region`). A change restarts the servers. Keys naming the root user, a password, secret,
    token or key are refused."""

    @field_validator("config")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if _MINIO_CREDENTIAL_KEY_RE.match(k))
        if bad:
            raise ValueError(f"{MINIO_CONFIG_CREDENTIAL} (keys {', '.join(bad)})")
        return value


class ObjectStoreExternal(Model):
    """An existing S3-compatible object store."""

    endpoint: HttpUrl
    """S3 endpoint URL, e.g. `https://s3.storage.local:9000`."""
    region: Annotated[str, Field(max_length=64)] = "us-east-1"
    """Region."""
    credentials_secret_ref: AccessKeySecretReference
    """Access keys the operator uses (needs bucket admin rights)."""
    path_style: bool = True
    """Path-style addressing (`endpoint/bucket`); most on-prem stores need it."""
    kind: Literal["minio", "s3"] = "s3"
    """`minio` enables MinIO's admin API (users/policies for LakeZone access); `s3` uses bucket policies."""
    tls: TLSConfig = Field(default_factory=TLSConfig, json_schema_extra={"default": {}})
    """TLS verification settings."""


class ObjectStoreSpec(_Component):
    """S3-compatible object store for the lake and for Flink checkpoints."""

    component: ClassVar[str] = "objectStore"

    mode: ComponentMode = "managed"
    """managed (MinIO), external or disabled."""
    managed: MinioManaged = Field(default_factory=MinioManaged, json_schema_extra={"default": {}})
    """Settings used when mode is managed."""
    external: ObjectStoreExternal | None = None
    """Endpoint used when mode is external."""
    checkpoint_bucket: Annotated[
        str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    ] = "headwater-checkpoints"
    """Bucket for Flink checkpoints and savepoints (under `<namespace>/<job>/`)."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("objectStore"))


# --- Monitoring -----------------------------------------------------------------------------


class PrometheusManaged(Model):
    """A Prometheus server run by the operator."""

    image: Image = PROMETHEUS_IMAGE
    """Container image of Prometheus."""
    version: Annotated[str, Field(max_length=32, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = "3.7.3"
    """Prometheus version the image contains (recorded as a label; drives nothing else)."""
    retention: Annotated[str, Field(pattern=r"^[0-9]+(h|d|w|y)$")] = "15d"
    """TSDB retention time."""
    scrape_interval: Annotated[str, Field(pattern=r"^[0-9]+(s|m)$")] = "30s"
    """Global scrape interval."""
    storage: Storage = Field(default_factory=Storage, json_schema_extra={"default": {}})
    """TSDB volume."""
    resources: Resources = Field(default_factory=Resources, json_schema_extra={"default": {}})
    """Resources of the server."""
    config: Annotated[
        dict[
            Annotated[str, Field(max_length=256, pattern=r"^[a-z][a-z0-9._-]*$")],
            Annotated[str, Field(max_length=4096)],
        ],
        Field(max_length=256),
    ] = Field(
        default_factory=dict,
        json_schema_extra=cel_rules(
            cel(
                f"self.all(k, !(k in {list(PROMETHEUS_RESERVED_FLAGS)}))",
                PROMETHEUS_CONFIG_RESERVED,
            )
        ),
    )
    """Extra Prometheus command-line flags without the leading `--`, e.g.
    `storage.tsdb.retention.size: 50GB` or `query.timeout: 2m` (`"true"` and `"false"` become
    `--flag` and `--no-flag`); they override the operator's (`storage.tsdb.retention.time` over `retention`).
    The scrape configuration is generated and not overridable here."""

    @field_validator("config")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if k in PROMETHEUS_RESERVED_FLAGS)
        if bad:
            raise ValueError(f"{PROMETHEUS_CONFIG_RESERVED} (keys {', '.join(bad)})")
        return value


class PrometheusExternal(Model):
    """An existing Prometheus (typically the Prometheus Operator's)."""

    url: HttpUrl
    """Query endpoint, e.g. `http://prometheus-operated.monitoring:9090`."""


class MonitoringSpec(_Component):
    """Metrics and alerting for the platform and its pipelines."""

    component: ClassVar[str] = "monitoring"

    mode: ComponentMode = "managed"
    """managed (a Prometheus next to the platform), external or disabled."""
    managed: PrometheusManaged = Field(
        default_factory=PrometheusManaged, json_schema_extra={"default": {}}
    )
    """Settings used when mode is managed."""
    external: PrometheusExternal | None = None
    """Endpoint used when mode is external."""

    model_config = ConfigDict(json_schema_extra=_mode_rules("monitoring"))


class DataPlatformSpec(Model):
    """Desired state of a DataPlatform."""

    paused: bool = False
    """Stop reconciling this platform (children stay as they are)."""
    kafka: KafkaSpec = Field(
        default_factory=KafkaSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """Kafka."""
    connect: ConnectSpec = Field(
        default_factory=ConnectSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """Kafka Connect with Debezium."""
    flink: FlinkSpec = Field(
        default_factory=FlinkSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """Apache Flink."""
    spark: SparkSpec = Field(
        default_factory=SparkSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """Apache Spark."""
    object_store: ObjectStoreSpec = Field(
        default_factory=ObjectStoreSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """S3-compatible object store."""
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec, json_schema_extra={"default": {"mode": "managed"}}
    )
    """Prometheus."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, json_schema_extra={"default": {}})
    """Alert rules for the platform's components."""

    @model_validator(mode="after")
    def _dependencies(self) -> DataPlatformSpec:
        if self.connect.mode == "managed" and self.kafka.mode == "disabled":
            raise ValueError("connect: managed Kafka Connect needs kafka (managed or external)")
        return self

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.connect.mode != 'managed' || self.kafka.mode != 'disabled'",
                "connect: managed Kafka Connect needs kafka (managed or external)",
                field_path=".connect.mode",
            )
        )
    )


# --- status ---------------------------------------------------------------------------------


class ComponentStatus(Model):
    """Observed state of one platform component."""

    name: Annotated[str, Field(max_length=32)]
    """Component name (kafka, connect, flink, spark, objectStore, monitoring)."""
    mode: ComponentMode
    """The component's mode."""
    ready: bool
    """Whether the component is ready."""
    ready_replicas: int | None = None
    """Ready pods (managed components)."""
    replicas: int | None = None
    """Desired pods (managed components)."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """Why it is not ready, if it is not."""


class Endpoints(Model):
    """Resolved endpoints other resources and users connect to."""

    kafka_bootstrap_servers: str | None = None
    """Kafka bootstrap servers."""
    connect_url: str | None = None
    """Kafka Connect REST URL."""
    flink_rest_url: str | None = None
    """Flink JobManager REST URL."""
    flink_sql_gateway_url: str | None = None
    """Flink SQL Gateway URL."""
    spark_master_url: str | None = None
    """Spark master URL StreamJobs submit to."""
    spark_service_account: str | None = None
    """ServiceAccount Spark drivers run as."""
    s3_endpoint: str | None = None
    """S3 endpoint URL."""
    s3_credentials_secret: str | None = None
    """Secret holding the object store's admin credentials (keys accessKey/secretKey)."""
    prometheus_url: str | None = None
    """Prometheus query URL."""


class DataPlatformStatus(Model):
    """Observed state of a DataPlatform."""

    observed_generation: int | None = None
    """The generation the status reflects."""
    conditions: ConditionList
    """Ready, Reconciling and Stalled."""
    components: Annotated[
        list[ComponentStatus],
        Field(
            default_factory=list,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ]
    """Per-component readiness."""
    endpoints: Endpoints | None = None
    """Where to reach the components."""
    ready_components: Annotated[str, Field(max_length=16)] | None = None
    """`ready/enabled` components, for the printer column."""
