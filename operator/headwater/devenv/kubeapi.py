"""A deliberately tiny Kubernetes REST client (stdlib ``http.client`` + ``ssl``).

The harness needs a handful of calls -- readiness probes, server-side apply of a few
bootstrap objects, listing nodes -- and must not depend on the operator's own client
libraries (or on ``kubectl`` being fast to exec in a polling loop).
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

FIELD_MANAGER = "headwater-devenv"
JsonObj = dict[str, Any]


class ApiError(RuntimeError):
    """A request reached the apiserver and got a non-2xx answer."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status


@dataclass(frozen=True)
class TlsClient:
    """HTTPS client for ``127.0.0.1:port`` with optional client certificate."""

    port: int
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    timeout: float = 5.0

    def _context(self) -> ssl.SSLContext:
        """Verify against our CA when given; the kcm/scheduler probes use self-signed
        serving certs we do not control, so those skip verification (loopback only)."""
        if self.ca_file is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """One request on a fresh connection; returns (status, body)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=self.timeout, context=self._context()
        )
        try:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def probe(self, path: str) -> bool:
        """True if ``path`` answers 200; connection errors are simply "not yet"."""
        try:
            status, _ = self.request("GET", path)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200


@dataclass(frozen=True)
class KubeApi:
    """JSON helpers over :class:`TlsClient` for the few objects the harness manages."""

    http: TlsClient

    def _call(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> JsonObj:
        """Send one request; raise :class:`ApiError` unless 2xx; decode the JSON body."""
        status, raw = self.http.request(method, path, body, ctype or "application/json")
        if not 200 <= status < 300:
            raise ApiError(method, path, status, raw.decode(errors="replace"))
        result: JsonObj = json.loads(raw) if raw else {}
        return result

    def get(self, path: str) -> JsonObj | None:
        """GET an object; ``None`` if it does not exist."""
        try:
            return self._call("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def apply(self, path: str, obj: JsonObj) -> JsonObj:
        """Server-side apply (create or converge), forcing ownership of our fields."""
        query = urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        body = json.dumps(obj).encode()
        return self._call("PATCH", f"{path}?{query}", body, "application/apply-patch+yaml")

    def delete(self, path: str) -> None:
        """DELETE; a missing object is fine (idempotent teardown)."""
        try:
            self._call("DELETE", path)
        except ApiError as err:
            if err.status != 404:
                raise

    def list_items(self, path: str, label_selector: str = "") -> list[JsonObj]:
        """GET a collection, optionally filtered by label selector."""
        query = f"?{urlencode({'labelSelector': label_selector})}" if label_selector else ""
        items: list[JsonObj] = self._call("GET", path + query).get("items", [])
        return items
