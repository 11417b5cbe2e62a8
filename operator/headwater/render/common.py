"""Pure helpers shared by all renderers: metadata, labels, hashing, templates.

Nothing in render/ performs I/O (a unit test enforces it): a renderer gets a validated model
and a small context of facts the reconciler looked up, and returns plain dicts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2

from .. import __version__, yamlio
from ..constants import (
    ANNOTATION_CONFIG_HASH,
    API_VERSION,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_OWNER_KIND,
    LABEL_OWNER_NAME,
    LABEL_PART_OF,
    LABEL_VERSION,
    MANAGED_BY,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns the rendered children."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        meta = body.get("metadata", {})
        return cls(
            kind=body["kind"],
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta.get("uid", "00000000-0000-0000-0000-000000000000"),
            generation=int(meta.get("generation", 1)),
            labels=dict(meta.get("labels") or {}),
        )

    def reference(self) -> Obj:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """Labels that select a component's pods; stable for the life of the workload."""
    # app.kubernetes.io/instance is the *child's* instance (owner name + component), never a
    # copy of the owner's own instance label: Argo CD tracks apps by that label.
    return {
        LABEL_NAME: component,
        LABEL_INSTANCE: f"{owner.name}-{component}",
    }


def inventory_labels(owner: Owner) -> dict[str, str]:
    """Labels that tie a child to its owner for pruning and cache look-ups."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_OWNER_KIND: owner.kind.lower(),
        LABEL_OWNER_NAME: owner.name,
    }


def standard_labels(owner: Owner, component: str, version: str | None = None) -> dict[str, str]:
    labels = {
        **selector_labels(owner, component),
        LABEL_COMPONENT: component,
        LABEL_PART_OF: "headwater",
        **inventory_labels(owner),
    }
    labels[LABEL_VERSION] = _label_value(version or __version__)
    return labels


def pod_labels(owner: Owner, component: str) -> dict[str, str]:
    """Pod template labels: no version label, so an operator upgrade never rolls pods."""
    labels = standard_labels(owner, component)
    labels.pop(LABEL_VERSION)
    return labels


def _label_value(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.") or "unknown"


def finalize(obj: Obj, owner: Owner, component: str, version: str | None = None) -> Obj:
    """Stamp namespace, labels and the owner reference on a rendered object."""
    meta = obj.setdefault("metadata", {})
    if obj.get("kind") not in CLUSTER_SCOPED:
        meta["namespace"] = owner.namespace
        meta["ownerReferences"] = [owner.reference()]
    labels = standard_labels(owner, component, version)
    labels.update(meta.get("labels") or {})
    meta["labels"] = labels
    return obj


CLUSTER_SCOPED = frozenset(
    {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
)


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hash of JSON-serialisable parts, independent of dict ordering."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:length]


def config_hash(objects: Iterable[Obj], extra: Mapping[str, str] | None = None) -> str:
    """Hash of the configuration a workload reads (ConfigMap/Secret data + referenced Secret versions)."""
    data = [
        (o["kind"], o["metadata"]["name"], o.get("data"), o.get("stringData"))
        for o in sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))
    ]
    return stable_hash(data, dict(sorted((extra or {}).items())))


def set_pod_annotation(workload: Obj, key: str, value: str) -> None:
    template = workload["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("annotations", {})[key] = value


def set_config_hash(workload: Obj, value: str) -> None:
    set_pod_annotation(workload, ANNOTATION_CONFIG_HASH, value)


def kafka_cluster_id(uid: str) -> str:
    """Kafka KRaft cluster id derived from the owner's uid: stable, 22 url-safe base64 chars."""
    try:
        raw = uuid.UUID(uid).bytes
    except ValueError:
        raw = hashlib.sha256(uid.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def properties(entries: Mapping[str, Any]) -> str:
    """Java .properties text, keys sorted for a stable hash."""
    lines = []
    for key in sorted(entries):
        value = entries[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("headwater.render", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["tojson"] = yaml_safe_json
    return env


# A JSON surrogate pair (\ud83d\ude00) that is an escape, not an escaped backslash's text.
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def yaml_safe_json(value: Any) -> str:
    """JSON text that is also a YAML flow value meaning the same thing.

    JSON writes a character outside the Basic Multilingual Plane (an emoji in a user's
    config value) as a UTF-16 surrogate pair, which YAML refuses; YAML's own escape for
    it is ``\\UXXXXXXXX``.
    """

    def join(m: re.Match[str]) -> str:
        high, low = int(m.group(2), 16), int(m.group(3), 16)
        return f"{m.group(1)}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return _SURROGATE_PAIR.sub(join, json.dumps(value, sort_keys=False))


class _ParsedTemplates:
    """Rendered manifest text -> its documents, as JSON, for the most recent texts.

    Most passes over a resource re-render the same text (a status change, a workload
    turning Ready); building Python objects from YAML was then the operator's largest CPU
    cost, about ten times that of decoding the same documents from JSON. Entries are
    keyed by a digest of the text, and a text is kept only if JSON gives back exactly what
    YAML did (no dates, no non-string keys), so a hit is indistinguishable from a parse.
    """

    def __init__(self, size: int = 1024):
        self.size = size
        self._docs: OrderedDict[bytes, str] = OrderedDict()

    def load(self, text: str) -> list[Obj]:
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        hit = self._docs.get(key)
        if hit is not None:
            # The operator renders on its event loop; a tool rendering from threads may
            # see an entry evicted in between (no lock: render/ stays free of threading).
            with contextlib.suppress(KeyError):
                self._docs.move_to_end(key)
            docs: list[Obj] = json.loads(hit)
            return docs
        docs = [doc for doc in yamlio.load_all(text) if doc]
        try:
            encoded = json.dumps(docs, separators=(",", ":"))
        except (TypeError, ValueError):
            return docs
        if json.loads(encoded) == docs:
            self._docs[key] = encoded
            if len(self._docs) > self.size:
                with contextlib.suppress(KeyError):
                    self._docs.popitem(last=False)
        return docs


_parsed = _ParsedTemplates()


def template(template_name: str, /, **context: Any) -> list[Obj]:
    """Render a YAML manifest template (may hold several documents) into objects."""
    return _parsed.load(_env().get_template(template_name).render(**context))


def text_template(template_name: str, /, **context: Any) -> str:
    """Render a plain-text template (a config file or a start script)."""
    return _env().get_template(template_name).render(**context)


def resources(spec: Any) -> Obj:
    """Container resources from a `Resources` model (empty dict when unset)."""
    if spec is None:
        return {}
    out: Obj = {}
    for kind in ("requests", "limits"):
        values = getattr(spec, kind, None)
        if values is not None:
            entry = {k: v for k, v in (("cpu", values.cpu), ("memory", values.memory)) if v}
            if entry:
                out[kind] = entry
    return out


def pod_security_context(uid: int = 1000, fs_group: int | None = 1000) -> Obj:
    ctx: Obj = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        ctx["fsGroup"] = fs_group
    return ctx


def container_security_context(read_only_root: bool = True) -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }
