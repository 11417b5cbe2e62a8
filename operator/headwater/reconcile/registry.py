"""Which reconciler handles which kind, and the data-plane services they share."""

from __future__ import annotations

from typing import Any

from ..dataplane.s3 import ObjectStoreFactory
from .alerting import AlertsService
from .base import Reconciler, Settings
from .cdcconnector import CdcConnectorReconciler
from .dataplatform import DataPlatformReconciler
from .datasource import DataSourceReconciler
from .lakezone import LakeZoneReconciler
from .streamjob import StreamJobReconciler


def build_reconcilers() -> list[Reconciler]:
    return [
        DataPlatformReconciler(),
        LakeZoneReconciler(),
        DataSourceReconciler(),
        CdcConnectorReconciler(),
        StreamJobReconciler(),
    ]


def build_services(settings: Settings, metrics: Any) -> dict[str, Any]:
    """Data-plane client factories shared by the reconcilers (swapped in tests)."""
    return {"metrics": metrics, "s3": ObjectStoreFactory(), "alerts": AlertsService.from_env()}
