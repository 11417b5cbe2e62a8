"""Debezium connector configs from a CdcConnector, its DataSource and a few platform facts.

Pure: the reconciler looks the facts up (platform endpoints, which config provider the
Connect workers run, the Secret's version) and this module turns them into the flat
string map Kafka Connect's REST API takes. Credentials never appear here as values: the
config carries config-provider references (`${dir:...}`, `${secrets:...}`) that the Connect
worker resolves from a mounted directory or the Kubernetes API when it starts the connector.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.cdcconnector import CdcConnectorSpec
from ..api.common import CredentialsSecretReference, SecretKeyReference
from ..api.dataplatform import DataPlatformSpec
from ..api.datasource import DataSourceSpec
from ..constants import CONNECT_CREDENTIALS_VERSION_KEY
from .common import stable_hash
from .platform import CONNECT_SECRETS_PATH

CONNECTOR_CLASSES: dict[str, str] = {
    "postgres": "io.debezium.connector.postgresql.PostgresConnector",
    "mysql": "io.debezium.connector.mysql.MySqlConnector",
    "mariadb": "io.debezium.connector.mariadb.MariaDbConnector",
    "sqlserver": "io.debezium.connector.sqlserver.SqlServerConnector",
    "oracle": "io.debezium.connector.oracle.OracleConnector",
}
# Connectors that keep a database schema history in a Kafka topic of their own.
SCHEMA_HISTORY_TYPES = frozenset({"mysql", "mariadb", "sqlserver", "oracle"})
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
SCHEMA_HISTORY_BOOTSTRAP = "schema.history.internal.kafka.bootstrap.servers"

# How the Connect workers resolve credentials (the config provider prefix they register).
SecretsProvider = Literal["managed", "directory", "kubernetes"]
DIR_PROVIDER = "dir"  # org.apache.kafka.common.config.provider.DirectoryConfigProvider
K8S_PROVIDER = "secrets"  # io.strimzi.kafka.KubernetesSecretConfigProvider

# libpq sslmode -> each connector's own TLS setting (None: leave the connector's default).
MYSQL_SSL_MODES = {
    "disable": "disabled",
    "prefer": "preferred",
    "require": "required",
    "verify-ca": "verify_ca",
    "verify-full": "verify_identity",
}
MARIADB_SSL_MODES: dict[str, str | None] = {
    "disable": "disable",
    "prefer": None,
    "require": "trust",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
}

_IDENT_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class SecretRefs:
    """Config-provider references the worker resolves; never the values themselves."""

    username: str
    password: str
    ca_file: str | None = None  # worker-side path of the CA certificate, when one exists


@dataclass(frozen=True)
class ConnectorFacts:
    """What the reconciler looked up for one connector."""

    namespace: str
    name: str  # the CdcConnector's name
    uid: str
    secrets: SecretRefs
    kafka_bootstrap: str | None = None  # as the Connect workers reach Kafka
    kafka_tls: bool = False
    credentials_version: str = ""  # a version of the credentials Secret, never its content
    # Client security settings of the Connect workers for an external Kafka (SASL, TLS), as
    # render.platform.kafka_client gives them to a managed worker: only references
    # (`${env:...}`, file paths) that the worker resolves, never a credential.
    kafka_client: Mapping[str, str] = field(default_factory=dict)


# --- names derived from the CR ------------------------------------------------------------


def connector_name(namespace: str, name: str, spec: CdcConnectorSpec) -> str:
    """Name in Kafka Connect: unique per namespace and CR unless the user picked one."""
    return spec.connector_name or f"{namespace}.{name}"


def sql_identifier(text: str, limit: int = 63) -> str:
    """A lower-case PostgreSQL identifier from free text, unique through a hash suffix when
    it had to be shortened (slot and publication names: max 63 bytes, [a-z0-9_])."""
    ident = _IDENT_UNSAFE.sub("_", text.lower()).strip("_") or "hw"
    if not ident[0].isalpha() and ident[0] != "_":
        ident = f"hw_{ident}"
    if len(ident) <= limit:
        return ident
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{ident[: limit - 11].rstrip('_')}_{digest}"


def slot_name(namespace: str, name: str, spec: CdcConnectorSpec) -> str:
    """One replication slot per connector. Derived from namespace and name (not the uid), so
    a CdcConnector re-created under the same name finds its retained slot again."""
    if spec.postgres is not None and spec.postgres.slot_name:
        return spec.postgres.slot_name
    return sql_identifier(f"hw_{namespace}_{name}")


def publication_name(
    namespace: str, name: str, spec: CdcConnectorSpec, source: DataSourceSpec
) -> str:
    """The connector's own publication unless the connector or its source names one."""
    if spec.postgres is not None and spec.postgres.publication_name:
        return spec.postgres.publication_name
    if source.postgres is not None and source.postgres.publication_name:
        return source.postgres.publication_name
    return slot_name(namespace, name, spec)


