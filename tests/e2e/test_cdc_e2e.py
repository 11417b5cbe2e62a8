"""DataSource and CdcConnector through the real operator on a real control plane, without
data services: references, Secrets, managed Connect credentials, clear failure statuses
and deletion that never hangs. (The data flow itself: tests/dataplane/test_cdc_*.py.)"""

from __future__ import annotations

import base64
import time
from typing import Any

from hwtest.cdc import cdc_connector, datasource, secret, wait_condition
from hwtest.kubectl import Kubectl, condition, wait_for
from hwtest.operator import OperatorProcess

API = "headwater.dev/v1alpha1"


def managed_platform(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "DataPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kafka": {"mode": "managed", "managed": {"replicas": 1, "defaultReplicationFactor": 1}},
            "connect": {"mode": "managed"},
            "flink": {"mode": "disabled"},
            "spark": {"mode": "disabled"},
            "objectStore": {"mode": "disabled"},
            "monitoring": {"mode": "disabled"},
        },
    }


def test_datasource_secret_missing_then_unreachable(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(
        datasource(
            "db",
            namespace,
            {
                "type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "database": "shop",
                "credentialsSecretRef": {"name": "db-creds"},
            },
        )
    )
    obj = wait_condition(kubectl, "datasource", "db", namespace, "Ready", "False", "SecretNotFound")
    assert "db-creds" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert condition(obj, "Reachable")["status"] == "False"  # type: ignore[index]

    kubectl.apply(secret("db-creds", namespace, "cdc", "s3cr3t-e2e-value"))
    obj = wait_condition(
        kubectl, "datasource", "db", namespace, "Reachable", "False", "Unreachable"
    )
    assert "connection refused" in condition(obj, "Reachable")["message"].lower()  # type: ignore[index]
    assert condition(obj, "CdcReady")["status"] == "Unknown"  # type: ignore[index]
    assert obj["status"]["endpoint"] == "127.0.0.1:1/shop"
    assert "s3cr3t-e2e-value" not in str(obj)


def test_connector_on_managed_platform_gets_credentials_by_reference(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    """Managed Connect: the platform copies the source's credentials into its own Secret
    (mounted in the workers); the connector, unreachable from outside the cluster, reports
    ConnectUnavailable and backs off instead of spinning; deleting it never hangs."""
    password = "managed-e2e-password-7f3a"
    kubectl.apply(
        [
            managed_platform("shop", namespace),
            secret("orders-db-cdc", namespace, "debezium", password),
            datasource(
                "orders-db",
                namespace,
                {
                    "type": "postgres",
                    "host": f"orders-db.{namespace}.svc",
                    "database": "shop",
                    "credentialsSecretRef": {"name": "orders-db-cdc"},
                    "preflight": {"enabled": False},
                },
            ),
            cdc_connector(
                "orders",
                namespace,
                {
                    "platformRef": {"name": "shop"},
                    "sourceRef": {"name": "orders-db"},
                    "tables": ["public.orders"],
                },
            ),
        ]
    )
    copied = wait_for(
        lambda: (
            (s := kubectl.get("secret", "shop-connect-secrets", namespace))
            and "orders-db.password" in (s.get("data") or {})
            and s
        ),
        120,
        what="credentials copied into the platform's Connect Secret",
    )
    assert base64.b64decode(copied["data"]["orders-db.password"]).decode() == password
    assert base64.b64decode(copied["data"]["orders-db.username"]).decode() == "debezium"

    obj = wait_condition(
        kubectl,
        "cdcconnector",
        "orders",
        namespace,
        "Ready",
        "False",
        "ConnectUnavailable",
        timeout=180,
    )
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert f"http://shop-connect.{namespace}.svc:8083" in message
    assert obj["status"]["connectorName"] == f"{namespace}.orders"
    assert "configHash" not in obj["status"], "claims a connector was written"
    assert "headwater.dev/cleanup" in obj["metadata"]["finalizers"]
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(8)
    again = kubectl.get("cdcconnector", "orders", namespace)
    assert again is not None and again["metadata"]["resourceVersion"] == rv, "status churns"
    source = kubectl.get("datasource", "orders-db", namespace)
    assert condition(source, "Ready")["status"] == "True"  # type: ignore[index]
    assert condition(source, "CdcReady")["reason"] == "PreflightDisabled"  # type: ignore[index]

    started = time.monotonic()
    kubectl.run("delete", "cdcconnector", "orders", "-n", namespace, "--timeout=60s")
    assert time.monotonic() - started < 60
    for kind in ("cdcconnector", "datasource", "dataplatform"):
        assert password not in str(kubectl.json("get", kind, "-n", namespace))
    events = kubectl.json("get", "events", "-n", namespace)
    assert password not in str(events)
    assert password not in operator.logs()


def test_connector_settings_for_the_wrong_source_type_are_stalled(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(
        [
            managed_platform("shop", namespace),
            secret("creds", namespace, "cdc", "pw"),
            datasource(
                "maria",
                namespace,
                {
                    "type": "mariadb",
                    "host": "maria.example",
                    "database": "shop",
                    "credentialsSecretRef": {"name": "creds"},
                    "preflight": {"enabled": False},
                },
            ),
            cdc_connector(
                "wrong",
                namespace,
                {
                    "platformRef": {"name": "shop"},
                    "sourceRef": {"name": "maria"},
                    "tables": ["shop.orders"],
                    "postgres": {"slotName": "wrong_slot"},
                },
            ),
        ]
    )
    obj = wait_condition(
        kubectl, "cdcconnector", "wrong", namespace, "Stalled", "True", "InvalidSpec"
    )
    assert "postgres: settings need a postgres DataSource" in condition(obj, "Ready")["message"]  # type: ignore[index]


def test_connector_waits_for_its_source_and_picks_it_up(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(
        [
            managed_platform("shop", namespace),
            cdc_connector(
                "orders",
                namespace,
                {
                    "platformRef": {"name": "shop"},
                    "sourceRef": {"name": "later"},
                    "tables": ["public.orders"],
                },
            ),
        ]
    )
    obj = wait_condition(
        kubectl, "cdcconnector", "orders", namespace, "Ready", "False", "MissingReference"
    )
    assert "DataSource 'later' not found" in condition(obj, "Ready")["message"]  # type: ignore[index]
    kubectl.apply(
        datasource(
            "later",
            namespace,
            {
                "type": "postgres",
                "host": "db.example",
                "database": "shop",
                "credentialsSecretRef": {"name": "later-creds"},
            },
        )
    )
    # The new DataSource alone re-runs the connector (dependency tracking): next gap is the Secret.
    obj = wait_condition(
        kubectl, "cdcconnector", "orders", namespace, "Ready", "False", "SecretNotFound", timeout=60
    )
    assert "later-creds" in condition(obj, "Ready")["message"]  # type: ignore[index]
