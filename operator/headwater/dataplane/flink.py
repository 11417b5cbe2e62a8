"""Flink JobManager REST and SQL Gateway REST client (blocking; call through ctx.blocking).

Narrow on purpose: what a StreamJob needs to submit, observe, stop with a savepoint and
cancel one job. Everything it raises is a `FlinkError`:

* `FlinkUnavailable` — Flink (or the gateway) did not answer, or answered 5xx for a request
  that is not about our statement: retry later.
* `SubmissionRejected` — Flink refused the program. `invalid` is True for SQL parse and
  validation errors (the spec must change), False for anything else (retry with back-off).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ACTIVE_STATES = frozenset(
    {"INITIALIZING", "CREATED", "RUNNING", "FAILING", "CANCELLING", "RESTARTING", "RECONCILING"}
)
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})
_INVALID_MARKERS = (
    "SqlParserException",
    "SqlParseException",
    "ValidationException",
    "SqlValidatorException",
    "CalciteContextException",
)


class FlinkError(Exception):
    pass


class FlinkUnavailable(FlinkError):
    pass


class SubmissionRejected(FlinkError):
    def __init__(self, message: str, *, invalid: bool, duplicate: bool = False):
        super().__init__(message)
        self.invalid = invalid
        self.duplicate = duplicate


@dataclass(frozen=True)
class JobInfo:
    id: str
    name: str
    state: str
    start_time: int | None = None  # epoch ms
    end_time: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class Snapshot:
    """A completed checkpoint or savepoint."""

    path: str
    time_ms: int
    savepoint: bool


@dataclass(frozen=True)
class SavepointStatus:
    state: str  # IN_PROGRESS, COMPLETED, FAILED
    location: str | None = None
    failure: str | None = None


_EXCEPTION_LINE = re.compile(r"^(Caused by: )?[a-z][\w.$]*\.[A-Z]\w*(Exception|Error)\b")


def root_cause_line(trace: str | None) -> str | None:
    """The most specific line of a Java stack trace: the last exception line (`Caused by:`
    or a nested server-side trace's own header), else the first line."""
    if not trace:
        return None
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    causes = [ln for ln in lines if _EXCEPTION_LINE.match(ln)]
    line = causes[-1].removeprefix("Caused by:").strip() if causes else lines[0]
    return line[:1000]


def _errors_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("errors"):
        return "\n".join(str(e) for e in body["errors"])
    return str(body)[:4000]


class FlinkClient:
    def __init__(self, rest_url: str, gateway_url: str | None = None, timeout: float = 10.0):
        self.rest_url = rest_url.rstrip("/")
        self.gateway_url = gateway_url.rstrip("/") if gateway_url else None
        self.timeout = timeout
        self.http = requests.Session()

    # --- plumbing -----------------------------------------------------------------------------

    def _call(
        self, method: str, url: str, *, ok404: bool = False, **kw: Any
    ) -> requests.Response | None:
        try:
            resp = self.http.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as err:
            where = urlsplit(url).netloc
            raise FlinkUnavailable(f"{where}: {type(err).__name__}") from err
        if resp.status_code == 404 and ok404:
            return None
        return resp

    def _json(self, method: str, path: str, *, ok404: bool = False, **kw: Any) -> Any:
        resp = self._call(method, self.rest_url + path, ok404=ok404, **kw)
        if resp is None:
            return None
        if resp.status_code >= 400:
            text = root_cause_line(_errors_text(_safe_json(resp))) or resp.reason
            if resp.status_code >= 500:
                raise FlinkUnavailable(f"{method} {path}: HTTP {resp.status_code}: {text}")
            raise FlinkError(f"{method} {path}: HTTP {resp.status_code}: {text}")
        return _safe_json(resp)

    # --- observe ------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        return dict(self._json("GET", "/overview") or {})

    def job(self, job_id: str) -> JobInfo | None:
        body = self._json("GET", f"/jobs/{job_id}", ok404=True)
        if body is None:
            return None
        return JobInfo(
            id=body["jid"],
            name=body.get("name", ""),
            state=body.get("state", "UNKNOWN"),
            start_time=_ms(body.get("start-time")),
            end_time=_ms(body.get("end-time")),
        )

    def jobs(self) -> list[JobInfo]:
        body = self._json("GET", "/jobs/overview") or {}
        return [
            JobInfo(
                j["jid"],
                j.get("name", ""),
                j["state"],
                _ms(j.get("start-time")),
                _ms(j.get("end-time")),
            )
            for j in body.get("jobs", [])
        ]

    def restarts(self, job_id: str) -> int:
        body = self._json(
            "GET", f"/jobs/{job_id}/metrics", params={"get": "numRestarts"}, ok404=True
        )
        for metric in body or []:
            if metric.get("id") == "numRestarts":
                with contextlib.suppress(TypeError, ValueError):
                    return int(float(metric["value"]))
        return 0

    def snapshots(self, job_id: str) -> tuple[Snapshot | None, Snapshot | None]:
        """(latest completed checkpoint, latest savepoint) of a job."""
        body = self._json("GET", f"/jobs/{job_id}/checkpoints", ok404=True) or {}
        latest = body.get("latest") or {}

        def snap(entry: Any, savepoint: bool) -> Snapshot | None:
            if not entry or not entry.get("external_path") or entry.get("status") != "COMPLETED":
                return None
            if entry.get("discarded"):  # subsumed, or removed after a stop-with-savepoint
                return None
            stamp = entry.get("latest_ack_timestamp") or entry.get("trigger_timestamp") or 0
            return Snapshot(entry["external_path"], int(stamp), savepoint)

        return snap(latest.get("completed"), False), snap(latest.get("savepoint"), True)

    def root_cause(self, job_id: str) -> str | None:
        body = self._json("GET", f"/jobs/{job_id}/exceptions", ok404=True) or {}
        entries = (body.get("exceptionHistory") or {}).get("entries") or []
        if entries:
            first = entries[0]
            return root_cause_line(first.get("stacktrace")) or first.get("exceptionName")
        return root_cause_line(body.get("root-exception"))

    # --- stop ---------------------------------------------------------------------------------

    def stop_with_savepoint(self, job_id: str, target_dir: str, trigger: str) -> None:
        """Idempotent for the same `trigger`: Flink answers with the same request id."""
        self._json(
            "POST",
            f"/jobs/{job_id}/stop",
            json={"targetDirectory": target_dir, "drain": False, "triggerId": trigger},
        )

    def savepoint_status(self, job_id: str, trigger: str) -> SavepointStatus | None:
        """None when Flink no longer knows the trigger (JobManager restarted, result expired)."""
        body = self._json("GET", f"/jobs/{job_id}/savepoints/{trigger}", ok404=True)
        if body is None:
            return None
        state = (body.get("status") or {}).get("id", "IN_PROGRESS")
        operation = body.get("operation") or {}
        failure = operation.get("failure-cause")
        return SavepointStatus(
            state="FAILED" if state == "COMPLETED" and failure else state,
            location=operation.get("location"),
            failure=root_cause_line((failure or {}).get("stack-trace"))
            or (failure or {}).get("class")
            if failure
            else None,
        )

    def cancel(self, job_id: str) -> None:
        resp = self._call(
            "PATCH", f"{self.rest_url}/jobs/{job_id}", ok404=True, params={"mode": "cancel"}
        )
        if resp is not None and resp.status_code >= 400 and resp.status_code != 409:
            raise FlinkUnavailable(f"cancel {job_id}: HTTP {resp.status_code}")

    # --- submit: SQL Gateway ------------------------------------------------------------------

    def submit_sql(self, setup: list[str], job_statement: str, properties: dict[str, str]) -> str:
        """Run `setup` then `job_statement` in a fresh gateway session configured with
        `properties`; return the job id Flink reports. The session is closed afterwards (the
        job lives on in the cluster)."""
        if not self.gateway_url:
            raise SubmissionRejected(
                "the platform names no Flink SQL Gateway (flinkSqlGatewayUrl)", invalid=True
            )
        resp = self._gateway("POST", "/v1/sessions", json={"properties": properties})
        if resp.status_code >= 400:
            raise _rejected(_errors_text(_safe_json(resp)), "open session")
        session = resp.json()["sessionHandle"]
        try:
            for statement in setup:
                self._statement(session, statement)
            result = self._statement(session, job_statement)
        finally:
            with contextlib.suppress(FlinkError):
                self._gateway("DELETE", f"/v1/sessions/{session}")
        job_id = result.get("jobID")
        if not job_id:
            rows = ((result.get("results") or {}).get("data")) or []
            job_id = rows[0]["fields"][0] if rows and rows[0].get("fields") else None
        if not job_id:
            raise SubmissionRejected("the job statement produced no Flink job", invalid=True)
        return str(job_id)

    def _gateway(self, method: str, path: str, **kw: Any) -> requests.Response:
        assert self.gateway_url
        resp = self._call(method, self.gateway_url + path, **kw)
        assert resp is not None
        if resp.status_code >= 500 and path.endswith(("/status", "/v1/sessions")):
            raise FlinkUnavailable(f"SQL gateway {method} {path}: HTTP {resp.status_code}")
        return resp

    def _statement(self, session: str, statement: str, wait: float = 120.0) -> dict[str, Any]:
        resp = self._gateway(
            "POST", f"/v1/sessions/{session}/statements", json={"statement": statement}
        )
        if resp.status_code >= 400:
            raise _rejected(_errors_text(_safe_json(resp)), statement)
        op = resp.json()["operationHandle"]
        base = f"/v1/sessions/{session}/operations/{op}"
        deadline = time.monotonic() + wait
        while True:
            status = _safe_json(self._gateway("GET", base + "/status")).get("status")
            if status not in ("INITIALIZED", "PENDING", "RUNNING"):
                break
            if time.monotonic() > deadline:
                raise FlinkUnavailable(f"SQL gateway: statement still {status} after {wait:.0f}s")
            time.sleep(0.2)
        result = self._gateway("GET", base + "/result/0", params={"rowFormat": "JSON"})
        body = _safe_json(result)
        if status != "FINISHED" or result.status_code >= 400:
            raise _rejected(_errors_text(body), statement)
        return dict(body)

    # --- submit: JobManager REST (jars) -------------------------------------------------------

    def submit_jar(
        self,
        jar: bytes,
        file_name: str,
        *,
        entry_class: str | None,
        args: list[str],
        parallelism: int,
        job_id: str,
        restore: str | None,
        allow_non_restored: bool,
        config: dict[str, str],
    ) -> str:
        """Upload, run, delete the upload. Returns the job id (the fixed one we asked for)."""
        resp = self._call(
            "POST",
            f"{self.rest_url}/jars/upload",
            files={"jarfile": (file_name, jar, "application/x-java-archive")},
        )
        assert resp is not None
        if resp.status_code >= 400:
            raise FlinkUnavailable(f"jar upload: HTTP {resp.status_code}")
        jar_id = Path(resp.json()["filename"]).name
        run: dict[str, Any] = {
            "programArgsList": args,
            "parallelism": parallelism,
            "jobId": job_id,
            "allowNonRestoredState": allow_non_restored,
            "flinkConfiguration": config,
        }
        if entry_class:
            run["entryClass"] = entry_class
        if restore:
            run["savepointPath"] = restore
        try:
            resp = self._call("POST", f"{self.rest_url}/jars/{jar_id}/run", json=run)
            assert resp is not None
            if resp.status_code >= 400:
                raise _rejected(_errors_text(_safe_json(resp)), file_name, jar=True)
            return str(resp.json().get("jobid") or job_id)
        finally:
            with contextlib.suppress(FlinkError):
                self._call("DELETE", f"{self.rest_url}/jars/{jar_id}")


def _rejected(text: str, statement: str, jar: bool = False) -> SubmissionRejected:
    line = root_cause_line(text) or "rejected"
    duplicate = "DuplicateApplicationSubmission" in text or "DuplicateJobSubmission" in text
    invalid = not jar and any(m in text for m in _INVALID_MARKERS)
    first = re.sub(r"\s+", " ", statement)[:80]
    return SubmissionRejected(f"{line} (in: {first})", invalid=invalid, duplicate=duplicate)


def _safe_json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return {"errors": [resp.text[:2000]]}


def _ms(value: Any) -> int | None:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return None
    return ms if ms > 0 else None


def read_jar(uri: str, timeout: float = 60.0) -> tuple[bytes, str]:
    """Bytes and file name of a jar at an https:// or file:// URI (the API allows nothing else)."""
    parts = urlsplit(uri)
    name = Path(parts.path).name or "job.jar"
    if parts.scheme == "file":
        return Path(parts.path).read_bytes(), name
    try:
        resp = requests.get(uri, timeout=timeout)
    except requests.RequestException as err:
        raise FlinkUnavailable(f"jar {uri}: {type(err).__name__}") from err
    if resp.status_code >= 400:
        raise SubmissionRejected(f"jar {uri}: HTTP {resp.status_code}", invalid=False)
    return resp.content, name
