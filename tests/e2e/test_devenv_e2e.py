"""The local control plane itself: its lifecycle and what the e2e suite relies on.

The lifecycle test starts a *second* cluster in a throw-away state directory on its own
port block, so it proves ``up``/``down`` from nothing without touching the cluster the
rest of the session uses: a cold ``up`` reaches Ready nodes, a second ``up`` is a no-op
that keeps every process, and ``down`` leaves no process behind.

The self-checks run against the session's cluster (whatever KUBECONFIG points to): the
behaviours of a real cluster the other tests depend on — Ready nodes, Deployments and
StatefulSets with volumes becoming Ready on simulated nodes, Jobs completing, garbage
collection, ServiceAccount tokens, impersonation and metrics.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headwater.devenv import binaries, cluster, procs, selftest_cluster
from headwater.devenv.config import ClusterConfig, Ports
from hwtest import require

pytestmark = pytest.mark.e2e


def _free(port: int) -> bool:
    """Nothing listens there and nothing holds it as a local port (the 5xxxx block lies in
    Linux's ephemeral range, so a client connection can own it without listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _spare_ports() -> Ports:
    """A port block next to the default one that nothing listens on."""
    for offset in (1000, 2000, 3000, 4000, 5000, 6000):
        ports = Ports(
            etcd=52379 - offset,
            etcd_peer=52380 - offset,
            apiserver=56443 - offset,
            controller_manager=56257 - offset,
            scheduler=56259 - offset,
            kwok=56260 - offset,
        )
        if all(_free(p) for p in ports.as_dict().values()):
            return ports
    raise AssertionError("no free port block for a second local cluster")


@pytest.fixture
def spare_cluster(tmp_path: Path) -> Iterator[ClusterConfig]:
    try:
        binaries.locate(build=False)
    except binaries.BinariesNotFoundError as err:
        require(False, f"the local control-plane binaries (hack/build-k8s.sh all: {err})")
    cfg = ClusterConfig(state_dir=tmp_path / "cluster", ports=_spare_ports())
    try:
        yield cfg
    finally:
        cluster.down(purge=True, config=cfg)


def _pids(cfg: ClusterConfig) -> dict[str, int]:
    """Live pid of each component, from the pid files ``up`` writes."""
    found = {}
    for name in cluster.COMPONENT_NAMES:
        rec = procs.ProcessRecord.load(cfg.run_dir / f"{name}.pid")
        if rec is not None and rec.alive():
            found[name] = rec.pid
    return found


def _ours(cfg: ClusterConfig) -> list[procs.ProcessRecord]:
    """Every process whose command line points into this cluster's state dir."""
    return procs.find_processes(cluster._EXE_NAMES, cluster._marker(cfg))


def test_up_is_idempotent_and_down_leaves_nothing(spare_cluster: ClusterConfig) -> None:
    cfg = spare_cluster
    assert not _ours(cfg), "a process of the throw-away cluster existed before up"

    kubeconfig = cluster.up(nodes=2, config=cfg)
    assert kubeconfig == cfg.kubeconfig and kubeconfig.is_file()
    first = cluster.status(cfg)
    assert first.answering, first.render()
    assert (first.nodes_ready, first.nodes_total) == (2, 2), first.render()
    pids = _pids(cfg)
    assert set(pids) == set(cluster.COMPONENT_NAMES), f"components without a live pid: {pids}"
    # It is a cluster a client can use, not just processes that answer /readyz.
    selftest_cluster.check_nodes_ready(str(kubeconfig), minimum=2)

    # A second up finds everything healthy and changes nothing.
    assert cluster.up(nodes=2, config=cfg) == kubeconfig
    assert _pids(cfg) == pids, "a second up restarted components"
    assert cluster.status(cfg).answering

    stopped = cluster.down(config=cfg)
    assert len(stopped) == len(cluster.COMPONENT_NAMES), stopped
    assert not _ours(cfg), f"processes left after down: {[r.pid for r in _ours(cfg)]}"
    assert not any(_listening(p) for p in cfg.ports.as_dict().values()), "a port still listens"
    after = cluster.status(cfg)
    assert not after.answering and all(row.pid is None for row in after.components)
    # down on a stopped cluster is a no-op, not an error.
    assert cluster.down(config=cfg) == []
    # etcd's data stays: the next up is a warm start of the same cluster.
    assert any(cfg.etcd_data_dir.iterdir())


CHECKS: list[Callable[[str], None]] = [
    c for c in selftest_cluster.ALL_CHECKS if c is not selftest_cluster.check_cronjob_runs
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_cluster_behaves_like_a_cluster(kubeconfig: str, check: Callable[[str], None]) -> None:
    # CronJobs are left out: the StreamJob suite proves a scheduled run completes.
    check(kubeconfig)
