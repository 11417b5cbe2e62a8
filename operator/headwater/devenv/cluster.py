"""Bring the Headwater dev cluster up, down, and report on it.

``up`` is idempotent and self-healing: components already running with the same
flags are left alone, dead ones (stale pid files after a killed session) are started
again, strays without a pid file are adopted or replaced, and an etcd that dies on
its own data is moved aside and started fresh. ``down`` stops every process of this
state dir -- found through pid files *and* a ``/proc`` scan -- and verifies none is
left. All of it is usable as a library (``headwater dev ...``) or as
``python -m headwater.devenv.cluster``.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from headwater.devenv import binaries, manifests, procs
from headwater.devenv.components import COMPONENT_NAMES, Component, build_components, health_probes
from headwater.devenv.config import (
    DEFAULT_NODE_COUNT,
    DEFAULT_WAIT_TIMEOUT,
    ClusterConfig,
)
from headwater.devenv.kubeapi import ApiError, KubeApi, TlsClient
from headwater.devenv.pki import Pki, PkiError

log = logging.getLogger("headwater.devenv")

STOP_GRACE_SECONDS = 10.0
# Logs are appended across restarts and rotated (one generation) when a component
# starts with a log larger than this.
LOG_ROTATE_BYTES = 32 * 1024 * 1024
_EXE_NAMES = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}


class ClusterError(RuntimeError):
    """Anything that keeps the cluster from coming up or going down cleanly.

    The message is meant for a human: it names the component, the cause, and ends
    with the tail of the relevant log when there is one.
    """


@dataclass(frozen=True)
class ComponentStatus:
    """One row of ``status``."""

    name: str
    pid: int | None
    healthy: bool


@dataclass(frozen=True)
class ClusterStatus:
    """What ``status`` found; ``answering`` decides its exit code."""

    components: list[ComponentStatus]
    answering: bool
    nodes_ready: int
    nodes_total: int
    kubeconfig: Path

    def render(self) -> str:
        """Human-readable table."""
        lines = [f"{'COMPONENT':<26}{'PID':>8}  HEALTH"]
        for comp in self.components:
            pid = str(comp.pid) if comp.pid else "-"
            health = "ok" if comp.healthy else ("unhealthy" if comp.pid else "stopped")
            lines.append(f"{comp.name:<26}{pid:>8}  {health}")
        if self.answering:
            lines.append(f"nodes: {self.nodes_ready}/{self.nodes_total} Ready")
            lines.append(f"kubeconfig: {self.kubeconfig}")
        else:
            lines.append("apiserver: not answering")
        return "\n".join(lines)


# --------------------------------------------------------------------------- up


def up(
    nodes: int | None = None,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    config: ClusterConfig | None = None,
) -> Path:
    """Start (or repair) the cluster and return the admin kubeconfig path.

    ``nodes`` defaults to the count of the previous ``up`` (else 3); extra simulated
    nodes from an earlier, larger run are deleted. ``wait_timeout`` bounds the whole
    start-up after the binaries are located (a first build is not counted).
    """
    cfg = config or ClusterConfig.from_env()
    bins = binaries.locate(build=True)
    started = time.monotonic()
    deadline = started + wait_timeout
    with _state_lock(cfg):
        count = nodes if nodes is not None else _previous_node_count(cfg)
        if count < 1:
            raise ClusterError(f"--nodes must be at least 1, got {count}")
        pki = _prepare_files(cfg)
        components = build_components(cfg, bins, pki)
        _reconcile_strays(cfg, components)
        _start_all(cfg, components, deadline)
        _bootstrap(cfg, pki, count, deadline)
        _save_state(cfg, count)
    log.info("cluster ready in %.1fs; kubeconfig: %s", time.monotonic() - started, cfg.kubeconfig)
    return cfg.kubeconfig


def _prepare_files(cfg: ClusterConfig) -> Pki:
    """Directories, certificates, kubeconfigs and component configs (all idempotent)."""
    for directory in (cfg.state_dir, cfg.run_dir, cfg.log_dir, cfg.config_dir):
        directory.mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / "kwok").mkdir(exist_ok=True)
    pki = Pki(cfg.pki_dir)
    try:
        pki.ensure()
    except PkiError as err:
        raise ClusterError(str(err)) from err
    manifests.write_yaml(cfg.kubeconfig, manifests.kubeconfig(cfg, pki, "admin", "admin"))
    for name in ("controller-manager", "scheduler", "kwok"):
        path = cfg.config_dir / f"{name}.kubeconfig"
        manifests.write_yaml(path, manifests.kubeconfig(cfg, pki, name, name))
    scheduler_kubeconfig = cfg.config_dir / "scheduler.kubeconfig"
    manifests.write_yaml(
        cfg.config_dir / "scheduler.yaml", manifests.scheduler_config(scheduler_kubeconfig)
    )
    manifests.write_text(cfg.state_dir / "kwok" / "kwok.yaml", manifests.kwok_config())
    return pki


def _reconcile_strays(cfg: ClusterConfig, components: list[Component]) -> None:
    """Handle our processes that have no (valid) pid file, e.g. after a killed
    ``up`` or a deleted run dir: adopt one running with exactly the wanted flags,
    stop any other, so the port checks below only ever trip on foreign processes."""
    wanted = {tuple(c.argv): c for c in components}
    tracked = {rec.pid for c in components if (rec := _live_record(cfg, c)) is not None}
    strays = [
        rec for rec in procs.find_processes(_EXE_NAMES, _marker(cfg)) if rec.pid not in tracked
    ]
    for rec in strays:
        comp = wanted.get(rec.argv)
        if comp is not None and _live_record(cfg, comp) is None:
            log.info("%s: adopting running pid %d", comp.name, rec.pid)
            dataclasses.replace(rec, digest=comp.digest()).save(comp.pid_file(cfg))
        else:
            log.info("stopping stray %s (pid %d)", Path(rec.argv[0]).name, rec.pid)
            procs.terminate([rec], STOP_GRACE_SECONDS)


def _start_all(cfg: ClusterConfig, components: list[Component], deadline: float) -> None:
    """Start components in order, each healthy before the next.

    If etcd had to be started on a fresh data dir, everything after it is restarted
    too: an apiserver that saw the old data would serve stale caches.
    """
    for comp in components:
        if _live_record(cfg, comp) is None:
            _check_ports_free(cfg, comp)  # before starting anything, not halfway
    etcd, *rest = components
    if _ensure_etcd(cfg, etcd, deadline):
        _stop_for_reset(cfg, rest)
    for comp in rest:
        _ensure_running(cfg, comp, deadline)


def _ensure_etcd(cfg: ClusterConfig, comp: Component, deadline: float) -> bool:
    """Start etcd; if it dies on existing data, move the data aside and retry once.

    Returns True when etcd now runs on a fresh (empty) data dir.
    """
    had_data = cfg.etcd_data_dir.is_dir()
    try:
        _ensure_running(cfg, comp, deadline)
    except _ComponentExitedError as err:
        if not had_data:
            raise
        backup = _move_aside(cfg.etcd_data_dir)
        log.warning(
            "etcd exited on its existing data (corrupt?); moved it to %s and starting "
            "fresh. Its last log lines:\n%s",
            backup,
            err.log_tail,
        )
        _ensure_running(cfg, comp, deadline)
        return True
    return not had_data


def _stop_for_reset(cfg: ClusterConfig, components: list[Component]) -> None:
    """Stop everything that talked to the previous etcd, all at once and with a short
    grace: their state is being thrown away, and kube-apiserver's graceful shutdown
    would only hang on the etcd that vanished under it.
    """
    live = [(comp, rec) for comp in components if (rec := _live_record(cfg, comp))]
    for comp, rec in live:
        log.info("%s: restarting after etcd reset (pid %d)", comp.name, rec.pid)
    procs.terminate([rec for _, rec in live], grace=1.0, reap_wait=0)


def _move_aside(data_dir: Path) -> Path:
    """Rename a bad data dir to ``etcd.corrupt`` (keeping only the latest one)."""
    backup = data_dir.with_name(data_dir.name + ".corrupt")
    shutil.rmtree(backup, ignore_errors=True)
    data_dir.rename(backup)
    return backup


class _ComponentExitedError(ClusterError):
    """The process died while we waited for it to become healthy."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def _ensure_running(cfg: ClusterConfig, comp: Component, deadline: float) -> None:
    """Leave a healthy, identically-configured process alone; otherwise (re)start."""
    rec = _live_record(cfg, comp)
    if rec is not None and (rec.argv, rec.digest) != (tuple(comp.argv), comp.digest()):
        log.info("%s: flags or config changed, restarting (pid %d)", comp.name, rec.pid)
        procs.terminate([rec], STOP_GRACE_SECONDS, reap_wait=0)
        rec = None
    if rec is not None:
        _wait_healthy(cfg, comp, rec, deadline, log_offset=0)
        log.info("%s: already running (pid %d)", comp.name, rec.pid)
        return
    _check_ports_free(cfg, comp)
    t0 = time.monotonic()
    rec, offset = _spawn(cfg, comp)
    _wait_healthy(cfg, comp, rec, deadline, log_offset=offset)
    log.info("%s: started (pid %d) in %.1fs", comp.name, rec.pid, time.monotonic() - t0)


