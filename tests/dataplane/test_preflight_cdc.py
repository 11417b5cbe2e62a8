"""DataSource preflight against real servers, through the operator: the checks a user sees
in `kubectl get datasource -o yaml` for good and for broken CDC set-ups."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from hwtest.cdc import (
    MariaSandbox,
    PgSandbox,
    datasource,
    external_platform,
    secret,
    wait_condition,
)
from hwtest.kubectl import Kubectl, condition
from hwtest.operator import OperatorProcess


def apply_source(
    kubectl: Kubectl, namespace: str, spec: dict[str, Any], username: str, password: str
) -> None:
    kubectl.apply(
        [
            secret("creds", namespace, username, password),
            datasource("src", namespace, {**spec, "credentialsSecretRef": {"name": "creds"}}),
        ]
    )


def checks_of(obj: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in obj["status"]["checks"]}


def failed_checks_metric(operator: OperatorProcess, namespace: str, name: str) -> float | None:
    """`headwater_preflight_failed_checks` of one DataSource, read from the operator's /metrics."""
    for line in operator.metrics().splitlines():
        if (
            line.startswith("headwater_preflight_failed_checks{")
            and f'namespace="{namespace}"' in line
            and f'name="{name}"' in line
        ):
            return float(line.split()[-1])
    return None


def pg_spec(pg: PgSandbox, **extra: Any) -> dict[str, Any]:
    return {"type": "postgres", "host": pg.host, "port": pg.port, "database": pg.database, **extra}


def test_postgres_with_wal_level_replica_is_not_cdc_ready(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    service: Callable[[str], dict[str, str]],
) -> None:
    env = service("postgres-replica")
    apply_source(
        kubectl,
        namespace,
        {
            "type": "postgres",
            "host": env["HEADWATER_PG_REPLICA_HOST"],
            "port": int(env["HEADWATER_PG_REPLICA_PORT"]),
            "database": "shop",
            "tables": ["public.orders"],
        },
        env["HEADWATER_PG_REPLICA_USER"],
        env["HEADWATER_PG_REPLICA_PASSWORD"],
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "CdcReady", "False", "PreflightFailed"
    )
    assert condition(obj, "Reachable")["status"] == "True"  # type: ignore[index]
    ready = condition(obj, "Ready")
    assert (
        ready is not None
        and ready["reason"] == "PreflightFailed"
        and "wal_level" in ready["message"]
    )
    wal = checks_of(obj)["wal_level"]
    assert wal == {
        "name": "wal_level",
        "status": "Fail",
        "observed": "replica",
        "expected": "logical",
        "hint": "set wal_level = logical in postgresql.conf and restart PostgreSQL",
    }
    assert obj["status"]["failedChecks"] == 1
    assert {c["status"] for n, c in checks_of(obj).items() if n != "wal_level"} <= {"Pass", "Warn"}
    assert failed_checks_metric(operator, namespace, "src") == 1.0
    table = kubectl.run("get", "datasource", "src", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:6] == ["NAME", "READY", "REASON", "TYPE", "REACHABLE", "CDC"]
    assert table[1].split()[:6] == ["src", "False", "PreflightFailed", "postgres", "True", "False"]


def test_role_without_replication_is_not_cdc_ready(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    service: Callable[[str], dict[str, str]],
) -> None:
    env = service("postgres")
    apply_source(
        kubectl,
        namespace,
        {
            "type": "postgres",
            "host": env["HEADWATER_PG_HOST"],
            "port": int(env["HEADWATER_PG_PORT"]),
            "database": env["HEADWATER_PG_DB"],
            "tables": ["public.orders"],
        },
        env["HEADWATER_PG_NOREPL_USER"],
        env["HEADWATER_PG_NOREPL_PASSWORD"],
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "CdcReady", "False", "PreflightFailed"
    )
    check = checks_of(obj)["replication_privilege"]
    assert check["status"] == "Fail" and check["observed"] == "none"
    assert check["hint"] == 'ALTER ROLE "noreplication" WITH REPLICATION;'
    assert checks_of(obj)["wal_level"]["status"] == "Pass"