def owns_publication(spec: CdcConnectorSpec, source: DataSourceSpec) -> bool:
    """Whether the publication is this connector's alone (named after its slot), so dropping
    it on deletion hurts no other connector."""
    named = (spec.postgres is not None and spec.postgres.publication_name) or (
        source.postgres is not None and source.postgres.publication_name
    )
    return not named


def server_id(uid: str, spec: CdcConnectorSpec) -> int:
    """MySQL replication client id: stable for the CR's life, away from the small ids real
    replicas usually get."""
    if spec.mysql is not None and spec.mysql.server_id:
        return spec.mysql.server_id
    span = 2**32 - 1 - 100_000
    return 100_000 + int(hashlib.sha256(uid.encode()).hexdigest()[:12], 16) % span


def schema_history_topic(connector: str) -> str:
    return f"headwater.schema-history.{connector}"[:249]


def topic_prefix(name: str, spec: CdcConnectorSpec) -> str:
    return spec.topic_prefix or name


# --- credentials --------------------------------------------------------------------------


def managed_secret_key(datasource: str, field: str) -> str:
    """File name of a DataSource credential in the managed Connect secrets volume; the
    DataPlatform reconciler copies the credentials under these keys."""
    return f"{datasource}.{field}"


def secret_refs(
    provider: SecretsProvider,
    *,
    namespace: str,
    datasource: str,
    credentials: CredentialsSecretReference,
    ca: SecretKeyReference | None = None,
    mount_path: str = CONNECT_SECRETS_PATH,
) -> SecretRefs:
    """Config-provider references to the DataSource's credentials, as the workers see them.

    managed:    the platform copies the credentials into `<platform>-connect-secrets`, mounted
                at /opt/headwater/secrets -> `${dir:/opt/headwater/secrets:<source>.password}`
    directory:  the user mounts the DataSource Secret at `<mount>/<namespace>/<secret>/`
    kubernetes: Strimzi's provider reads the Secret through the API: `${secrets:<ns>/<secret>:<key>}`
    """
    if provider == "managed":
        return SecretRefs(
            username=f"${{{DIR_PROVIDER}:{CONNECT_SECRETS_PATH}:{managed_secret_key(datasource, 'username')}}}",
            password=f"${{{DIR_PROVIDER}:{CONNECT_SECRETS_PATH}:{managed_secret_key(datasource, 'password')}}}",
            ca_file=f"{CONNECT_SECRETS_PATH}/{managed_secret_key(datasource, 'ca.crt')}"
            if ca is not None
            else None,
        )
    if provider == "directory":
        base = mount_path.rstrip("/")
        directory = f"{base}/{namespace}/{credentials.name}"
        return SecretRefs(
            username=f"${{{DIR_PROVIDER}:{directory}:{credentials.username_key}}}",
            password=f"${{{DIR_PROVIDER}:{directory}:{credentials.password_key}}}",
            ca_file=f"{base}/{namespace}/{ca.name}/{ca.key}" if ca is not None else None,
        )
    path = f"{namespace}/{credentials.name}"
    return SecretRefs(
        username=f"${{{K8S_PROVIDER}:{path}:{credentials.username_key}}}",
        password=f"${{{K8S_PROVIDER}:{path}:{credentials.password_key}}}",
    )


# --- the config ---------------------------------------------------------------------------


def _table_regex(table: str) -> str:
    """Debezium's include lists are regular expressions: match the name literally."""
    return re.sub(r"([.$])", r"\\\1", table)


