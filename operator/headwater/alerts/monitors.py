"""ServiceMonitors for the exporters of a platform's managed components, for clusters that run
the Prometheus Operator. They relabel targets exactly like the managed Prometheus' scrape
configs (`job`, `namespace`, `platform`), so the generated rules select the same series
whichever Prometheus evaluates them."""

from __future__ import annotations

from typing import Any

from ..api.dataplatform import DataPlatformSpec
from ..constants import (
    LABEL_METRICS,
    LABEL_OWNER_KIND,
    LABEL_OWNER_NAME,
    MONITORING_API_VERSION,
)
from ..render.common import Owner
from ..render.platform import Names
from .rules import metadata

Obj = dict[str, Any]


def _monitor(
    owner: Owner, service: str, job: str, extra_labels: dict[str, str], path: str = "/metrics"
) -> Obj:
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": metadata(owner, service, extra_labels),
        "spec": {
            "selector": {
                "matchLabels": {
                    LABEL_OWNER_KIND: owner.kind.lower(),
                    LABEL_OWNER_NAME: owner.name,
                    LABEL_METRICS: job,
                }
            },
            "endpoints": [
                {
                    "port": "metrics",
                    "path": path,
                    "relabelings": [
                        {"action": "replace", "targetLabel": "job", "replacement": job},
                        {"action": "replace", "targetLabel": "platform", "replacement": owner.name},
                    ],
                }
            ],
        },
    }


def service_monitors(
    spec: DataPlatformSpec, owner: Owner, extra_labels: dict[str, str] | None = None
) -> list[Obj]:
    """One ServiceMonitor per managed component exporter (none for external ones)."""
    n = Names(owner.name)
    labels = extra_labels or {}
    out: list[Obj] = []
    if spec.kafka.mode == "managed":
        out.append(_monitor(owner, n.kafka_metrics, "kafka", labels))
        out.append(_monitor(owner, n.kafka_exporter, "kafka-exporter", labels))
    if spec.connect.mode == "managed":
        out.append(_monitor(owner, n.connect_metrics, "kafka-connect", labels))
    if spec.flink.mode == "managed":
        out.append(_monitor(owner, n.flink_jobmanager_metrics, "flink-jobmanager", labels))
        out.append(_monitor(owner, n.flink_taskmanager_metrics, "flink-taskmanager", labels))
    if spec.object_store.mode == "managed":
        out.append(_monitor(owner, n.minio_metrics, "minio", labels, "/minio/v2/metrics/cluster"))
    return out