def test_replication_granted_later_is_found_by_the_timer(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, pg: PgSandbox
) -> None:
    """The preflight also runs on a timer: fixing the role in the database, with nothing
    changed in Kubernetes, turns the source CdcReady at the next probe."""
    pg.execute(f'ALTER ROLE "{pg.role}" NOREPLICATION')
    apply_source(
        kubectl,
        namespace,
        pg_spec(pg, tables=[pg.table], preflight={"intervalSeconds": 30}),
        pg.role,
        pg.password,
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "CdcReady", "False", "PreflightFailed"
    )
    assert checks_of(obj)["replication_privilege"]["status"] == "Fail"
    generation = obj["metadata"]["generation"]

    pg.execute(f'ALTER ROLE "{pg.role}" REPLICATION')
    # failing sources are probed again after min(interval, 60 s), growing 1.5x per pass
    obj = wait_condition(kubectl, "datasource", "src", namespace, "CdcReady", "True", timeout=90)
    assert checks_of(obj)["replication_privilege"]["status"] == "Pass"
    assert obj["metadata"]["generation"] == generation
    assert failed_checks_metric(operator, namespace, "src") == 0.0


def test_missing_table_and_table_without_key_fail_with_hints(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, pg: PgSandbox
) -> None:
    nokey, ghost = f"{pg.schema}.nokey", f"{pg.schema}.ghost"
    pg.execute(f"CREATE TABLE {nokey} (note text)")
    pg.execute(f'ALTER TABLE {nokey} OWNER TO "{pg.role}"')
    apply_source(
        kubectl,
        namespace,
        pg_spec(pg, tables=[pg.table, nokey, ghost]),
        pg.role,
        pg.password,
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "CdcReady", "False", "PreflightFailed"
    )
    checks = checks_of(obj)
    assert checks["tables"] == {
        "name": "tables",
        "status": "Fail",
        "observed": f"missing: {ghost}",
        "expected": "every listed table exists and is readable (SELECT, for the snapshot)",
        "hint": "check spec.tables",
    }
    assert checks["replica_identity"] == {
        "name": "replica_identity",
        "status": "Fail",
        "observed": f"no primary key or replica identity: {nokey}",
        "expected": "primary key or REPLICA IDENTITY FULL/INDEX",
        "hint": f"ALTER TABLE {nokey} REPLICA IDENTITY FULL; (or add a primary key)",
    }
    assert obj["status"]["failedChecks"] == 2
    assert {n for n, c in checks.items() if c["status"] == "Fail"} == {"tables", "replica_identity"}
    message = condition(obj, "CdcReady")["message"]  # type: ignore[index]
    assert f"tables: missing: {ghost}" in message and "replica_identity:" in message


def test_mariadb_user_without_grants_is_not_cdc_ready(
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    service: Callable[[str], dict[str, str]],
) -> None:
    env = service("mariadb")
    apply_source(
        kubectl,
        namespace,
        {
            "type": "mariadb",
            "host": env["HEADWATER_MARIADB_HOST"],
            "port": int(env["HEADWATER_MARIADB_PORT"]),
            "database": env["HEADWATER_MARIADB_DB"],
            "tables": ["shop.orders"],
        },
        env["HEADWATER_MARIADB_NOGRANTS_USER"],
        env["HEADWATER_MARIADB_NOGRANTS_PASSWORD"],
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "CdcReady", "False", "PreflightFailed"
    )
    checks = checks_of(obj)
    assert checks["replication_privileges"]["status"] == "Fail"
    assert "REPLICATION SLAVE" in checks["replication_privileges"]["observed"]
    assert checks["binlog_format"] == {
        "name": "binlog_format",
        "status": "Pass",
        "observed": "ROW",
        "expected": "ROW",
        "hint": "",
    }
    assert checks["binlog_row_image"]["status"] == "Pass"
    assert checks["select_privilege"]["status"] == "Pass"
    assert checks["gtid_mode"]["observed"].startswith("MariaDB GTID")


def test_mariadb_with_debezium_grants_passes(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, maria: MariaSandbox
) -> None:
    apply_source(
        kubectl,
        namespace,
        {
            "type": "mariadb",
            "host": maria.host,
            "port": maria.port,
            "database": maria.database,
            "tables": [maria.table],
        },
        maria.user,
        maria.password,
    )
    obj = wait_condition(kubectl, "datasource", "src", namespace, "Ready", "True")
    assert condition(obj, "CdcReady")["reason"] == "PreflightPassed"  # type: ignore[index]
    assert obj["status"]["failedChecks"] == 0
    assert "MariaDB" in obj["status"]["serverVersion"]


