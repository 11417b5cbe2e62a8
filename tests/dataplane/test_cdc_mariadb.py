"""MariaDB -> Debezium's MariaDB connector -> Kafka, driven by the operator (real servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hwtest.cdc import KafkaReader, MariaSandbox, Pipeline, make_pipeline, ops_for
from hwtest.kubectl import Kubectl
from hwtest.operator import OperatorProcess


@pytest.fixture
def pipeline(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    maria: MariaSandbox,
    cdc_services: dict[str, str],
    secrets_dir: Path,
) -> Iterator[Pipeline]:
    pipe = make_pipeline(
        kubectl,
        namespace,
        bootstrap=cdc_services["HEADWATER_KAFKA_BOOTSTRAP"],
        connect_url=cdc_services["HEADWATER_CONNECT_URL"],
        source_spec={
            "type": "mariadb",
            "host": maria.host,
            "port": maria.port,
            "database": maria.database,
            "tables": [maria.table],
            "tls": {"mode": "disable"},
        },
        username=maria.user,
        password=maria.password,
        secrets_base=secrets_dir,
    )
    yield pipe
    pipe.teardown()


def test_mariadb_insert_update_delete_reach_kafka(
    pipeline: Pipeline, maria: MariaSandbox, operator: OperatorProcess
) -> None:
    pipe = pipeline
    pipe.wait("datasource", pipe.source, "CdcReady", "True")
    pipe.apply_connector("orders", [maria.table], topicPrefix="maria")
    ready = pipe.wait("cdcconnector", "orders", "Ready", "True", timeout=180)
    name = pipe.connector_name("orders")
    topic = f"maria.{maria.table}"
    assert topic in ready["status"]["topics"]

    stored = pipe.connect.config(name)
    assert stored is not None
    assert stored["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
    assert stored["schema.history.internal.kafka.bootstrap.servers"] == pipe.bootstrap
    assert stored["database.include.list"] == maria.database
    assert stored["database.ssl.mode"] == "disable"

    reader = KafkaReader(pipe.bootstrap, topic).start()
    reader.wait(
        lambda p: "r" in ops_for(p, "customer", "seed"), 90, what="snapshot of the seed row"
    )
    row = maria.insert("bob", 7.25)
    maria.update(row, "shipped")
    maria.delete(row)
    events = reader.wait(lambda p: ops_for(p, "id", row) == ["c", "u", "d"], 90, what="c, u, d")
    changes = [e for e in events if (e.get("after") or e.get("before") or {}).get("id") == row]
    assert changes[0]["after"]["customer"] == "bob"
    # binlog_row_image=FULL: updates carry the whole old row.
    assert changes[1]["before"]["status"] == "new" and changes[1]["after"]["status"] == "shipped"
    assert changes[2]["before"]["customer"] == "bob" and changes[2]["after"] is None
    assert all(e["source"]["db"] == maria.database for e in changes)
    reader.close()
    pipe.assert_no_leak(operator.logs(), [name])
