"""LakeZone test helpers: the real MinIO, a dedicated operator, throw-away namespaces, and
readers of what the object store really holds (through the S3 and admin APIs, never through
the code under test).

Import the fixtures into a conftest or test module with `from hwtest.lake import *`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from minio import Minio, MinioAdmin
from minio.credentials.providers import StaticProvider
from minio.deleteobjects import DeleteObject
from minio.error import MinioAdminException, S3Error

from . import ROOT
from .kubectl import Kubectl, condition, wait_for
from .operator import OperatorProcess, free_port

API = "headwater.dev/v1alpha1"
# Namespaces of the dedicated LakeZone operator: a prefix no other session's glob matches
# (session prefixes are `hw` + hex digits, `l` is not one).
LAKE_PREFIX = os.environ.get("HEADWATER_LAKE_TEST_PREFIX") or f"hwlz{secrets.token_hex(2)}"


@dataclass
class MinioServer:
    """A running MinIO and its root credentials."""

    host: str
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    run_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Minio:
        return Minio(
            f"{self.host}:{self.port}",
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
        )

    def admin(self) -> MinioAdmin:
        return MinioAdmin(
            endpoint=f"{self.host}:{self.port}",
            credentials=StaticProvider(self.access_key, self.secret_key),
            secure=False,
        )

    # --- reading back what the store holds ---------------------------------------------------

    def lifecycle_xml(self, bucket: str) -> ET.Element | None:
        """The bucket's lifecycle configuration as the server returns it (raw XML)."""
        # The SDK parses the XML into objects; the raw document is what S3 clients see.
        resp = self.client()._execute("GET", bucket, query_params={"lifecycle": ""})
        if resp.status == 404:
            return None
        root = ET.fromstring(resp.data)
        for elem in root.iter():  # MinIO answers without the S3 namespace, AWS with it
            elem.tag = elem.tag.rpartition("}")[2]
        return root

    def lifecycle_rules(self, bucket: str) -> dict[str, dict[str, str]]:
        """Rule ID -> {"prefix", "Expiration/Days", ...} from the raw XML."""
        try:
            root = self.lifecycle_xml(bucket)
        except S3Error as err:
            if err.code == "NoSuchLifecycleConfiguration":
                return {}
            raise
        out: dict[str, dict[str, str]] = {}
        for rule in root.iter("Rule") if root is not None else []:
            rid = _text(rule, "ID")
            fields = {"Status": _text(rule, "Status"), "Prefix": _text(rule, "Filter/Prefix")}
            for path in (
                "Expiration/Days",
                "NoncurrentVersionExpiration/NoncurrentDays",
                "AbortIncompleteMultipartUpload/DaysAfterInitiation",
            ):
                value = _text(rule, path)
                if value:
                    fields[path] = value
            out[rid] = fields
        return out

    def bucket_policy(self, bucket: str) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads(self.client().get_bucket_policy(bucket))
            return doc
        except S3Error as err:
            if err.code == "NoSuchBucketPolicy":
                return {"Statement": []}
            raise

    def policies(self, prefix: str) -> dict[str, Any]:
        docs: dict[str, Any] = json.loads(self.admin().policy_list() or "{}")
        return {k: v for k, v in docs.items() if k.startswith(prefix)}

    def user(self, access_key: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self.admin().user_info(access_key))
            return doc
        except MinioAdminException:
            return None

    # --- clean-up -----------------------------------------------------------------------------

    def remove_bucket(self, bucket: str) -> None:
        """Test clean-up: everything, including GOVERNANCE-locked versions (root may bypass
        governance; tests never use COMPLIANCE, which nobody can remove)."""
        c = self.client()
        with contextlib.suppress(S3Error):
            if not c.bucket_exists(bucket):
                return
            versions = [
                DeleteObject(o.object_name or "", o.version_id)
                for o in c.list_objects(bucket, recursive=True, include_version=True)
            ]
            for i in range(0, len(versions), 1000):
                list(c.remove_objects(bucket, versions[i : i + 1000], bypass_governance_mode=True))
            c.remove_bucket(bucket)

    def remove_access(self, policy_prefix: str) -> None:
        """Test clean-up: users and policies a namespace's zones may have left."""
        admin = self.admin()
        for name in self.policies(policy_prefix):
            entities = json.loads(admin.get_policy_entities(users=[], groups=[], policies=[name]))
            for mapping in entities.get("policyMappings") or []:
                for user in mapping.get("users") or []:
                    with contextlib.suppress(MinioAdminException):
                        admin.user_remove(user)
            with contextlib.suppress(MinioAdminException):
                admin.policy_remove(name)


