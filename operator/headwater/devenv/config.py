"""Where the dev cluster lives and which ports it uses.

Everything is resolved from the environment once, into a frozen :class:`ClusterConfig`,
so the rest of the harness never reads ``os.environ`` and tests can build a config for
a throw-away directory and a free port block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_ENV = "HEADWATER_CLUSTER_DIR"
DEFAULT_NODE_COUNT = 3
DEFAULT_WAIT_TIMEOUT = 120.0

# The 56xxx/52xxx block is clear of the usual suspects (6443 kind/kubeadm, 16443
# microk8s, 2379/2380 etcd, 10250-10259 kubelet and friends, 8080/8443 dev servers),
# so a dev cluster here can run next to kind or a real etcd. Each one can be moved
# with its environment variable if it still clashes.
PORT_ENV_DEFAULTS: dict[str, tuple[str, int]] = {
    "etcd": ("HEADWATER_ETCD_PORT", 52379),
    "etcd_peer": ("HEADWATER_ETCD_PEER_PORT", 52380),
    "apiserver": ("HEADWATER_APISERVER_PORT", 56443),
    "controller_manager": ("HEADWATER_KCM_PORT", 56257),
    "scheduler": ("HEADWATER_SCHEDULER_PORT", 56259),
    "kwok": ("HEADWATER_KWOK_PORT", 56260),
}

# Ranges that only exist inside the simulated cluster; nothing is routed to them.
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1, one per listening socket of the control plane."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ports:
        """Read each port from its ``HEADWATER_*_PORT`` variable, else the default."""
        source = os.environ if env is None else env
        values = {
            field: _parse_port(var, source.get(var), default)
            for field, (var, default) in PORT_ENV_DEFAULTS.items()
        }
        return cls(**values)

    def env_var_for(self, port: int) -> str | None:
        """The variable that moves ``port``, for "port in use" hints."""
        for field, (var, _) in PORT_ENV_DEFAULTS.items():
            if getattr(self, field) == port:
                return var
        return None

    def as_dict(self) -> dict[str, int]:
        """Ports by component field name, for status output and the state file."""
        return {field: getattr(self, field) for field in PORT_ENV_DEFAULTS}


def _parse_port(var: str, raw: str | None, default: int) -> int:
    """Validate a port from the environment so a typo fails loudly, not at bind time."""
    if raw is None or raw.strip() == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise ValueError(f"{var}={port} must be between 1024 and 65535")
    return port


def default_state_dir() -> Path:
    """``$HEADWATER_CLUSTER_DIR`` or ``~/.cache/headwater/run/cluster``."""
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    cache = os.environ.get("HEADWATER_CACHE", "").strip()
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "headwater"
    return (base / "run" / "cluster").resolve()


@dataclass(frozen=True)
class ClusterConfig:
    """Resolved settings for one dev cluster; paths all hang off ``state_dir``."""

    state_dir: Path
    ports: Ports

    @classmethod
    def from_env(cls, state_dir: Path | None = None) -> ClusterConfig:
        """Build the config the CLI uses: env overrides, then defaults."""
        return cls(state_dir=state_dir or default_state_dir(), ports=Ports.from_env())

    @property
    def pki_dir(self) -> Path:
        """Certificates and keys (CA, serving, client, service-account signing)."""
        return self.state_dir / "pki"

    @property
    def run_dir(self) -> Path:
        """Pid files, one JSON file per component."""
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        """One append-only log per component."""
        return self.state_dir / "logs"

    @property
    def config_dir(self) -> Path:
        """Generated kubeconfigs and component configuration files."""
        return self.state_dir / "config"

    @property
    def etcd_data_dir(self) -> Path:
        """etcd's data; the only state worth keeping between ``down`` and ``up``."""
        return self.state_dir / "etcd"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig handed to users and tests."""
        return self.state_dir / "kubeconfig"

    @property
    def apiserver_url(self) -> str:
        """HTTPS endpoint of kube-apiserver."""
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        """Plain-HTTP client endpoint of etcd (loopback only, so no TLS)."""
        return f"http://127.0.0.1:{self.ports.etcd}"
