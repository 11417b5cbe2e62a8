"""The CdcConnector reconciler's restart schedule and clean-up, pass by pass, against an
in-memory Kafka Connect; and the DataSource failed-checks gauge of deleted sources.

The same paths run against the real Connect in tests/dataplane/test_cdc_postgres.py; here
the timing is exact and the crash between "connector created" and "status written" is cheap
to reach."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from typing import Any

import pytest

from headwater.constants import FINALIZER, Reason
from headwater.dataplane.connect import ConnectorState, ConnectUnavailable, TaskState
from headwater.metrics import Metrics
from headwater.reconcile import cdcconnector
from headwater.reconcile.base import Outcome, Retry, Store
from headwater.reconcile.cdcconnector import CdcConnectorReconciler
from headwater.reconcile.datasource import forget_deleted
from headwater.render.connector import CONNECTOR_CLASSES

NS = "shop"
CONNECTOR = f"{NS}.orders"
TRACE = "org.apache.kafka.connect.errors.ConnectException: walsender gone"


class FakeConnect:
    """One Kafka Connect cluster in memory; records the calls that change something."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, str]] = {}
        self.states: dict[str, ConnectorState] = {}
        self.calls: list[tuple[str, str]] = []
        self.down = False

    def __call__(self, url: str, **_: Any) -> FakeConnect:  # stands in for ConnectClient(...)
        return self

    def _up(self) -> None:
        if self.down:
            raise ConnectUnavailable("connection refused")

    def ensure_ready(self) -> None:
        self._up()

    def plugins(self) -> set[str]:
        self._up()
        return set(CONNECTOR_CLASSES.values())

    def config(self, name: str) -> dict[str, str] | None:
        self._up()
        return self.configs.get(name)

    def create(self, name: str, config: dict[str, str], initial: str) -> None:
        self._up()
        self.calls.append(("create", name))
        self.configs[name] = dict(config)
        self.states[name] = ConnectorState("RUNNING", tasks=(TaskState(0, "RUNNING"),))

    def put_config(self, name: str, config: dict[str, str]) -> None:
        self._up()
        self.calls.append(("put_config", name))
        self.configs[name] = dict(config)

    def status(self, name: str) -> ConnectorState | None:
        self._up()
        return self.states.get(name)

    def topics(self, name: str) -> list[str]:
        self._up()
        return []

    def restart(self, name: str) -> None:
        self._up()
        self.calls.append(("restart", name))

    def stop(self, name: str) -> None:
        self._up()
        self.calls.append(("stop", name))
        self.states[name] = ConnectorState("STOPPED")

    def delete_offsets(self, name: str) -> bool:
        self._up()
        self.calls.append(("delete_offsets", name))
        return name in self.configs

    def delete(self, name: str) -> bool:
        self._up()
        self.calls.append(("delete", name))
        self.states.pop(name, None)
        return self.configs.pop(name, None) is not None

    def fail_task(self, name: str) -> None:
        self.states[name] = ConnectorState("RUNNING", tasks=(TaskState(0, "FAILED", trace=TRACE),))


