"""PostgreSQL -> Debezium -> Kafka, driven by the operator through the real control plane.

Real servers (hack/services.sh): PostgreSQL 15 with wal_level=logical, a KRaft Kafka broker,
a Kafka Connect worker with Debezium. They are *external* components of a DataPlatform; the
DataSource's Secret reaches the worker through its DirectoryConfigProvider (the test writes
the files a Secret volume would hold). Each test has its own role (random password),
schema with an `orders` table, connector, slot and publication.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.constants import CONNECT_CREDENTIALS_VERSION_KEY as AUTH_VERSION
from headwater.render.connector import sql_identifier
from hwtest.cdc import (
    KafkaReader,
    PgSandbox,
    Pipeline,
    datasource,
    make_pipeline,
    ops_for,
    secret,
    write_secret_dir,
)
from hwtest.kubectl import Kubectl, condition, wait_for
from hwtest.operator import OperatorProcess


def slot_of(namespace: str, name: str) -> str:
    """The slot name the operator derives (spelled out here, so a change shows up)."""
    return sql_identifier(f"hw_{namespace}_{name}")


@pytest.fixture
def pipeline(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    pg: PgSandbox,
    cdc_services: dict[str, str],
    secrets_dir: Path,
) -> Iterator[Pipeline]:
    pipe = make_pipeline(
        kubectl,
        namespace,
        bootstrap=cdc_services["HEADWATER_KAFKA_BOOTSTRAP"],
        connect_url=cdc_services["HEADWATER_CONNECT_URL"],
        source_spec={
            "type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "database": pg.database,
            "tables": [pg.table],
            "preflight": {"intervalSeconds": 60},
        },
        username=pg.role,
        password=pg.password,
        secrets_base=secrets_dir,
    )
    yield pipe
    pipe.teardown()


def start_connector(
    pipe: Pipeline, pg: PgSandbox, name: str = "orders", **spec: Any
) -> tuple[dict[str, Any], KafkaReader]:
    """Apply a CdcConnector for the sandbox's orders table; wait for Ready and the snapshot."""
    pg.own_slots.append(slot_of(pipe.namespace, name))
    pipe.apply_connector(name, [pg.table], topicPrefix=name, **spec)
    ready = pipe.wait("cdcconnector", name, "Ready", "True", timeout=180)
    reader = KafkaReader(pipe.bootstrap, f"{name}.{pg.table}").start()
    reader.wait(
        lambda p: "r" in ops_for(p, "customer", "seed"), 60, what="snapshot of the seed row"
    )
    return ready, reader


def test_insert_update_delete_reach_kafka(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess
) -> None:
    pipe = pipeline
    source = pipe.wait("datasource", pipe.source, "CdcReady", "True")
    checks = {c["name"]: c for c in source["status"]["checks"]}
    assert checks["wal_level"]["observed"] == "logical"
    assert checks["replication_privilege"]["status"] == "Pass"
    assert condition(source, "Reachable")["reason"] == "Connected"  # type: ignore[index]

    ready, reader = start_connector(pipe, pg)
    status = ready["status"]
    name = pipe.connector_name("orders")
    assert status["connectorName"] == name
    assert status["connectorState"] == "RUNNING" and status["tasksReady"] == "1/1"
    assert status["slotName"] == slot_of(pipe.namespace, "orders")
    assert f"orders.{pg.table}" in status["topics"]

    row = pg.insert("alice", 42.5)
    pg.update(row, "paid")
    pg.delete(row)
    events = reader.wait(lambda p: ops_for(p, "id", row) == ["c", "u", "d"], 90, what="c, u, d")
    changes = [e for e in events if (e.get("after") or e.get("before") or {}).get("id") == row]
    assert changes[0]["after"]["customer"] == "alice"
    # REPLICA IDENTITY DEFAULT: the old row of an update isn't logged, a delete logs its key.
    assert changes[1]["after"]["status"] == "paid"
    assert changes[2]["after"] is None and changes[2]["before"]["id"] == row
    assert all(e["source"]["table"] == "orders" for e in changes)
    reader.close()

    # Connect stores references, which its worker resolves from the mounted Secret.
    stored = pipe.connect.config(name)
    assert stored is not None
    assert stored["database.password"].startswith("${dir:") and stored[
        "database.password"
    ].endswith(":password}")
    assert pg.slots().get(slot_of(pipe.namespace, "orders")) is True
    reasons = pipe.reasons("orders")
    assert "ConnectorCreated" in reasons and "Ready" in reasons
    pipe.assert_no_leak(operator.logs(), [name])


def test_pause_resume_and_stop_are_applied_in_connect(pipeline: Pipeline, pg: PgSandbox) -> None:
    pipe = pipeline
    _, reader = start_connector(pipe, pg, "lifecycle")
    name = pipe.connector_name("lifecycle")

    pipe.patch("cdcconnector", "lifecycle", {"spec": {"state": "paused"}})
    obj = pipe.wait("cdcconnector", "lifecycle", "Ready", "False", "ConnectorPaused")
    assert pipe.connect.state(name) == ("PAUSED", ["PAUSED"])
    assert obj["status"]["connectorState"] == "PAUSED"
    row = pg.insert("while-paused")
    reader.poll(5)
    assert ops_for(reader.payloads(), "id", row) == [], "a paused connector delivered a change"

    pipe.patch("cdcconnector", "lifecycle", {"spec": {"state": "running"}})
    pipe.wait("cdcconnector", "lifecycle", "Ready", "True")
    assert pipe.connect.state(name) == ("RUNNING", ["RUNNING"])
    reader.wait(lambda p: ops_for(p, "id", row) == ["c"], 60, what="the change made while paused")

    pipe.patch("cdcconnector", "lifecycle", {"spec": {"state": "stopped"}})
    obj = pipe.wait("cdcconnector", "lifecycle", "Ready", "False", "ConnectorStopped")
    assert pipe.connect.state(name) == ("STOPPED", [])
    assert obj["status"]["tasks"] == []
    assert pg.slots().get(slot_of(pipe.namespace, "lifecycle")) is False  # released, kept

    pipe.patch("cdcconnector", "lifecycle", {"spec": {"state": "running"}})
    pipe.wait("cdcconnector", "lifecycle", "Ready", "True")
    row2 = pg.insert("after-stop")
    reader.wait(lambda p: ops_for(p, "id", row2) == ["c"], 60, what="a change after the restart")
    reader.close()


def fail_task(pipe: Pipeline, pg: PgSandbox, name: str) -> None:
    """A real failure: the server terminates the connector's WAL sender. With Debezium's
    own retries off (`errors.max.retries: 0`), the task goes FAILED in Connect."""

    def kill_and_watch() -> bool:
        for pid in pg.walsender_pids():
            pg.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = pipe.connect.state(name)
            if "FAILED" in state[1] or state[0] == "FAILED":
                return True
            time.sleep(0.2)
        return False

    wait_for(kill_and_watch, 60, interval=1, what="the task to fail in Connect")


def test_failed_task_is_restarted_automatically(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess
) -> None:
    pipe = pipeline
    _, reader = start_connector(
        pipe,
        pg,
        "crashy",
        config={"errors.max.retries": "0"},
        autoRestart={"initialBackoffSeconds": 2},
    )
    name = pipe.connector_name("crashy")
    fail_task(pipe, pg, name)
    obj = wait_for(
        lambda: (
            (o := pipe.get("cdcconnector", "crashy"))["status"].get("totalRestarts", 0) >= 1 and o
        ),
        120,
        what="an automatic restart",
    )
    assert obj["status"]["lastRestartTime"]
    pipe.wait("cdcconnector", "crashy", "Ready", "True", timeout=120)
    assert pipe.connect.state(name) == ("RUNNING", ["RUNNING"])
    restarted = [e for e in pipe.events() if e["reason"] == "ConnectorRestarted"]
    assert restarted and "task" in restarted[0]["message"]
    samples = [
        ln
        for ln in operator.metrics().splitlines()
        if ln.startswith("headwater_connector_restarts_total{")
        and 'name="crashy"' in ln
        and f'namespace="{pipe.namespace}"' in ln
    ]
    assert samples and float(samples[0].split()[-1]) >= 1, samples

    row = pg.insert("after-crash")
    reader.wait(lambda p: ops_for(p, "id", row) == ["c"], 60, what="changes after the restart")
    reader.close()


