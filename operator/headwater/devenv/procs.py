"""Detached processes, pid files and port ownership, all via ``/proc`` (Linux only).

The cluster must outlive the command that started it (``up`` returns, then tests or
the demo use the cluster), so components are double-forked through ``/bin/sh``:
they are reparented to init at once, never become zombies of a long-lived caller
(pytest), and live in their own session, away from the terminal's Ctrl-C.

A pid file stores the pid *and* the process start time, so a pid recycled by an
unrelated process after a reboot or a crash is never mistaken for ours (and never
signalled).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: enough to recognise the exact process later."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...]
    # Fingerprint of the files the process read at start (see Component.digest).
    digest: str = ""

    def alive(self) -> bool:
        """True if this very process (same pid and start time) is still running."""
        return start_ticks(self.pid) == self.start_ticks

    def save(self, path: Path) -> None:
        """Write atomically, so a crash mid-write never leaves half a pid file."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        """Read a pid file; unreadable or malformed files count as absent."""
        try:
            data = json.loads(path.read_text())
            return cls(
                int(data["pid"]),
                int(data["start_ticks"]),
                tuple(data["argv"]),
                str(data.get("digest", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or ``None`` if gone/zombie."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = raw[raw.rfind(")") + 2 :].split()
    state, ticks = fields[0], fields[19]
    return None if state in ("Z", "X") else int(ticks)


def cmdline(pid: int) -> list[str]:
    """argv of ``pid`` (empty if it is gone or we may not read it)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def spawn_detached(
    argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> ProcessRecord:
    """Start ``argv`` in the background, appending stdout+stderr to ``log_path``.

    ``sh`` starts the program as an asynchronous job, prints its pid and exits; we
    reap ``sh`` immediately, so the program is an orphan adopted by init (or the
    nearest subreaper) and keeps running after this Python process exits.
    """
    script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(log_path), *argv],
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
        check=True,
    )
    pid = int(proc.stdout.strip())
    # If it already died, record an impossible start time: alive() is then False and
    # the caller's health wait reports the log tail.
    return ProcessRecord(pid, start_ticks(pid) or -1, tuple(argv))


def terminate(
    records: Iterable[ProcessRecord], grace: float, reap_wait: float = 3.0
) -> list[ProcessRecord]:
    """SIGTERM all live ``records`` together, SIGKILL stragglers after ``grace`` s,
    then wait up to ``reap_wait`` s for init to reap them (see :func:`await_reaped`).

    Returns the records that were still alive at the start (i.e. actually stopped).
    """
    live = [r for r in records if r.alive()]
    for rec in live:
        _signal(rec, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(r.alive() for r in live):
        time.sleep(0.05)
    for rec in live:
        if rec.alive():
            _signal(rec, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(r.alive() for r in live):
        time.sleep(0.05)
    await_reaped(live, timeout=reap_wait)
    return live


def await_reaped(records: list[ProcessRecord], timeout: float) -> None:
    """Give init a moment to reap the (now dead) processes.

    They are init's children, not ours, so we cannot reap them; some inits (container
    and microVM ones) reap lazily, and until then ``pgrep`` still lists a zombie. Waiting
    here means "down returned" also means "gone from the process table".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        (_PROC / str(r.pid)).exists() and start_ticks(r.pid) is None for r in records
    ):
        time.sleep(0.05)


def _signal(rec: ProcessRecord, sig: signal.Signals) -> None:
    """Signal only if the start time still matches (guards against pid reuse)."""
    if rec.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec.pid, sig)


def find_processes(exe_names: set[str], marker: str) -> list[ProcessRecord]:
    """Live processes whose executable is one of ``exe_names`` and whose argv
    mentions ``marker`` (the state dir).

    This is the safety net behind "no leftover processes": it finds components whose
    pid file was lost (killed session, deleted state), and only ours, because every
    component is started with flags pointing into its own state dir.
    """
    found: list[ProcessRecord] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = cmdline(pid)
        if not argv or Path(argv[0]).name not in exe_names:
            continue
        if not any(marker in arg for arg in argv[1:]):
            continue
        ticks = start_ticks(pid)
        if ticks is not None:
            found.append(ProcessRecord(pid, ticks, tuple(argv)))
    return found


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listener already holds ``host:port`` (or the wildcard address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: sockets lingering in TIME_WAIT from our own last run must not
        # count as "in use"; Go's listeners set it too, so they would bind fine.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_owner(port: int) -> str:
    """Best-effort "pid N (argv...)" of whoever listens on ``port``, for error text."""
    inodes = _listening_inodes(port)
    if not inodes:
        return "unknown process (maybe another user's, or not a TCP listener we can see)"
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        if _holds_socket(entry, inodes):
            argv = " ".join(cmdline(int(entry.name)))[:200]
            return f"pid {entry.name} ({argv})"
    return "a process we cannot inspect (another user or container?)"


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state (0A) on ``port`` from /proc/net/tcp{,6}."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def _holds_socket(proc_dir: Path, inodes: set[str]) -> bool:
    """Whether any fd of the process is one of the socket ``inodes``."""
    try:
        fds = list((proc_dir / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def tail(path: Path, lines: int = 30, start: int = 0) -> str:
    """Last ``lines`` lines of a log from byte ``start`` on, for error messages."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(start, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
