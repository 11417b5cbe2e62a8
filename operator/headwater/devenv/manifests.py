"""Files and objects the harness generates: kubeconfigs, the scheduler config, the
kwok config, and the bootstrap objects (StorageClass, simulated Nodes).

Kept apart from process management so the content can be read (and reviewed) as data.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from headwater.devenv.config import POD_CIDR, ClusterConfig
from headwater.devenv.pki import Pki
from headwater.devenv.stages import (
    NODE_ANNOTATION,
    NODE_ANNOTATION_VALUE,
    NODE_IP_ANNOTATION,
    PROVISIONER,
    STORAGE_CLASS,
    kwok_stages_yaml,
)

CLUSTER_NAME = "headwater-dev"
NODE_PREFIX = "kwok-node-"
DEVENV_LABEL = "devenv.headwater.dev/managed"
ZONES = ("zone-a", "zone-b", "zone-c")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(cfg: ClusterConfig, pki: Pki, user: str, cert_name: str) -> dict[str, Any]:
    """A kubeconfig with certificates embedded, so it can be copied anywhere."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": cfg.apiserver_url,
                    "certificate-authority-data": _b64(pki.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki.cert(cert_name)),
                    "client-key-data": _b64(pki.key(cert_name)),
                },
            }
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }


def scheduler_config(kubeconfig_path: Path) -> dict[str, Any]:
    """KubeSchedulerConfiguration: default plugins, no leader election.

    Leader election is off for both kube-scheduler and kube-controller-manager: there
    is only ever one of each, and a lease left behind by a killed run would otherwise
    stall a warm start by up to the lease duration (15 s).
    """
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path), "qps": 100, "burst": 200},
        "leaderElection": {"leaderElect": False},
    }


def kwok_config() -> str:
    """kwok's ``--config``: only Stage documents (options are passed as flags, which
    keeps them visible in ``ps``)."""
    return kwok_stages_yaml()


def write_yaml(path: Path, obj: dict[str, Any]) -> None:
    """Write YAML only if it changed, so mtimes mean something when debugging."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Atomic write-if-changed (kubeconfigs hold keys, hence 0600 by default)."""
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def storage_class() -> dict[str, Any]:
    """The default StorageClass, named ``standard`` like kind's so manifests written
    for kind work unchanged. ``Immediate`` binding: kwok provisions as soon as the
    claim exists, and the scheduler then sees a bound claim with no node affinity."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "labels": {DEVENV_LABEL: "true"},
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def node(index: int) -> dict[str, Any]:
    """A simulated Node. No taints: ordinary workloads must land on it unchanged.
    Zones rotate so topology spread and anti-affinity have something to spread over;
    each node gets its own InternalIP (10.240.0.1, .2, ...), which pods inherit as hostIP."""
    name = f"{NODE_PREFIX}{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                NODE_ANNOTATION: NODE_ANNOTATION_VALUE,
                NODE_IP_ANNOTATION: f"10.240.{index // 250}.{index % 250 + 1}",
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                DEVENV_LABEL: "true",
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
            },
        },
        "spec": {"podCIDR": _node_pod_cidr(index)},
    }


def _node_pod_cidr(index: int) -> str:
    """A /24 per node out of the pod range, for anything that reads ``podCIDR``."""
    base = POD_CIDR.split("/", 1)[0].rsplit(".", 2)[0]
    return f"{base}.{index}.0/24"
