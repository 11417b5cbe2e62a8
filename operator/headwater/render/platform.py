"""DataPlatform -> Kubernetes objects, one small function per component.

Each component function returns the complete desired set of its objects; a disabled or
external component returns none, which is how the apply layer knows to prune them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import yamlio
from ..api.dataplatform import DataPlatformSpec, KafkaExternal
from ..constants import (
    FLINK_METRICS_PORT,
    JMX_EXPORTER_PORT,
    KAFKA_EXPORTER_PORT,
    LABEL_METRICS,
    LABEL_RETAIN,
)
from .common import (
    Obj,
    Owner,
    config_hash,
    container_security_context,
    finalize,
    kafka_cluster_id,
    pod_labels,
    pod_security_context,
    properties,
    resources,
    selector_labels,
    set_config_hash,
    stable_hash,
    template,
    text_template,
)

CONNECT_SECRETS_PATH = "/opt/headwater/secrets"
GENERATED = "<generated on first reconcile>"
# The official Flink image runs as user flink (uid/gid 9999) and owns /opt/flink with it.
FLINK_UID = 9999


@dataclass(frozen=True)
class PlatformContext:
    """Facts the reconciler looked up for rendering (render itself does no I/O)."""

    # Versions of Secrets the workloads read, by Secret name: a change rolls the pods.
    secret_versions: Mapping[str, str] = field(default_factory=dict)
    # Root credentials of managed MinIO, only when the Secret does not exist yet.
    new_minio_credentials: tuple[str, str] | None = None
    # `minio_root_fingerprint(user, password)` of the existing root Secret, when it exists.
    minio_root_fingerprint: str | None = None
    # The managed Connect workers were created with the internal topic names of 0.1
    # (`<platform>-connect-*`): keep them, they hold the connectors' source offsets.
    connect_legacy_topics: bool = False
    # Connector credentials, by key, copied from DataSource Secrets (managed Connect only).
    connect_secrets: Mapping[str, str] | None = None
    # Generated alert rule groups (Prometheus rule file format) for the managed Prometheus.
    alert_rules: Mapping[str, Any] | None = None
    # Extra scrape targets, e.g. the operator's own metrics endpoint.
    extra_scrape_configs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Names:
    """Child object names of one platform."""

    platform: str

    @property
    def kafka(self) -> str:
        return f"{self.platform}-kafka"

    @property
    def kafka_headless(self) -> str:
        return f"{self.platform}-kafka-headless"

    @property
    def kafka_config(self) -> str:
        return f"{self.platform}-kafka-config"

    @property
    def connect(self) -> str:
        return f"{self.platform}-connect"

    @property
    def connect_config(self) -> str:
        return f"{self.platform}-connect-config"

    @property
    def connect_secrets(self) -> str:
        return f"{self.platform}-connect-secrets"

    @property
    def flink_jobmanager(self) -> str:
        return f"{self.platform}-flink-jobmanager"

    @property
    def flink_taskmanager(self) -> str:
        return f"{self.platform}-flink-taskmanager"

    @property
    def flink_config(self) -> str:
        return f"{self.platform}-flink-config"

    @property
    def spark(self) -> str:
        return f"{self.platform}-spark"

    @property
    def minio(self) -> str:
        return f"{self.platform}-minio"

    @property
    def minio_headless(self) -> str:
        return f"{self.platform}-minio-headless"

    @property
    def minio_root(self) -> str:
        return f"{self.platform}-minio-root"

    @property
    def prometheus(self) -> str:
        return f"{self.platform}-prometheus"

    @property
    def prometheus_config(self) -> str:
        return f"{self.platform}-prometheus-config"

    @property
    def prometheus_rules(self) -> str:
        return f"{self.platform}-prometheus-rules"

    @property
    def kafka_metrics(self) -> str:
        return f"{self.platform}-kafka-metrics"

    @property
    def kafka_exporter(self) -> str:
        return f"{self.platform}-kafka-exporter"

    @property
    def connect_metrics(self) -> str:
        return f"{self.platform}-connect-metrics"

    @property
    def flink_jobmanager_metrics(self) -> str:
        return f"{self.platform}-flink-jm-metrics"

    @property
    def flink_taskmanager_metrics(self) -> str:
        return f"{self.platform}-flink-tm-metrics"

    @property
    def minio_metrics(self) -> str:
        return f"{self.platform}-minio-metrics"


def svc(name: str, namespace: str, port: int) -> str:
    return f"{name}.{namespace}.svc:{port}"


# --- endpoints ------------------------------------------------------------------------------


def endpoints(spec: DataPlatformSpec, owner: Owner) -> dict[str, str | None]:
    """Where each enabled component is reached (status.endpoints)."""
    n, ns = Names(owner.name), owner.namespace
    out: dict[str, str | None] = {}
    if spec.kafka.mode == "managed":
        out["kafkaBootstrapServers"] = svc(n.kafka, ns, 9092)
    elif spec.kafka.external is not None:
        out["kafkaBootstrapServers"] = ",".join(spec.kafka.external.bootstrap_servers)
    if spec.connect.mode == "managed":
        out["connectUrl"] = f"http://{svc(n.connect, ns, 8083)}"
    elif spec.connect.external is not None:
        out["connectUrl"] = spec.connect.external.url
    if spec.flink.mode == "managed":
        out["flinkRestUrl"] = f"http://{svc(n.flink_jobmanager, ns, 8081)}"
        if spec.flink.managed.sql_gateway:
            out["flinkSqlGatewayUrl"] = f"http://{svc(n.flink_jobmanager, ns, 8083)}"
    elif spec.flink.external is not None:
        out["flinkRestUrl"] = spec.flink.external.rest_url
        out["flinkSqlGatewayUrl"] = spec.flink.external.sql_gateway_url
    if spec.spark.mode == "managed":
        out["sparkMasterUrl"] = "k8s://https://kubernetes.default.svc"
        out["sparkServiceAccount"] = spec.spark.managed.service_account_name or n.spark
    elif spec.spark.external is not None:
        out["sparkMasterUrl"] = spec.spark.external.master_url
    if spec.object_store.mode == "managed":
        out["s3Endpoint"] = f"http://{svc(n.minio, ns, 9000)}"
        out["s3CredentialsSecret"] = n.minio_root
    elif spec.object_store.external is not None:
        out["s3Endpoint"] = spec.object_store.external.endpoint
        out["s3CredentialsSecret"] = spec.object_store.external.credentials_secret_ref.name
    if spec.monitoring.mode == "managed":
        out["prometheusUrl"] = f"http://{svc(n.prometheus, ns, 9090)}"
    elif spec.monitoring.external is not None:
        out["prometheusUrl"] = spec.monitoring.external.url
    return {k: v for k, v in out.items() if v}


# --- components -----------------------------------------------------------------------------


def _common(owner: Owner, component: str) -> dict[str, Any]:
    return {
        "selector": selector_labels(owner, component),
        "pod_labels": pod_labels(owner, component),
        "pod_security": pod_security_context(),
        "container_security": container_security_context(),
        "namespace": owner.namespace,
    }


def platform_kafka_cluster_id(owner: Owner) -> str:
    """KRaft cluster id of a platform's managed Kafka, from its namespace and name.

    Not from the uid: the log volumes outlive the DataPlatform, and a platform deleted and
    re-created under the same name must format any new volume with the id its old volumes
    already carry (brokers of different ids refuse each other)."""
    return kafka_cluster_id(f"{owner.namespace}/{owner.name}")


def render_kafka(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.kafka.mode != "managed":
        return []
    k = spec.kafka.managed
    n = Names(owner.name)
    voters = ",".join(
        f"{i}@{n.kafka}-{i}.{n.kafka_headless}.{owner.namespace}.svc:9093"
        for i in range(k.replicas)
    )
    rf = min(k.default_replication_factor, k.replicas)
    server = {
        "process.roles": "broker,controller",
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": "/var/lib/kafka/data",
        "num.partitions": 3,
        "default.replication.factor": rf,
        "min.insync.replicas": max(1, min(2, rf - 1)),
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": max(1, min(2, rf - 1)),
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": 3000,
    }
    server.update(k.config)
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": n.kafka_config},
        "data": {
            "server.properties": properties(server),
            "start.sh": text_template(
                "kafka-start.sh.j2",
                headless=n.kafka_headless,
                client=n.kafka,
                namespace=owner.namespace,
            ),
        },
    }
    objs = template(
        "kafka.yaml.j2",
        name=n.kafka,
        headless=n.kafka_headless,
        config_name=n.kafka_config,
        spec=k,
        cluster_id=platform_kafka_cluster_id(owner),
        resources=resources(k.resources),
        **_common(owner, "kafka"),
    )
    add_data(config, "jmx-exporter.yaml", KAFKA_JMX_EXPORTER_CONFIG)
    with_jmx_exporter(objs, "kafka", "/etc/headwater/kafka/jmx-exporter.yaml")
    objs += metrics_service(n.kafka_metrics, owner, "kafka", JMX_EXPORTER_PORT, "kafka")
    _roll_on(objs, [config], ctx)
    out = [config, *objs]
    return [finalize(o, owner, "kafka", k.version) for o in out] + render_kafka_exporter(
        spec, owner
    )


def _bootstrap(spec: DataPlatformSpec, owner: Owner) -> str:
    return endpoints(spec, owner).get("kafkaBootstrapServers") or ""


# --- Kafka clients of an external Kafka -----------------------------------------------------

KAFKA_CA_PATH = "/opt/headwater/kafka-ca"
KAFKA_CA_FILE = f"{KAFKA_CA_PATH}/ca.crt"
KAFKA_USERNAME_ENV = "HEADWATER_KAFKA_USERNAME"
KAFKA_PASSWORD_ENV = "HEADWATER_KAFKA_PASSWORD"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": SCRAM_LOGIN,
    "SCRAM-SHA-512": SCRAM_LOGIN,
}
# Worker prefixes whose clients reach the same Kafka: source connectors' producers, sink
# connectors' consumers, and the admin clients that create connector topics.
CONNECT_CLIENT_PREFIXES = ("", "producer.", "consumer.", "admin.")


@dataclass(frozen=True)
class KafkaClient:
    """What a pod needs to reach an external Kafka: client properties, and the environment
    variables and volumes these properties refer to. The password is only ever a
    `${env:...}` reference that Kafka's EnvVarConfigProvider resolves inside the JVM, from
    an environment variable the kubelet fills from the user's Secret."""

    properties: dict[str, str] = field(default_factory=dict)
    env: list[Obj] = field(default_factory=list)
    volumes: list[Obj] = field(default_factory=list)
    mounts: list[Obj] = field(default_factory=list)
    # Secrets read only at start (environment, trust store): a change must restart the pods.
    secrets: list[str] = field(default_factory=list)


