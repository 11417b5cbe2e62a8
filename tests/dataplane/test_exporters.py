"""The series the generated alert rules query exist in real exporters.

The local Kafka broker and Kafka Connect worker run with the JMX exporter agent and the
very exporter rules the operator gives its managed pods (`hack/services/kafka.sh`,
`connect.sh` render them from `headwater.render.platform`). These tests take every
selector of a Kafka, Connect or Debezium metric in the rules generated for a managed
DataPlatform and a CdcConnector, leave out the labels the managed Prometheus attaches
by scrape configuration (`namespace`, `platform`, `job`: `test_prometheus_scrape.py`
proves that part against a real Prometheus), and find a real sample for each one —
so a renamed MBean, a wrong label or a rule typo fails here instead of staying silent
in production.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from headwater.alerts import alerts_spec, rule_groups, target
from headwater.api.cdcconnector import CdcConnectorSpec
from headwater.api.datasource import DataSourceSpec
from headwater.render import connector as render
from hwtest import require
from hwtest.cdc import Connect, PgSandbox, delete_topics, token, write_secret_dir

pytestmark = pytest.mark.dataplane

NS = "exporters"
SCRAPE_LABELS = {"namespace", "platform", "job"}
# Metrics that come from the two JVMs checked here (kafka_consumergroup_* comes from
# kafka-exporter, flink_* from Flink's reporter, minio_* is checked in the scrape test).
JMX_METRIC = re.compile(
    r"\b((?:kafka_server|kafka_controller|kafka_connect|debezium_metrics)_[A-Za-z0-9_]+)"
    r"(\{[^}]*\})?"
)
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# Connector states as Kafka Connect reports them (the `status` label of the rules).
CONNECT_STATES = {"running", "paused", "stopped", "failed", "unassigned", "restarting"}

Sample = tuple[str, dict[str, str]]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, op, value)]) of every JMX-exported metric an expression reads."""
    found = []
    for metric, body in JMX_METRIC.findall(expr):
        matchers = [m for m in MATCHER.findall(body or "") if m[0] not in SCRAPE_LABELS]
        found.append((metric, matchers))
    return found


def matches(sample: Sample, metric: str, matchers: list[tuple[str, str, str]]) -> bool:
    name, labels = sample
    if name != metric:
        return False
    for label, op, value in matchers:
        have = labels.get(label)
        if label == "status" and op == "=" and value in CONNECT_STATES:
            # The label carries the connector's current state; the rule asks for one of
            # the states Connect reports, which a healthy connector does not show.
            ok = have in CONNECT_STATES
        elif op == "=":
            ok = have == value
        elif op == "!=":
            ok = have != value
        elif op == "=~":
            ok = have is not None and re.fullmatch(value, have) is not None
        else:
            ok = have is None or re.fullmatch(value, have) is None
        if not ok:
            return False
    return True


def scrape(url: str) -> list[Sample]:
    text = requests.get(url, timeout=10).text
    return [
        (s.name, dict(s.labels))
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]


def exporter(env: dict[str, str], key: str, what: str) -> str:
    url = env.get(key, "")
    try:
        up = bool(url) and requests.get(url, timeout=5).ok
    except requests.RequestException:
        up = False
    require(
        up, f"the JMX exporter agent of {what} ({key}; restart the service after `make install`)"
    )
    return url


def rules_of(body: dict[str, Any], platform: dict[str, Any] | None) -> dict[str, str]:
    alerts = alerts_spec(body)
    assert alerts is not None
    return {
        r["alert"]: r["expr"]
        for g in rule_groups(target(body, platform), alerts)
        for r in g["rules"]
    }


