"""Helpers shared by the unit, e2e and data-plane suites."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "manifests" / "examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def bad_specs() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((DATA / "bad_specs.yaml").read_text())
    for case in cases:
        obj = case["object"]
        obj.setdefault("apiVersion", "headwater.dev/v1alpha1")
        obj.setdefault("metadata", {"name": case["name"][:63]})
    return cases


def example_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def require(condition: bool, what: str) -> None:
    """Skip when a component is missing locally; fail in CI, where nothing may be missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {what} is missing", pytrace=False)
    pytest.skip(f"{what} is missing (set CI=true to make this a failure)")
