"""Offline rendering of any Headwater CR (what `headwater render` prints)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..alerts import platform_rule_files
from ..api.dataplatform import DataPlatformSpec
from ..api.lakezone import LakeZoneSpec
from .common import Obj, Owner
from .connector import render_offline as render_connector_offline
from .lakezone import offline_context, render_lakezone
from .platform import GENERATED, PlatformContext, render_platform
from .sparkjob import render_streamjob_offline

OfflineRenderer = Callable[[dict[str, Any]], list[Obj]]


def _platform(doc: dict[str, Any]) -> list[Obj]:
    spec = DataPlatformSpec.model_validate(doc.get("spec") or {})
    # Offline there is no cluster to look Secrets up in: show where generated values go.
    ctx = PlatformContext(
        new_minio_credentials=(GENERATED, GENERATED),
        connect_secrets={},
        alert_rules=_alert_rules(doc),
    )
    return render_platform(spec, _owner(doc), ctx)


def _alert_rules(doc: dict[str, Any]) -> dict[str, Any]:
    """The platform's own rule file (the operator adds those of the resources on it)."""
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("namespace", "default")
    return platform_rule_files({**doc, "kind": "DataPlatform", "metadata": meta})


def _lakezone(doc: dict[str, Any]) -> list[Obj]:
    # The settings ConfigMap shows the lifecycle rules and access policies the zone applies.
    spec = LakeZoneSpec.model_validate(doc.get("spec") or {})
    owner = _owner(doc)
    return render_lakezone(spec, owner, offline_context(spec, owner))


def _owner(doc: dict[str, Any]) -> Owner:
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("namespace", "default")
    meta.setdefault("uid", "00000000-0000-0000-0000-000000000000")
    return Owner.from_body({**doc, "metadata": meta})


RENDERERS: dict[str, OfflineRenderer] = {"DataPlatform": _platform, "LakeZone": _lakezone}
RENDERERS["StreamJob"] = lambda doc: render_streamjob_offline(doc, _owner(doc))


def render_offline(doc: dict[str, Any], context: Sequence[dict[str, Any]] = ()) -> list[Obj]:
    """Objects `doc` produces; `context` holds the other documents rendered with it (a
    CdcConnector's Kafka Connect config needs its DataSource and DataPlatform)."""
    if doc.get("kind") == "CdcConnector":
        return render_connector_offline(doc, context)
    fn = RENDERERS.get(str(doc.get("kind")))
    return fn(doc) if fn else []