def test_restart_limit_is_reached_and_the_trace_is_shown(pipeline: Pipeline, pg: PgSandbox) -> None:
    """maxRestarts: 1. The first failure is restarted; the second, within resetAfterSeconds,
    is left FAILED in Connect with the task's trace in the status."""
    pipe = pipeline
    start_connector(
        pipe,
        pg,
        "fragile",
        config={"errors.max.retries": "0"},
        autoRestart={"maxRestarts": 1, "initialBackoffSeconds": 1, "maxBackoffSeconds": 2},
    )
    name = pipe.connector_name("fragile")
    fail_task(pipe, pg, name)
    wait_for(
        lambda: pipe.get("cdcconnector", "fragile")["status"].get("totalRestarts") == 1,
        60,
        what="the one automatic restart",
    )
    wait_for(
        lambda: pipe.connect.state(name) == ("RUNNING", ["RUNNING"]),
        60,
        what="the task running again",
    )
    fail_task(pipe, pg, name)
    obj = pipe.wait("cdcconnector", "fragile", "Ready", "False", "RestartLimitReached", timeout=90)
    status = obj["status"]
    assert status["restarts"] == 1 and status["totalRestarts"] == 1
    assert status["tasks"][0]["state"] == "FAILED"
    raw = pipe.connect.status(name)
    assert raw is not None
    first_line = raw["tasks"][0]["trace"].splitlines()[0].strip()
    assert status["tasks"][0]["trace"].startswith(first_line)
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert message.startswith("gave up after 1 restarts: task 0: ") and first_line in message
    # The operator leaves it alone: still FAILED a while later, no further restart.
    time.sleep(8)
    assert pipe.connect.state(name)[1] == ["FAILED"]
    assert pipe.get("cdcconnector", "fragile")["status"]["totalRestarts"] == 1
    assert pipe.reasons("fragile").count("ConnectorRestarted") == 1


def test_config_changed_in_connect_is_put_back(pipeline: Pipeline, pg: PgSandbox) -> None:
    """Someone edits the connector through Connect's REST API: the operator, polling
    Connect on its resync (30 s for CdcConnectors), writes the CR's config back."""
    pipe = pipeline
    start_connector(pipe, pg, "drift")
    name = pipe.connector_name("drift")
    desired = pipe.connect.config(name)
    assert desired is not None and desired["heartbeat.interval.ms"] != "999"
    pipe.connect.put_config(name, {**desired, "heartbeat.interval.ms": "999"})
    assert (pipe.connect.config(name) or {}).get("heartbeat.interval.ms") == "999"

    wait_for(lambda: pipe.connect.config(name) == desired, 75, what="the config put back")
    updates = wait_for(
        lambda: [
            e
            for e in pipe.events()
            if e["reason"] == "ConnectorUpdated" and e["involvedObject"]["name"] == "drift"
        ],
        15,
        what="a ConnectorUpdated Event",
    )
    assert updates[0]["message"] == f"updated connector {name}: heartbeat.interval.ms"
    pipe.wait("cdcconnector", "drift", "Ready", "True", timeout=60)


