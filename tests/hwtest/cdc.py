"""CDC test helpers: per-test database sandboxes, a Kafka reader, Connect helpers and the
fixtures the CDC data-plane tests share (imported by tests/dataplane/conftest.py).

The data services are shared with other engineers and test sessions, so every test gets
its own role/user with a random password, its own schema/database with an `orders` table,
and its own connector, slot and publication names; clean-up removes exactly those.
A random password per test also makes "the password never leaks" testable: the string
appears nowhere unless something leaked it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import requests
import yaml
from psycopg import sql

from . import ROOT
from .kubectl import Kubectl, condition, wait_for
from .operator import free_port
from .services import ServiceUnavailable

API = "headwater.dev/v1alpha1"
SERVICES = ROOT / "hack" / "services.sh"


def token(n: int = 4) -> str:
    return secrets.token_hex(n)


# --- PostgreSQL -----------------------------------------------------------------------------


@dataclass
class PgSandbox:
    """A role (LOGIN REPLICATION, random password) owning schema `<role>` with `orders`."""

    host: str
    port: int
    socket_dir: str
    database: str = "shop"
    role: str = field(default_factory=lambda: f"hw_{token()}")
    password: str = field(default_factory=lambda: f"pw-{token(12)}")
    replication: bool = True
    # Slots the test's connectors use (not owned by the role in pg's catalog): dropped at the end.
    own_slots: list[str] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.role

    @property
    def table(self) -> str:
        return f"{self.schema}.orders"

    def admin(self) -> psycopg.Connection[Any]:
        """Superuser over the unix socket (trust auth, test set-up only)."""
        return psycopg.connect(
            host=self.socket_dir,
            port=self.port,
            user="postgres",
            dbname=self.database,
            autocommit=True,
        )

    def create(self) -> PgSandbox:
        role, schema = sql.Identifier(self.role), sql.Identifier(self.schema)
        with self.admin() as db:
            db.execute(
                sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                    role,
                    sql.SQL("REPLICATION" if self.replication else "NOREPLICATION"),
                    sql.Literal(self.password),
                )
            )
            db.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(self.database), role
                )
            )
            db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))
            db.execute(
                sql.SQL(
                    "CREATE TABLE {}.orders (id serial PRIMARY KEY, customer text NOT NULL, "
                    "amount numeric(12,2) NOT NULL, status text NOT NULL DEFAULT 'new')"
                ).format(schema)
            )
            db.execute(sql.SQL("ALTER TABLE {}.orders OWNER TO {}").format(schema, role))
            db.execute(
                sql.SQL("INSERT INTO {}.orders (customer, amount) VALUES ('seed', 1.00)").format(
                    schema
                )
            )
        return self

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.admin() as db:
            cur = db.execute(query, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def set_password(self, password: str) -> None:
        with self.admin() as db:
            db.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(self.role), sql.Literal(password)
                )
            )
        self.password = password

    def insert(self, customer: str, amount: float = 10.0) -> int:
        rows = self.execute(
            f"INSERT INTO {self.table} (customer, amount) VALUES (%s, %s) RETURNING id",
            (customer, amount),
        )
        return int(rows[0][0])

    def update(self, row_id: int, status: str) -> None:
        self.execute(f"UPDATE {self.table} SET status = %s WHERE id = %s", (status, row_id))

    def delete(self, row_id: int) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE id = %s", (row_id,))

    def slots(self) -> dict[str, bool]:
        """Replication slots of this database: name -> active."""
        return {
            r[0]: bool(r[1])
            for r in self.execute("SELECT slot_name, active FROM pg_replication_slots")
        }

    def publications(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT pubname FROM pg_publication")}

    def walsender_pids(self) -> list[int]:
        return [
            int(r[0])
            for r in self.execute(
                "SELECT pid FROM pg_stat_activity WHERE usename = %s AND backend_type = 'walsender'",
                (self.role,),
            )
        ]

    def cleanup(self) -> None:
        """Remove exactly what this sandbox (and its connectors) created."""
        slots = list(self.own_slots)
        role = sql.Identifier(self.role)
        with contextlib.suppress(psycopg.Error), self.admin() as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (self.role,),
            )
            time.sleep(0.5)
            for (slot,) in db.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY(%s)",
                (list(slots),),
            ).fetchall():
                with contextlib.suppress(psycopg.Error):
                    db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            for (pub,) in db.execute(
                "SELECT pubname FROM pg_publication p JOIN pg_roles r ON r.oid = p.pubowner WHERE r.rolname = %s",
                (self.role,),
            ).fetchall():
                db.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))
            db.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )
            db.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(self.database), role
                )
            )
            db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


# --- MariaDB --------------------------------------------------------------------------------


@dataclass
class MariaSandbox:
    """A user (Debezium's grants, random password) and database `<user>` with `orders`."""

    host: str
    port: int
    socket: str
    user: str = field(default_factory=lambda: f"hw_{token()}")
    password: str = field(default_factory=lambda: f"pw-{token(12)}")

    @property
    def database(self) -> str:
        return self.user

    @property
    def table(self) -> str:
        return f"{self.database}.orders"

    def admin(self) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.admin() as db, db.cursor() as cur:
            cur.execute(query, params or None)
            return list(cur.fetchall())

    def create(self) -> MariaSandbox:
        grants = "SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR"
        with self.admin() as db, db.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}`")
            cur.execute(
                f"CREATE TABLE `{self.database}`.orders (id INT AUTO_INCREMENT PRIMARY KEY, "
                "customer VARCHAR(64) NOT NULL, amount DECIMAL(12,2) NOT NULL, "
                "status VARCHAR(32) NOT NULL DEFAULT 'new')"
            )
            cur.execute(
                f"INSERT INTO `{self.database}`.orders (customer, amount) VALUES ('seed', 1.00)"
            )
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (self.user, host, self.password))
                cur.execute(f"GRANT {grants} ON *.* TO %s@%s", (self.user, host))
        return self

    def insert(self, customer: str, amount: float = 10.0) -> int:
        with self.admin() as db, db.cursor() as cur:
            cur.execute(
                f"INSERT INTO {self.table} (customer, amount) VALUES (%s, %s)", (customer, amount)
            )
            return int(cur.lastrowid)

    def update(self, row_id: int, status: str) -> None:
        self.execute(f"UPDATE {self.table} SET status = %s WHERE id = %s", (status, row_id))

    def delete(self, row_id: int) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE id = %s", (row_id,))

    def cleanup(self) -> None:
        with contextlib.suppress(pymysql.MySQLError), self.admin() as db, db.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
            for host in ("%", "localhost"):
                cur.execute("DROP USER IF EXISTS %s@%s", (self.user, host))


# --- Kafka ----------------------------------------------------------------------------------


class KafkaReader:
    """Reads a topic from the beginning with a real consumer (confluent-kafka/librdkafka)."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Consumer, TopicPartition

        self.bootstrap = bootstrap
        self.topic = topic
        self.events: list[dict[str, Any] | None] = []
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"hw-test-{token()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self._tp = TopicPartition

    def _wait_topic(self, timeout: float) -> list[int]:
        def partitions() -> list[int] | None:
            meta = self._consumer.list_topics(self.topic, timeout=5)
            t = meta.topics.get(self.topic)
            if t is None or t.error is not None or not t.partitions:
                return None
            return sorted(t.partitions)

        return wait_for(partitions, timeout, interval=1, what=f"topic {self.topic}")

    def start(self, timeout: float = 120) -> KafkaReader:
        parts = self._wait_topic(timeout)
        self._consumer.assign([self._tp(self.topic, p, 0) for p in parts])
        return self

    def poll(self, seconds: float = 1.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            value = msg.value()
            self.events.append(json.loads(value) if value else None)

    def payloads(self) -> list[dict[str, Any]]:
        """Debezium envelopes (tombstones dropped), schema-wrapped JSON unwrapped."""
        out = []
        for e in self.events:
            if e is None:
                continue
            out.append(e.get("payload", e) if "schema" in e else e)
        return out

    def wait(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 120,
        what: str = "",
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            self.poll(1.0)
            p = self.payloads()
            return p if predicate(p) else None

        return wait_for(check, timeout, interval=0, what=what or f"events on {self.topic}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._consumer.close()


def delete_topics(bootstrap: str, topics: set[str]) -> None:
    """Best-effort removal of a test's topics from the shared broker."""
    from confluent_kafka.admin import AdminClient

    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    doomed = sorted(topics & set(admin.list_topics(timeout=10).topics))
    if not doomed:  # the admin client refuses an empty list
        return
    for future in admin.delete_topics(doomed, operation_timeout=10).values():
        with contextlib.suppress(Exception):
            future.result(timeout=15)


def ops_for(payloads: list[dict[str, Any]], key: str, value: Any) -> list[str]:
    """Operations (r, c, u, d) of change events whose row (`after`, else `before`) has key=value."""
    out = []
    for p in payloads:
        row = p.get("after") or p.get("before") or {}
        if row.get(key) == value:
            out.append(str(p.get("op")))
    return out


# --- Kafka Connect --------------------------------------------------------------------------


class Connect:
    """Direct REST reads for assertions (the operator does the writes)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + path, timeout=10)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def status(self, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.get(f"/connectors/{name}/status")
        return result

    def config(self, name: str) -> dict[str, str] | None:
        result: dict[str, str] | None = self.get(f"/connectors/{name}/config")
        return result

    def state(self, name: str) -> tuple[str | None, list[str]]:
        st = self.status(name)
        if st is None:
            return None, []
        return st["connector"]["state"], [t["state"] for t in st.get("tasks", [])]

    def delete(self, name: str) -> None:
        with contextlib.suppress(requests.RequestException):
            requests.delete(f"{self.url}/connectors/{name}", timeout=10)

    def put_config(self, name: str, config: dict[str, str]) -> None:
        """Change a connector behind the operator's back (drift tests)."""
        resp = requests.put(f"{self.url}/connectors/{name}/config", json=config, timeout=30)
        resp.raise_for_status()


# --- CRs ------------------------------------------------------------------------------------


def external_platform(
    name: str,
    namespace: str,
    *,
    bootstrap: str,
    connect_url: str,
    provider: str = "directory",
    mount: str | None = None,
) -> dict[str, Any]:
    connect: dict[str, Any] = {"url": connect_url, "secretsProvider": provider}
    if mount:
        connect["secretsMountPath"] = mount
    return {
        "apiVersion": API,
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kafka": {"mode": "external", "external": {"bootstrapServers": [bootstrap]}},
            "connect": {"mode": "external", "external": connect},
            "flink": {"mode": "disabled"},
            "spark": {"mode": "disabled"},
            "objectStore": {"mode": "disabled"},
            "monitoring": {"mode": "disabled"},
        },
    }


def secret(name: str, namespace: str, username: str, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"username": username, "password": password},
    }


def datasource(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "DataSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cdc_connector(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "CdcConnector",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def write_secret_dir(base: str | Path, namespace: str, name: str, data: dict[str, str]) -> Path:
    """What the kubelet does for a Secret volume: one file per key, under `<ns>/<secret>/`."""
    directory = Path(base) / namespace / name
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        path = directory / key
        path.write_text(value)
        path.chmod(0o600)
    return directory


def wait_condition(
    kubectl: Kubectl,
    kind: str,
    name: str,
    namespace: str,
    ctype: str,
    status: str,
    reason: str | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kubectl.get(kind, name, namespace)
        cond = condition(obj, ctype)
        if (
            obj
            and cond
            and cond["status"] == status
            and (reason is None or cond["reason"] == reason)
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        ):
            return obj
        return None

    def last() -> str:
        obj = kubectl.get(kind, name, namespace)
        return json.dumps((obj or {}).get("status"), indent=1)[:3000]

    try:
        return wait_for(
            check, timeout, interval=1, what=f"{kind} {name} {ctype}={status} {reason or ''}"
        )
    except AssertionError as err:
        raise AssertionError(f"{err}\nlast status: {last()}") from None


# --- a dedicated Kafka + Connect pair (for outages) -----------------------------------------


@dataclass
class DedicatedConnect:
    """Kafka and Connect started by hack/services.sh in a private run dir, on free ports,
    with Strimzi's Kubernetes config providers enabled. Tests may stop and start it."""

    run_dir: Path
    kubeconfig: str
    env: dict[str, str] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HEADWATER_RUN": str(self.run_dir),
            "HEADWATER_KAFKA_PORT": self.env["kafka_port"],
            "HEADWATER_KAFKA_CONTROLLER_PORT": self.env["controller_port"],
            "HEADWATER_CONNECT_PORT": self.env["connect_port"],
            # the JMX exporter agents of both (the shared pair has the default ports)
            "HEADWATER_KAFKA_METRICS_PORT": self.env["kafka_metrics_port"],
            "HEADWATER_CONNECT_METRICS_PORT": self.env["connect_metrics_port"],
            "HEADWATER_CONNECT_K8S_PROVIDERS": "1",
            # Fabric8 (inside Strimzi's provider) reads the kubeconfig from here.
            "KUBECONFIG": self.kubeconfig,
        }

    def _run(self, service: str, action: str, timeout: float = 300) -> None:
        proc = subprocess.run(
            ["bash", str(SERVICES), service, action],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise ServiceUnavailable(f"dedicated {service} {action}: {proc.stderr[-3000:]}")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.env['kafka_port']}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['connect_port']}"

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "connect" / "secrets"

    def start(self) -> DedicatedConnect:
        if not self.env:
            self.env = {
                "kafka_port": str(free_port()),
                "controller_port": str(free_port()),
                "connect_port": str(free_port()),
                "kafka_metrics_port": str(free_port()),
                "connect_metrics_port": str(free_port()),
            }
        self._run("kafka", "start")
        self._run("connect", "start")
        return self

    def start_connect(self) -> None:
        self._run("connect", "start")

    def stop_connect(self) -> None:
        self._run("connect", "stop", timeout=120)

    def stop(self) -> None:
        for service in ("connect", "kafka"):
            with contextlib.suppress(Exception):
                self._run(service, "stop", timeout=120)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cdc_services(service: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Shared Postgres, MariaDB, Kafka and Connect (started if needed), their env merged."""
    merged: dict[str, str] = {}
    for name in ("postgres", "mariadb", "kafka", "connect"):
        merged.update(service(name))
    return merged


@contextlib.contextmanager
def _sandbox(box: Any) -> Iterator[Any]:
    """Create, yield, clean up; also clean up when creation failed half-way."""
    try:
        box.create()
        yield box
    finally:
        box.cleanup()


@pytest.fixture
def pg(cdc_services: dict[str, str]) -> Iterator[PgSandbox]:
    box = PgSandbox(
        cdc_services["HEADWATER_PG_HOST"],
        int(cdc_services["HEADWATER_PG_PORT"]),
        cdc_services["HEADWATER_PG_SOCKET_DIR"],
    )
    with _sandbox(box):
        yield box


@pytest.fixture
def maria(cdc_services: dict[str, str]) -> Iterator[MariaSandbox]:
    box = MariaSandbox(
        cdc_services["HEADWATER_MARIADB_HOST"],
        int(cdc_services["HEADWATER_MARIADB_PORT"]),
        cdc_services["HEADWATER_MARIADB_SOCKET"],
    )
    with _sandbox(box):
        yield box


@pytest.fixture
def connect(cdc_services: dict[str, str]) -> Connect:
    return Connect(cdc_services["HEADWATER_CONNECT_URL"])


@pytest.fixture
def secrets_dir(cdc_services: dict[str, str]) -> Iterator[Path]:
    """The shared worker's `directory` provider root; each test writes `<ns>/<secret>/`."""
    base = Path(cdc_services["HEADWATER_CONNECT_SECRETS_DIR"])
    before = set(base.iterdir()) if base.exists() else set()
    yield base
    for path in set(base.iterdir()) - before if base.exists() else ():
        shutil.rmtree(path, ignore_errors=True)


def worker_kubeconfig(
    kubectl: Kubectl, directory: Path, name: str
) -> tuple[Path, Callable[[], None]]:
    """A kubeconfig for the Connect worker: a ServiceAccount token allowed to read Secrets,
    like a worker in a cluster would have (and Fabric8 can't load our admin EC client key)."""
    admin = yaml.safe_load(Path(kubectl.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    kubectl.run("create", "namespace", name)
    kubectl.run("create", "serviceaccount", "connect-worker", "-n", name)
    kubectl.run("create", "clusterrole", name, "--verb=get", "--resource=secrets")
    kubectl.run(
        "create",
        "clusterrolebinding",
        name,
        f"--clusterrole={name}",
        f"--serviceaccount={name}:connect-worker",
    )
    token = kubectl.run(
        "create", "token", "connect-worker", "-n", name, "--duration=4h"
    ).stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "connect-worker", "user": {"token": token}}],
        "contexts": [{"name": "worker", "context": {"cluster": "local", "user": "connect-worker"}}],
        "current-context": "worker",
    }
    path = directory / "worker-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)

    def remove() -> None:
        kubectl.run(
            "delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found", check=False
        )
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)

    return path, remove


@pytest.fixture(scope="module")
def dedicated_connect(
    kubectl: Kubectl, cdc_services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DedicatedConnect]:
    run_dir = tmp_path_factory.mktemp("dedicated-connect")
    kubeconfig, remove = worker_kubeconfig(kubectl, run_dir, f"hw-cdc-worker-{token()}")
    pair = DedicatedConnect(run_dir, str(kubeconfig))
    try:
        pair.start()
    except ServiceUnavailable as err:
        pair.stop()
        remove()
        from . import require

        require(False, f"a dedicated Kafka + Connect ({str(err)[-500:]})")
        raise
    yield pair
    pair.stop()
    remove()


# --- the operator-driven pipeline -----------------------------------------------------------


@dataclass
class Pipeline:
    """One namespace with a DataPlatform (external Kafka + Connect), a credentials Secret,
    a DataSource and helpers to add CdcConnectors, all driven through kubectl."""

    kubectl: Kubectl
    namespace: str
    bootstrap: str
    connect: Connect
    password: str
    platform: str = "cdc"
    source: str = "db"
    secret_name: str = "db-cdc"
    connectors: list[str] = field(default_factory=list)

    def apply_connector(self, name: str, tables: list[str], **spec: Any) -> dict[str, Any]:
        body = cdc_connector(
            name,
            self.namespace,
            {
                "platformRef": {"name": self.platform},
                "sourceRef": {"name": self.source},
                "tables": tables,
                **spec,
            },
        )
        self.kubectl.apply(body)
        if name not in self.connectors:
            self.connectors.append(name)
        return body

    def teardown(self) -> None:
        """Delete the CdcConnectors while the operator runs (their finalizers clean Connect),
        then remove anything left in the shared Connect, and the topics they wrote."""
        topics: set[str] = set()
        for name in self.connectors:
            obj = self.kubectl.get("cdcconnector", name, self.namespace) or {}
            status = obj.get("status") or {}
            topics.update(status.get("topics") or [])
            topics.add(f"headwater.schema-history.{self.connector_name(name)}")
        for name in self.connectors:
            self.kubectl.run(
                "delete",
                "cdcconnector",
                name,
                "-n",
                self.namespace,
                "--ignore-not-found",
                "--timeout=60s",
                check=False,
            )
        for name in self.connectors:
            self.connect.delete(self.connector_name(name))
        delete_topics(self.bootstrap, topics)

    def connector_name(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.kubectl.get(kind, name, self.namespace)
        assert obj is not None, f"{kind} {name} not found"
        return obj

    def wait(
        self,
        kind: str,
        name: str,
        ctype: str,
        status: str,
        reason: str | None = None,
        timeout: float = 120,
    ) -> dict[str, Any]:
        return wait_condition(
            self.kubectl, kind, name, self.namespace, ctype, status, reason, timeout
        )

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self.kubectl.run(
            "patch", kind, name, "-n", self.namespace, "--type=merge", "-p", json.dumps(patch)
        )

    def events(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json("get", "events", "-n", self.namespace)[
            "items"
        ]
        return items

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events() if e["involvedObject"]["name"] == name]

    def assert_no_leak(
        self, operator_logs: str, connectors: list[str], extra: tuple[str, ...] = ()
    ) -> None:
        """The password appears nowhere the operator writes or sends: operator logs, CR
        status and spec, Events, and the connector configs stored in Kafka Connect.
        Each place is first shown to hold what the operator put there (the connector's
        name, its config), so an empty or wrong capture cannot pass for "no leak"."""
        crs = self.kubectl.json(
            "get", "dataplatforms,datasources,cdcconnectors", "-n", self.namespace
        )
        configs = {c: self.connect.config(c) for c in connectors}
        places = {
            "operator log": operator_logs,
            "custom resources": json.dumps(crs),
            "events": json.dumps(self.events()),
            **{f"Connect config of {c}": json.dumps(config) for c, config in configs.items()},
        }
        for c, config in configs.items():
            assert config is not None, f"connector {c} is not in Kafka Connect"
            for name in ("operator log", "custom resources"):
                assert c in places[name], f"{name}: no mention of connector {c} (not captured?)"
        assert any(e["involvedObject"]["kind"] == "CdcConnector" for e in self.events()), (
            "no Event of a CdcConnector captured"
        )
        for name, text in places.items():
            for secret_value in (self.password, *extra):
                assert secret_value not in text, f"the password leaked into {name}"


def make_pipeline(
    kubectl: Kubectl,
    namespace: str,
    *,
    bootstrap: str,
    connect_url: str,
    source_spec: dict[str, Any],
    username: str,
    password: str,
    provider: str = "directory",
    secrets_base: Path | None = None,
) -> Pipeline:
    """Platform + Secret + DataSource; with the `directory` provider the test also plays the
    kubelet and writes the Secret's files where the worker's DirectoryConfigProvider reads."""
    pipe = Pipeline(kubectl, namespace, bootstrap, Connect(connect_url), password)
    if provider == "directory":
        assert secrets_base is not None
        write_secret_dir(
            secrets_base, namespace, pipe.secret_name, {"username": username, "password": password}
        )
    kubectl.apply(
        [
            external_platform(
                pipe.platform,
                namespace,
                bootstrap=bootstrap,
                connect_url=connect_url,
                provider=provider,
                mount=str(secrets_base) if secrets_base else None,
            ),
            secret(pipe.secret_name, namespace, username, password),
            datasource(
                pipe.source,
                namespace,
                {**source_spec, "credentialsSecretRef": {"name": pipe.secret_name}},
            ),
        ]
    )
    pipe.wait("dataplatform", pipe.platform, "Ready", "True")
    return pipe
