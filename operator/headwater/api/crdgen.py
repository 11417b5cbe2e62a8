"""Generate CustomResourceDefinitions from the pydantic models.

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3 subset:
no $ref, no anyOf-with-null for optionals, no titles, explicit types everywhere. This module
walks pydantic's schema and rewrites it into that subset, keeping descriptions, enums,
defaults, bounds, patterns and the `x-kubernetes-*` extensions declared on the models.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .. import __version__
from ..constants import CATEGORY, GROUP, VERSION
from . import KINDS, KindInfo

# JSON Schema keywords that survive into the CRD as they are.
_KEEP = {
    "type",
    "description",
    "enum",
    "default",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-map-type",
    "nullable",
}


class SchemaError(ValueError):
    """The model uses a construct a structural schema cannot express."""


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        merged: dict[str, Any] = copy.deepcopy(defs[name])
        for key, value in schema.items():
            if key != "$ref":
                merged[key] = value
        return merged
    return schema


def _convert(
    schema: dict[str, Any], defs: dict[str, Any], path: str, *, field: bool = False
) -> dict[str, Any]:
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise SchemaError(f"{path}: unions other than Optional[X] are not structural")
        inner = _resolve(branches[0], defs)
        outer = {k: v for k, v in schema.items() if k != "anyOf"}
        # Optional fields default to None in Python; in the CRD they are simply absent.
        if outer.get("default", 0) is None:
            outer.pop("default")
        # Keep the field's own description; CEL rules of field and type are both enforced.
        merged = {**inner, **{k: v for k, v in outer.items() if k != "x-kubernetes-validations"}}
        rules = inner.get("x-kubernetes-validations", []) + outer.get(
            "x-kubernetes-validations", []
        )
        if rules:
            merged["x-kubernetes-validations"] = rules
        schema = merged
    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
        schema.pop("const")
    if "enum" in schema and "type" not in schema:
        kinds = {type(v) for v in schema["enum"]}
        schema["type"] = "integer" if kinds == {int} else "string"

    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in schema.items() if k in _KEEP}
    kind = out.get("type")
    if kind is None and "properties" in schema:
        kind = out["type"] = "object"
    if kind is None:
        raise SchemaError(f"{path}: no type (use a concrete type, not Any)")

    if kind == "object":
        schema = _map_keys(schema, out)
        props = schema.get("properties")
        if props:
            out["properties"] = {
                name: _convert(sub, defs, f"{path}.{name}", field=True)
                for name, sub in props.items()
            }
            out.pop("additionalProperties", None)
        elif isinstance(schema.get("additionalProperties"), dict):
            out["additionalProperties"] = _convert(
                schema["additionalProperties"], defs, f"{path}[*]"
            )
        if "required" in out and not out["required"]:
            out.pop("required")
    elif kind == "array":
        out["items"] = _convert(schema["items"], defs, f"{path}[]")
    if field and not out.get("description"):
        raise SchemaError(f"{path}: field has no description (write a docstring under it)")
    return out


def _map_keys(schema: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Maps with constrained keys: JSON Schema's patternProperties/propertyNames have no
    structural equivalent, so the value schema becomes additionalProperties and the key
    constraints become CEL rules."""
    patterns = schema.get("patternProperties") or {}
    names = schema.get("propertyNames") or {}
    if not patterns and not names:
        return schema
    schema = dict(schema)
    rules = list(out.get("x-kubernetes-validations", []))
    if patterns:
        if len(patterns) != 1:
            raise SchemaError("maps need exactly one key pattern")
        ((pattern, value),) = patterns.items()
        schema["additionalProperties"] = value
        rules.append(
            {
                "rule": f"self.all(k, k.matches('{pattern}'))",
                "message": f"keys must match {pattern}",
            }
        )
    if "maxLength" in names:
        rules.append(
            {
                "rule": f"self.all(k, k.size() <= {names['maxLength']})",
                "message": f"keys must be at most {names['maxLength']} characters",
            }
        )
    out["x-kubernetes-validations"] = rules
    return schema


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    """Structural OpenAPI v3 schema of a model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, model.__name__)


def _without_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k != "default"}
    for key in ("properties",):
        if key in out:
            out[key] = {name: _without_defaults(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _without_defaults(out[key])
    return out


def crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = openapi_schema(info.spec)
    # The operator writes the whole status; server-side defaults there would make the
    # stored status differ from what the operator computed, and every pass would re-send it.
    status_schema = _without_defaults(openapi_schema(info.status))
    spec_schema["description"] = f"Desired state of the {info.kind}."
    status_schema["description"] = f"Observed state of the {info.kind}, written by the operator."
    schema = {
        "type": "object",
        "description": info.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in info.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "headwater",
                "app.kubernetes.io/part-of": "headwater",
                "app.kubernetes.io/version": __version__,
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, long strings not folded."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=1000, default_flow_style=False)


def render_crds() -> dict[str, str]:
    """File name -> YAML text for every CRD."""
    header = "# Generated by `headwater crds` from operator/headwater/api. Do not edit.\n"
    return {f"{GROUP}_{info.plural}.yaml": header + to_yaml(crd(info)) for info in KINDS}
