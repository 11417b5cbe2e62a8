"""Debezium connector configs rendered from CdcConnector + DataSource (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.api.cdcconnector import CREDENTIAL_KEY, CdcConnectorSpec
from headwater.api.datasource import DataSourceSpec
from headwater.constants import CONNECT_CREDENTIALS_VERSION_KEY
from headwater.render import connector as r

UID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def source(**spec: Any) -> DataSourceSpec:
    base = {
        "type": "postgres",
        "host": "orders-db.shop.svc",
        "database": "shop",
        "credentialsSecretRef": {"name": "orders-db-cdc"},
    }
    return DataSourceSpec.model_validate({**base, **spec})


def connector(**spec: Any) -> CdcConnectorSpec:
    base = {
        "platformRef": {"name": "shop"},
        "sourceRef": {"name": "orders-db"},
        "tables": ["public.orders"],
    }
    return CdcConnectorSpec.model_validate({**base, **spec})


def facts(
    src: DataSourceSpec, provider: r.SecretsProvider = "managed", **kw: Any
) -> r.ConnectorFacts:
    refs = r.secret_refs(
        provider,
        namespace="shop",
        datasource="orders-db",
        credentials=src.credentials_secret_ref,
        ca=src.tls.ca_secret_ref,
        mount_path=kw.pop("mount_path", "/mnt/secrets"),
    )
    return r.ConnectorFacts(namespace="shop", name="orders-cdc", uid=UID, secrets=refs, **kw)


def render(spec: CdcConnectorSpec, src: DataSourceSpec, **kw: Any) -> dict[str, str]:
    return r.render_connector_config(spec, src, facts(src, **kw))


def test_postgres_config() -> None:
    src = source()
    config = render(connector(topicPrefix="shop"), src, kafka_bootstrap="k:9092")
    assert config == {
        "name": "shop.orders-cdc",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "topic.prefix": "shop",
        "snapshot.mode": "initial",
        "heartbeat.interval.ms": "10000",
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.partitions": "-1",
        "database.hostname": "orders-db.shop.svc",
        "database.port": "5432",
        "database.dbname": "shop",
        "database.user": "${dir:/opt/headwater/secrets:orders-db.username}",
        "database.password": "${dir:/opt/headwater/secrets:orders-db.password}",
        "table.include.list": r"public\.orders",
        "plugin.name": "pgoutput",
        "slot.name": "hw_shop_orders_cdc",
        "publication.name": "hw_shop_orders_cdc",
        "publication.autocreate.mode": "filtered",
        "database.sslmode": "prefer",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
    }


@pytest.mark.parametrize(
    ("provider", "user", "password"),
    [
        (
            "managed",
            "${dir:/opt/headwater/secrets:orders-db.username}",
            "${dir:/opt/headwater/secrets:orders-db.password}",
        ),
        (
            "directory",
            "${dir:/mnt/secrets/shop/orders-db-cdc:username}",
            "${dir:/mnt/secrets/shop/orders-db-cdc:password}",
        ),
        (
            "kubernetes",
            "${secrets:shop/orders-db-cdc:username}",
            "${secrets:shop/orders-db-cdc:password}",
        ),
    ],
)
def test_credentials_are_provider_references(
    provider: r.SecretsProvider, user: str, password: str
) -> None:
    config = render(connector(), source(), provider=provider)
    assert (config["database.user"], config["database.password"]) == (user, password)


def test_custom_secret_keys_and_ca_path() -> None:
    src = source(
        credentialsSecretRef={"name": "creds", "usernameKey": "user", "passwordKey": "pass"},
        tls={"mode": "verify-full", "caSecretRef": {"name": "db-ca", "key": "ca.crt"}},
    )
    config = render(connector(), src, provider="directory")
    assert config["database.password"] == "${dir:/mnt/secrets/shop/creds:pass}"
    assert config["database.user"] == "${dir:/mnt/secrets/shop/creds:user}"
    assert config["database.sslmode"] == "verify-full"
    assert config["database.sslrootcert"] == "/mnt/secrets/shop/db-ca/ca.crt"


def test_names_derived_and_overridden() -> None:
    src = source(
        postgres={"publicationName": "shared_pub", "publicationAutocreateMode": "disabled"}
    )
    spec = connector(connectorName="custom", postgres={"slotName": "my_slot"})
    config = render(spec, src)
    assert (config["name"], config["slot.name"], config["publication.name"]) == (
        "custom",
        "my_slot",
        "shared_pub",
    )
    assert not r.owns_publication(spec, src)
    assert r.owns_publication(connector(), source())
    spec = connector(postgres={"publicationName": "mine"})
    assert render(spec, src)["publication.name"] == "mine"


def test_slot_names_are_valid_and_unique_when_shortened() -> None:
    long_ns = "a-very-long-namespace-name-that-goes-on-and-on"
    a = r.slot_name(long_ns, "connector-with-a-long-name-one", connector())
    b = r.slot_name(long_ns, "connector-with-a-long-name-two", connector())
    for name in (a, b):
        assert len(name) <= 63 and re.fullmatch(r"[a-z_][a-z0-9_]*", name)
    assert a != b
    assert r.slot_name("shop", "orders", connector()) == "hw_shop_orders"


def test_mysql_and_mariadb() -> None:
    spec = connector(tables=["shop.orders", "shop.customers", "billing.invoices"])
    mysql = render(
        spec,
        source(type="mysql", tls={"mode": "require"}),
        kafka_bootstrap="k:9092",
        kafka_tls=True,
    )
    assert mysql["connector.class"] == "io.debezium.connector.mysql.MySqlConnector"
    assert mysql["database.include.list"] == "billing,shop"
    assert mysql["database.port"] == "3306"
    assert mysql["database.ssl.mode"] == "required"
    assert mysql["schema.history.internal.kafka.bootstrap.servers"] == "k:9092"
    assert (
        mysql["schema.history.internal.kafka.topic"] == "headwater.schema-history.shop.orders-cdc"
    )
    assert mysql["schema.history.internal.producer.security.protocol"] == "SSL"
    server_id = int(mysql["database.server.id"])
    assert 100_000 <= server_id < 2**32
    assert render(spec, source(type="mysql"))["database.server.id"] == str(server_id)  # stable
    assert "database.dbname" not in mysql and "slot.name" not in mysql

    maria = render(spec, source(type="mariadb", tls={"mode": "verify-ca"}))
    assert maria["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
    assert maria["database.ssl.mode"] == "verify-ca"
    assert "database.ssl.mode" not in render(
        spec, source(type="mariadb")
    )  # prefer: connector default
    assert (
        render(connector(mysql={"serverId": 42}), source(type="mysql"))["database.server.id"]
        == "42"
    )


def test_sqlserver_and_oracle_are_rendered() -> None:
    sql = render(connector(), source(type="sqlserver", tls={"mode": "disable"}))
    assert sql["connector.class"] == "io.debezium.connector.sqlserver.SqlServerConnector"
    assert sql["database.names"] == "shop" and sql["database.encrypt"] == "false"
    ora = render(connector(), source(type="oracle"))
    assert ora["connector.class"] == "io.debezium.connector.oracle.OracleConnector"
    assert ora["database.port"] == "1521" and ora["database.dbname"] == "shop"


def test_transforms_format_and_passthrough() -> None:
    spec = connector(
        extractNewRecordState=True,
        routing={"topicRegex": r"([^.]+)\.([^.]+)\.([^.]+)", "topicReplacement": "cdc.$3"},
        format="avro",
        schemaRegistryUrl="http://registry:8081",
        config={"decimal.handling.mode": "string", "snapshot.mode": "when_needed"},
    )
    config = render(spec, source(), credentials_version="abc123")
    assert config["transforms"] == "unwrap,route"
    assert config["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    assert config["transforms.route.replacement"] == "cdc.$3"
    assert config["value.converter"] == "io.confluent.connect.avro.AvroConverter"
    assert config["value.converter.schema.registry.url"] == "http://registry:8081"
    assert config["decimal.handling.mode"] == "string"
    assert config["snapshot.mode"] == "when_needed"  # passthrough wins over the field
    assert config[CONNECT_CREDENTIALS_VERSION_KEY] == "abc123"
    assert r.expected_topics("orders-cdc", connector(tables=["public.b", "public.a"])) == [
        "orders-cdc.public.a",
        "orders-cdc.public.b",
    ]


def test_offline_render_needs_the_source() -> None:
    doc = {
        "kind": "CdcConnector",
        "metadata": {"name": "orders-cdc", "namespace": "shop"},
        "spec": {
            "platformRef": {"name": "shop"},
            "sourceRef": {"name": "orders-db"},
            "tables": ["public.orders"],
        },
    }
    alone = r.render_offline(doc)
    assert "config" not in alone[0] and "orders-db" in alone[0]["note"]
    src = {"kind": "DataSource", "metadata": {"name": "orders-db"}, "spec": source().wire()}
    platform = {
        "kind": "DataPlatform",
        "metadata": {"name": "shop"},
        "spec": {
            "kafka": {"mode": "external", "external": {"bootstrapServers": ["k:9092"]}},
            "connect": {
                "mode": "external",
                "external": {"url": "http://c:8083", "secretsProvider": "kubernetes"},
            },
        },
    }
    [out] = r.render_offline(doc, [src, platform])
    assert out["config"]["database.password"] == "${secrets:shop/orders-db-cdc:password}"


_CRED = re.compile(CREDENTIAL_KEY)
_REF = re.compile(r"^\$\{[a-z]+:[^}]+\}$")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["postgres", "mysql", "mariadb", "sqlserver", "oracle"]),
    provider=st.sampled_from(["managed", "directory", "kubernetes"]),
    tls=st.sampled_from(["disable", "prefer", "require", "verify-ca", "verify-full"]),
    extract=st.booleans(),
    tasks=st.integers(1, 64),
    passthrough=st.dictionaries(
        st.from_regex(r"[a-z][a-z.]{0,20}", fullmatch=True), st.text(max_size=20), max_size=4
    ),
)
def test_any_accepted_spec_renders_strings_without_credentials(
    kind: str,
    provider: r.SecretsProvider,
    tls: str,
    extract: bool,
    tasks: int,
    passthrough: dict[str, str],
) -> None:
    try:
        spec = connector(tasksMax=tasks, extractNewRecordState=extract, config=passthrough)
    except ValueError:
        return  # the models refuse it (credential or reserved key): nothing to render
    src = source(type=kind, tls={"mode": tls})
    config = render(spec, src, provider=provider, kafka_bootstrap="k:9092")
    assert all(isinstance(v, str) for v in config.values())
    for key in ("database.user", "database.password"):
        assert _REF.match(config[key]), (key, config[key])
    for key, value in config.items():
        if _CRED.match(key) and key != "database.password":
            raise AssertionError(f"credential-like key rendered: {key}={value}")


def test_schema_history_clients_get_the_workers_kafka_security() -> None:
    """Debezium's schema-history producer/consumer read only their own prefixed settings:
    on a SASL+TLS Kafka they need the managed worker's settings again — references only."""
    from headwater.api.dataplatform import DataPlatformSpec
    from headwater.render.platform import kafka_client

    platform = DataPlatformSpec.model_validate(
        {
            "kafka": {
                "mode": "external",
                "external": {
                    "bootstrapServers": ["k:9093"],
                    "credentialsSecretRef": {"name": "kafka-user"},
                    "saslMechanism": "SCRAM-SHA-512",
                    "tls": {"enabled": True, "caSecretRef": {"name": "kafka-ca", "key": "ca.crt"}},
                },
            }
        }
    )
    assert platform.kafka.external is not None
    client = kafka_client(platform.kafka.external).properties
    out = render(connector(), source(type="mariadb"), kafka_bootstrap="k:9093", kafka_client=client)
    for side in ("producer", "consumer"):
        prefix = f"schema.history.internal.{side}."
        assert out[prefix + "security.protocol"] == "SASL_SSL"
        assert out[prefix + "sasl.mechanism"] == "SCRAM-SHA-512"
        assert "${env:" in out[prefix + "sasl.jaas.config"]
        assert out[prefix + "ssl.truststore.type"] == "PEM"
    # Postgres keeps no schema history: nothing added.
    assert not any(k.startswith("schema.history") for k in render(connector(), source()))
