"""What a whole test session shares: its namespace prefix, and the chart's ServiceAccount.

Kept out of conftest.py so test modules can import it: with several conftest.py files in
one run, `import conftest` resolves to whichever was imported last.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import yaml

from . import ROOT, require
from . import services as svc
from .kubectl import Kubectl

# Every namespace this session creates starts with this prefix and the operator watches only
# `<prefix>-*`, so several test sessions (or a developer's own operator) can share a cluster.
SESSION_PREFIX = os.environ.get("HEADWATER_TEST_PREFIX") or f"hw{secrets.token_hex(2)}"


def _as_serviceaccount() -> bool:
    value = os.environ.get("HEADWATER_E2E_AS_SERVICEACCOUNT", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


# Every operator the suites start authenticates as the Helm chart's ServiceAccount (a bound
# token, RBAC from charts/headwater), never as cluster admin: the whole suite is the proof
# that the chart grants what the operator needs. HEADWATER_E2E_AS_SERVICEACCOUNT=0 runs them
# with the admin kubeconfig instead, to tell an RBAC gap from a bug while debugging.
AS_SERVICEACCOUNT = _as_serviceaccount()


class ChartServiceAccount:
    """The chart's ServiceAccount + RBAC (only those templates) applied to the cluster, and a
    kubeconfig that authenticates as that ServiceAccount with a bound token."""

    def __init__(self, kubectl: Kubectl, release: str, namespace: str, *values: str):
        self.kubectl = kubectl
        self.release = release
        self.namespace = namespace
        self.values = values
        self.manifest = ""
        self.name = ""

    def install(self) -> ChartServiceAccount:
        helm = svc.env("helm").get("HELM", "") if svc.is_running("helm") else ""
        require(bool(helm), "helm (hack/services.sh helm install)")
        chart = str(ROOT / "charts" / "headwater")
        only = [
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
        ]
        proc = subprocess.run(
            [
                helm,
                "template",
                self.release,
                chart,
                "--namespace",
                self.namespace,
                *self.values,
                *only,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        self.manifest = proc.stdout
        docs = [d for d in yaml.safe_load_all(self.manifest) if d]
        self.name = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
        self.kubectl.run("create", "namespace", self.namespace, check=False)
        self.kubectl.apply(self.manifest)
        return self

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def write_kubeconfig(self, path: Path) -> Path:
        token = self.kubectl.run(
            "create", "token", self.name, "-n", self.namespace, "--duration=12h"
        ).stdout.strip()
        admin = yaml.safe_load(Path(self.kubectl.kubeconfig).read_text())
        ctx = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
        cluster = next(c for c in admin["clusters"] if c["name"] == ctx["context"]["cluster"])
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "cluster", "cluster": cluster["cluster"]}],
                    "users": [{"name": self.name, "user": {"token": token}}],
                    "contexts": [
                        {"name": "sa", "context": {"cluster": "cluster", "user": self.name}}
                    ],
                    "current-context": "sa",
                }
            )
        )
        path.chmod(0o600)
        return path

    def uninstall(self) -> None:
        if self.manifest:
            self.kubectl.run(
                "delete",
                "-f",
                "-",
                "--ignore-not-found",
                "--wait=false",
                input=self.manifest,
                check=False,
            )
        self.kubectl.run("delete", "namespace", self.namespace, "--wait=false", check=False)