def kafka_client(ext: KafkaExternal | None) -> KafkaClient:
    """Client security settings for an external Kafka (none for managed Kafka: PLAINTEXT)."""
    if ext is None:
        return KafkaClient()
    out = KafkaClient()
    sasl = ext.credentials_secret_ref
    tls = ext.tls.enabled
    if sasl is not None:
        out.properties["security.protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
        out.properties["sasl.mechanism"] = ext.sasl_mechanism
        # Config providers resolve variables anywhere in a value, so the JAAS line itself
        # holds only references.
        out.properties["sasl.jaas.config"] = (
            f"{LOGIN_MODULES[ext.sasl_mechanism]} required "
            f'username="${{env:{KAFKA_USERNAME_ENV}}}" password="${{env:{KAFKA_PASSWORD_ENV}}}";'
        )
        out.env.extend(
            {"name": env, "valueFrom": {"secretKeyRef": {"name": sasl.name, "key": key}}}
            for env, key in (
                (KAFKA_USERNAME_ENV, sasl.username_key),
                (KAFKA_PASSWORD_ENV, sasl.password_key),
            )
        )
        out.secrets.append(sasl.name)
    elif tls:
        out.properties["security.protocol"] = "SSL"
    if tls and ext.tls.ca_secret_ref is not None:
        ca = ext.tls.ca_secret_ref
        out.properties["ssl.truststore.type"] = "PEM"
        out.properties["ssl.truststore.location"] = KAFKA_CA_FILE
        out.volumes.append(
            {
                "name": "kafka-ca",
                "secret": {"secretName": ca.name, "items": [{"key": ca.key, "path": "ca.crt"}]},
            }
        )
        out.mounts.append({"name": "kafka-ca", "mountPath": KAFKA_CA_PATH, "readOnly": True})
        out.secrets.append(ca.name)
    if tls and ext.tls.insecure_skip_verify:
        # Host name verification off; the Java client still checks the certificate chain.
        out.properties["ssl.endpoint.identification.algorithm"] = ""
    return out


def connect_topics(owner: Owner, legacy: bool = False) -> dict[str, str]:
    """Internal topics of the managed Connect workers, named like their `group.id` with the
    namespace: platforms of the same name in two namespaces may share one external Kafka.
    `legacy` keeps the names of workers created by 0.1, whose topics hold source offsets."""
    prefix = f"{owner.name}-connect" if legacy else f"{owner.namespace}.{owner.name}.connect"
    return {
        "config.storage.topic": f"{prefix}-configs",
        "offset.storage.topic": f"{prefix}-offsets",
        "status.storage.topic": f"{prefix}-status",
    }


def uses_legacy_connect_topics(owner: Owner, live_config: Obj | None) -> bool:
    """Whether the live Connect ConfigMap names the internal topics the 0.1 way."""
    text = ((live_config or {}).get("data") or {}).get("connect-distributed.properties") or ""
    legacy = connect_topics(owner, legacy=True)["offset.storage.topic"]
    return f"offset.storage.topic={legacy}\n" in text


def render_connect(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.connect.mode != "managed":
        return []
    c = spec.connect.managed
    n = Names(owner.name)
    rf = (
        min(spec.kafka.managed.default_replication_factor, spec.kafka.managed.replicas)
        if spec.kafka.mode == "managed"
        else 3
    )
    worker: dict[str, Any] = {
        "bootstrap.servers": _bootstrap(spec, owner),
        "group.id": f"{owner.namespace}.{owner.name}.connect",
        **connect_topics(owner, ctx.connect_legacy_topics),
        "config.storage.replication.factor": rf,
        "offset.storage.replication.factor": rf,
        "status.storage.replication.factor": rf,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
        "rest.port": 8083,
        "plugin.path": "/kafka/connect",
        # Credentials are resolved inside the worker from the mounted secrets directory;
        # connector configs only ever carry ${dir:...} references. The worker's own Kafka
        # credentials are ${env:...} references, resolved when the worker config is read.
        "config.providers": "dir,file,env",
        "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "config.providers.dir.param.allowed.paths": CONNECT_SECRETS_PATH,
        "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
        "config.providers.file.param.allowed.paths": CONNECT_SECRETS_PATH,
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "connector.client.config.override.policy": "All",
    }
    client = kafka_client(spec.kafka.external if spec.kafka.mode == "external" else None)
    for prefix in CONNECT_CLIENT_PREFIXES:
        worker.update({prefix + key: value for key, value in client.properties.items()})
    worker.update(c.config)
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": n.connect_config},
        "data": {"connect-distributed.properties": properties(worker)},
    }
    objs = template(
        "connect.yaml.j2",
        name=n.connect,
        config_name=n.connect_config,
        secrets_name=n.connect_secrets,
        secrets_path=CONNECT_SECRETS_PATH,
        spec=c,
        resources=resources(c.resources),
        kafka=client,
        **_common(owner, "connect"),
    )
    add_data(config, "jmx-exporter.yaml", CONNECT_JMX_EXPORTER_CONFIG)
    with_jmx_exporter(objs, "connect", "/etc/headwater/connect/jmx-exporter.yaml")
    objs += metrics_service(n.connect_metrics, owner, "connect", JMX_EXPORTER_PORT, "kafka-connect")
    out = [config, *objs]
    if ctx.connect_secrets is not None:
        # Not part of the config hash: a rotated password restarts the connector (the
        # CdcConnector watches its Secret), not every worker.
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": n.connect_secrets},
                "type": "Opaque",
                "stringData": dict(sorted(ctx.connect_secrets.items())),
            }
        )
    # The Kafka credentials and CA are read once at start: their change rolls the workers.
    _roll_on(objs, [config], ctx, secrets=client.secrets)
    if c.replicas > 1:
        out.append(_pdb(n.connect, owner, "connect"))
    return [finalize(o, owner, "connect", c.version) for o in out]


