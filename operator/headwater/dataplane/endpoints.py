"""Where the operator itself connects to a data-plane endpoint.

Status publishes in-cluster addresses (`http://shop-connect.shop.svc:8083`) because that is
where workloads and users reach them. An operator running *outside* the cluster (a laptop,
the local control plane of this repository, a management cluster) cannot resolve those names;
`HEADWATER_ENDPOINT_OVERRIDES` maps them to reachable addresses:

    HEADWATER_ENDPOINT_OVERRIDES="shop-connect.shop.svc:8083=127.0.0.1:58083,shop-minio.shop.svc:9000=127.0.0.1:59000"

Only the operator's own connections are rewritten; nothing users see changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit


def parse_overrides(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if "=" in item:
            src, _, dst = item.strip().partition("=")
            out[src.strip()] = dst.strip()
    return out


def from_env() -> dict[str, str]:
    return parse_overrides(os.environ.get("HEADWATER_ENDPOINT_OVERRIDES"))


def resolve_hostport(hostport: str, overrides: Mapping[str, str]) -> str:
    return overrides.get(hostport, hostport)


def resolve_url(url: str, overrides: Mapping[str, str]) -> str:
    """`url` with its host:port replaced when an override names it."""
    if not overrides:
        return url
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = overrides.get(f"{parts.hostname}:{port}")
    if target is None:
        return url
    return urlunsplit((parts.scheme, target, parts.path, parts.query, parts.fragment))