def expected_topics(name: str, spec: CdcConnectorSpec) -> list[str]:
    """Change topics before routing: `<prefix>.<schema|database>.<table>`."""
    prefix = topic_prefix(name, spec)
    return sorted(f"{prefix}.{t}" for t in spec.tables)


def _source(
    spec: CdcConnectorSpec, source: DataSourceSpec, facts: ConnectorFacts
) -> dict[str, str]:
    """Connection and capture settings that depend on the database type."""
    out = {
        "connector.class": CONNECTOR_CLASSES[source.type],
        "database.hostname": source.host,
        "database.port": str(source.effective_port),
        "database.user": facts.secrets.username,
        "database.password": facts.secrets.password,
        "table.include.list": ",".join(_table_regex(t) for t in spec.tables),
    }
    tls = source.tls.mode
    if source.type == "postgres":
        pg = source.postgres_settings
        out.update(
            {
                "database.dbname": source.database,
                "plugin.name": pg.plugin_name,
                "slot.name": slot_name(facts.namespace, facts.name, spec),
                "publication.name": publication_name(facts.namespace, facts.name, spec, source),
                "publication.autocreate.mode": pg.publication_autocreate_mode,
                "database.sslmode": tls,
            }
        )
        if facts.secrets.ca_file and tls in ("verify-ca", "verify-full"):
            out["database.sslrootcert"] = facts.secrets.ca_file
    elif source.type in ("mysql", "mariadb"):
        databases = sorted({t.split(".", 1)[0] for t in spec.tables})
        out["database.server.id"] = str(server_id(facts.uid, spec))
        out["database.include.list"] = ",".join(_table_regex(d) for d in databases)
        mode = (MYSQL_SSL_MODES if source.type == "mysql" else MARIADB_SSL_MODES)[tls]
        if mode is not None:
            out["database.ssl.mode"] = mode
    elif source.type == "sqlserver":
        out["database.names"] = source.database
        out["database.encrypt"] = "false" if tls == "disable" else "true"
        if tls in ("prefer", "require"):
            out["database.trustServerCertificate"] = "true"
    elif source.type == "oracle":
        out["database.dbname"] = source.database
    return out


def _schema_history(
    spec: CdcConnectorSpec, connector: str, facts: ConnectorFacts
) -> dict[str, str]:
    """MySQL, MariaDB, SQL Server and Oracle keep the table schemas in a Kafka topic."""
    out = {"schema.history.internal.kafka.topic": schema_history_topic(connector)}
    bootstrap = spec.config.get(SCHEMA_HISTORY_BOOTSTRAP) or facts.kafka_bootstrap
    if bootstrap:
        out[SCHEMA_HISTORY_BOOTSTRAP] = bootstrap
    # Debezium's schema-history clients take only their own prefixed settings, not the
    # worker's producer./consumer. ones, so they get the worker's security settings again.
    if facts.kafka_client:
        for key, value in facts.kafka_client.items():
            out[f"schema.history.internal.producer.{key}"] = value
            out[f"schema.history.internal.consumer.{key}"] = value
    elif facts.kafka_tls:
        out["schema.history.internal.producer.security.protocol"] = "SSL"
        out["schema.history.internal.consumer.security.protocol"] = "SSL"
    return out


def _format(spec: CdcConnectorSpec) -> dict[str, str]:
    if spec.format == "avro":
        registry = spec.schema_registry_url or ""
        return {
            "key.converter": AVRO_CONVERTER,
            "value.converter": AVRO_CONVERTER,
            "key.converter.schema.registry.url": registry,
            "value.converter.schema.registry.url": registry,
        }
    return {
        "key.converter": JSON_CONVERTER,
        "value.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
    }


def _transforms(spec: CdcConnectorSpec) -> dict[str, str]:
    """Flattening first, then routing (routing sees the final record)."""
    out: dict[str, str] = {}
    names = []
    if spec.extract_new_record_state:
        names.append("unwrap")
        out["transforms.unwrap.type"] = "io.debezium.transforms.ExtractNewRecordState"
    if spec.routing is not None:
        names.append("route")
        out["transforms.route.type"] = "org.apache.kafka.connect.transforms.RegexRouter"
        out["transforms.route.regex"] = spec.routing.topic_regex
        out["transforms.route.replacement"] = spec.routing.topic_replacement
    if names:
        out["transforms"] = ",".join(names)
    return out