def _s3(spec: DataPlatformSpec, owner: Owner) -> tuple[str | None, str | None]:
    """S3 endpoint and the Secret with its keys (accessKey/secretKey or the external keys)."""
    ep = endpoints(spec, owner)
    return ep.get("s3Endpoint"), ep.get("s3CredentialsSecret")


def flink_state_dirs(spec: DataPlatformSpec, owner: Owner) -> dict[str, str]:
    base = f"s3://{spec.object_store.checkpoint_bucket}/{owner.namespace}/{owner.name}"
    return {"checkpoints": f"{base}/checkpoints", "savepoints": f"{base}/savepoints"}


def render_flink(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.flink.mode != "managed":
        return []
    f = spec.flink.managed
    n = Names(owner.name)
    conf: dict[str, Any] = {
        "jobmanager.rpc.address": n.flink_jobmanager,
        "jobmanager.rpc.port": 6123,
        "jobmanager.bind-host": "0.0.0.0",
        "blob.server.port": 6124,
        "rest.port": 8081,
        "rest.address": n.flink_jobmanager,
        "rest.bind-address": "0.0.0.0",
        "taskmanager.bind-host": "0.0.0.0",
        "taskmanager.rpc.port": 6122,
        "taskmanager.numberOfTaskSlots": f.task_slots,
        "jobmanager.memory.process.size": f.job_manager.memory,
        "taskmanager.memory.process.size": f.task_manager.memory,
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": True,
        "env.java.opts.all": FLINK_JDK17_OPTS,
        **FLINK_REPORTER_CONFIG,
    }
    env: list[Obj] = []
    endpoint, secret = _s3(spec, owner)
    if endpoint and secret:
        dirs = flink_state_dirs(spec, owner)
        ext = spec.object_store.external
        conf.update(
            {
                "execution.checkpointing.dir": dirs["checkpoints"],
                "execution.checkpointing.savepoint-dir": dirs["savepoints"],
                "s3.endpoint": endpoint,
                "s3.path.style.access": ext.path_style if ext else True,
            }
        )
        access_key, secret_key = (
            (ext.credentials_secret_ref.access_key_key, ext.credentials_secret_ref.secret_key_key)
            if ext
            else ("accessKey", "secretKey")
        )
        env += [
            {"name": "ENABLE_BUILT_IN_PLUGINS", "value": f"flink-s3-fs-hadoop-{f.version}.jar"},
            {
                "name": "AWS_ACCESS_KEY_ID",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": access_key}},
            },
            {
                "name": "AWS_SECRET_ACCESS_KEY",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_key}},
            },
        ]
    conf.update(f.config)
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": n.flink_config},
        "data": {"config.yaml": yamlio.dump(dict(sorted(conf.items())))},
    }
    # The image's entrypoint links ENABLE_BUILT_IN_PLUGINS into /opt/flink/plugins (which
    # also holds the Prometheus reporter, so no emptyDir can replace it) and Flink writes to
    # /opt/flink/log: the root filesystem stays writable, for the image's own user only.
    common = _common(owner, "flink")
    common["pod_security"] = pod_security_context(uid=FLINK_UID, fs_group=FLINK_UID)
    common["container_security"] = container_security_context(read_only_root=False)
    # Without it the entrypoint writes the pod's own host name into jobmanager.rpc.address.
    env = [{"name": "JOB_MANAGER_RPC_ADDRESS", "value": n.flink_jobmanager}, *env]
    jm_selector = selector_labels(owner, "flink-jobmanager")
    tm_selector = selector_labels(owner, "flink-taskmanager")
    objs = template(
        "flink.yaml.j2",
        jm_name=n.flink_jobmanager,
        tm_name=n.flink_taskmanager,
        config_name=n.flink_config,
        spec=f,
        env=env,
        jm_selector=jm_selector,
        tm_selector=tm_selector,
        jm_pod_labels=pod_labels(owner, "flink-jobmanager"),
        tm_pod_labels=pod_labels(owner, "flink-taskmanager"),
        jm_resources=resources(f.job_manager.resources),
        tm_resources=resources(f.task_manager.resources),
        conf_init=lambda dirs: _flink_conf_init(f.image, dirs),
        **common,
    )
    objs += metrics_service(
        n.flink_jobmanager_metrics,
        owner,
        "flink-jobmanager",
        FLINK_METRICS_PORT,
        "flink-jobmanager",
    )
    objs += metrics_service(
        n.flink_taskmanager_metrics,
        owner,
        "flink-taskmanager",
        FLINK_METRICS_PORT,
        "flink-taskmanager",
    )
    _roll_on(objs, [config], ctx, secrets=[secret] if secret else [])
    return [finalize(o, owner, "flink", f.version) for o in [config, *objs]]