def test_operator_restart_loses_no_event(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess
) -> None:
    pipe = pipeline
    ready, reader = start_connector(pipe, pg, "durable")
    name = pipe.connector_name("durable")
    config_before = pipe.connect.config(name)
    snapshot_rows = ops_for(reader.payloads(), "customer", "seed")

    operator.stop()
    try:
        rows = [pg.insert(f"while-down-{i}") for i in range(5)]
        pg.update(rows[0], "paid")
        pg.delete(rows[1])
    finally:
        operator.start()
    reader.wait(
        lambda p: (
            [ops_for(p, "id", r) for r in rows] == [["c", "u"], ["c", "d"], ["c"], ["c"], ["c"]]
        ),
        90,
        what="every change made while the operator was down",
    )
    after = pipe.wait("cdcconnector", "durable", "Ready", "True")
    assert pipe.connect.config(name) == config_before, "the restarted operator rewrote the config"
    assert after["status"]["configHash"] == ready["status"]["configHash"]
    assert ops_for(reader.payloads(), "customer", "seed") == snapshot_rows, "a new snapshot ran"
    assert pipe.reasons("durable").count("ConnectorCreated") == 1
    assert "ConnectorUpdated" not in pipe.reasons("durable"), "the restart re-sent the config"
    reader.close()

    # Steady state: a resync of everything (30 s for connectors) rewrites nothing.
    def versions() -> dict[str, str]:
        return {
            f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in pipe.kubectl.items("dataplatforms,datasources,cdcconnectors", pipe.namespace)
        }

    before = versions()
    time.sleep(40)
    assert versions() == before, "status rewritten at steady state"
    assert "ConnectorUpdated" not in pipe.reasons("durable"), "a resync re-sent the config"


def test_deletion_removes_connector_and_follows_slot_policy(
    pipeline: Pipeline, pg: PgSandbox
) -> None:
    pipe = pipeline
    start_connector(pipe, pg, "keep", deletionPolicy={"replicationSlot": "Retain"})
    start_connector(pipe, pg, "drop", deletionPolicy={"replicationSlot": "Drop"})
    keep_slot, drop_slot = slot_of(pipe.namespace, "keep"), slot_of(pipe.namespace, "drop")
    assert {keep_slot, drop_slot} <= set(pg.slots())
    assert drop_slot in pg.publications()  # the connector's own publication

    for name in ("keep", "drop"):
        pipe.kubectl.run("delete", "cdcconnector", name, "-n", pipe.namespace, "--timeout=120s")
        assert pipe.kubectl.get("cdcconnector", name, pipe.namespace) is None
        # DELETE returns once Connect recorded it; the worker stops the task just after.
        wait_for(
            lambda n=name: pipe.connect.status(pipe.connector_name(n)) is None,
            30,
            what=f"connector {name} gone from Connect",
        )

    slots = pg.slots()
    assert keep_slot in slots and slots[keep_slot] is False, "Retain dropped the slot"
    assert drop_slot not in slots, "Drop kept the slot"
    assert drop_slot not in pg.publications()
    assert keep_slot in pg.publications()
    events = {e["reason"] for e in pipe.events()}
    assert {"ConnectorDeleted", "ReplicationSlotRetained", "ReplicationSlotDropped"} <= events


def test_deletion_removes_a_connector_whose_status_was_never_written(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess
) -> None:
    """The connector exists in Connect, but the status does not say so (the status write
    after the create failed, or the operator died in between): deleting the CR must still
    delete the connector and, under Drop, its slot."""
    pipe = pipeline
    start_connector(pipe, pg, "unrecorded", deletionPolicy={"replicationSlot": "Drop"})
    name, slot = pipe.connector_name("unrecorded"), slot_of(pipe.namespace, "unrecorded")
    operator.stop()
    try:
        pipe.kubectl.run(
            "patch",
            "cdcconnector",
            "unrecorded",
            "-n",
            pipe.namespace,
            "--subresource=status",
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/status/configHash"}]',
        )
        pipe.kubectl.run(
            "delete", "cdcconnector", "unrecorded", "-n", pipe.namespace, "--wait=false"
        )
        assert pipe.connect.status(name) is not None
    finally:
        operator.start()
    wait_for(
        lambda: pipe.kubectl.get("cdcconnector", "unrecorded", pipe.namespace) is None,
        90,
        what="the CdcConnector finalized",
    )
    # DELETE returns once Connect recorded it; the worker stops the task just after.
    wait_for(lambda: pipe.connect.status(name) is None, 30, what="the connector gone")
    assert slot not in pg.slots(), "deletionPolicy Drop kept the slot"
    assert {"ConnectorDeleted", "ReplicationSlotDropped"} <= set(pipe.reasons("unrecorded"))