def _spawn(cfg: ClusterConfig, comp: Component) -> tuple[procs.ProcessRecord, int]:
    """Start ``comp`` detached; returns its record and where its output begins in the
    (shared, appended) log, so errors quote this run only."""
    log_file = comp.log_file(cfg)
    offset = log_file.stat().st_size if log_file.exists() else 0
    if offset > LOG_ROTATE_BYTES:
        log_file.replace(log_file.with_name(log_file.name + ".1"))
        offset = 0
    with log_file.open("a") as fh:
        fh.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} devenv: starting {comp.name}\n")
    rec = procs.spawn_detached(comp.argv, log_file, cwd=cfg.state_dir, env=_env(comp))
    rec = dataclasses.replace(rec, digest=comp.digest())
    rec.save(comp.pid_file(cfg))
    return rec, offset


def _env(comp: Component) -> dict[str, str]:
    """The caller's environment plus the component's own variables."""
    return {**os.environ, **comp.env}


def _live_record(cfg: ClusterConfig, comp: Component) -> procs.ProcessRecord | None:
    """The pid file's record if that exact process still runs; drop stale files."""
    path = comp.pid_file(cfg)
    rec = procs.ProcessRecord.load(path)
    if rec is not None and rec.alive():
        return rec
    path.unlink(missing_ok=True)
    return None


