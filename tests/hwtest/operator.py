"""Run the real operator (`headwater run`) as a subprocess of the test session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str | Path,
        log_dir: Path,
        env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
        verbose: bool = True,
    ):
        self.kubeconfig = str(kubeconfig)
        self.verbose = verbose
        self.namespaces = list(namespaces or [])
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self, wait: bool = True) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "HEADWATER_METRICS_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "headwater",
                    "run",
                    *(["-v"] if self.verbose else []),
                    *(arg for ns in self.namespaces for arg in ("-n", ns)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"operator not ready after {timeout}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: no clean-up handlers run, like a crashed pod."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log"))
        )

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def rbac_denials(self) -> list[str]:
        """Log lines of requests the API server refused for lack of RBAC: `User
        "system:serviceaccount:..." cannot <verb> resource ...` (other 403s, such as writes
        into a terminating namespace, are not about RBAC), a Role or binding granting more
        than the operator holds, or Kopf's own complaint."""
        return [
            line
            for line in self.logs().splitlines()
            if ("Forbidden" in line and " cannot " in line)
            or "attempting to grant RBAC permissions not currently held" in line
            or "Not enough permissions" in line
        ]

    def assert_not_denied(self) -> None:
        denied = "\n".join(self.rbac_denials()[:20])
        assert not denied, f"the API server denied the operator ({self.log_dir}):\n{denied}"

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return str(r.read().decode())