def _flink_conf_init(image: str, volumes: list[str]) -> Obj:
    """Init container filling each writable conf volume with the image's /opt/flink/conf
    (log4j files and the rest) and the rendered config.yaml on top."""
    copy = " && ".join(
        f"cp -R /opt/flink/conf/. /work/{v}/ && cp /etc/headwater/flink/config.yaml /work/{v}/"
        for v in volumes
    )
    return {
        "name": "flink-conf",
        "image": image,
        "command": ["/bin/bash", "-c", copy],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/headwater/flink", "readOnly": True},
            *({"name": v, "mountPath": f"/work/{v}"} for v in volumes),
        ],
    }


def render_spark(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.spark.mode != "managed":
        return []
    s = spec.spark.managed
    sa = s.service_account_name or Names(owner.name).spark
    role = Names(owner.name).spark
    objs: list[Obj] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role},
            # What spark-submit in cluster mode and the driver need to run executors.
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
                    "verbs": [
                        "create",
                        "get",
                        "list",
                        "watch",
                        "delete",
                        "deletecollection",
                        "patch",
                    ],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": owner.namespace}],
        },
    ]
    return [finalize(o, owner, "spark", s.version) for o in objs]


def render_minio(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.object_store.mode != "managed":
        return []
    m = spec.object_store.managed
    n = Names(owner.name)
    if m.replicas == 1:
        args = ["server", "/data", "--console-address", ":9001"]
    else:
        args = [
            "server",
            f"http://{n.minio}-{{0...{m.replicas - 1}}}.{n.minio_headless}.{owner.namespace}.svc/data",
            "--console-address",
            ":9001",
        ]
    env = {"MINIO_REGION": m.region, "MINIO_PROMETHEUS_AUTH_TYPE": "public", **m.config}
    objs = template(
        "minio.yaml.j2",
        name=n.minio,
        headless=n.minio_headless,
        root_secret=n.minio_root,
        spec=m,
        args=args,
        resources=resources(m.resources),
        **_common(owner, "minio"),
    )
    _container(objs, "StatefulSet", "minio")["env"] += [
        {"name": key, "value": value} for key, value in env.items()
    ]
    # The servers read the root credentials once, at start. Hash what the Secret holds, not
    # its resourceVersion: the first pass renders the Secret it creates (no version yet), and
    # a version in the hash would roll the new pods right after they were created.
    if ctx.new_minio_credentials is not None:
        root = minio_root_fingerprint(*ctx.new_minio_credentials)
    else:
        root = ctx.minio_root_fingerprint or ""
    for obj in objs:
        if obj["kind"] == "StatefulSet":
            set_config_hash(obj, config_hash([], {n.minio_root: root}))
    out = [*objs, *metrics_service(n.minio_metrics, owner, "minio", 9000, "minio")]
    if ctx.new_minio_credentials is not None:
        user, password = ctx.new_minio_credentials
        # Created once and then left alone (never re-rendered, never pruned): rotating root
        # credentials by accident would lock everyone out of the data.
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": n.minio_root, "labels": {LABEL_RETAIN: "true"}},
                "type": "Opaque",
                "stringData": {"accessKey": user, "secretKey": password},
            }
        )
    return [finalize(o, owner, "minio", m.version) for o in out]