def _check_ports_free(cfg: ClusterConfig, comp: Component) -> None:
    """Fail fast, naming the culprit, if something else already listens on our port."""
    for port in comp.ports:
        if procs.port_in_use(port):
            env_var = cfg.ports.env_var_for(port)
            hint = f" or set {env_var} to a free port" if env_var else ""
            raise ClusterError(
                f"{comp.name} needs 127.0.0.1:{port}, but it is in use by "
                f"{procs.port_owner(port)}. Stop that process{hint}."
            )


def _wait_healthy(
    cfg: ClusterConfig,
    comp: Component,
    rec: procs.ProcessRecord,
    deadline: float,
    log_offset: int,
) -> None:
    """Poll the health check until it passes, the process dies, or time runs out."""
    log_file = comp.log_file(cfg)
    while True:
        if comp.health():
            return
        if not rec.alive():
            tail = procs.tail(log_file, start=log_offset)
            raise _ComponentExitedError(
                f"{comp.name} exited during start-up; last lines of {log_file}:\n{tail}", tail
            )
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{comp.name} (pid {rec.pid}) not healthy before the timeout; last lines "
                f"of {log_file}:\n{procs.tail(log_file, start=log_offset)}"
            )
        time.sleep(0.1)


# ---------------------------------------------------------------- bootstrap


def _admin_api(cfg: ClusterConfig, pki: Pki) -> KubeApi:
    return KubeApi(
        TlsClient(cfg.ports.apiserver, pki.ca_cert, pki.cert("admin"), pki.key("admin"), 10.0)
    )


