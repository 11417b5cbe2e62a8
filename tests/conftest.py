"""Shared fixtures: the cluster (any KUBECONFIG, or the local control plane), CRDs, the
operator as a real subprocess, throw-away namespaces, and the real data services."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hwtest import IN_CI, ROOT, require
from hwtest import services as svc
from hwtest.kubectl import Kubectl, wait_for
from hwtest.operator import OperatorProcess
from hwtest.session import AS_SERVICEACCOUNT, SESSION_PREFIX, ChartServiceAccount


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
def chart_serviceaccount(
    kubectl: Kubectl,
) -> Iterator[Callable[..., ChartServiceAccount]]:
    """`chart_serviceaccount(release, namespace, *helm_values)`: installed, removed at the end."""
    made: list[ChartServiceAccount] = []

    def make(release: str, namespace: str, *values: str) -> ChartServiceAccount:
        made.append(ChartServiceAccount(kubectl, release, namespace, *values))
        return made[-1].install()

    yield make
    for sa in made:
        sa.uninstall()


@pytest.fixture(scope="session")
def operator_kubeconfig(
    kubeconfig: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> str:
    """The kubeconfig of every operator the tests start: a bound token of the chart's
    ServiceAccount, with the chart's RBAC for a glob install (cluster-wide bindings, like any
    `watchNamespaces` glob; the suite's operators watch several prefixes, all covered by it).
    The admin kubeconfig only with HEADWATER_E2E_AS_SERVICEACCOUNT=0."""
    if not AS_SERVICEACCOUNT:
        return kubeconfig
    make = request.getfixturevalue("chart_serviceaccount")
    sa = make(
        f"{SESSION_PREFIX}-e2e",
        f"{SESSION_PREFIX}sys",
        "--set",
        f"watchNamespaces={{{SESSION_PREFIX}-*}}",
    )
    path = sa.write_kubeconfig(tmp_path_factory.mktemp("serviceaccount") / "kubeconfig")
    print(f"operators run as {sa.user}")
    return str(path)


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str,
    operator_kubeconfig: str,
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """`headwater run` against the cluster for the whole session, as the chart's
    ServiceAccount (see `operator_kubeconfig`)."""
    log_dir = tmp_path_factory.mktemp("operator")
    op = OperatorProcess(operator_kubeconfig, log_dir, namespaces=[f"{SESSION_PREFIX}-*"])
    op.start()
    _wait_until_watching(Kubectl(kubeconfig))
    yield op
    op.stop()
    Kubectl(kubeconfig).run(
        "delete", "namespace", f"{SESSION_PREFIX}-probe", "--wait=false", check=False
    )
    print(f"operator logs: {op.log_dir}")
    op.assert_not_denied()


def _wait_until_watching(kubectl: Kubectl) -> None:
    """/readyz means caches are synced; Kopf discovers matching namespaces a moment later.
    A CR in a fresh namespace that gets a status proves the operator sees new namespaces."""
    ns = f"{SESSION_PREFIX}-probe"
    kubectl.run("create", "namespace", ns, check=False)
    off = {"mode": "disabled"}
    kubectl.apply(
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": "DataPlatform",
            "metadata": {"name": "probe", "namespace": ns},
            "spec": {
                c: off for c in ("kafka", "connect", "flink", "spark", "objectStore", "monitoring")
            },
        }
    )
    wait_for(
        lambda: (
            (kubectl.get("dataplatform", "probe", ns) or {}).get("status", {}).get("conditions")
        ),
        90,
        what="the operator to reconcile a CR in a new namespace",
    )


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
