"""Mapping of apiVersion/kind to REST paths: a static table for what the operator renders,
API discovery for anything else (looked up once, then cached)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..constants import API_VERSION

if TYPE_CHECKING:
    from .client import Kube


@dataclass(frozen=True)
class ResourceInfo:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def base(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        parts = [self.base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


KNOWN: dict[tuple[str, str], ResourceInfo] = {
    (i.api_version, i.kind): i
    for i in (
        ResourceInfo("v1", "ConfigMap", "configmaps"),
        ResourceInfo("v1", "Secret", "secrets"),
        ResourceInfo("v1", "Service", "services"),
        ResourceInfo("v1", "ServiceAccount", "serviceaccounts"),
        ResourceInfo("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ResourceInfo("v1", "Pod", "pods"),
        ResourceInfo("v1", "Event", "events"),
        ResourceInfo("v1", "Namespace", "namespaces", namespaced=False),
        ResourceInfo("v1", "Node", "nodes", namespaced=False),
        ResourceInfo("apps/v1", "StatefulSet", "statefulsets"),
        ResourceInfo("apps/v1", "Deployment", "deployments"),
        ResourceInfo("apps/v1", "ReplicaSet", "replicasets"),
        ResourceInfo("batch/v1", "Job", "jobs"),
        ResourceInfo("batch/v1", "CronJob", "cronjobs"),
        ResourceInfo("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ResourceInfo("rbac.authorization.k8s.io/v1", "Role", "roles"),
        ResourceInfo("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        ResourceInfo("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
        ResourceInfo(
            "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False
        ),
        ResourceInfo("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        ResourceInfo("events.k8s.io/v1", "Event", "events"),
        ResourceInfo("coordination.k8s.io/v1", "Lease", "leases"),
        ResourceInfo(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            False,
        ),
        ResourceInfo("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
        ResourceInfo("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
        ResourceInfo("monitoring.coreos.com/v1", "PodMonitor", "podmonitors"),
        ResourceInfo(API_VERSION, "DataPlatform", "dataplatforms"),
        ResourceInfo(API_VERSION, "DataSource", "datasources"),
        ResourceInfo(API_VERSION, "CdcConnector", "cdcconnectors"),
        ResourceInfo(API_VERSION, "StreamJob", "streamjobs"),
        ResourceInfo(API_VERSION, "LakeZone", "lakezones"),
    )
}


class ResourceRegistry:
    def __init__(self, kube: Kube):
        self._kube = kube
        self._discovered: dict[tuple[str, str], ResourceInfo] = {}

    async def get(self, api_version: str, kind: str) -> ResourceInfo:
        key = (api_version, kind)
        if key in KNOWN:
            return KNOWN[key]
        if key not in self._discovered:
            await self._discover(api_version)
        try:
            return self._discovered[key]
        except KeyError:
            raise LookupError(f"the API server does not serve {kind} in {api_version}") from None

    async def _discover(self, api_version: str) -> None:
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        doc = await self._kube.request("GET", path)
        for r in doc.get("resources", []):
            if "/" in r["name"]:
                continue
            self._discovered[(api_version, r["kind"])] = ResourceInfo(
                api_version, r["kind"], r["name"], bool(r.get("namespaced"))
            )

    async def served(self, api_version: str, kind: str) -> bool:
        """Whether the server serves this kind right now (not cached: CRDs come and go)."""
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        from .client import ApiError

        try:
            doc = await self._kube.request("GET", path)
        except ApiError as err:
            if err.not_found or err.status == 503:
                return False
            raise
        return any(r.get("kind") == kind for r in doc.get("resources", []))
