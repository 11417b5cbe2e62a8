"""A Kafka + Connect pair of this module's own (tests stop it): Strimzi's Kubernetes config
provider reading the DataSource Secret through the API server, and a Connect outage that
the CdcConnector reports and recovers from by itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from headwater.render.connector import sql_identifier
from hwtest.cdc import DedicatedConnect, KafkaReader, PgSandbox, Pipeline, make_pipeline, ops_for
from hwtest.kubectl import Kubectl
from hwtest.operator import OperatorProcess


@pytest.fixture
def pipeline(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    pg: PgSandbox,
    dedicated_connect: DedicatedConnect,
) -> Iterator[Pipeline]:
    pipe = make_pipeline(
        kubectl,
        namespace,
        bootstrap=dedicated_connect.bootstrap,
        connect_url=dedicated_connect.url,
        source_spec={
            "type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "database": pg.database,
            "tables": [pg.table],
        },
        username=pg.role,
        password=pg.password,
        provider="kubernetes",
    )
    yield pipe
    pipe.teardown()


def start(pipe: Pipeline, pg: PgSandbox, name: str) -> KafkaReader:
    pg.own_slots.append(sql_identifier(f"hw_{pipe.namespace}_{name}"))
    pipe.apply_connector(name, [pg.table], topicPrefix=name)
    pipe.wait("cdcconnector", name, "Ready", "True", timeout=180)
    reader = KafkaReader(pipe.bootstrap, f"{name}.{pg.table}").start()
    reader.wait(lambda p: "r" in ops_for(p, "customer", "seed"), 90, what="snapshot")
    return reader


def test_worker_reads_the_secret_through_the_kubernetes_api(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess
) -> None:
    """No file anywhere holds the password: the worker resolves `${secrets:ns/name:key}`
    with the Kubernetes API, so changes flowing prove it read the Secret itself."""
    pipe = pipeline
    reader = start(pipe, pg, "viak8s")
    stored = pipe.connect.config(pipe.connector_name("viak8s"))
    assert stored is not None
    assert (
        stored["database.password"] == f"${{secrets:{pipe.namespace}/{pipe.secret_name}:password}}"
    )
    assert stored["database.user"] == f"${{secrets:{pipe.namespace}/{pipe.secret_name}:username}}"
    row = pg.insert("via-kubernetes")
    reader.wait(lambda p: ops_for(p, "id", row) == ["c"], 60, what="a change")
    reader.close()
    pipe.assert_no_leak(operator.logs(), [pipe.connector_name("viak8s")])


def test_connect_outage_degrades_and_recovers(
    pipeline: Pipeline, pg: PgSandbox, dedicated_connect: DedicatedConnect
) -> None:
    pipe = pipeline
    reader = start(pipe, pg, "outage")
    dedicated_connect.stop_connect()
    try:
        down = pipe.wait(
            "cdcconnector", "outage", "Ready", "False", "ConnectUnavailable", timeout=120
        )
        assert dedicated_connect.url in down["status"]["conditions"][0]["message"]
        assert "connectorState" not in down["status"], "stale live state shown during the outage"
        rows = [pg.insert(f"during-outage-{i}") for i in range(3)]
    finally:
        dedicated_connect.start_connect()
    # Nobody touches the CR: the operator's retries find Connect again.
    up = pipe.wait("cdcconnector", "outage", "Ready", "True", timeout=240)
    assert up["status"]["connectorState"] == "RUNNING"
    reader.wait(
        lambda p: all(ops_for(p, "id", r) == ["c"] for r in rows),
        120,
        what="changes made during the outage",
    )
    reader.close()
    assert "ConnectUnavailable" in pipe.reasons("outage")
