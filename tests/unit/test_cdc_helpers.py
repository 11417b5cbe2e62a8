"""Pure pieces of the CDC reconcilers and clients: restart back-off, trace summaries,
driver error messages (the real-server behaviour is in tests/dataplane/test_cdc_*.py)."""

from __future__ import annotations

import datetime as dt
import os
import stat

import psycopg

from headwater.api.cdcconnector import CdcConnectorSpec
from headwater.constants import Reason
from headwater.dataplane import preflight
from headwater.dataplane.connect import ConnectClient, ConnectorState, TaskState, short_trace
from headwater.reconcile.cdcconnector import Restarts, _kept

SPEC = CdcConnectorSpec.model_validate(
    {
        "platformRef": {"name": "p"},
        "sourceRef": {"name": "s"},
        "tables": ["public.orders"],
        "autoRestart": {"initialBackoffSeconds": 10, "maxBackoffSeconds": 60},
    }
)


def ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_restart_backoff_doubles_up_to_the_cap() -> None:
    assert Restarts(0, 0, None).due_in(SPEC) == 0  # the first restart is immediate
    assert 8 <= Restarts(1, 1, ago(1)).due_in(SPEC) <= 10
    assert 18 <= Restarts(2, 2, ago(1)).due_in(SPEC) <= 20
    assert 38 <= Restarts(3, 3, ago(1)).due_in(SPEC) <= 40
    assert 58 <= Restarts(9, 9, ago(1)).due_in(SPEC) <= 60  # capped at maxBackoffSeconds
    assert Restarts(2, 2, ago(30)).due_in(SPEC) == 0


def test_short_trace_keeps_first_line_and_root_cause() -> None:
    trace = (
        "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.\n"
        "\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n"
        "Caused by: org.postgresql.util.PSQLException: Database connection failed\n"
        "\tat foo\n"
        'Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "x"\n'
    )
    out = short_trace(trace)
    assert out is not None
    assert out.startswith("org.apache.kafka.connect.errors.ConnectException: An exception")
    assert out.endswith('FATAL: password authentication failed for user "x"')
    assert short_trace(None) is None
    assert short_trace("java.io.EOFException") == "java.io.EOFException"


def test_connector_state_running_needs_every_task() -> None:
    running = TaskState(0, "RUNNING")
    assert ConnectorState("RUNNING", tasks=(running,)).running
    assert not ConnectorState("RUNNING", tasks=()).running
    assert not ConnectorState("RUNNING", tasks=(running, TaskState(1, "FAILED"))).running
    assert ConnectorState("RUNNING", tasks=(running, TaskState(1, "FAILED"))).failed


def test_connect_client_repr_hides_auth() -> None:
    client = ConnectClient("http://c:8083/", auth=("admin", "hunter2"))
    assert "hunter2" not in repr(client) and client.url == "http://c:8083"


def test_kept_status_drops_live_state() -> None:
    old = {"connectorState": "RUNNING", "tasks": [{"id": 0}], "restarts": 2, "configHash": "x"}
    assert _kept(old) == {"restarts": 2, "configHash": "x"}


def test_postgres_errors_become_reasons_without_the_password() -> None:
    target = preflight.Target("postgres", "h", 1, "shop", "u", "sekret-123")
    auth = psycopg.OperationalError(
        'connection failed: connection to server at "h", port 1 failed: FATAL:  password '
        'authentication failed for user "u" (password sekret-123)'
    )
    result = preflight._pg_failure(auth, target)
    assert result.reason == Reason.AUTHENTICATION_FAILED
    assert result.message.startswith("FATAL: password authentication failed")
    assert "sekret-123" not in result.message
    missing = preflight._pg_failure(
        psycopg.OperationalError('FATAL: database "x" does not exist'), target
    )
    assert missing.reason == Reason.DATABASE_NOT_FOUND
    refused = preflight._pg_failure(psycopg.OperationalError("Connection refused"), target)
    assert refused.reason == Reason.UNREACHABLE


def test_target_repr_hides_the_password() -> None:
    assert "sekret" not in repr(preflight.Target("postgres", "h", 1, "d", "u", "sekret"))


def test_ca_file_is_private_and_reused() -> None:
    path = preflight.ca_file("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")
    assert path == preflight.ca_file("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
