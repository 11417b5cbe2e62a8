"""LakeZones on a *managed*-MinIO DataPlatform on the real control plane.

kwok makes the platform's MinIO pods Ready but runs nothing in them, so the operator (outside
the cluster) reaches the in-cluster endpoint `<platform>-minio.<ns>.svc:9000` through
HEADWATER_ENDPOINT_OVERRIDES, which points it at the local MinIO from hack/services.sh. The
platform's root Secret is pre-created with that MinIO's root keys (the platform reconciler
never rewrites an existing one). Everything users see keeps the in-cluster address.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from headwater.render.registry import render_offline
from hwtest.kubectl import Kubectl, condition, is_ready, wait_for
from hwtest.lake import LAKE_PREFIX, MinioServer, secret_data, shared_minio, unique_bucket  # noqa: F401
from hwtest.operator import OperatorProcess

API = "headwater.dev/v1alpha1"
PLATFORM = "shop"


@dataclass
class ManagedLake:
    kubectl: Kubectl
    namespace: str
    operator: OperatorProcess
    minio: MinioServer
    buckets: list[str]

    @property
    def endpoint(self) -> str:
        return f"http://{PLATFORM}-minio.{self.namespace}.svc:9000"

    def zone(self, name: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("platformRef", {"name": PLATFORM})
        self.buckets.append(spec["bucket"])
        body = {
            "apiVersion": API,
            "kind": "LakeZone",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        self.kubectl.apply(body)
        return body

    def get(self, name: str) -> dict[str, Any] | None:
        return self.kubectl.get("lakezone", name, self.namespace)

    def wait_ready(self, name: str, timeout: float = 120) -> dict[str, Any]:
        try:
            return wait_for(
                lambda: (z := self.get(name)) and is_ready(z) and z,
                timeout,
                what=f"LakeZone {name} Ready",
            )
        except AssertionError:
            raise AssertionError(
                f"{name}: {json.dumps((self.get(name) or {}).get('status'))}\n"
                f"{self.operator.tail(40)}"
            ) from None


@pytest.fixture(scope="module")
def managed(
    kubeconfig: str,
    operator_kubeconfig: str,
    crds: None,
    shared_minio: MinioServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ManagedLake]:
    minio = shared_minio
    kubectl = Kubectl(kubeconfig)
    ns = f"{LAKE_PREFIX}e-{secrets.token_hex(3)}"
    kubectl.run("create", "namespace", ns)
    # The root Secret the managed MinIO would use, holding the local MinIO's root keys.
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{PLATFORM}-minio-root", "namespace": ns},
            "stringData": {"accessKey": minio.access_key, "secretKey": minio.secret_key},
        }
    )
    op = OperatorProcess(
        operator_kubeconfig,
        Path(tmp_path_factory.mktemp("lake-e2e-operator")),
        env={
            "HEADWATER_ENDPOINT_OVERRIDES": f"{PLATFORM}-minio.{ns}.svc:9000="
            f"{minio.host}:{minio.port}",
            "HEADWATER_LAKEZONE_RESYNC_SECONDS": "5",
        },
        namespaces=[ns],
    )
    op.start()
    env = ManagedLake(kubectl, ns, op, minio, [])
    yield env
    for zone in kubectl.items("lakezones", ns):
        kubectl.run("delete", "lakezone", zone["metadata"]["name"], "-n", ns, "--timeout=60s")
    kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    op.stop()
    for bucket in env.buckets:
        minio.remove_bucket(bucket)
    minio.remove_access(f"headwater:{ns}:")
    print(f"operator logs: {op.log_dir}")
    op.assert_not_denied()


def test_managed_platform_and_zones_reach_ready(managed: ManagedLake) -> None:
    kubectl, ns = managed.kubectl, managed.namespace
    platform = {
        "apiVersion": API,
        "kind": "DataPlatform",
        "metadata": {"name": PLATFORM, "namespace": ns},
        "spec": {
            **{
                c: {"mode": "disabled"}
                for c in ("kafka", "connect", "flink", "spark", "monitoring")
            },
            "objectStore": {"mode": "managed"},
        },
    }
    kubectl.apply(platform)
    p = wait_for(
        lambda: (o := kubectl.get("dataplatform", PLATFORM, ns)) and is_ready(o) and o,
        120,
        what="managed-MinIO platform Ready (kwok pods)",
    )
    assert p["status"]["endpoints"]["s3Endpoint"] == managed.endpoint
    root = secret_data(kubectl, ns, f"{PLATFORM}-minio-root")
    assert root["accessKey"] == managed.minio.access_key, "the platform rewrote the root Secret"

    bronze, silver, gold = unique_bucket("bronze"), unique_bucket("silver"), unique_bucket("gold")
    zones = [
        managed.zone(
            "bronze",
            tier="bronze",
            bucket=bronze,
            format="json",
            access={"writers": [{"name": "flink-ingest"}], "readers": [{"name": "spark-etl"}]},
        ),
        managed.zone("silver", tier="silver", bucket=silver, retention={"expirationDays": 730}),
        managed.zone(
            "gold",
            tier="gold",
            bucket=gold,
            objectLock={"enabled": True, "days": 1},
            access={"readers": [{"name": "bi-dashboards"}]},
        ),
    ]
    for zone in zones:
        obj = managed.wait_ready(zone["metadata"]["name"])
        assert obj["status"]["endpoint"] == managed.endpoint  # never the override
        assert obj["status"]["bucketExists"] is True
        # The zone's children are exactly what `headwater render` shows.
        live = {
            (o["kind"], o["metadata"]["name"])
            for o in kubectl.items(
                "configmaps,secrets",
                ns,
                f"headwater.dev/owner-kind=lakezone,headwater.dev/owner-name={zone['metadata']['name']}",
            )
        }
        zone_doc = {**zone, "metadata": {**zone["metadata"], "uid": obj["metadata"]["uid"]}}
        assert live == {(o["kind"], o["metadata"]["name"]) for o in render_offline(zone_doc)}
    assert managed.get("gold")["status"]["objectLock"] == "GOVERNANCE 1d"  # type: ignore[index]
    assert managed.get("bronze")["status"]["policy"] == "minio-users"  # type: ignore[index]

    # The real MinIO behind the override holds the buckets; the Secrets carry the in-cluster
    # endpoint and keys that work against it.
    c = managed.minio.client()
    assert all(c.bucket_exists(b) for b in (bronze, silver, gold))
    keys = secret_data(kubectl, ns, "bronze-flink-ingest-s3")
    assert keys["endpoint"] == managed.endpoint
    writer = managed.minio.client(keys["accessKey"], keys["secretKey"])
    writer.put_object(bronze, "shop/orders/o.json", io.BytesIO(b"{}"), 2)
    assert c.stat_object(bronze, "shop/orders/o.json").size == 2

    table = kubectl.run("get", "lakezones", "-n", ns).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "READY", "REASON"]
    assert {line.split()[0]: line.split()[1] for line in table[1:]} == {
        "bronze": "True",
        "silver": "True",
        "gold": "True",
    }


def test_bucket_prefix_and_object_lock_are_immutable(managed: ManagedLake) -> None:
    """The CRD's transition rules refuse what a bucket cannot become (at apply time)."""
    kubectl, ns = managed.kubectl, managed.namespace
    body = managed.zone("fixed", tier="silver", bucket=unique_bucket("fixed"), prefix="a/")
    for patch, message in (
        ({"bucket": unique_bucket("other")}, "bucket is immutable"),
        ({"prefix": "b/"}, "prefix is immutable"),
        ({"objectLock": {"enabled": True}}, "objectLock.enabled is immutable"),
    ):
        proc = kubectl.run(
            "patch",
            "lakezone",
            "fixed",
            "-n",
            ns,
            "--type=merge",
            "-p",
            json.dumps({"spec": patch}),
            check=False,
        )
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    # Everything else may change.
    kubectl.run(
        "patch",
        "lakezone",
        "fixed",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"retention": {"expirationDays": 30}, "format": "avro"}}),
    )
    obj = managed.wait_ready("fixed")
    assert obj["metadata"]["generation"] == 2 and obj["status"]["format"] == "avro"
    assert obj["spec"]["bucket"] == body["spec"]["bucket"]


def test_zone_on_a_platform_without_object_store_says_so(managed: ManagedLake) -> None:
    kubectl, ns = managed.kubectl, managed.namespace
    kubectl.apply(
        {
            "apiVersion": API,
            "kind": "DataPlatform",
            "metadata": {"name": "nostore", "namespace": ns},
            "spec": {
                c: {"mode": "disabled"}
                for c in ("kafka", "connect", "flink", "spark", "monitoring", "objectStore")
            },
        }
    )
    managed.zone("lost", platformRef={"name": "nostore"}, tier="bronze", bucket="never-made-x1")
    obj = wait_for(
        lambda: (
            (z := managed.get("lost"))
            and (c := condition(z, "Ready"))
            and c["reason"] == "ReferenceNotReady"
            and z
        ),
        60,
        what="ReferenceNotReady",
    )
    assert "objectStore.mode: disabled" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert obj["status"]["pathTemplate"].startswith("s3://never-made-x1/")
    assert not managed.minio.client().bucket_exists("never-made-x1")
    # It never reached a store, so it holds no finalizer: deleting it (or its namespace)
    # needs no operator.
    assert not obj["metadata"].get("finalizers")