class Settings:
    endpoint_overrides: dict[str, str] = {}
    dataplane_timeout = 5.0
    dataplane_disabled: frozenset[str] = frozenset()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Ctx:
    """What the reconciler uses of `Context`: the CRs it reads, the Secret, the queue."""

    def __init__(self, *, source_type: str = "postgres") -> None:
        self.objects: dict[tuple[str, str], Any] = {
            ("DataPlatform", "p"): {
                "metadata": {"name": "p", "namespace": NS},
                "spec": {
                    "kafka": {"mode": "external", "external": {"bootstrapServers": ["k:9092"]}},
                    "connect": {"mode": "external", "external": {"url": "http://connect:8083"}},
                },
                "status": {
                    "endpoints": {
                        "connectUrl": "http://connect:8083",
                        "kafkaBootstrapServers": "k:9092",
                    }
                },
            },
            ("DataSource", "db"): {
                "metadata": {"name": "db", "namespace": NS, "generation": 1},
                "spec": {
                    "type": source_type,
                    "host": "db.example",
                    "database": "shop",
                    "credentialsSecretRef": {"name": "creds"},
                },
            },
        }
        self.secrets = {
            "creds": {
                "metadata": {"name": "creds", "resourceVersion": "7"},
                "data": {"username": b64("cdc"), "password": b64("pw-never-shown")},
            }
        }
        self.settings = Settings()
        self.services: dict[str, Any] = {}
        self.enqueued: list[tuple[Any, float]] = []
        self.woken = asyncio.Event()

    def get(self, kind: str, namespace: str, name: str) -> Any:
        return self.objects.get((kind, name))

    def secret(self, namespace: str, name: str) -> Any:
        return self.secrets.get(name)

    async def blocking(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    async def ensure_finalizer(self, body: dict[str, Any]) -> dict[str, Any]:
        body["metadata"]["finalizers"] = [FINALIZER]
        return body

    def enqueue(self, key: Any) -> None:
        self.enqueued.append((key, time.monotonic()))
        self.woken.set()


def body(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "CdcConnector",
        "metadata": {"name": "orders", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {
            "platformRef": {"name": "p"},
            "sourceRef": {"name": "db"},
            "tables": ["public.orders"],
            **spec,
        },
        "status": status or {},
    }


def ago(seconds: float) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> FakeConnect:
    fake = FakeConnect()
    monkeypatch.setattr(cdcconnector, "ConnectClient", fake)
    return fake


async def created(rec: CdcConnectorReconciler, ctx: Ctx, **spec: Any) -> dict[str, Any]:
    """One pass that creates the connector; returns the status it wrote."""
    outcome = await rec.reconcile(body(**spec), ctx)  # type: ignore[arg-type]
    assert outcome.ready, outcome
    return outcome.status


def restarted_status(status: dict[str, Any], seconds_ago: float, in_a_row: int = 1) -> Any:
    return {
        **status,
        "restarts": in_a_row,
        "totalRestarts": in_a_row,
        "lastRestartTime": ago(seconds_ago),
    }


# --- restarts -------------------------------------------------------------------------------


def test_no_restart_before_the_backoff_is_due(connect: FakeConnect) -> None:
    auto = {"initialBackoffSeconds": 30, "maxBackoffSeconds": 60}

    async def scenario() -> tuple[Outcome, Outcome]:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx, autoRestart=auto)
        connect.fail_task(CONNECTOR)
        # restarted once 5 s ago: the next restart is due in 30 s, not now
        early = await rec.reconcile(body(restarted_status(status, 5), autoRestart=auto), ctx)  # type: ignore[arg-type]
        assert ("restart", CONNECTOR) not in connect.calls
        # 31 s after the last restart it is due
        due = await rec.reconcile(body(restarted_status(status, 31), autoRestart=auto), ctx)  # type: ignore[arg-type]
        rec._cancel_wakeup(("CdcConnector", NS, "orders"))
        return early, due

    early, due = asyncio.run(scenario())
    assert early.reason == Reason.CONNECTOR_FAILED and TRACE in early.message
    assert early.requeue_after is not None and 23 <= early.requeue_after <= 25
    assert early.status["restarts"] == 1 and early.status["tasks"][0]["trace"] == TRACE
    assert connect.calls.count(("restart", CONNECTOR)) == 1
    assert due.status["restarts"] == 2 and due.status["totalRestarts"] == 2
    assert [e[1] for e in due.events] == [Reason.CONNECTOR_RESTARTED]


def test_restart_limit_stops_restarting(connect: FakeConnect) -> None:
    auto = {"maxRestarts": 1, "initialBackoffSeconds": 1, "maxBackoffSeconds": 1}

    async def scenario() -> Outcome:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx, autoRestart=auto)
        connect.fail_task(CONNECTOR)
        return await rec.reconcile(body(restarted_status(status, 60), autoRestart=auto), ctx)  # type: ignore[arg-type]

    outcome = asyncio.run(scenario())
    assert ("restart", CONNECTOR) not in connect.calls
    assert outcome.reason == Reason.RESTART_LIMIT_REACHED and outcome.requeue_after is None
    assert outcome.message == f"gave up after 1 restarts: task 0: {TRACE}"


def test_next_pass_comes_when_the_restart_is_due_not_when_the_controller_says(
    connect: FakeConnect,
) -> None:
    """The controller multiplies the requeue of a resource that stays not Ready by 1.5 per
    pass (up to 5 min): after a few failed passes, a 2 s back-off would become minutes.
    The reconciler wakes the key itself when the next restart is due."""
    auto = {"initialBackoffSeconds": 1, "maxBackoffSeconds": 2}
    key = ("CdcConnector", NS, "orders")

    async def scenario() -> tuple[list[float | None], list[float]]:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx, autoRestart=auto)
        connect.fail_task(CONNECTOR)
        asked: list[float | None] = []
        woken: list[float] = []
        for _ in range(3):
            started = time.monotonic()
            outcome = await rec.reconcile(body(status, autoRestart=auto), ctx)  # type: ignore[arg-type]
            asked.append(outcome.requeue_after)
            status = outcome.status
            await asyncio.wait_for(ctx.woken.wait(), 5)
            woken += [at - started for k, at in ctx.enqueued if k == key]
            ctx.enqueued.clear()
            ctx.woken.clear()
        rec._cancel_wakeup(key)
        return asked, woken

    asked, woken = asyncio.run(scenario())
    # every pass restarts (each is due when the wake-up comes), then waits the back-off:
    # 1 s, then 2 s, then 2 s again (maxBackoffSeconds), below the 5 s poll
    assert connect.calls.count(("restart", CONNECTOR)) == 3
    assert asked == [1.0, 2.0, 2.0]
    assert len(woken) == 3, woken
    assert all(abs(w - a) < 0.3 for w, a in zip(woken, [1.0, 2.0, 2.0], strict=True)), woken