def _text(elem: ET.Element, path: str) -> str:
    found = elem.find(path)
    return (found.text or "") if found is not None else ""


def minio_from_env(env: dict[str, str]) -> MinioServer:
    return MinioServer(
        host=env["HEADWATER_MINIO_HOST"],
        port=int(env["HEADWATER_MINIO_PORT"]),
        access_key=env["HEADWATER_MINIO_ACCESS_KEY"],
        secret_key=env["HEADWATER_MINIO_SECRET_KEY"],
        region=env.get("HEADWATER_MINIO_REGION", "us-east-1"),
    )


def unique_bucket(stem: str = "lz") -> str:
    return f"{stem}-{secrets.token_hex(4)}"


def secret_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    obj = kubectl.get("secret", name, namespace)
    assert obj is not None, f"Secret {name} not found"
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


# --- a dedicated MinIO (for outage tests: the shared one is never stopped) --------------------


class DedicatedMinio:
    """`hack/services.sh minio` with its own run dir and ports; only this one is stopped."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.env = {
            **os.environ,
            "HEADWATER_RUN": str(run_dir),
            "HEADWATER_MINIO_PORT": str(free_port()),
            "HEADWATER_MINIO_CONSOLE_PORT": str(free_port()),
        }

    def _run(self, action: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "hack" / "services.sh"), "minio", action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> MinioServer:
        proc = self._run("start")
        if proc.returncode != 0:
            raise AssertionError(f"dedicated minio start failed: {proc.stderr[-2000:]}")
        env = {}
        for line in self._run("env").stdout.splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        server = minio_from_env(env)
        server.run_dir = self.run_dir
        return server

    def stop(self) -> None:
        self._run("stop", timeout=120)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_minio(service: Callable[[str], dict[str, str]]) -> MinioServer:
    """The shared MinIO from hack/services.sh (started if needed, never stopped here)."""
    return minio_from_env(service("minio"))


@pytest.fixture
def buckets(shared_minio: MinioServer) -> Iterator[list[str]]:
    """Bucket names a test uses; whatever is left of them is removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        shared_minio.remove_bucket(name)


@pytest.fixture
def dedicated_minio(
    service: Callable[[str], dict[str, str]], tmp_path: Path
) -> Iterator[DedicatedMinio]:
    service("minio")  # the binary is built (cached) by the shared install
    server = DedicatedMinio(tmp_path / "run")
    yield server
    server.stop()