def test_password_rotation_reaches_the_worker(
    pipeline: Pipeline, pg: PgSandbox, operator: OperatorProcess, secrets_dir: Path
) -> None:
    """Rotate the password in the database and the Secret: the operator changes only the
    credentials version in the connector config, Connect restarts the connector, and the
    worker's provider reads the new password. The old connection is cut, so only the new
    password can carry the changes that follow."""
    pipe = pipeline
    _, reader = start_connector(pipe, pg, "rotate")
    name = pipe.connector_name("rotate")
    before = pipe.connect.config(name)
    assert before is not None

    new_password = f"rotated-{pg.password}"
    pg.set_password(new_password)
    write_secret_dir(
        secrets_dir,
        pipe.namespace,
        pipe.secret_name,
        {"username": pg.role, "password": new_password},
    )
    pipe.kubectl.apply(secret(pipe.secret_name, pipe.namespace, pg.role, new_password))
    after = wait_for(
        lambda: (c := pipe.connect.config(name)) and c[AUTH_VERSION] != before[AUTH_VERSION] and c,
        60,
        what="the credentials version to change in Connect",
    )
    assert {k for k in after if after[k] != before.get(k)} == {AUTH_VERSION}
    for pid in pg.walsender_pids():  # whatever still runs on the old login goes away
        pg.execute("SELECT pg_terminate_backend(%s)", (pid,))
    pipe.wait("cdcconnector", "rotate", "Ready", "True", timeout=120)
    row = pg.insert("after-rotation")
    reader.wait(lambda p: ops_for(p, "id", row) == ["c"], 90, what="a change after the rotation")
    reader.close()
    assert "ConnectorUpdated" in pipe.reasons("rotate")
    pipe.assert_no_leak(operator.logs(), [name], extra=(new_password,))


def test_unresolvable_credentials_reference_is_a_clear_error_not_an_outage(
    pipeline: Pipeline, pg: PgSandbox, kubectl: Kubectl
) -> None:
    """A Secret that exists in Kubernetes but was never mounted into the (external) worker:
    Kafka Connect 4.x answers HTTP 500 without the reason. The CdcConnector must say what
    to check, as a refused config, not as Connect being down."""
    pipe = pipeline
    kubectl.run(
        "create",
        "secret",
        "generic",
        "db-unmounted",
        "-n",
        pipe.namespace,
        f"--from-literal=username={pg.role}",
        f"--from-literal=password={pg.password}",
    )
    source = {
        "type": "postgres",
        "host": pg.host,
        "port": pg.port,
        "database": pg.database,
        "credentialsSecretRef": {"name": "db-unmounted"},
    }
    kubectl.apply(datasource("db-unmounted", pipe.namespace, source))
    pipe.apply_connector(
        "unmounted", [pg.table], topicPrefix="unmounted", sourceRef={"name": "db-unmounted"}
    )
    obj = pipe.wait("cdcconnector", "unmounted", "Ready", "False", reason="ConnectorConfigRejected")
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "secretsProvider" in message and "config.providers" in message
    assert pg.password not in message
    assert pipe.connect.config(pipe.connector_name("unmounted")) is None, "nothing registered"