def _container(objs: list[Obj], kind: str, name: str) -> Obj:
    """A container of the rendered workload, to set values taken from free text in the spec
    after the template: no user text passes through YAML parsing."""
    workload = next(o for o in objs if o["kind"] == kind)
    containers: list[Obj] = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def minio_root_fingerprint(user: str, password: str) -> str:
    """A digest of the MinIO root credentials for the config hash (never the values): the
    same whether the render creates the Secret or reads it back, and different when someone
    replaces the Secret, which must restart the servers."""
    return stable_hash("minio-root", user, password, length=32)


def scrape_configs(spec: DataPlatformSpec, owner: Owner, interval: str) -> list[Obj]:
    """Scrape jobs of the managed Prometheus for every managed component's exporter.

    Every target gets the labels `namespace` and `platform` (the generated alert rules select
    on them) and a fixed `job` name. Kafka brokers are listed one by one (a missing broker
    stays visible as `up == 0`); scalable components are discovered through their headless
    metrics Service (DNS A records, no Kubernetes API access needed).
    """
    n, ns = Names(owner.name), owner.namespace
    scope = {"namespace": ns, "platform": owner.name}
    jobs: list[Obj] = []

    def static(name: str, targets: list[str], path: str = "/metrics") -> None:
        jobs.append(
            {
                "job_name": name,
                "scrape_interval": interval,
                "metrics_path": path,
                "static_configs": [{"targets": targets, "labels": dict(scope)}],
            }
        )

    def discovered(name: str, service: str, port: int) -> None:
        jobs.append(
            {
                "job_name": name,
                "scrape_interval": interval,
                "metrics_path": "/metrics",
                "dns_sd_configs": [{"names": [f"{service}.{ns}.svc"], "type": "A", "port": port}],
                "relabel_configs": [
                    {"target_label": key, "replacement": value} for key, value in scope.items()
                ],
            }
        )

    static("prometheus", ["localhost:9090"])
    if spec.kafka.mode == "managed":
        static(
            "kafka",
            [
                f"{n.kafka}-{i}.{n.kafka_headless}.{ns}.svc:{JMX_EXPORTER_PORT}"
                for i in range(spec.kafka.managed.replicas)
            ],
        )
        static("kafka-exporter", [svc(n.kafka_exporter, ns, KAFKA_EXPORTER_PORT)])
    if spec.connect.mode == "managed":
        discovered("kafka-connect", n.connect_metrics, JMX_EXPORTER_PORT)
    if spec.flink.mode == "managed":
        discovered("flink-jobmanager", n.flink_jobmanager_metrics, FLINK_METRICS_PORT)
        discovered("flink-taskmanager", n.flink_taskmanager_metrics, FLINK_METRICS_PORT)
    if spec.object_store.mode == "managed":
        static("minio", [svc(n.minio, ns, 9000)], "/minio/v2/metrics/cluster")
    return jobs


