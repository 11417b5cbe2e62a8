"""Shared fixtures: the cluster (any KUBECONFIG, or the local control plane), CRDs, the
operator as a real subprocess, throw-away namespaces, and the real data services."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hwtest import IN_CI, ROOT, require
from hwtest import services as svc
from hwtest.kubectl import Kubectl, wait_for
from hwtest.operator import OperatorProcess

# Every namespace this session creates starts with this prefix and the operator watches only
# `<prefix>-*`, so several test sessions (or a developer's own operator) can share a cluster.
SESSION_PREFIX = os.environ.get("HEADWATER_TEST_PREFIX") or f"hw{secrets.token_hex(2)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
        if f"{os.sep}dataplane{os.sep}" in path:
            item.add_marker(pytest.mark.dataplane)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """KUBECONFIG when given (kind, a real cluster), else the local control plane."""
    given = os.environ.get("KUBECONFIG")
    if given:
        yield given
        return
    try:
        from headwater.devenv import cluster
    except ImportError as err:  # pragma: no cover - devenv is part of the package
        require(False, f"headwater.devenv ({err})")
        raise
    was_running = cluster.status().answering
    try:
        path = cluster.up()
    except Exception as err:
        require(False, f"the local control plane ({err})")
        raise
    yield str(path)
    # Stop only what this session started (a developer's running cluster stays up).
    if not was_running and not os.environ.get("HEADWATER_KEEP_CLUSTER"):
        cluster.down()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    return Kubectl(kubeconfig)


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    """The generated CRDs, installed server-side (what users do), and established."""
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))

    def established() -> bool:
        items = kubectl.json("get", "crd", "-l", "app.kubernetes.io/part-of=headwater")["items"]
        return len(items) == 5 and all(
            any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (i.get("status") or {}).get("conditions") or []
            )
            for i in items
        )

    wait_for(established, 60, what="CRDs established")


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """`headwater run` against the cluster, for the whole session."""
    op = OperatorProcess(
        kubeconfig, tmp_path_factory.mktemp("operator"), namespaces=[f"{SESSION_PREFIX}-*"]
    )
    op.start()
    yield op
    op.stop()
    print(f"operator logs: {op.log_dir}")


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    digest = hashlib.sha1(f"{request.node.nodeid}{time.time_ns()}".encode()).hexdigest()[:8]
    base = request.node.name.lower().removeprefix("test_").replace("_", "-")
    name = f"{SESSION_PREFIX}-{base[:45]}-{digest}"
    name = "".join(c for c in name if c.isalnum() or c == "-")[:63].strip("-")
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def service() -> Callable[[str], dict[str, str]]:
    """`service("postgres")` starts (cached install) a real data service, returns its env."""
    started: dict[str, dict[str, str]] = {}

    def get(name: str) -> dict[str, str]:
        if name not in started:
            try:
                started[name] = svc.start(name)
            except svc.ServiceUnavailable as err:
                require(False, f"data service {name} ({err})")
                raise
        return started[name]

    return get


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("HEADWATER_ARTIFACTS", ROOT / ".pytest_cache" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["IN_CI"]
