"""Every bad spec of the shared corpus is refused by the models (the e2e suite checks the
same corpus against the API server), and every example is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.cli import validate_doc
from hwtest import bad_specs, example_docs

CASES = bad_specs()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_models_reject_bad_spec(case: dict[str, Any]) -> None:
    problems = validate_doc(case["object"])
    assert problems, f"{case['name']} was accepted"
    expected = case.get("expect_model", case["expect"])
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "doc",
    [d for d in example_docs() if d["apiVersion"].startswith("headwater.dev/")],
    ids=lambda d: f"{d['kind']}-{d['metadata']['name']}",
)
def test_examples_are_valid(doc: dict[str, Any]) -> None:
    assert validate_doc(doc) == []


def test_validation_messages_name_the_field() -> None:
    problems = validate_doc(
        {
            "apiVersion": "headwater.dev/v1alpha1",
            "kind": "DataPlatform",
            "metadata": {"name": "x"},
            "spec": {"kafka": {"managed": {"replicas": 0}}},
        }
    )
    assert problems == ["spec.kafka.managed.replicas: Input should be greater than or equal to 1"]