# --- exporter wiring ------------------------------------------------------------------------

# The Prometheus JMX exporter runs as a Java agent inside the Kafka and Connect JVMs. Neither
# image ships it, so an init container fetches the pinned release from Maven Central, checks
# it against the published SHA-1 and leaves it in a shared emptyDir.
JMX_AGENT_VERSION = "1.0.1"
JMX_AGENT_URL = (
    "https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/"
    f"{JMX_AGENT_VERSION}/jmx_prometheus_javaagent-{JMX_AGENT_VERSION}.jar"
)
JMX_AGENT_FETCH_IMAGE = "curlimages/curl:8.11.1"
JMX_AGENT_DIR = "/opt/headwater/jmx"
KAFKA_EXPORTER_IMAGE = "danielqsj/kafka-exporter:v1.9.0"

# Broker MBeans -> `kafka_<domain>_<type>_<name>` (the JMX exporter's Kafka convention).
KAFKA_JMX_EXPORTER_CONFIG = yaml.safe_dump(
    {
        "lowercaseOutputName": True,
        "lowercaseOutputLabelNames": True,
        "rules": [
            {
                "pattern": "kafka.server<type=BrokerTopicMetrics, name=(MessagesInPerSec|BytesInPerSec|BytesOutPerSec), topic=(.+)><>Count",
                "name": "kafka_server_brokertopicmetrics_$1_total",
                "labels": {"topic": "$2"},
                "type": "COUNTER",
            },
            {
                "pattern": "kafka.server<type=BrokerTopicMetrics, name=(MessagesInPerSec|BytesInPerSec|BytesOutPerSec)><>Count",
                "name": "kafka_server_brokertopicmetrics_$1_total",
                "type": "COUNTER",
            },
            {
                "pattern": "kafka.(\\w+)<type=(.+), name=(.+)><>Value",
                "name": "kafka_$1_$2_$3",
                "type": "GAUGE",
            },
        ],
    },
    sort_keys=False,
    width=1000,
)

# Connect worker/connector/task MBeans (lower case, `kafka_connect_*`) and Debezium's
# streaming/snapshot MBeans as `debezium_metrics_<Attribute>` (Debezium's own convention,
# e.g. debezium_metrics_MilliSecondsBehindSource{plugin, name=<topic.prefix>, context}).
CONNECT_JMX_EXPORTER_CONFIG = yaml.safe_dump(
    {
        "lowercaseOutputName": False,
        "rules": [
            {
                "pattern": "kafka.connect<type=connector-metrics, connector=(.+)><>status: ([a-z-]+)",
                "name": "kafka_connect_connector_status",
                "value": 1,
                "labels": {"connector": "$1", "status": "$2"},
                "type": "GAUGE",
            },
            {
                "pattern": "kafka.connect<type=connector-task-metrics, connector=(.+), task=(.+)><>status: ([a-z-]+)",
                "name": "kafka_connect_connector_task_status",
                "value": 1,
                "labels": {"connector": "$1", "task": "$2", "status": "$3"},
                "type": "GAUGE",
            },
            {
                "pattern": "kafka.connect<type=connect-worker-metrics, connector=(.+)><>connector-(failed|running|paused|total|unassigned|destroyed|restarting)-task-count",
                "name": "kafka_connect_worker_connector_$2_task_count",
                "labels": {"connector": "$1"},
                "type": "GAUGE",
            },
            {
                "pattern": "kafka.connect<type=source-task-metrics, connector=(.+), task=(.+)><>source-record-(poll|write)-total",
                "name": "kafka_connect_source_task_source_record_$3_total",
                "labels": {"connector": "$1", "task": "$2"},
                "type": "COUNTER",
            },
            {
                "pattern": "kafka.connect<type=task-error-metrics, connector=(.+), task=(.+)><>total-record-errors",
                "name": "kafka_connect_task_error_total_record_errors",
                "labels": {"connector": "$1", "task": "$2"},
                "type": "COUNTER",
            },
            {
                "pattern": "debezium.([^:]+)<type=connector-metrics, context=([^,]+), server=([^,]+), key=([^>]+)><>RowsScanned",
                "name": "debezium_metrics_RowsScanned",
                "labels": {"plugin": "$1", "name": "$3", "context": "$2", "table": "$4"},
            },
            {
                "pattern": "debezium.([^:]+)<type=connector-metrics, server=([^,]+), task=([^,]+), context=([^,>]+)(?:, [^>]+)?><>([A-Za-z]+)",
                "name": "debezium_metrics_$5",
                "labels": {"plugin": "$1", "name": "$2", "task": "$3", "context": "$4"},
            },
            {
                "pattern": "debezium.([^:]+)<type=connector-metrics, context=([^,]+), server=([^>]+)><>([A-Za-z]+)",
                "name": "debezium_metrics_$4",
                "labels": {"plugin": "$1", "name": "$3", "context": "$2"},
            },
        ],
    },
    sort_keys=False,
    width=1000,
)