def unmatched(
    rules: dict[str, str], url: str, timeout: float = 90
) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Selectors with no sample yet, polling until none is left or the timeout."""
    wanted = [(alert, m, ms) for alert, expr in rules.items() for m, ms in selectors(expr)]
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        missing = [w for w in wanted if not any(matches(s, w[1], w[2]) for s in samples)]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(2)


PLATFORM = {
    "apiVersion": "headwater.dev/v1alpha1",
    "kind": "DataPlatform",
    "metadata": {"name": "shop", "namespace": NS},
    "spec": {},  # every component managed: the rules read the exporters' metrics
    "status": {},
}


def test_kafka_rules_read_series_the_broker_exports(
    service: Callable[[str], dict[str, str]],
) -> None:
    url = exporter(service("kafka"), "HEADWATER_KAFKA_METRICS_URL", "Kafka")
    rules = rules_of(PLATFORM, None)
    used = {m for expr in rules.values() for m, _ in selectors(expr)}
    assert {
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
    } <= used, sorted(used)
    assert unmatched(rules, url, timeout=30) == []


@pytest.fixture
def debezium_connector(
    service: Callable[[str], dict[str, str]],
) -> Iterator[tuple[Connect, str, str]]:
    """A Postgres connector rendered by the operator's own code, run on the real worker."""
    pg, kafka, connect_env = service("postgres"), service("kafka"), service("connect")
    sandbox = PgSandbox(
        host=pg["HEADWATER_PG_HOST"],
        port=int(pg["HEADWATER_PG_PORT"]),
        socket_dir=pg["HEADWATER_PG_SOCKET_DIR"],
    ).create()
    name = f"orders-{token(3)}"
    spec = CdcConnectorSpec.model_validate(
        {
            "platformRef": {"name": "shop"},
            "sourceRef": {"name": "orders-db"},
            "tables": [sandbox.table],
            "topicPrefix": name,
        }
    )
    source = DataSourceSpec.model_validate(
        {
            "type": "postgres",
            "host": pg["HEADWATER_PG_HOST"],
            "port": int(pg["HEADWATER_PG_PORT"]),
            "database": pg["HEADWATER_PG_DB"],
            "credentialsSecretRef": {"name": f"{name}-db"},
        }
    )
    base = connect_env["HEADWATER_CONNECT_SECRETS_DIR"]
    write_secret_dir(
        base, NS, f"{name}-db", {"username": sandbox.role, "password": sandbox.password}
    )
    facts = render.ConnectorFacts(
        namespace=NS,
        name=name,
        uid=f"uid-{name}",
        secrets=render.secret_refs(
            "directory",
            namespace=NS,
            datasource="orders-db",
            credentials=source.credentials_secret_ref,
            mount_path=base,
        ),
        kafka_bootstrap=kafka["HEADWATER_KAFKA_BOOTSTRAP"],
    )
    config = render.render_connector_config(spec, source, facts)
    assert sandbox.password not in str(config)
    connector = config["name"]
    sandbox.own_slots.append(config["slot.name"])
    connect = Connect(connect_env["HEADWATER_CONNECT_URL"])
    try:
        connect.put_config(connector, config)
        deadline = time.monotonic() + 90
        while connect.state(connector) != ("RUNNING", ["RUNNING"]):
            assert time.monotonic() < deadline, connect.status(connector)
            time.sleep(1)
        sandbox.insert("exporter-check")
        yield connect, connector, name
    finally:
        connect.delete(connector)
        time.sleep(1)
        sandbox.cleanup()
        delete_topics(kafka["HEADWATER_KAFKA_BOOTSTRAP"], set(render.expected_topics(name, spec)))


def test_connector_rules_read_series_connect_and_debezium_export(
    service: Callable[[str], dict[str, str]],
    debezium_connector: tuple[Connect, str, str],
) -> None:
    url = exporter(service("connect"), "HEADWATER_CONNECT_METRICS_URL", "Kafka Connect")
    _, connector, prefix = debezium_connector
    body = {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "CdcConnector",
        "metadata": {"name": prefix, "namespace": NS},
        "spec": {"platformRef": {"name": "shop"}, "sourceRef": {"name": "orders-db"}},
        "status": {"connectorName": connector},
    }
    rules = rules_of(body, PLATFORM)
    used = {m for expr in rules.values() for m, _ in selectors(expr)}
    assert {
        "kafka_connect_connector_status",
        "kafka_connect_worker_connector_failed_task_count",
        "debezium_metrics_MilliSecondsBehindSource",
    } <= used, sorted(used)
    assert unmatched(rules, url) == []
    # And the status label carries the state Connect reports for this connector.
    status = [
        labels
        for name, labels in scrape(url)
        if name == "kafka_connect_connector_status" and labels.get("connector") == connector
    ]
    assert [s["status"] for s in status] == ["running"], status
