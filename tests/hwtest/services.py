"""Start the real data services through hack/services.sh and read their endpoints."""

from __future__ import annotations

import subprocess

from . import IN_CI, ROOT

SERVICES = ROOT / "hack" / "services.sh"


class ServiceUnavailable(RuntimeError):
    pass


def _run(service: str, action: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), service, action], capture_output=True, text=True, timeout=timeout
    )


def env(service: str) -> dict[str, str]:
    proc = _run(service, "env")
    if proc.returncode != 0:
        raise ServiceUnavailable(f"{service} env failed: {proc.stderr.strip()[-2000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip("'\"")
    return out


def start(service: str) -> dict[str, str]:
    """Install (cached), start (idempotent) and return the service's env."""
    for action in ("install", "start"):
        proc = _run(service, action)
        if proc.returncode != 0:
            raise ServiceUnavailable(
                f"hack/services.sh {service} {action} failed (exit {proc.returncode}):\n"
                + (proc.stderr or proc.stdout).strip()[-3000:]
            )
    return env(service)


def stop(service: str) -> None:
    _run(service, "stop", timeout=120)


def is_running(service: str) -> bool:
    return _run(service, "status", timeout=30).returncode == 0


__all__ = ["IN_CI", "ServiceUnavailable", "env", "is_running", "start", "stop"]
