"""Kubernetes Events on condition transitions (never on every reconcile)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .client import ApiError, Kube

log = logging.getLogger(__name__)

# Values that look like credentials never leave the operator, even inside a message.
_SECRETISH = re.compile(r"(?i)(password|passwd|secret|token)(\s*[=:]\s*)([^\s,;]+)")


def scrub(message: str) -> str:
    return _SECRETISH.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)


class EventRecorder:
    def __init__(self, kube: Kube, component: str = "headwater-operator"):
        self.kube = kube
        self.component = component

    async def emit(
        self, obj: Mapping[str, Any], event_type: str, reason: str, message: str
    ) -> None:
        meta = obj.get("metadata", {})
        ns = meta.get("namespace", "default")
        ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:12]}",
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": ns,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": scrub(message)[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": ts[:19] + "Z",
            "lastTimestamp": ts[:19] + "Z",
            "eventTime": ts,
            "action": "Reconcile",
            "count": 1,
        }
        try:
            await self.kube.create(body)
        except ApiError as err:  # events are best effort
            log.debug("could not post event: %s", err)
        except Exception as err:
            log.debug("could not post event: %r", err)