@dataclass
class LakeEnv:
    """A dedicated operator for LakeZone tests and helpers to drive it."""

    kubectl: Kubectl
    operator: OperatorProcess
    minio: MinioServer
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, stem: str) -> str:
        name = f"{LAKE_PREFIX}-{stem[:30]}-{secrets.token_hex(3)}".strip("-")
        self.kubectl.run("create", "namespace", name)
        self.namespaces.append(name)
        return name

    def admin_secret(self, namespace: str, server: MinioServer, name: str = "s3-admin") -> str:
        self.kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": {"accessKey": server.access_key, "secretKey": server.secret_key},
            }
        )
        return name

    def external_platform(
        self,
        namespace: str,
        server: MinioServer,
        name: str = "lake",
        kind: str = "minio",
    ) -> dict[str, Any]:
        """A DataPlatform whose only component is the real MinIO as an external store."""
        secret = self.admin_secret(namespace, server)
        body = {
            "apiVersion": API,
            "kind": "DataPlatform",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                **{
                    c: {"mode": "disabled"}
                    for c in ("kafka", "connect", "flink", "spark", "monitoring")
                },
                "objectStore": {
                    "mode": "external",
                    "external": {
                        "endpoint": server.url,
                        "kind": kind,
                        "credentialsSecretRef": {"name": secret},
                    },
                },
            },
        }
        self.kubectl.apply(body)
        return body

    def zone(self, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("platformRef", {"name": "lake"})
        body = {
            "apiVersion": API,
            "kind": "LakeZone",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        self.kubectl.apply(body)
        return body

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kubectl.get("lakezone", name, namespace)

    def wait_ready(self, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.get(namespace, name)
            cond = condition(obj, "Ready")
            if (
                obj
                and cond
                and cond["status"] == "True"
                and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            ):
                return obj
            return None

        try:
            return wait_for(ready, timeout, what=f"LakeZone {name} Ready")
        except AssertionError:
            raise AssertionError(
                f"LakeZone {name} not Ready: {json.dumps((self.get(namespace, name) or {}).get('status'))}"
                f"\noperator log tail:\n{self.operator.tail(40)}"
            ) from None

    def wait_reason(
        self, namespace: str, name: str, reason: str, timeout: float = 90, type_: str = "Ready"
    ) -> dict[str, Any]:
        def match() -> dict[str, Any] | None:
            obj = self.get(namespace, name)
            cond = condition(obj, type_)
            return obj if obj and cond and cond["reason"] == reason else None

        try:
            return wait_for(match, timeout, what=f"LakeZone {name} {type_} reason {reason}")
        except AssertionError:
            raise AssertionError(
                f"LakeZone {name}: no {reason}: {json.dumps((self.get(namespace, name) or {}).get('status'))}"
                f"\noperator log tail:\n{self.operator.tail(40)}"
            ) from None

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        return items

    def delete_zone(self, namespace: str, name: str, timeout: float = 90) -> None:
        self.kubectl.run("delete", "lakezone", name, "-n", namespace, "--wait=false")
        wait_for(lambda: self.get(namespace, name) is None, timeout, what=f"LakeZone {name} gone")


def _has_status(env: LakeEnv, namespace: str) -> bool:
    return condition(env.get(namespace, "probe"), "Ready") is not None


def _wait_watching_new_namespaces(env: LakeEnv, attempts: int = 5) -> None:
    """/readyz comes before Kopf watches namespaces, and Kopf ignores a namespace created
    between its initial namespace listing and the start of its namespace watch (it only
    notices it when it changes). A zone in a fresh namespace getting a status proves the
    operator sees new namespaces; a missed probe namespace is replaced by another."""
    for _ in range(attempts):
        ns = env.namespace("probe")
        env.zone(ns, "probe", tier="bronze", bucket="probe-bucket", platformRef={"name": "none"})
        try:
            wait_for(partial(_has_status, env, ns), 15, what="probe zone status")
            return
        except AssertionError:
            continue
    raise AssertionError(
        f"the LakeZone operator never watched a new namespace:\n{env.operator.tail()}"
    )


def _sweep(env: LakeEnv, namespaces: list[str], wait: float = 60) -> None:
    """Delete namespaces while the operator still runs (it finalizes the zones), then
    remove MinIO access their zones may have left."""
    for ns in namespaces:
        env.kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
    deadline = time.monotonic() + wait
    left = list(namespaces)
    while left and time.monotonic() < deadline:
        left = [ns for ns in left if env.kubectl.get("namespace", ns) is not None]
        if left:
            time.sleep(1)
    for ns in namespaces:
        with contextlib.suppress(Exception):
            env.minio.remove_access(f"headwater:{ns}:")


@pytest.fixture(scope="module")
def lake_operator(
    kubeconfig: str,
    operator_kubeconfig: str,
    crds: None,
    shared_minio: MinioServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LakeEnv]:
    """A dedicated operator watching `<LAKE_PREFIX>-*`, resyncing LakeZones every few
    seconds (drift is repaired on the resync)."""
    op = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("lake-operator"),
        env={"HEADWATER_LAKEZONE_RESYNC_SECONDS": "4"},
        namespaces=[f"{LAKE_PREFIX}-*"],
    )
    op.start()
    env = LakeEnv(Kubectl(kubeconfig), op, shared_minio)
    _wait_watching_new_namespaces(env)
    yield env
    _sweep(env, env.namespaces)
    op.stop()
    print(f"lake operator logs: {op.log_dir}")


@pytest.fixture
def lake(lake_operator: LakeEnv, buckets: list[str]) -> Iterator[LakeEnv]:
    """The module's LakeZone operator for one test. Afterwards the test's namespaces are
    deleted while the operator runs (it finalizes their zones) and only then are the test's
    buckets removed (`buckets` is torn down after this), so no zone re-creates one."""
    before = len(lake_operator.namespaces)
    yield lake_operator
    _sweep(lake_operator, lake_operator.namespaces[before:])


__all__ = [
    "DedicatedMinio",
    "LakeEnv",
    "MinioServer",
    "buckets",
    "dedicated_minio",
    "lake",
    "lake_operator",
    "secret_data",
    "shared_minio",
    "unique_bucket",
]