def _bootstrap(cfg: ClusterConfig, pki: Pki, count: int, deadline: float) -> None:
    """Create the StorageClass and exactly ``count`` nodes, then wait until they are
    Ready and kube-controller-manager has created the default ServiceAccount (pods
    cannot be created in a namespace before that)."""
    api = _admin_api(cfg, pki)
    sc = manifests.storage_class()
    api.apply(f"/apis/storage.k8s.io/v1/storageclasses/{sc['metadata']['name']}", sc)
    wanted = {f"{manifests.NODE_PREFIX}{i}" for i in range(count)}
    for index in range(count):
        obj = manifests.node(index)
        api.apply(f"/api/v1/nodes/{obj['metadata']['name']}", obj)
    for item in api.list_items("/api/v1/nodes", f"{manifests.DEVENV_LABEL}=true"):
        name = item["metadata"]["name"]
        if name not in wanted:
            log.info("deleting surplus node %s", name)
            api.delete(f"/api/v1/nodes/{name}")
    _wait_for(
        lambda: _ready_nodes(api, wanted) == len(wanted),
        deadline,
        f"{count} Ready nodes",
        cfg.log_dir / "kwok.log",
    )
    _wait_for(
        lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
        deadline,
        "the default ServiceAccount",
        cfg.log_dir / "kube-controller-manager.log",
    )


def _ready_nodes(api: KubeApi, names: set[str]) -> int:
    """How many of ``names`` report condition Ready=True."""
    ready = 0
    for item in api.list_items("/api/v1/nodes", f"{manifests.DEVENV_LABEL}=true"):
        conditions = item.get("status", {}).get("conditions", [])
        if item["metadata"]["name"] in names and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        ):
            ready += 1
    return ready


