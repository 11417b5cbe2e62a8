"""The five processes of the dev cluster and the exact flags they run with.

We manage the processes ourselves rather than through ``kwokctl create cluster
--runtime binary``: we need flags kwokctl does not expose as one switch (our own
scheduler/kwok configs, service-account keys with our own issuer, per-component
identities, fixed loopback ports, no leader election), processes that outlive the
caller with pid files we can verify, and a guarantee that nothing is downloaded.
See ``hack/README-cluster.md`` for the reasoning behind each flag.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from headwater.devenv.binaries import Binaries
from headwater.devenv.config import (
    POD_CIDR,
    SERVICE_ACCOUNT_ISSUER,
    SERVICE_CIDR,
    ClusterConfig,
)
from headwater.devenv.kubeapi import TlsClient
from headwater.devenv.pki import Pki
from headwater.devenv.stages import NODE_ANNOTATION, NODE_ANNOTATION_VALUE

# Fallback when the host has no default route (kube-apiserver then refuses to pick an
# advertise address on its own). Only written into the `kubernetes` Endpoints; no
# client in this cluster connects to it. TEST-NET-1, so it never routes anywhere.
FALLBACK_ADVERTISE_ADDRESS = "192.0.2.10"


@dataclass(frozen=True)
class Component:
    """One process: how to start it, where it logs, and how to tell it is healthy."""

    name: str
    argv: list[str]
    ports: list[int]
    health: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    # Files read once at start-up; if their content changes, `up` restarts the process.
    inputs: tuple[Path, ...] = ()

    def digest(self) -> str:
        """Short hash of :attr:`inputs`, stored in the pid file at start."""
        h = hashlib.sha256()
        for path in self.inputs:
            h.update(str(path).encode() + b"\0")
            h.update(path.read_bytes() if path.is_file() else b"<missing>")
        return h.hexdigest()[:16]

    def pid_file(self, cfg: ClusterConfig) -> Path:
        """``run/<name>.pid`` (JSON, see :class:`headwater.devenv.procs.ProcessRecord`)."""
        return cfg.run_dir / f"{self.name}.pid"

    def log_file(self, cfg: ClusterConfig) -> Path:
        """``logs/<name>.log``, appended to across restarts."""
        return cfg.log_dir / f"{self.name}.log"


def advertise_address() -> str:
    """The host's primary IPv4 (what kube-apiserver would pick), or a fallback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            # connect() on UDP sends nothing; it only asks the kernel for a route.
            sock.connect(("192.0.2.1", 9))
            address: str = sock.getsockname()[0]
        except OSError:
            return FALLBACK_ADVERTISE_ADDRESS
    return address if not address.startswith("127.") else FALLBACK_ADVERTISE_ADDRESS


# Start order: each component depends on the ones before it.
COMPONENT_NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)


def build_components(cfg: ClusterConfig, bins: Binaries, pki: Pki) -> list[Component]:
    """All components in start order."""
    probes = health_probes(cfg, pki)
    return [
        _etcd(cfg, bins, probes["etcd"]),
        _apiserver(cfg, bins, pki, probes["kube-apiserver"]),
        _controller_manager(cfg, bins, pki, probes["kube-controller-manager"]),
        _scheduler(cfg, bins, probes["kube-scheduler"]),
        _kwok(cfg, bins, probes["kwok"]),
    ]


def health_probes(cfg: ClusterConfig, pki: Pki) -> dict[str, Callable[[], bool]]:
    """One health check per component; needs no binaries, so ``status`` can use it."""
    admin = TlsClient(cfg.ports.apiserver, pki.ca_cert, pki.cert("admin"), pki.key("admin"))
    # kcm and the scheduler serve /healthz with self-signed certificates they make
    # themselves; /healthz is on their always-allowed paths, so no client cert.
    kcm = TlsClient(cfg.ports.controller_manager)
    scheduler = TlsClient(cfg.ports.scheduler)
    return {
        "etcd": lambda: _http_health(cfg.ports.etcd, "/health", b'"health":"true"'),
        "kube-apiserver": lambda: admin.probe("/readyz"),
        "kube-controller-manager": lambda: kcm.probe("/healthz"),
        "kube-scheduler": lambda: scheduler.probe("/healthz"),
        "kwok": lambda: _http_health(cfg.ports.kwok, "/healthz", b"ok"),
    }


def _kubeconfig(cfg: ClusterConfig, name: str) -> str:
    return str(cfg.config_dir / f"{name}.kubeconfig")