# The JDK module flags Flink's own conf/config.yaml sets in `env.java.opts.all` (Flink
# 2.3). Our config.yaml replaces that file, and without them jar jobs fail in the
# JobManager with InaccessibleObjectException on JDK 17 (reproduced on the test bed's Flink).
FLINK_JDK17_OPTS = " ".join(
    [
        *(
            f"--add-exports={m}=ALL-UNNAMED"
            for m in (
                "java.rmi/sun.rmi.registry",
                *(
                    f"jdk.compiler/com.sun.tools.javac.{p}"
                    for p in ("api", "file", "parser", "tree", "util")
                ),
                "java.security.jgss/sun.security.krb5",
            )
        ),
        *(
            f"--add-opens=java.base/{p}=ALL-UNNAMED"
            for p in (
                "java.lang",
                "java.net",
                "java.io",
                "java.nio",
                "sun.nio.ch",
                "java.lang.reflect",
                "java.text",
                "java.time",
                "java.util",
                "java.util.concurrent",
                "java.util.concurrent.atomic",
                "java.util.concurrent.locks",
            )
        ),
    ]
)

# Flink's built-in PrometheusReporter on every JobManager and TaskManager.
FLINK_REPORTER_CONFIG: dict[str, Any] = {
    "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
    "metrics.reporter.prom.port": FLINK_METRICS_PORT,
    # Job state as gauges (flink_jobmanager_job_<state>State), for dashboards.
    "metrics.job.status.enable": "STATE",
}


def add_data(config_map: Obj, key: str, value: str) -> None:
    """One more file in a rendered ConfigMap (part of its config hash: pods roll on change)."""
    config_map["data"][key] = value


def with_jmx_exporter(objs: list[Obj], container: str, config_path: str) -> None:
    """Run the JMX exporter agent in `container` of the component's workload.

    Monitoring must never stop the data plane: when the agent could not be downloaded the
    init container still succeeds, and the container starts without the agent (its scrape
    target then shows `up == 0`, which PrometheusTargetDown reports).
    """
    agent = f"{JMX_AGENT_DIR}/jmx_prometheus_javaagent.jar"
    fetch = (
        f"cd {JMX_AGENT_DIR} && "
        f"curl -fsSL --retry 3 -o agent.jar {JMX_AGENT_URL} && "
        f"curl -fsSL --retry 3 -o agent.jar.sha1 {JMX_AGENT_URL}.sha1 && "
        'echo "$(cut -c1-40 agent.jar.sha1)  agent.jar" | sha1sum -c - && '
        "mv agent.jar jmx_prometheus_javaagent.jar "
        "|| { rm -f agent.jar; echo 'JMX exporter agent not available: starting without it'; }"
    )
    use_agent = (
        f'if [ -s {agent} ]; then export KAFKA_OPTS="$KAFKA_OPTS '
        f'-javaagent:{agent}={JMX_EXPORTER_PORT}:{config_path}"; fi; exec "$@"'
    )
    for obj in objs:
        if obj["kind"] not in ("StatefulSet", "Deployment"):
            continue
        pod = obj["spec"]["template"]["spec"]
        main = next(c for c in pod["containers"] if c["name"] == container)
        # Wrap the container's own command: the agent joins KAFKA_OPTS only if it is there.
        original = [*main.get("command", []), *main.pop("args", [])]
        main["command"] = ["/bin/bash", "-c", use_agent, "--", *original]
        main.setdefault("ports", []).append({"name": "metrics", "containerPort": JMX_EXPORTER_PORT})
        main.setdefault("volumeMounts", []).append(
            {"name": "jmx-agent", "mountPath": JMX_AGENT_DIR, "readOnly": True}
        )
        pod.setdefault("initContainers", []).append(
            {
                "name": "jmx-agent",
                "image": JMX_AGENT_FETCH_IMAGE,
                "command": ["/bin/sh", "-c", fetch],
                "resources": {
                    "requests": {"cpu": "10m", "memory": "16Mi"},
                    "limits": {"memory": "64Mi"},
                },
                "securityContext": container_security_context(),
                "volumeMounts": [{"name": "jmx-agent", "mountPath": JMX_AGENT_DIR}],
            }
        )
        pod.setdefault("volumes", []).append({"name": "jmx-agent", "emptyDir": {}})


