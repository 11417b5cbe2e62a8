"""YAML through libyaml when PyYAML was built with it (it is on every wheel platform).

Rendering parses a Jinja template per manifest and serialises config files on every
reconcile; the pure-Python scanner and emitter were the operator's largest CPU cost at
1,000 resources. The C loader and dumper produce the same documents.
"""

from __future__ import annotations

from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream."""
    return list(yaml.load_all(text, Loader=_Loader))


def dump(obj: Any, *, sort_keys: bool = True) -> str:
    """One document, block style, as `yaml.safe_dump` writes it."""
    out: str = yaml.dump(obj, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False)
    return out
