"""Turn custom resources (plain bodies) into the `Target`s the catalogue writes rules for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..api.common import AlertsSpec
from ..api.dataplatform import DataPlatformSpec
from .catalogue import ALL, Target

Obj = Mapping[str, Any]
KINDS = ALL


def alerts_spec(body: Obj) -> AlertsSpec | None:
    """`spec.alerts` of a resource, or None when it does not validate (the kind's reconciler
    reports the invalid spec; no rules are generated from it meanwhile)."""
    try:
        return AlertsSpec.model_validate((body.get("spec") or {}).get("alerts") or {})
    except ValidationError:
        return None


def platform_spec(body: Obj | None) -> DataPlatformSpec | None:
    if body is None:
        return None
    try:
        return DataPlatformSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None


def platform_name(body: Obj) -> str | None:
    """The platform a resource runs on: itself for a DataPlatform, else `spec.platformRef`."""
    if body.get("kind") == "DataPlatform":
        return str(body["metadata"]["name"])
    ref = (body.get("spec") or {}).get("platformRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def target(body: Obj, platform: Obj | None) -> Target:
    """The facts of one resource; `platform` is the body of the DataPlatform it runs on."""
    meta = body["metadata"]
    if body.get("kind") == "DataPlatform":
        platform = body
    return Target(
        kind=str(body["kind"]),
        namespace=str(meta.get("namespace", "")),
        name=str(meta["name"]),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        platform=platform_name(body),
        platform_spec=platform_spec(platform),
    )