def test_a_running_connector_asks_for_no_extra_pass(connect: FakeConnect) -> None:
    async def scenario() -> Ctx:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx)
        # restarted before, running again: Ready, polled on the ordinary resync
        outcome = await rec.reconcile(body(restarted_status(status, 5)), ctx)  # type: ignore[arg-type]
        assert outcome.ready and outcome.requeue_after is None
        await asyncio.sleep(0.1)
        return ctx

    assert asyncio.run(scenario()).enqueued == []


# --- deletion -------------------------------------------------------------------------------


def deleting(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj = body(status, **spec)
    obj["metadata"]["finalizers"] = [FINALIZER]
    obj["metadata"]["deletionTimestamp"] = ago(0)
    return obj


def without_hash(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "configHash"}


def test_deletion_removes_a_connector_the_status_never_recorded(connect: FakeConnect) -> None:
    """Created in Connect, then the status write was lost (or the operator died): the
    connector goes, and the slot follows the policy as usual (Retain: kept, said so)."""

    async def scenario() -> Outcome:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx)
        return await rec.finalize(deleting(without_hash(status)), ctx)  # type: ignore[arg-type]

    outcome = asyncio.run(scenario())
    assert outcome.finalized
    assert ("delete", CONNECTOR) in connect.calls and CONNECTOR not in connect.configs
    assert [e[1] for e in outcome.events] == [Reason.CONNECTOR_DELETED, Reason.SLOT_RETAINED]


def test_deletion_with_drop_resets_offsets_of_an_unrecorded_connector(
    connect: FakeConnect,
) -> None:
    async def scenario() -> None:
        rec, ctx = CdcConnectorReconciler(), Ctx(source_type="mysql")
        status = await created(rec, ctx, deletionPolicy={"replicationSlot": "Drop"})
        doomed = deleting(without_hash(status), deletionPolicy={"replicationSlot": "Drop"})
        with pytest.raises(Retry):  # stops it first, looks again
            await rec.finalize(doomed, ctx)  # type: ignore[arg-type]
        outcome = await rec.finalize(doomed, ctx)  # type: ignore[arg-type]
        assert outcome.finalized

    asyncio.run(scenario())
    assert connect.calls[-3:] == [
        ("stop", CONNECTOR),
        ("delete_offsets", CONNECTOR),
        ("delete", CONNECTOR),
    ]


def test_deletion_of_a_never_written_connector_does_not_wait_for_connect(
    connect: FakeConnect,
) -> None:
    """Connect down and nothing recorded as written: finish (with a Warning), like the
    e2e test's unreachable managed Connect expects; a recorded one waits for Connect."""

    async def scenario() -> tuple[Outcome, BaseException | None]:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = await created(rec, ctx)
        connect.down = True
        outcome = await rec.finalize(deleting(without_hash(status)), ctx)  # type: ignore[arg-type]
        try:
            await rec.finalize(deleting(status), ctx)  # type: ignore[arg-type]
        except Retry as err:
            return outcome, err
        return outcome, None

    outcome, waited = asyncio.run(scenario())
    assert outcome.finalized
    assert [(e[0], e[1]) for e in outcome.events] == [("Warning", Reason.CLEANUP_SKIPPED)]
    assert CONNECTOR in outcome.events[0][2]
    # a postgres source, but no slot event: nothing says a slot of this CR exists
    assert isinstance(waited, Retry) and waited.reason == Reason.CONNECT_UNAVAILABLE


def test_deletion_with_no_connector_anywhere_finishes_quietly(connect: FakeConnect) -> None:
    async def scenario() -> Outcome:
        rec, ctx = CdcConnectorReconciler(), Ctx()
        status = {"connectorName": CONNECTOR, "connectUrl": "http://connect:8083"}
        return await rec.finalize(deleting(status), ctx)  # type: ignore[arg-type]

    outcome = asyncio.run(scenario())
    assert outcome.finalized and outcome.events == []
    assert connect.calls == [("delete", CONNECTOR)]


# --- DataSource gauge -------------------------------------------------------------------------


def test_failed_checks_series_of_deleted_datasources_are_removed() -> None:
    metrics = Metrics()
    gauge = metrics.preflight_failures
    store = Store()
    for name in ("kept", "deleted"):
        store.put(("DataSource", NS, name), {"metadata": {"name": name, "namespace": NS}})
        gauge.labels(NS, name).set(2)
    store.pop(("DataSource", NS, "deleted"))  # what the DELETED watch event does

    class StoreCtx:
        def __init__(self) -> None:
            self.store = store

    forget_deleted(StoreCtx(), gauge)  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert f'headwater_preflight_failed_checks{{name="kept",namespace="{NS}"}} 2.0' in text
    assert 'name="deleted"' not in text