def render_connector_config(
    spec: CdcConnectorSpec, source: DataSourceSpec, facts: ConnectorFacts
) -> dict[str, str]:
    """The config the operator PUTs to `/connectors/<name>/config`, as strings."""
    connector = connector_name(facts.namespace, facts.name, spec)
    config: dict[str, str] = {
        "name": connector,
        "tasks.max": str(spec.tasks_max),
        "topic.prefix": topic_prefix(facts.name, spec),
        "snapshot.mode": spec.snapshot_mode,
        "heartbeat.interval.ms": str(spec.heartbeat_interval_ms),
        # Let Connect create the change topics with the broker's defaults, so it works
        # where automatic topic creation is off.
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.partitions": "-1",
    }
    config.update(_source(spec, source, facts))
    if source.type in SCHEMA_HISTORY_TYPES:
        config.update(_schema_history(spec, connector, facts))
    config.update(_format(spec))
    config.update(_transforms(spec))
    if facts.credentials_version:
        config[CONNECT_CREDENTIALS_VERSION_KEY] = facts.credentials_version
    # Passthrough last: it tunes anything except the keys the models refuse.
    config.update(spec.config)
    return config


def config_hash(config: Mapping[str, str]) -> str:
    return stable_hash(dict(config))


# --- offline (`headwater render`) -----------------------------------------------------------

OFFLINE_KIND = "KafkaConnectConnector"
OFFLINE_NOTE = (
    "Not a Kubernetes object: the config the operator PUTs to Kafka Connect "
    "(/connectors/<name>/config). Credentials appear only as config-provider references."
)


def _find(docs: Sequence[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any] | None:
    return next(
        (
            d
            for d in docs
            if d.get("kind") == kind and (d.get("metadata") or {}).get("name") == name
        ),
        None,
    )


def render_offline(
    doc: Mapping[str, Any], context: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The connector config a CdcConnector produces, from the documents given with it.

    The DataSource must be among `context` (else only a note is printed); without the
    DataPlatform, managed Kafka Connect is assumed (the default mode)."""
    meta = doc.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name", "")
    spec = CdcConnectorSpec.model_validate(doc.get("spec") or {})
    out: dict[str, Any] = {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": OFFLINE_KIND,
        "metadata": {"name": connector_name(ns, name, spec), "namespace": ns},
        "note": OFFLINE_NOTE,
    }
    source_doc = _find(context, "DataSource", spec.source_ref.name)
    if source_doc is None:
        out["note"] += (
            f" Render DataSource {spec.source_ref.name!r} together with it to see the config."
        )
        return [out]
    source = DataSourceSpec.model_validate(source_doc.get("spec") or {})
    platform_doc = _find(context, "DataPlatform", spec.platform_ref.name)
    platform = DataPlatformSpec.model_validate((platform_doc or {}).get("spec") or {})
    ext = platform.connect.external if platform.connect.mode == "external" else None
    refs = secret_refs(
        ext.secrets_provider if ext else "managed",
        namespace=ns,
        datasource=spec.source_ref.name,
        credentials=source.credentials_secret_ref,
        ca=source.tls.ca_secret_ref,
        mount_path=ext.secrets_mount_path if ext else CONNECT_SECRETS_PATH,
    )
    kafka = platform.kafka
    bootstrap = (
        ",".join(kafka.external.bootstrap_servers)
        if kafka.mode == "external" and kafka.external
        else f"{spec.platform_ref.name}-kafka.{ns}.svc:9092"
        if kafka.mode == "managed"
        else None
    )
    facts = ConnectorFacts(
        namespace=ns,
        name=name,
        uid=str(meta.get("uid") or "00000000-0000-0000-0000-000000000000"),
        secrets=refs,
        kafka_bootstrap=bootstrap,
        kafka_tls=bool(kafka.mode == "external" and kafka.external and kafka.external.tls.enabled),
    )
    out["config"] = dict(sorted(render_connector_config(spec, source, facts).items()))
    return [out]
