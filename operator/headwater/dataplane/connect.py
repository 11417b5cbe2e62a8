"""Kafka Connect REST client (blocking, `requests`; call through `ctx.blocking`).

Two kinds of failure matter to the operator and get their own exception:
`ConnectUnavailable` (no answer, timeouts, 5xx, 409 while the workers rebalance: retry
later) and `ConnectError` (Connect answered and refused the request, e.g. a config its
validation rejects). Connect's error bodies are `{"error_code": .., "message": ..}`.
Connector configs sent here only ever hold config-provider references for credentials, so
nothing this module sends or logs can contain a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import requests

InitialState = Literal["RUNNING", "PAUSED", "STOPPED"]


# Part of the message Kafka Connect 4.x returns (HTTP 500) when a connector config fails
# validation during create/update; the real validation errors are lost.
HIDDEN_VALIDATION_ERROR = "ConfigInfo.configValue()"


class ConnectUnavailable(Exception):
    """Kafka Connect did not answer usefully; try again later."""


class ConnectError(Exception):
    """Kafka Connect refused the request (a 4xx, or a config it rejected)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TaskState:
    id: int
    state: str
    worker_id: str | None = None
    trace: str | None = None


@dataclass(frozen=True)
class ConnectorState:
    state: str
    worker_id: str | None = None
    trace: str | None = None
    tasks: tuple[TaskState, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or any(t.state == "FAILED" for t in self.tasks)

    @property
    def running(self) -> bool:
        return (
            self.state == "RUNNING"
            and bool(self.tasks)
            and all(t.state == "RUNNING" for t in self.tasks)
        )


def short_trace(trace: str | None, limit: int = 1000) -> str | None:
    """First line of a Java stack trace plus its root cause (the last `Caused by:`): the
    first line alone is often just "An exception occurred in the change event producer"."""
    if not trace:
        return None
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    causes = [ln for ln in lines if ln.startswith("Caused by:")]
    text = first
    if causes and causes[-1].removeprefix("Caused by: ") not in first:
        text = f"{first} | {causes[-1]}"
    return text[:limit]


class ConnectClient:
    """One Kafka Connect cluster's REST API."""

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        timeout: float = 10.0,
    ):
        self.url = url.rstrip("/")
        self.auth = auth
        self.verify = verify
        self.timeout = timeout

    def __repr__(self) -> str:  # never show auth
        return f"ConnectClient({self.url!r})"

    # --- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok_missing: bool = False,
    ) -> Any:
        try:
            resp = requests.request(
                method,
                self.url + path,
                json=json,
                params=params,
                auth=self.auth,
                verify=self.verify,
                timeout=self.timeout,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as err:
            raise ConnectUnavailable(f"{self.url}: {_describe(err)}") from None
        if resp.status_code == 404 and ok_missing:
            return None
        if resp.status_code == 500 and HIDDEN_VALIDATION_ERROR in resp.text:
            # Kafka Connect 4.x answers a config that fails validation while its config
            # providers resolve it with this NullPointerException instead of the reason.
            raise ConnectError(
                500,
                f"{method} {path}: the worker rejected the connector config but did not say "
                "why (Kafka Connect hides validation errors here). Most often a credentials "
                "reference the worker cannot resolve: check the platform's "
                "connect.external.secretsProvider/secretsMountPath against the worker's "
                "config.providers and the mounted Secret, or that the database is reachable "
                "from the worker",
            )
        if resp.status_code >= 500 or resp.status_code == 409:
            raise ConnectUnavailable(f"{method} {path}: HTTP {resp.status_code} {_message(resp)}")
        if resp.status_code >= 400:
            raise ConnectError(resp.status_code, f"{method} {path}: {_message(resp)}")
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            return {}

    @staticmethod
    def _path(name: str, suffix: str = "") -> str:
        return f"/connectors/{quote(name, safe='')}{suffix}"

    # --- API --------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """`GET /`: the worker's version and the Kafka cluster id."""
        out: dict[str, Any] = self._request("GET", "/")
        return out

    def ensure_ready(self) -> None:
        """Raise ConnectUnavailable while the worker starts. A starting worker answers 404
        for connectors it has not read yet; `GET /health` (Kafka 3.9+) tells the two apart.
        Older workers have no /health: they count as ready."""
        try:
            resp = requests.get(
                self.url + "/health", auth=self.auth, verify=self.verify, timeout=self.timeout
            )
        except requests.RequestException as err:
            raise ConnectUnavailable(f"{self.url}: {_describe(err)}") from None
        if resp.status_code >= 500:
            raise ConnectUnavailable(f"worker not ready: {_message(resp)}")

    def plugins(self) -> set[str]:
        """Connector classes installed on the workers."""
        data = self._request(
            "GET", "/connector-plugins", params={"connectorsOnly": "true"}, ok_missing=True
        )
        if data is None:  # the REST resources are not registered yet: still starting
            raise ConnectUnavailable("GET /connector-plugins: HTTP 404 (worker starting)")
        return {str(p.get("class")) for p in data}

    def connectors(self) -> list[str]:
        return list(self._request("GET", "/connectors") or [])

    def config(self, name: str) -> dict[str, str] | None:
        """The stored config (config-provider references unresolved), None when absent."""
        data = self._request("GET", self._path(name, "/config"), ok_missing=True)
        return None if data is None else {str(k): str(v) for k, v in data.items()}

    def create(self, name: str, config: Mapping[str, str], initial: InitialState) -> None:
        """Create a connector directly in its target state (KIP-980), so a paused or
        stopped CdcConnector never runs a task first."""
        body = {"name": name, "config": dict(config), "initial_state": initial}
        try:
            self._request("POST", "/connectors", json=body)
        except ConnectUnavailable as err:
            # 409 "already exists": somebody (or our previous attempt) created it.
            if "already exists" not in str(err):
                raise
            self.put_config(name, config)

    def put_config(self, name: str, config: Mapping[str, str]) -> None:
        """Create or update; Connect restarts the connector and its tasks on a change."""
        self._request("PUT", self._path(name, "/config"), json=dict(config))

    def status(self, name: str) -> ConnectorState | None:
        data = self._request("GET", self._path(name, "/status"), ok_missing=True)
        if data is None:
            return None
        conn = data.get("connector") or {}
        tasks = tuple(
            TaskState(
                id=int(t.get("id", 0)),
                state=str(t.get("state", "UNASSIGNED")),
                worker_id=t.get("worker_id"),
                trace=short_trace(t.get("trace")),
            )
            for t in sorted(data.get("tasks") or [], key=lambda t: int(t.get("id", 0)))
        )
        return ConnectorState(
            state=str(conn.get("state", "UNASSIGNED")),
            worker_id=conn.get("worker_id"),
            trace=short_trace(conn.get("trace")),
            tasks=tasks,
        )

    def topics(self, name: str) -> list[str]:
        """Topics the connector has written to since it was created or its topics reset."""
        data = self._request("GET", self._path(name, "/topics"), ok_missing=True) or {}
        return sorted(str(t) for t in (data.get(name) or {}).get("topics") or [])

    def pause(self, name: str) -> None:
        self._request("PUT", self._path(name, "/pause"))

    def resume(self, name: str) -> None:
        self._request("PUT", self._path(name, "/resume"))

    def stop(self, name: str) -> None:
        self._request("PUT", self._path(name, "/stop"))

    def restart(self, name: str, *, include_tasks: bool = True, only_failed: bool = True) -> None:
        self._request(
            "POST",
            self._path(name, "/restart"),
            params={
                "includeTasks": str(include_tasks).lower(),
                "onlyFailed": str(only_failed).lower(),
            },
        )

    def delete(self, name: str) -> bool:
        """Delete the connector; False when it did not exist."""
        return self._request("DELETE", self._path(name), ok_missing=True) is not None

    def delete_offsets(self, name: str) -> bool:
        """Reset a *stopped* connector's source offsets (KIP-875); False when absent."""
        return self._request("DELETE", self._path(name, "/offsets"), ok_missing=True) is not None


def _message(resp: requests.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])[:2000]
    return str(data)[:300]


def _describe(err: requests.RequestException) -> str:
    """A short cause without the full URL repetition urllib3 puts into messages."""
    if isinstance(err, requests.ConnectTimeout | requests.ReadTimeout):
        return "timed out"
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(err, requests.ConnectionError):
        text = str(err)
        for marker, meaning in (
            ("Connection refused", "connection refused"),
            ("Name or service not known", "host name not resolvable"),
            ("Temporary failure in name resolution", "host name not resolvable"),
            ("Failed to resolve", "host name not resolvable"),
            ("No route to host", "no route to host"),
        ):
            if marker in text:
                return meaning
        return "connection failed"
    return type(err).__name__
