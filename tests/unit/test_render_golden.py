"""Golden files of rendered manifests: every example, and every component in every mode.

A change in rendering shows up as a reviewable diff of tests/golden/. After an intended
change run `make golden` (HEADWATER_UPDATE_GOLDEN=1) and commit the new files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from headwater.render.registry import render_offline
from hwtest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("HEADWATER_UPDATE_GOLDEN") == "1"

EXTERNAL = {
    "kafka": {"bootstrapServers": ["kafka-0.ext:9092", "kafka-1.ext:9092"]},
    "connect": {"url": "http://connect.ext:8083"},
    "flink": {"restUrl": "http://flink.ext:8081", "sqlGatewayUrl": "http://flink.ext:8083"},
    "spark": {"masterUrl": "spark://spark.ext:7077"},
    "objectStore": {
        "endpoint": "https://s3.ext:9000",
        "credentialsSecretRef": {"name": "s3-admin"},
    },
    "monitoring": {"url": "http://prometheus.ext:9090"},
}


def _platform(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": "DataPlatform",
        "metadata": {
            "name": name,
            "namespace": "golden",
            "uid": "11111111-2222-3333-4444-555555555555",
        },
        "spec": spec,
    }


def _cases() -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for d in docs:
            d.setdefault("metadata", {}).setdefault("namespace", "shop")
            d["metadata"].setdefault("uid", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        cases[f"example-{path.stem}"] = docs
    everything_off = {c: {"mode": "disabled"} for c in EXTERNAL}
    for component, external in EXTERNAL.items():
        for mode in ("managed", "external", "disabled"):
            spec = {**everything_off, component: {"mode": mode}}
            if component == "connect" and mode == "managed":
                spec["kafka"] = {
                    "mode": "managed",
                    "managed": {"replicas": 1, "defaultReplicationFactor": 1},
                }
            if mode == "external":
                spec[component]["external"] = external
            cases[f"{component}-{mode}"] = [_platform(f"{component.lower()}-{mode}", spec)]
    return cases


CASES = _cases()
EXAMPLE_DOCS = [d for name, docs in CASES.items() if name.startswith("example-") for d in docs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    docs = CASES[name]
    # Examples render with the whole example pipeline as context (like `headwater render -f
    # manifests/examples/...`): a CdcConnector's config needs its DataSource and platform.
    context = EXAMPLE_DOCS if name.startswith("example-") else docs
    objects = [o for doc in docs for o in render_offline(doc, context)]
    text = yaml.safe_dump_all(objects, sort_keys=True, width=120) if objects else "# no objects\n"
    path = GOLDEN / f"{name}.yaml"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path.name} was missing and has been written; commit it")
    assert text == path.read_text(), f"render of {name} changed: review, then `make golden`"


def test_every_managed_component_renders_workloads() -> None:
    kinds = {
        "kafka-managed": {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"},
        "connect-managed": {"Deployment", "Service", "ConfigMap"},
        "flink-managed": {"Deployment", "Service", "ConfigMap"},
        "spark-managed": {"ServiceAccount", "Role", "RoleBinding"},
        "objectStore-managed": {"StatefulSet", "Service", "Secret"},
        "monitoring-managed": {"Deployment", "Service", "ConfigMap"},
    }
    for name, expected in kinds.items():
        rendered = {o["kind"] for doc in CASES[name] for o in render_offline(doc)}
        assert expected <= rendered, (name, expected - rendered)


@pytest.mark.parametrize("component", sorted(EXTERNAL))
def test_external_and_disabled_render_nothing_of_their_own(component: str) -> None:
    for mode in ("external", "disabled"):
        objs = [o for doc in CASES[f"{component}-{mode}"] for o in render_offline(doc)]
        owned = [
            o for o in objs if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        assert owned == [], f"{component} {mode} rendered {[o['metadata']['name'] for o in owned]}"


def test_golden_dir_has_no_orphans() -> None:
    orphans = {p.stem for p in Path(GOLDEN).glob("*.yaml")} - set(CASES)
    assert not orphans, f"golden files without a case: {sorted(orphans)}"
