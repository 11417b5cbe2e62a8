"""A small asynchronous Kubernetes API client on aiohttp.

Why not the `kubernetes` package for requests: it is synchronous (every call would need a
thread) and turns every object into generated model classes. The operator only needs plain
dicts, server-side apply, merge patches, list and watch, so this client does exactly that on
the event loop. The `kubernetes` package is still used to *load* credentials (kubeconfig,
in-cluster service account, exec plugins), which it does well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ..constants import FIELD_MANAGER
from .resources import ResourceInfo, ResourceRegistry

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer of the API server."""

    def __init__(
        self, status: int, reason: str, message: str, body: Mapping[str, Any] | None = None
    ):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = dict(body or {})

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def invalid(self) -> bool:
        return self.status == 422

    @property
    def namespace_terminating(self) -> bool:
        """A create refused because the namespace is being deleted (NamespaceLifecycle)."""
        if self.status != 403:
            return False
        causes = (self.body.get("details") or {}).get("causes") or []
        return any(c.get("reason") == "NamespaceTerminating" for c in causes) or (
            "because it is being terminated" in self.message
        )


@dataclass
class Credentials:
    """Where and how to reach the API server."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    verify: bool = True
    # Re-reads short-lived tokens (in-cluster bound tokens, exec plugins).
    refresh: Any = None

    @classmethod
    def load(cls, kubeconfig: str | None = None, context: str | None = None) -> Credentials:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        cfg = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
            token_file = None
        except (k8s_config.ConfigException, TypeError, FileNotFoundError):
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token"
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        return cls(
            server=cfg.host.rstrip("/"),
            ca_file=cfg.ssl_ca_cert,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            token=token,
            token_file=token_file,
            verify=bool(cfg.verify_ssl),
            refresh=(lambda: _refresh(cfg)) if cfg.refresh_api_key_hook else None,
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def bearer(self) -> str | None:
        if self.refresh is not None:
            fresh = self.refresh()
            if fresh:
                self.token = fresh
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    self.token = fh.read().strip()
            except OSError:
                pass
        return self.token


def _refresh(cfg: Any) -> str | None:
    cfg.refresh_api_key_hook(cfg)
    token = (cfg.api_key or {}).get("authorization")
    if token and token.lower().startswith("bearer "):
        return str(token[7:])
    return None


class RequestCounter:
    """Counts API requests by verb (exported as metrics, used by the benchmark)."""

    def __init__(self) -> None:
        self.by_verb: dict[str, int] = {}

    def add(self, verb: str) -> None:
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1


class Kube:
    """Asynchronous API client. Create once per process; share it."""

    def __init__(self, creds: Credentials, *, max_connections: int = 32, timeout: float = 30.0):
        self.creds = creds
        self.resources = ResourceRegistry(self)
        self.counter = RequestCounter()
        self._max_connections = max_connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._token_checked = 0.0

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self.creds.ssl_context(), limit=self._max_connections
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        now = time.monotonic()
        if now - self._token_checked > 60 or self.creds.token is None:
            self._token_checked = now
            self.creds.bearer()
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        session = self._get_session()
        data = None if body is None else json.dumps(body)
        self.counter.add(method)
        if method != "GET" and log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", method, path)
        async with session.request(
            method,
            self.creds.server + path,
            params={k: str(v) for k, v in (params or {}).items() if v is not None},
            data=data,
            headers=self._headers(content_type if data is not None else None),
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise _error(resp.status, text)
            return json.loads(text) if text else None

    # --- typed helpers ---------------------------------------------------------------------

    async def info(self, api_version: str, kind: str) -> ResourceInfo:
        return await self.resources.get(api_version, kind)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Obj | None:
        info = await self.info(api_version, kind)
        try:
            result: Obj = await self.request("GET", info.path(namespace, name))
        except ApiError as err:
            if err.not_found:
                return None
            raise
        return result

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> tuple[list[Obj], str]:
        """All objects (paginated) and the list's resourceVersion."""
        info = await self.info(api_version, kind)
        items: list[Obj] = []
        cont: str | None = None
        while True:
            page = await self.request(
                "GET",
                info.path(namespace),
                params={
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "limit": limit,
                    "continue": cont,
                },
                timeout=120,
            )
            for item in page.get("items", []):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            cont = page.get("metadata", {}).get("continue")
            if not cont:
                return items, page.get("metadata", {}).get("resourceVersion", "")

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 290,
    ) -> AsyncIterator[Obj]:
        """Watch events (dicts with type and object) until the server closes the stream."""
        info = await self.info(api_version, kind)
        session = self._get_session()
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        self.counter.add("WATCH")
        async with session.get(
            self.creds.server + info.path(namespace),
            params=params,
            headers=self._headers(),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30),
        ) as resp:
            if resp.status >= 400:
                raise _error(resp.status, await resp.text())
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)

    async def apply(
        self, obj: Obj, *, force: bool = True, field_manager: str = FIELD_MANAGER
    ) -> Obj:
        """Server-side apply of a whole object."""
        meta = obj["metadata"]
        info = await self.info(obj["apiVersion"], obj["kind"])
        result: Obj = await self.request(
            "PATCH",
            info.path(meta.get("namespace"), meta["name"]),
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        return result

    async def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        info = await self.info(obj["apiVersion"], obj["kind"])
        result: Obj = await self.request(
            "POST",
            info.path(meta.get("namespace")),
            params={"fieldManager": FIELD_MANAGER},
            body=obj,
        )
        return result

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> Obj:
        info = await self.info(api_version, kind)
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        result: Obj = await self.request(
            "PATCH",
            info.path(namespace, name, subresource),
            params={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type=content_type,
        )
        return result

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when it was already gone."""
        info = await self.info(api_version, kind)
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", info.path(namespace, name), body=body)
        except ApiError as err:
            if err.not_found or (err.conflict and uid):
                return False
            raise
        return True


def _error(status: int, text: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        body = {"message": text[:500]}
    return ApiError(status, body.get("reason", ""), body.get("message", text[:500]), body)


def quote_name(name: str) -> str:
    return quote(name, safe="")


async def wait_for(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    """Poll an async predicate until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return False