def _etcd(cfg: ClusterConfig, bins: Binaries, health: Callable[[], bool]) -> Component:
    peer = f"http://127.0.0.1:{cfg.ports.etcd_peer}"
    argv = [
        str(bins.etcd),
        "--name=headwater",
        f"--data-dir={cfg.etcd_data_dir}",
        f"--listen-client-urls={cfg.etcd_url}",
        f"--advertise-client-urls={cfg.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=headwater={peer}",
        "--initial-cluster-state=new",
        # A dev cluster trades durability on power loss for speed: without fsync every
        # write is ~10x faster on slow CI disks. A killed process loses nothing (data is
        # in the page cache); a corrupt data dir is detected and purged by `up`.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]
    return Component("etcd", argv, [cfg.ports.etcd, cfg.ports.etcd_peer], health)


def _apiserver(
    cfg: ClusterConfig, bins: Binaries, pki: Pki, health: Callable[[], bool]
) -> Component:
    argv = [
        str(bins.kube_apiserver),
        f"--etcd-servers={cfg.etcd_url}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cfg.ports.apiserver}",
        f"--advertise-address={advertise_address()}",
        f"--cert-dir={cfg.state_dir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        "--authorization-mode=Node,RBAC",
        # Request-header authentication: published in the extension-apiserver-
        # authentication ConfigMap, which kcm and the scheduler read (they log an error
        # every few seconds without it), and what API aggregation needs.
        f"--requestheader-client-ca-file={pki.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.cert('front-proxy-client')}",
        f"--proxy-client-key-file={pki.key('front-proxy-client')}",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]
    inputs = (pki.cert("apiserver"), pki.key("apiserver"), pki.ca_cert, pki.sa_pub, pki.sa_key)
    return Component("kube-apiserver", argv, [cfg.ports.apiserver], health, inputs=inputs)


def _controller_manager(
    cfg: ClusterConfig, bins: Binaries, pki: Pki, health: Callable[[], bool]
) -> Component:
    kubeconfig = _kubeconfig(cfg, "controller-manager")
    argv = [
        str(bins.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cfg.ports.controller_manager}",
        f"--cert-dir={cfg.state_dir / 'controller-manager-certs'}",
        "--leader-elect=false",
        # Each controller acts as its own ServiceAccount, as on kubeadm clusters:
        # the RBAC bootstrap roles assume it, and it exercises the token controller.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cluster-cidr={POD_CIDR}",
        "--allocate-node-cidrs=false",
        "--controllers=*",
        # Defaults (5 syncs per controller, 20 requests/s per client) left 17-29 % of the
        # machine idle while 1,000 workloads waited for their pods; with these the
        # controllers keep both cores busy (bench: baseline workloads Ready 60 s -> 47 s).
        "--concurrent-deployment-syncs=10",
        "--concurrent-statefulset-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--v=1",
    ]
    inputs = (Path(kubeconfig), pki.sa_key, pki.ca_cert, pki.ca_key)
    return Component(
        "kube-controller-manager", argv, [cfg.ports.controller_manager], health, inputs=inputs
    )


def _scheduler(cfg: ClusterConfig, bins: Binaries, health: Callable[[], bool]) -> Component:
    kubeconfig = _kubeconfig(cfg, "scheduler")
    argv = [
        str(bins.kube_scheduler),
        f"--config={cfg.config_dir / 'scheduler.yaml'}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cfg.ports.scheduler}",
        f"--cert-dir={cfg.state_dir / 'scheduler-certs'}",
        "--v=1",
    ]
    inputs = (Path(kubeconfig), cfg.config_dir / "scheduler.yaml")
    return Component("kube-scheduler", argv, [cfg.ports.scheduler], health, inputs=inputs)


def _kwok(cfg: ClusterConfig, bins: Binaries, health: Callable[[], bool]) -> Component:
    workdir = cfg.state_dir / "kwok"
    argv = [
        str(bins.kwok),
        f"--kubeconfig={_kubeconfig(cfg, 'kwok')}",
        f"--config={workdir / 'kwok.yaml'}",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
        f"--server-address=127.0.0.1:{cfg.ports.kwok}",
        f"--cidr={POD_CIDR}",
        # Only a fallback: each node's own IP comes from its annotation (see stages).
        "--node-ip=10.240.255.254",
        "--node-lease-duration-seconds=40",
    ]
    return Component(
        "kwok",
        argv,
        [cfg.ports.kwok],
        health,
        # kwok always reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok) in addition to
        # --config; pointing it into the state dir keeps a user's file out of our cluster.
        env={"KWOK_WORKDIR": str(workdir)},
        inputs=(Path(_kubeconfig(cfg, "kwok")), workdir / "kwok.yaml"),
    )


def _http_health(port: int, path: str, expect: bytes) -> bool:
    """Plain-HTTP probe (etcd and kwok listen without TLS on loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and expect in resp.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
