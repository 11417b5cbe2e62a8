"""The generated CRDs on a real API server: examples accepted, bad specs rejected *by the
server* (schema and CEL), printer columns and `kubectl explain` working."""

from __future__ import annotations

import string
from typing import Any

import pytest
import yaml

from hwtest import EXAMPLES, ROOT, bad_specs, require
from hwtest import services as svc
from hwtest.kubectl import Kubectl

CASES = bad_specs()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_accepted_by_api_server(
    kubectl: Kubectl, crds: None, namespace: str, path: Any
) -> None:
    proc = kubectl.run("apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False)
    assert proc.returncode == 0, proc.stderr


def test_demo_pipeline_accepted_by_api_server(kubectl: Kubectl, crds: None, namespace: str) -> None:
    """manifests/demo/pipeline.yaml, filled in the way hack/demo.sh does it (the services'
    `hack/services.sh <name> env` plus the DEMO_* values, `string.Template.substitute`, which
    refuses a placeholder it has no value for), is accepted by the API server as a whole."""
    values: dict[str, str] = {}
    for name in ("postgres", "kafka", "connect", "minio", "flink"):  # demo.sh's SERVICES
        try:
            values.update(svc.env(name))
        except svc.ServiceUnavailable as err:
            require(False, f"hack/services.sh {name} env ({err})")
    values.update(
        DEMO_TOPIC_PREFIX="shop",
        DEMO_BUCKET_PREFIX="demo-shop",
        DEMO_FLINK_STATE="/tmp/headwater-demo/flink-state",
    )
    template = (ROOT / "manifests" / "demo" / "pipeline.yaml").read_text()
    rendered = string.Template(template).substitute(values)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert {d["kind"] for d in docs} >= {
        "DataPlatform", "DataSource", "CdcConnector", "LakeZone", "StreamJob",
    }  # fmt: skip
    proc = kubectl.run(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
        input=rendered, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(docs) and all(line.endswith("(server dry run)") for line in lines)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_spec_rejected_by_api_server(
    kubectl: Kubectl, crds: None, namespace: str, case: dict[str, Any]
) -> None:
    # --validate=strict asks the *server* to refuse unknown fields; everything else is the
    # structural schema and the CEL rules of the CRD. kubectl has no client-side schema for
    # our kinds, so the message below can only come from the API server.
    proc = kubectl.run(
        "apply",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(case["object"]),
        check=False,
    )
    assert proc.returncode != 0, f"{case['name']} was accepted"
    assert "Error from server" in proc.stderr or "is invalid" in proc.stderr, proc.stderr
    assert case["expect"] in proc.stderr, proc.stderr


def test_kubectl_explain_teaches_the_api(kubectl: Kubectl, crds: None) -> None:
    out = kubectl.run("explain", "dataplatform.spec.kafka.managed.replicas").stdout
    assert "combined broker/controller" in out
    out = kubectl.run("explain", "cdcconnector.spec.deletionPolicy").stdout
    assert "replicationSlot" in out


def test_category_and_short_names(kubectl: Kubectl, crds: None, namespace: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": "LakeZone",
            "metadata": {"name": "bronze", "namespace": namespace},
            "spec": {"platformRef": {"name": "missing"}, "tier": "bronze", "bucket": "shop-bronze"},
        }
    )
    assert (
        "lakezone.headwater.dev/bronze"
        in kubectl.run("get", "headwater", "-n", namespace, "-o", "name").stdout
    )
    assert "bronze" in kubectl.run("get", "lz", "-n", namespace).stdout
    header = kubectl.run("get", "lakezones", "-n", namespace).stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "READY", "REASON"] and "TIER" in header and "BUCKET" in header