def test_wrong_password_is_authentication_failed_then_fixed(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, pg: PgSandbox
) -> None:
    wrong = f"wrong-{pg.password}"
    log_start = len(operator.logs())
    apply_source(
        kubectl,
        namespace,
        {"type": "postgres", "host": pg.host, "port": pg.port, "database": pg.database},
        pg.role,
        wrong,
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "Reachable", "False", "AuthenticationFailed"
    )
    ready = condition(obj, "Ready")
    assert ready is not None and ready["reason"] == "AuthenticationFailed"
    assert "password authentication failed" in ready["message"]
    assert condition(obj, "CdcReady")["status"] == "Unknown"  # type: ignore[index]
    assert_not_in_datasource(kubectl, namespace, (pg.password, wrong))
    # Not a crash loop: the failing source is probed with back-off, the status stays put.
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(5)
    assert kubectl.get("datasource", "src", namespace)["metadata"]["resourceVersion"] == rv  # type: ignore[index]

    # Fixing the Secret alone re-runs the preflight (the DataSource depends on it).
    kubectl.apply(secret("creds", namespace, pg.role, pg.password))
    wait_condition(kubectl, "datasource", "src", namespace, "Ready", "True", timeout=60)
    assert_not_in_datasource(kubectl, namespace, (pg.password, wrong))

    logs = operator.logs()
    assert "Traceback" not in logs[log_start:], "the operator logged a traceback"
    assert pg.password not in logs and wrong not in logs
    events = kubectl.json("get", "events", "-n", namespace)
    assert any(e["reason"] == "AuthenticationFailed" for e in events["items"])
    assert pg.password not in str(events) and wrong not in str(events)


def assert_not_in_datasource(kubectl: Kubectl, namespace: str, passwords: tuple[str, ...]) -> None:
    """The DataSource as a user reads it (spec and status) holds no password; its status
    is there (the control that the grep reads something)."""
    obj = kubectl.get("datasource", "src", namespace)
    assert obj is not None and obj["status"]["conditions"]
    text = json.dumps({"spec": obj["spec"], "status": obj["status"]})
    assert obj["status"]["endpoint"] in text
    for password in passwords:
        assert password not in text, "a password leaked into the DataSource"


def test_tls_required_but_not_offered_is_unreachable(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, pg: PgSandbox
) -> None:
    """The test server has no TLS: `require` must refuse to log in in plain text."""
    apply_source(
        kubectl,
        namespace,
        {
            "type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "database": pg.database,
            "tls": {"mode": "require"},
        },
        pg.role,
        pg.password,
    )
    obj = wait_condition(
        kubectl, "datasource", "src", namespace, "Reachable", "False", "Unreachable"
    )
    assert "SSL" in condition(obj, "Reachable")["message"]  # type: ignore[index]


def test_unsupported_type_is_probed_for_reachability_only(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, pg: PgSandbox
) -> None:
    # A SQL Server source pointed at a port that listens (Postgres's): reachable, no preflight.
    apply_source(
        kubectl,
        namespace,
        {"type": "sqlserver", "host": pg.host, "port": pg.port, "database": "shop"},
        "sa",
        "x",
    )
    obj = wait_condition(kubectl, "datasource", "src", namespace, "Ready", "True")
    cdc = condition(obj, "CdcReady")
    assert (
        cdc is not None and cdc["status"] == "Unknown" and cdc["reason"] == "PreflightNotSupported"
    )
    assert condition(obj, "Reachable")["status"] == "True"  # type: ignore[index]


def test_platform_fixture_smoke(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, cdc_services: dict[str, str]
) -> None:
    """The external platform the CDC tests use really becomes Ready (both endpoints probed)."""
    kubectl.apply(
        external_platform(
            "cdc",
            namespace,
            bootstrap=cdc_services["HEADWATER_KAFKA_BOOTSTRAP"],
            connect_url=cdc_services["HEADWATER_CONNECT_URL"],
        )
    )
    obj = wait_condition(kubectl, "dataplatform", "cdc", namespace, "Ready", "True")
    assert obj["status"]["endpoints"]["connectUrl"] == cdc_services["HEADWATER_CONNECT_URL"]