def _wait_for(check: Callable[[], bool], deadline: float, what: str, log_file: Path) -> None:
    """Poll ``check`` (API errors count as "not yet") until ``deadline``."""
    while True:
        try:
            if check():
                return
        except (ApiError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ClusterError(
                f"timed out waiting for {what}; last lines of {log_file}:\n{procs.tail(log_file)}"
            )
        time.sleep(0.2)


# ------------------------------------------------------------------- down


def down(purge: bool = False, config: ClusterConfig | None = None) -> list[str]:
    """Stop every process of this cluster; with ``purge`` delete the state dir.

    Returns "name(pid)" for each process stopped. Raises :class:`ClusterError` if any
    survives (which would mean a process ignoring SIGKILL, i.e. stuck in the kernel).
    """
    cfg = config or ClusterConfig.from_env()
    if not cfg.state_dir.exists():
        # State deleted under a running cluster: the /proc scan still finds it.
        return _stop_records(_find_records(cfg))
    with _state_lock(cfg):
        stopped = _stop_records(_find_records(cfg))
        for name in COMPONENT_NAMES:
            (cfg.run_dir / f"{name}.pid").unlink(missing_ok=True)
        leftovers = procs.find_processes(_EXE_NAMES, _marker(cfg))
        if leftovers:
            pids = ", ".join(str(r.pid) for r in leftovers)
            raise ClusterError(f"processes still running after down: {pids}")
        if purge:
            shutil.rmtree(cfg.state_dir)
    return stopped


def _find_records(cfg: ClusterConfig) -> list[procs.ProcessRecord]:
    """Our processes from the pid files plus the /proc scan, without duplicates."""
    records: dict[int, procs.ProcessRecord] = {}
    for name in COMPONENT_NAMES:
        rec = procs.ProcessRecord.load(cfg.run_dir / f"{name}.pid")
        if rec is not None:
            records[rec.pid] = rec
    for rec in procs.find_processes(_EXE_NAMES, _marker(cfg)):
        records.setdefault(rec.pid, rec)
    return list(records.values())


def _stop_records(records: list[procs.ProcessRecord]) -> list[str]:
    """SIGTERM the clients of etcd together, then etcd last.

    Stopping etcd first (or together) leaves kube-apiserver's graceful shutdown hanging
    on storage until the SIGKILL deadline; this order takes ~2 s instead of ~11 s.
    """
    etcd = [r for r in records if Path(r.argv[0]).name == "etcd"]
    others = [r for r in records if Path(r.argv[0]).name != "etcd"]
    stopped = procs.terminate(others, STOP_GRACE_SECONDS, reap_wait=0)
    stopped += procs.terminate(etcd, STOP_GRACE_SECONDS, reap_wait=0)
    procs.await_reaped(stopped, timeout=3.0)
    return [f"{Path(r.argv[0]).name}({r.pid})" for r in stopped]


# ----------------------------------------------------------------- status


def status(config: ClusterConfig | None = None) -> ClusterStatus:
    """Probe every component and the API; never starts or builds anything."""
    cfg = config or ClusterConfig.from_env()
    pki = Pki(cfg.pki_dir)
    probes = health_probes(cfg, pki)
    rows = []
    for name in COMPONENT_NAMES:
        rec = procs.ProcessRecord.load(cfg.run_dir / f"{name}.pid")
        pid = rec.pid if rec is not None and rec.alive() else None
        rows.append(ComponentStatus(name, pid, pid is not None and probes[name]()))
    answering = probes["kube-apiserver"]()
    ready = total = 0
    if answering:
        try:
            api = _admin_api(cfg, pki)
            total = len(api.list_items("/api/v1/nodes"))
            ready = _ready_nodes(api, _all_node_names(api))
        except (ApiError, OSError):
            answering = False
    return ClusterStatus(rows, answering, ready, total, cfg.kubeconfig)


def _all_node_names(api: KubeApi) -> set[str]:
    return {item["metadata"]["name"] for item in api.list_items("/api/v1/nodes")}


def kubeconfig_path(config: ClusterConfig | None = None) -> Path:
    """Where ``up`` writes the admin kubeconfig (it may not exist yet)."""
    return (config or ClusterConfig.from_env()).kubeconfig


# ------------------------------------------------------------------ state


@contextmanager
def _state_lock(cfg: ClusterConfig) -> Iterator[None]:
    """Serialise ``up``/``down`` on one state dir (two terminals, parallel tests)."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.state_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _marker(cfg: ClusterConfig) -> str:
    """Substring present in every argv of this cluster's processes (and no other's)."""
    return str(cfg.state_dir) + "/"


def _state_file(cfg: ClusterConfig) -> Path:
    return cfg.state_dir / "state.json"


def _previous_node_count(cfg: ClusterConfig) -> int:
    try:
        return int(json.loads(_state_file(cfg).read_text())["nodes"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_NODE_COUNT


def _save_state(cfg: ClusterConfig, count: int) -> None:
    state = {"nodes": count, "ports": cfg.ports.as_dict(), "kubeconfig": str(cfg.kubeconfig)}
    manifests.write_text(_state_file(cfg), json.dumps(state, indent=2) + "\n", mode=0o644)


# -------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m headwater.devenv.cluster",
        description="Local Kubernetes control plane with kwok-simulated nodes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start or repair the cluster (idempotent)")
    p_up.add_argument("--nodes", type=int, default=None, help="simulated nodes (default 3)")
    p_up.add_argument(
        "--wait-timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, help="seconds (default 120)"
    )
    p_down = sub.add_parser("down", help="stop every process of the cluster")
    p_down.add_argument("--purge", action="store_true", help="also delete the state dir")
    sub.add_parser("status", help="show components; exit 0 if the API answers")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (for ``headwater dev``)."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="[devenv %(asctime)s] %(message)s",
            datefmt="%H:%M:%S",
            stream=sys.stderr,
        )
    try:
        return _run(args)
    except (ClusterError, binaries.BinariesNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "up":
        print(up(nodes=args.nodes, wait_timeout=args.wait_timeout))
        return 0
    if args.command == "down":
        t0 = time.monotonic()
        stopped = down(purge=args.purge)
        what = ", ".join(stopped) if stopped else "nothing was running"
        log.info(
            "down in %.1fs: %s%s", time.monotonic() - t0, what, "; purged" if args.purge else ""
        )
        return 0
    if args.command == "status":
        st = status()
        print(st.render())
        return 0 if st.answering else 1
    path = kubeconfig_path()
    print(path)
    return 0 if path.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
