"""`headwater run | crds | render | validate | dev`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .constants import API_VERSION


class InputError(Exception):
    """A file named on the command line can't be used: reported in one line, no traceback.
    `code` is the exit status (2 for a missing or unreadable file, as for usage errors; 1
    for a file that is not YAML, which is invalid input like a bad spec)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def _expand(names: Iterable[str]) -> list[str]:
    """The files `-f` names: a directory stands for its `*.yaml` and `*.yml` files, sorted
    (like `kubectl apply -f DIR`, not recursive); `-` is standard input."""
    files: list[str] = []
    for name in names:
        path = Path(name)
        if name == "-" or path.is_file():
            files.append(name)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            if not found:
                raise InputError(f"{name}: directory holds no *.yaml or *.yml file")
            files.extend(str(p) for p in found if p.is_file())
        elif path.exists():
            raise InputError(f"{name}: not a regular file or directory")
        else:
            raise InputError(f"{name}: no such file or directory")
    return files


def _load_docs(names: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    docs: list[tuple[str, dict[str, Any]]] = []
    for name in _expand(names):
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{name}: cannot read: {err}") from None
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError as err:
            raise InputError(f"{name}: not valid YAML: {err}", code=1) from None
        docs.extend((name, doc) for doc in loaded if isinstance(doc, dict))
    return docs


def cmd_crds(args: argparse.Namespace) -> int:
    from .api.crdgen import render_crds

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_crds()
    for name, text in rendered.items():
        (out / name).write_text(text, encoding="utf-8")
    stale = sorted(p.name for p in out.glob(f"*{'.yaml'}") if p.name not in rendered)
    for name in stale:
        (out / name).unlink()
    if not args.quiet:
        print(f"wrote {len(rendered)} CRDs to {out}/")
    return 0


def validate_doc(doc: dict[str, Any]) -> list[str]:
    """Field-level problems of one document (empty when valid)."""
    from pydantic import ValidationError

    from .api import KINDS_BY_NAME
    from .reconcile.base import validation_message

    kind = doc.get("kind")
    if doc.get("apiVersion") != API_VERSION:
        return [f"apiVersion: expected {API_VERSION}, got {doc.get('apiVersion')!r}"]
    info = KINDS_BY_NAME.get(str(kind))
    if info is None:
        return [f"kind: unknown kind {kind!r}"]
    name = (doc.get("metadata") or {}).get("name")
    problems = [] if name else ["metadata.name: required"]
    try:
        info.parse_spec(doc.get("spec"))
    except ValidationError as err:
        problems.extend(validation_message(err).split("; "))
    return problems


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for source, doc in _load_docs(args.filename):
        meta = doc.get("metadata") or {}
        label = f"{source}: {doc.get('kind')}/{meta.get('name')}"
        if not str(doc.get("apiVersion", "")).startswith("headwater.dev/"):
            if not args.quiet:
                print(f"{label}: skipped (not a Headwater resource)")
            continue
        problems = validate_doc(doc)
        if problems:
            failed += 1
            print(f"{label}: invalid")
            for p in problems:
                print(f"  - {p}")
        elif not args.quiet:
            print(f"{label}: valid")
    return 1 if failed else 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render.registry import render_offline

    out: list[dict[str, Any]] = []
    failed = 0
    docs = _load_docs(args.filename)
    context = [d for _, d in docs]
    for source, doc in docs:
        if not str(doc.get("apiVersion", "")).startswith("headwater.dev/"):
            continue
        problems = validate_doc(doc)
        if problems:
            failed += 1
            meta = doc.get("metadata") or {}
            print(f"# {source}: {doc.get('kind')}/{meta.get('name')} is invalid:", file=sys.stderr)
            for p in problems:
                print(f"#   - {p}", file=sys.stderr)
            continue
        out.extend(render_offline(doc, context))
    sys.stdout.write(yaml.safe_dump_all(out, sort_keys=False, width=1000))
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from .operator import run

    run(namespaces=args.namespace or None, liveness=args.liveness, verbose=args.verbose)
    return 0


def cmd_rbac(args: argparse.Namespace) -> int:
    """Print (or write) the operator's RBAC rule sets, derived from the code (rbac.py)."""
    from .rbac import render_yaml

    text = render_yaml()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from .devenv import cluster

    return cluster.main([args.action, *args.rest])


def _filename_arg(p: argparse.ArgumentParser) -> None:
    # `-f a.yaml b.yaml`, `-f a.yaml -f b.yaml` and `-f DIR` all work, as with kubectl.
    p.add_argument(
        "-f",
        "--filename",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE",
        help="YAML file, directory of YAML files, or - for standard input (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater", description="Headwater: a Kubernetes operator for on-prem data pipelines."
    )
    parser.add_argument("--version", action="version", version=f"headwater {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the operator against the current kubeconfig")
    p.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable)"
    )
    p.add_argument("--liveness", help="Kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("crds", help="write the CRDs generated from the API models")
    p.add_argument("-o", "--output", default="crds", help="directory (default: crds/)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_crds)

    p = sub.add_parser("render", help="print the objects CRs would produce (offline)")
    _filename_arg(p)
    p.set_defaults(fn=cmd_render)

    p = sub.add_parser("validate", help="check CRs against the API (offline)")
    _filename_arg(p)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("rbac", help="print the operator's RBAC rules (what the chart grants)")
    p.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    p.set_defaults(fn=cmd_rbac)

    p = sub.add_parser("dev", help="local control plane for development (no Docker)")
    p.add_argument("action", choices=["up", "down", "status", "kubeconfig"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except InputError as err:
        print(f"headwater {args.command}: error: {err}", file=sys.stderr)
        return err.code


if __name__ == "__main__":
    sys.exit(main())
