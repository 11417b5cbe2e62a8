"""Reachability probes of external endpoints (blocking; run them through ctx.blocking)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import requests


def tcp(host_ports: list[str], timeout: float = 3.0) -> str | None:
    """None when at least one `host:port` accepts a TCP connection, else the last error."""
    error = "no endpoints"
    for hp in host_ports:
        host, _, port = hp.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return None
        except OSError as err:
            error = f"{hp}: {err.strerror or err}"
    return error


def http(url: str, path: str = "/", timeout: float = 3.0, verify: bool = True) -> str | None:
    """None when `url + path` answers with any HTTP status below 500, else why not."""
    target = url.rstrip("/") + path
    try:
        resp = requests.get(target, timeout=timeout, verify=verify)
    except requests.RequestException as err:
        parsed = urlparse(url)
        return f"{parsed.netloc}: {type(err).__name__}"
    if resp.status_code >= 500:
        return f"{target}: HTTP {resp.status_code}"
    return None
