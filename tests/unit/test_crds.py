"""The generated CRDs: in sync with the models, structural, documented, complete."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from headwater.api import KINDS
from headwater.api.crdgen import crd, render_crds
from headwater.api.dataplatform import (
    MINIO_CONFIG_CREDENTIAL,
    PROMETHEUS_CONFIG_RESERVED,
    DataPlatformSpec,
)
from hwtest import ROOT


def test_committed_crds_are_current() -> None:
    rendered = render_crds()
    on_disk = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert set(on_disk) == set(rendered), "crds/ has missing or extra files: run `make crds`"
    stale = [name for name, text in rendered.items() if on_disk[name] != text]
    assert not stale, f"crds/ is stale for {stale}: run `make crds`"


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        out += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        out += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += _walk(schema["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(info: Any) -> None:
    schema = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "title", "const", "$defs"):
            assert banned not in node, f"{path}: {banned} is not structural"
        if path.startswith((".spec.", ".status.")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{info.kind}{path} has no description"
        if path != ".metadata":
            assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), path


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_crd_metadata(info: Any) -> None:
    doc = crd(info)
    names = doc["spec"]["names"]
    assert names["categories"] == ["headwater"]
    assert names["shortNames"]
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Ready", "Reason"] and "Age" in columns
    assert len(columns) >= 4, "at least one kind-specific column"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert "observedGeneration" in status


def test_cross_field_rules_are_cel() -> None:
    text = "\n".join(render_crds().values())
    docs = [yaml.safe_load(t) for t in render_crds().values()]
    rules = [
        r["rule"]
        for d in docs
        for _, node in _walk(d["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for r in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= 15
    assert "self.mode != 'external' || has(self.external)" in text
    assert "has(self.sql) != has(self.jar)" in text


def test_defaults_are_present() -> None:
    platform = crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    kafka = platform["properties"]["spec"]["properties"]["kafka"]
    assert kafka["default"] == {"mode": "managed"}
    assert kafka["properties"]["mode"]["default"] == "managed"
    assert kafka["properties"]["managed"]["properties"]["replicas"]["default"] == 3


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_status_has_no_server_side_defaults(info: Any) -> None:
    """The operator writes status whole; defaults filled in by the API server would make the
    stored status differ from the computed one and cause a no-op patch on every pass."""
    status = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert [path for path, node in _walk(status) if "default" in node] == []


def _platform_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("component", "key", "message"),
    [
        ("objectStore", "MINIO_ROOT_PASSWORD", MINIO_CONFIG_CREDENTIAL),
        ("objectStore", "MINIO_ROOT_USER", MINIO_CONFIG_CREDENTIAL),
        ("objectStore", "MINIO_KMS_SECRET_KEY", MINIO_CONFIG_CREDENTIAL),
        ("objectStore", "MINIO_IDENTITY_OPENID_CLIENT_SECRET", MINIO_CONFIG_CREDENTIAL),
        ("objectStore", "MINIO_KMS_KES_API_KEY", MINIO_CONFIG_CREDENTIAL),
        ("objectStore", "minio_region", "String should match pattern"),
        ("monitoring", "config.file", PROMETHEUS_CONFIG_RESERVED),
        ("monitoring", "storage.tsdb.path", PROMETHEUS_CONFIG_RESERVED),
        ("monitoring", "web.listen-address", PROMETHEUS_CONFIG_RESERVED),
        ("monitoring", "--query.timeout", "String should match pattern"),
    ],
)
def test_config_overrides_refuse_what_would_break_or_leak(
    component: str, key: str, message: str
) -> None:
    """MinIO's root user comes from the generated Secret and credentials never sit in a
    spec; Prometheus' config file, data path and port are wired into the pod. The CRD
    carries the same rule as CEL, so the API server refuses it at `kubectl apply`."""
    spec = {component: {"mode": "managed", "managed": {"config": {key: "x"}}}}
    with pytest.raises(ValidationError, match=re.escape(message)):
        DataPlatformSpec.model_validate(spec)
    field = _platform_schema()["properties"]["spec"]["properties"][component]["properties"][
        "managed"
    ]["properties"]["config"]
    rules = [r["rule"] for r in field["x-kubernetes-validations"]]
    if message == MINIO_CONFIG_CREDENTIAL:
        pattern = re.search(r"k\.matches\('([^']+)'\)", rules[0])
        assert pattern and re.fullmatch(pattern.group(1), key)
    elif message == PROMETHEUS_CONFIG_RESERVED:
        assert any(f"'{key}'" in r for r in rules)


def test_config_overrides_accept_ordinary_settings() -> None:
    spec = DataPlatformSpec.model_validate(
        {
            "objectStore": {
                "managed": {
                    "config": {"MINIO_API_REQUESTS_MAX": "1600", "MINIO_KMS_KES_KEY_FILE": "/k"}
                }
            },
            "monitoring": {"managed": {"config": {"storage.tsdb.retention.size": "50GB"}}},
        }
    )
    assert spec.object_store.managed.config["MINIO_API_REQUESTS_MAX"] == "1600"
    assert spec.monitoring.managed.config == {"storage.tsdb.retention.size": "50GB"}


def test_every_managed_component_has_image_version_and_config() -> None:
    """Images, versions and config overrides are configurable for every component that runs
    a server (Spark only prepares an identity; its jobs carry their own settings)."""
    spec = _platform_schema()["properties"]["spec"]["properties"]
    for component in ("kafka", "connect", "flink", "objectStore", "monitoring"):
        managed = spec[component]["properties"]["managed"]["properties"]
        assert {"image", "version", "config"} <= set(managed), component
