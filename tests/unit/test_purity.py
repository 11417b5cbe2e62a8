"""render/ and api/ are pure: they import nothing that performs I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hwtest import ROOT

PKG = ROOT / "operator" / "headwater"
IO_MODULES = {
    "requests",
    "aiohttp",
    "socket",
    "subprocess",
    "kubernetes",
    "kopf",
    "psycopg",
    "pymysql",
    "minio",
    "boto3",
    "urllib.request",
    "http.client",
    "asyncio",
    "threading",
}
PURE_DIRS = ["api", "render"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            found.add("." * node.level + node.module)
    return found


@pytest.mark.parametrize(
    "path",
    [p for d in PURE_DIRS for p in sorted((PKG / d).rglob("*.py"))],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_no_io_imports(path: Path) -> None:
    imported = _imports(path)
    bad = {m for m in imported if m in IO_MODULES or m.split(".")[0] in IO_MODULES}
    # Relative imports may only reach other pure packages (or leaf modules without I/O).
    relative = {m for m in imported if m.startswith(".")}
    leaks = {
        m
        for m in relative
        if any(
            m.lstrip(".").startswith(x)
            for x in ("kube", "reconcile", "dataplane", "operator", "cli")
        )
    }
    assert not bad, f"{path.name} imports I/O modules {sorted(bad)}"
    assert not leaks, f"{path.name} reaches into impure packages {sorted(leaks)}"
