"""A thin kubectl wrapper for tests: what a user would type, and JSON back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def kubectl_binary() -> str:
    """The kubectl built with the cluster (same minor), else one on PATH."""
    if os.environ.get("HEADWATER_KUBECTL"):
        return os.environ["HEADWATER_KUBECTL"]
    try:
        from headwater.devenv.binaries import locate

        return str(locate(build=False).kubectl)
    except Exception:
        found = shutil.which("kubectl")
        if not found:
            raise RuntimeError("no kubectl: build it with `make binaries`") from None
        return found


class Kubectl:
    def __init__(self, kubeconfig: str | Path, binary: str | None = None):
        self.kubeconfig = str(kubeconfig)
        self.binary = binary or kubectl_binary()

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, obj: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        text = (
            obj
            if isinstance(obj, str)
            else yaml.safe_dump_all(obj if isinstance(obj, list) else [obj])
        )
        return self.run("apply", "-f", "-", *args, input=text, check=check)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        proc = self.run("get", kind, name, *ns, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def items(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        args = ["get", kind]
        args += ["-n", namespace] if namespace else ["-A"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = self.json(*args)["items"]
        return items


def wait_for(
    fn: Callable[[], T | None], timeout: float = 60, interval: float = 0.5, what: str = ""
) -> T:
    """Poll until fn returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: last={last!r}")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_ready(obj: dict[str, Any] | None) -> bool:
    cond = condition(obj, "Ready")
    return bool(
        obj
        and cond
        and cond.get("status") == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"].get("generation")
    )