def metrics_service(name: str, owner: Owner, component: str, port: int, job: str) -> list[Obj]:
    """A headless Service exposing only the component's metrics port, labelled with the
    scrape job name: it lists every pod (ready or not) in DNS for the managed Prometheus, and
    ServiceMonitors select the label. No ClusterIP: a scrape needs no virtual IP, and
    allocating one made ClusterIP Services the slowest writes measured at 1,000 CRs."""
    spec: Obj = {
        "selector": selector_labels(owner, component),
        "ports": [{"name": "metrics", "port": port, "targetPort": port}],
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {LABEL_METRICS: job}},
            "spec": spec,
        }
    ]


def render_kafka_exporter(spec: DataPlatformSpec, owner: Owner) -> list[Obj]:
    """kafka-exporter next to managed Kafka: consumer group lag (kafka_consumergroup_lag)."""
    n = Names(owner.name)
    selector = selector_labels(owner, "kafka-exporter")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": n.kafka_exporter},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels(owner, "kafka-exporter")},
                "spec": {
                    "securityContext": pod_security_context(),
                    "containers": [
                        {
                            "name": "kafka-exporter",
                            "image": KAFKA_EXPORTER_IMAGE,
                            "args": [
                                f"--kafka.server={_bootstrap(spec, owner)}",
                                f"--web.listen-address=:{KAFKA_EXPORTER_PORT}",
                            ],
                            "ports": [{"name": "metrics", "containerPort": KAFKA_EXPORTER_PORT}],
                            "readinessProbe": {
                                "tcpSocket": {"port": "metrics"},
                                "periodSeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "20m", "memory": "32Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                            "securityContext": container_security_context(),
                        }
                    ],
                },
            },
        },
    }
    set_config_hash(deployment, config_hash([], {"kafka.server": _bootstrap(spec, owner)}))
    service = metrics_service(
        n.kafka_exporter,
        owner,
        "kafka-exporter",
        KAFKA_EXPORTER_PORT,
        "kafka-exporter",
    )
    return [finalize(o, owner, "kafka-exporter") for o in [deployment, *service]]


def render_prometheus(spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext) -> list[Obj]:
    if spec.monitoring.mode != "managed":
        return []
    p = spec.monitoring.managed
    n = Names(owner.name)
    prom_config = {
        "global": {
            "scrape_interval": p.scrape_interval,
            "evaluation_interval": p.scrape_interval,
            "external_labels": {"headwater_platform": f"{owner.namespace}/{owner.name}"},
        },
        "rule_files": ["/etc/prometheus/rules/*.yaml"],
        "scrape_configs": [
            *scrape_configs(spec, owner, p.scrape_interval),
            *(dict(c) for c in ctx.extra_scrape_configs),
        ],
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": n.prometheus_config},
        "data": {"prometheus.yml": yamlio.dump(prom_config, sort_keys=False)},
    }
    flags = {
        "config.file": "/etc/prometheus/prometheus.yml",
        "storage.tsdb.path": "/prometheus",
        "storage.tsdb.retention.time": p.retention,
        "web.enable-lifecycle": "true",
        **p.config,
    }
    objs = template(
        "prometheus.yaml.j2",
        name=n.prometheus,
        config_name=n.prometheus_config,
        rules_name=n.prometheus_rules,
        spec=p,
        resources=resources(p.resources),
        **_common(owner, "prometheus"),
    )
    _container(objs, "Deployment", "prometheus")["args"] = [
        prometheus_flag(key, value) for key, value in flags.items()
    ]
    # Only the scrape config rolls the pod; rule changes are hot-reloaded by the sidecar.
    _roll_on(objs, [config], ctx)
    out = [config, *objs]
    if ctx.alert_rules is not None:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": n.prometheus_rules},
                "data": {
                    name: yamlio.dump(groups, sort_keys=False)
                    for name, groups in sorted(ctx.alert_rules.items())
                },
            }
        )
    return [finalize(o, owner, "prometheus", p.version) for o in out]


def prometheus_flag(key: str, value: str) -> str:
    """One Prometheus command-line flag. Its parser refuses `--bool-flag=true` ("unexpected
    true"): booleans are `--flag` and `--no-flag`."""
    if value == "true":
        return f"--{key}"
    if value == "false":
        return f"--no-{key}"
    return f"--{key}={value}"


def _pdb(name: str, owner: Owner, component: str) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
        },
    }


def _roll_on(
    objs: list[Obj], configs: list[Obj], ctx: PlatformContext, secrets: list[str] | None = None
) -> None:
    """Stamp the config hash on every workload so a config change rolls its pods."""
    versions = {s: ctx.secret_versions.get(s, "") for s in (secrets or [])}
    value = config_hash(configs, versions)
    for obj in objs:
        if obj["kind"] in ("StatefulSet", "Deployment"):
            set_config_hash(obj, value)


COMPONENTS: tuple[
    tuple[str, Callable[[DataPlatformSpec, Owner, PlatformContext], list[Obj]]], ...
] = (
    ("kafka", render_kafka),
    ("connect", render_connect),
    ("flink", render_flink),
    ("spark", render_spark),
    ("objectStore", render_minio),
    ("monitoring", render_prometheus),
)


def render_platform(
    spec: DataPlatformSpec, owner: Owner, ctx: PlatformContext | None = None
) -> list[Obj]:
    """Every object the platform should have. Order: config before the workloads using it."""
    ctx = ctx or PlatformContext()
    out: list[Obj] = []
    for _, fn in COMPONENTS:
        out.extend(fn(spec, owner, ctx))
    return out
