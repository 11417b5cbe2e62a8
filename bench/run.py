#!/usr/bin/env python3
"""Scale benchmark of the Headwater operator against the real local control plane.

For each N (default 100, 300, 1000 mixed CRs) and repeat, in one run:
  1. baseline: the CRs' child objects server-side-applied straight from a parallel client,
     and the CRs alone (created, one status write each, no operator);
  2. convergence: the operator (a real `headwater run` subprocess) takes N CRs to Ready;
  3. steady state: resourceVersions of CRs and children and apiserver request counts
     (`apiserver_request_total`) over a window;
  4. operator RSS at N CRs;
  5. single spec change -> children updated, latency distribution;
  6. operator restart -> first reconcile of all N existing CRs.
Writes bench/results/report.{json,md} and convergence.png. Targets are checked in the
report, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform as pyplatform
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "tests"))

from headwater.kube.client import ApiError, Credentials, Kube  # noqa: E402
from headwater.render.registry import render_offline  # noqa: E402
from hwtest.operator import OperatorProcess  # noqa: E402

API = "headwater.dev/v1alpha1"
PLURALS = {
    "DataPlatform": "dataplatforms",
    "DataSource": "datasources",
    "CdcConnector": "cdcconnectors",
    "StreamJob": "streamjobs",
    "LakeZone": "lakezones",
}
CHILD_RESOURCES = {
    "configmaps",
    "secrets",
    "services",
    "serviceaccounts",
    "persistentvolumeclaims",
    "statefulsets",
    "deployments",
    "poddisruptionbudgets",
    "roles",
    "rolebindings",
    "jobs",
    "cronjobs",
}
TARGETS = {
    "converge_seconds_1000": 60.0,
    "converge_ratio": 1.5,
    "steady_rv_changes": 0,
    "requests_per_cr_per_resync": 1.0,
    "rss_mb_1000": 250.0,
    "spec_change_p95_seconds": 1.0,
    "restart_first_reconcile_seconds_1000": 20.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the CR mix ---------------------------------------------------------------------------


def group(
    ns: str, i: int, kinds: set[str], env: dict[str, str], run_id: str
) -> list[dict[str, Any]]:
    """One pipeline: platform, credentials, source, connector, job and zone."""
    p = f"p{i}"
    out: list[dict[str, Any]] = []

    def cr(kind: str, name: str, spec: dict[str, Any]) -> None:
        if kind in kinds:
            out.append(
                {
                    "apiVersion": API,
                    "kind": kind,
                    "metadata": {"name": name, "namespace": ns, "labels": {"bench": run_id}},
                    "spec": spec,
                }
            )

    s3 = env.get("HEADWATER_MINIO_URL", "http://127.0.0.1:59000")
    connect = env.get("HEADWATER_CONNECT_URL", "http://127.0.0.1:58083")
    cr(
        "DataPlatform",
        p,
        {
            "kafka": {"mode": "managed", "managed": {"replicas": 1, "defaultReplicationFactor": 1}},
            "connect": {
                "mode": "external",
                "external": {
                    "url": connect,
                    "secretsProvider": "directory",
                    "secretsMountPath": env["HEADWATER_CONNECT_SECRETS_DIR"],
                },
            },
            "flink": {"mode": "disabled"},
            "spark": {"mode": "managed"},
            "objectStore": {
                "mode": "external",
                "external": {
                    "endpoint": s3,
                    "kind": "minio",
                    "credentialsSecretRef": {"name": "s3-admin"},
                },
            },
            "monitoring": {"mode": "disabled"},
        },
    )
    cr(
        "DataSource",
        f"db{i}",
        {
            "type": "postgres",
            "host": "127.0.0.1",
            "port": int(env.get("HEADWATER_PG_PORT", "55432")),
            "database": "shop",
            "credentialsSecretRef": {"name": "db-credentials"},
            "tables": ["public.orders"],
            "preflight": {"intervalSeconds": 300},
        },
    )
    cr(
        "CdcConnector",
        f"cdc{i}",
        {
            "platformRef": {"name": p},
            "sourceRef": {"name": f"db{i}"},
            "tables": ["public.orders"],
            "topicPrefix": f"bench{i}",
            "state": "running",
        },
    )
    cr(
        "StreamJob",
        f"etl{i}",
        {
            "platformRef": {"name": p},
            "engine": "spark",
            "spark": {
                "mode": "batch",
                "schedule": "0 2 * * *",
                "application": {"file": "local:///opt/app/etl.py"},
            },
        },
    )
    cr(
        "LakeZone",
        f"zone{i}",
        {
            "platformRef": {"name": p},
            "tier": "bronze",
            "bucket": f"bench-{ns[-12:]}-{i}",
            "deletionPolicy": "Delete",
        },
    )
    return out


def workload(
    n: int, prefix: str, kinds: set[str], env: dict[str, str]
) -> tuple[list[str], list[dict[str, Any]]]:
    per_group = max(1, len(kinds))
    groups = max(1, n // per_group)
    namespaces = [f"{prefix}-{k}" for k in range(max(1, groups // 20))]
    crs: list[dict[str, Any]] = []
    for i in range(groups):
        crs += group(namespaces[i % len(namespaces)], i, kinds, env, prefix)
    return namespaces, crs[:n]


def mount_for_connect(ns: str, env: dict[str, str]) -> None:
    """Put the database credentials where the local Connect worker reads them, as a Secret
    volume would in a pod: <mount>/<namespace>/<secret>/<key>."""
    base = Path(env["HEADWATER_CONNECT_SECRETS_DIR"]) / ns / "db-credentials"
    base.mkdir(parents=True, exist_ok=True)
    (base / "username").write_text(env.get("HEADWATER_PG_USER", "debezium"))
    (base / "password").write_text(env.get("HEADWATER_PG_PASSWORD", "dbz"))


def support_objects(ns: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """Secrets the CRs reference (test credentials of the local services)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-admin", "namespace": ns},
            "stringData": {
                "accessKey": env["HEADWATER_MINIO_ACCESS_KEY"],
                "secretKey": env["HEADWATER_MINIO_SECRET_KEY"],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": ns},
            "stringData": {
                "username": env.get("HEADWATER_PG_USER", "debezium"),
                "password": env.get("HEADWATER_PG_PASSWORD", "dbz"),
            },
        },
    ]


# --- cluster helpers ----------------------------------------------------------------------


async def apply_all(kube: Kube, objs: Iterable[dict[str, Any]], concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(obj: dict[str, Any]) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    await kube.apply(obj, field_manager="bench")
                    return
                except ApiError as err:
                    if err.status in (409, 429, 500, 503) and attempt < 4:
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    raise

    started = time.perf_counter()
    await asyncio.gather(*(one(o) for o in objs))
    return time.perf_counter() - started


async def ensure_namespaces(kube: Kube, names: Iterable[str]) -> None:
    await apply_all(
        kube,
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names),
        16,
    )


async def delete_namespaces(kube: Kube, names: Iterable[str]) -> None:
    for n in names:
        with contextlib.suppress(ApiError):
            await kube.delete("v1", "Namespace", None, n)


async def wait_gone(kube: Kube, names: list[str], timeout: float = 600) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not [n for n in names if await kube.get("v1", "Namespace", None, n)]:
            return
        await asyncio.sleep(2)


async def crs_alone(
    kube: Kube, crs: list[dict[str, Any]], namespaces: list[str], concurrency: int
) -> dict[str, Any]:
    """The CRs without an operator: created from the parallel client, then given one status
    write each (the Ready and Reconciling conditions and observedGeneration, the least an
    operator writes). What the API server and etcd spend here, convergence spends too,
    however good the operator; with the baseline's it bounds convergence from below."""
    moved = {ns: f"{ns}-crs" for ns in namespaces}
    await ensure_namespaces(kube, moved.values())
    objs = []
    for cr in crs:
        obj = json.loads(json.dumps(cr))
        obj["metadata"]["namespace"] = moved[obj["metadata"]["namespace"]]
        objs.append(obj)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": t,
                "status": v,
                "reason": r,
                "message": m,
                "observedGeneration": 1,
                "lastTransitionTime": now,
            }
            for t, v, r, m in (
                ("Ready", "True", "Ready", "all components are ready"),
                ("Reconciling", "False", "Ready", "up to date"),
            )
        ],
    }
    sem = asyncio.Semaphore(concurrency)

    async def write_status(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        async with sem:
            await kube.patch(
                API,
                obj["kind"],
                meta["namespace"],
                meta["name"],
                {"status": status},
                subresource="status",
            )

    cpu0 = process_cpu()
    t0 = time.perf_counter()
    await apply_all(kube, objs, concurrency)
    created = time.perf_counter() - t0
    await asyncio.gather(*(write_status(o) for o in objs))
    elapsed = time.perf_counter() - t0
    out = {
        "create_seconds": created,
        "seconds": elapsed,
        "cpu": cpu_delta(process_cpu(), cpu0, elapsed),
    }
    await delete_namespaces(kube, list(moved.values()))
    await wait_gone(kube, list(moved.values()))
    return out


def ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


class Tracker:
    """The latest copy of every object of some kinds, kept by a watch per kind.

    Polling with LISTs once a second (1,000 CRs with their status and managed fields, five
    kinds) loaded the API server under measurement with a few hundred big LISTs per run; a
    watch costs it one encoding per change, which it makes for the operator anyway."""

    def __init__(
        self,
        kube: Kube,
        kinds: Iterable[tuple[str, str]],
        label_selector: str | None = None,
        namespaces: Iterable[str] | None = None,
    ) -> None:
        self.kube = kube
        self.kinds = list(kinds)
        self.selector = label_selector
        self.namespaces = set(namespaces) if namespaces is not None else None
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Tracker:
        lists = [self._list(av, kind) for av, kind in self.kinds]
        rvs = await asyncio.gather(*lists)
        self._tasks = [
            asyncio.create_task(self._watch(av, kind, rv))
            for (av, kind), rv in zip(self.kinds, rvs, strict=True)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _keep(self, kind: str, obj: dict[str, Any], deleted: bool = False) -> None:
        meta = obj["metadata"]
        if self.namespaces is not None and meta.get("namespace") not in self.namespaces:
            return
        key = (kind, meta.get("namespace", ""), meta["name"])
        if deleted:
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj

    async def _list(self, api_version: str, kind: str) -> str:
        items, rv = await self.kube.list(api_version, kind, None, label_selector=self.selector)
        for o in items:
            self._keep(kind, o)
        return rv

    async def _watch(self, api_version: str, kind: str, rv: str) -> None:
        while True:
            try:
                async for ev in self.kube.watch(
                    api_version, kind, None, resource_version=rv, label_selector=self.selector
                ):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "BOOKMARK":
                        rv = obj["metadata"]["resourceVersion"]
                        continue
                    if ev.get("type") == "ERROR":
                        raise ApiError(410, "Gone", str(obj))
                    rv = obj["metadata"]["resourceVersion"]
                    self._keep(kind, obj, deleted=ev.get("type") == "DELETED")
            except ApiError:
                rv = await self._list(api_version, kind)  # expired: list again

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self.objects.items() if k == kind]


def count_ready(
    tracker: Tracker, kinds: set[str], per_kind: dict[str, int] | None = None
) -> tuple[int, int, dict[str, int]]:
    total = done = 0
    reasons: dict[str, int] = {}
    for kind in kinds:
        for o in tracker.of(kind):
            total += 1
            if ready(o):
                done += 1
                if per_kind is not None:
                    per_kind[kind] = per_kind.get(kind, 0) + 1
            else:
                r = next(
                    (
                        c.get("reason", "?")
                        for c in (o.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Ready"
                    ),
                    "NoStatus",
                )
                reasons[f"{kind}/{r}"] = reasons.get(f"{kind}/{r}", 0) + 1
    return done, total, reasons


async def versions(kube: Kube, namespaces: list[str], kinds: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ns in namespaces:
        for kind in kinds:
            items, _ = await kube.list(API, kind, ns)
            out.update(
                {
                    f"{kind}/{ns}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                    for o in items
                }
            )
        for api_version, kind in (
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Service"),
            ("v1", "ServiceAccount"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "Deployment"),
            ("policy/v1", "PodDisruptionBudget"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("batch/v1", "CronJob"),
        ):
            items, _ = await kube.list(
                api_version, kind, ns, label_selector="app.kubernetes.io/managed-by=headwater"
            )
            out.update(
                {
                    f"{kind}/{ns}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                    for o in items
                }
            )
    return out


REQ_RE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")


async def apiserver_requests(kube: Kube, detail: bool = False) -> dict[str, float]:
    """Requests the API server counted (watches excluded): on our CRDs and child kinds by
    verb, or with `detail` on every resource by "VERB resource[/subresource]"."""
    session = kube._get_session()
    async with session.get(kube.creds.server + "/metrics", headers=kube._headers()) as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = REQ_RE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("verb") in ("WATCH", "CONNECT"):
            continue
        if detail:
            sub = labels.get("subresource")
            key = f"{labels.get('verb')} {labels.get('resource')}" + (f"/{sub}" if sub else "")
            out[key] = out.get(key, 0) + float(m.group(2))
        elif labels.get("resource") in CHILD_RESOURCES or labels.get("group") == "headwater.dev":
            out[labels["verb"]] = out.get(labels["verb"], 0) + float(m.group(2))
    return out


LAT_RE = re.compile(r"^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.e+]+)$")


async def apiserver_latency(kube: Kube) -> dict[str, list[float]]:
    """Cumulative [seconds, requests] per "VERB resource[/subresource]" (watches excluded)."""
    session = kube._get_session()
    async with session.get(kube.creds.server + "/metrics", headers=kube._headers()) as resp:
        text = await resp.text()
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        m = LAT_RE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("verb") in ("WATCH", "CONNECT") or not labels.get("resource"):
            continue
        sub = labels.get("subresource")
        key = f"{labels.get('verb')} {labels.get('resource')}" + (f"/{sub}" if sub else "")
        out.setdefault(key, [0.0, 0.0])[0 if m.group(1) == "sum" else 1] += float(m.group(3))
    return out


def latency_delta(
    after: dict[str, list[float]], before: dict[str, list[float]], top: int = 20
) -> dict[str, dict[str, float]]:
    """The request kinds the API server spent the most time on, with their mean latency."""
    rows = {}
    for key, (secs, n) in after.items():
        b_secs, b_n = before.get(key, [0.0, 0.0])
        if n - b_n >= 1:
            rows[key] = {"seconds": secs - b_secs, "requests": n - b_n}
    ranked = sorted(rows.items(), key=lambda kv: -kv[1]["seconds"])[:top]
    return {k: {**v, "mean_ms": round(1000 * v["seconds"] / v["requests"], 1)} for k, v in ranked}


def req_delta(after: dict[str, float], before: dict[str, float], top: int = 25) -> dict[str, float]:
    d = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    return dict(sorted(d.items(), key=lambda kv: -kv[1])[:top])


def workloads_ready(tracker: Tracker) -> bool:
    for kind in ("StatefulSet", "Deployment"):
        for o in tracker.of(kind):
            want = (o.get("spec") or {}).get("replicas", 1)
            if (o.get("status") or {}).get("readyReplicas", 0) < want:
                return False
    return True


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(op: OperatorProcess) -> float | None:
    """User + system CPU the operator process has used so far."""
    if op.proc is None:
        return None
    fields = Path(f"/proc/{op.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by every process on the machine, by pid,
    with its executable name (kernel threads, whose names change with their work, under
    their prefix: `kworker`). Processes that exit within a phase are missed."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        pid, name = head.split(" (", 1)
        fields = tail.split()
        out[int(pid)] = (name.split("/")[0], (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_delta(
    after: dict[int, tuple[str, float]], before: dict[int, tuple[str, float]], wall: float
) -> dict[str, Any]:
    """CPU used in a phase per executable name (top consumers), and the share of the
    machine used."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        used[name] = used.get(name, 0.0) + cpu - before.get(pid, (name, 0.0))[1]
    top = dict(
        sorted(((k, round(v, 1)) for k, v in used.items() if v >= 0.5), key=lambda kv: -kv[1])[:10]
    )
    total = sum(v for v in used.values() if v > 0)
    return {
        "by_process": top,
        "total": round(total, 1),
        "machine_share": round(total / (wall * (os.cpu_count() or 1)), 2),
    }


async def settle(kube: Kube, quiet_rate: float = 5.0, limit: float = 90.0) -> float:
    """Wait until the API server is (nearly) idle: the controllers work off a deleted
    namespace's objects for a while after it is gone, which would load the next phase."""
    t0 = time.perf_counter()
    before = sum((await apiserver_requests(kube, detail=True)).values())
    while time.perf_counter() - t0 < limit:
        await asyncio.sleep(2.0)
        now = sum((await apiserver_requests(kube, detail=True)).values())
        # our own two /metrics reads are not counted (nonResourceURLs have no resource)
        if (now - before) / 2.0 < quiet_rate:
            break
        before = now
    return time.perf_counter() - t0


def reconciles_by_kind(op: OperatorProcess) -> dict[str, float]:
    try:
        text = op.metrics()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for labels, v in re.findall(r"^headwater_reconcile_total\{([^}]*)\} ([0-9.e+]+)$", text, re.M):
        kind = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get("kind", "?")
        out[kind] = out.get(kind, 0) + float(v)
    return out


def reconciles(op: OperatorProcess) -> float:
    try:
        text = op.metrics()
    except OSError:
        return 0.0
    return sum(
        float(v)
        for v in re.findall(r"^headwater_reconcile_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    )


def services_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for svc in ("postgres", "minio", "connect"):
        proc = subprocess.run(
            [str(ROOT / "hack/services.sh"), svc, "env"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in proc.stdout.splitlines():
            if "=" in line:
                k, _, v = line.partition("=")
                env[k] = v.strip("'\"")
    return env


def count_buckets(env: dict[str, str]) -> int:
    from minio import Minio

    client = Minio(
        env["HEADWATER_MINIO_ENDPOINT"],
        access_key=env["HEADWATER_MINIO_ACCESS_KEY"],
        secret_key=env["HEADWATER_MINIO_SECRET_KEY"],
        secure=False,
    )
    return len(client.list_buckets())


# --- one measurement ----------------------------------------------------------------------


async def measure(
    n: int, args: argparse.Namespace, kubeconfig: str, env: dict[str, str]
) -> dict[str, Any]:
    kinds = set(args.kinds.split(","))
    run_id = f"b{secrets.token_hex(2)}"
    namespaces, crs = workload(n, run_id, kinds, env)
    result: dict[str, Any] = {"n": len(crs), "namespaces": len(namespaces), "kinds": sorted(kinds)}
    kube = Kube(Credentials.load(kubeconfig), max_connections=args.concurrency)
    watch_kube = Kube(Credentials.load(kubeconfig), max_connections=16)  # long-lived watches
    op: OperatorProcess | None = None
    try:
        # Leftovers of other runs (e.g. Terminating namespaces whose finalizers no operator
        # removes) load the same apiserver; say so in the report.
        foreign = 0
        for kind in kinds:
            items, _ = await kube.list(API, kind, None)
            foreign += len(items)
        result["foreign_crs"] = foreign
        if foreign:
            log(f"warning: {foreign} Headwater CRs of other runs exist in this cluster")
        # Buckets left by interrupted runs cost MinIO CPU (its scanner walks them all).
        result["foreign_buckets"] = await asyncio.to_thread(count_buckets, env)
        if result["foreign_buckets"]:
            log(f"warning: {result['foreign_buckets']} buckets exist in the object store")

        # 1. baseline: children applied straight from a parallel client
        base_ns = [f"{ns}-base" for ns in namespaces]
        children = []
        for cr in crs:
            for rendered in render_offline(cr):
                if rendered["apiVersion"].startswith("headwater.dev"):
                    continue
                obj = json.loads(json.dumps(rendered))
                obj["metadata"].pop("ownerReferences", None)
                obj["metadata"]["namespace"] += "-base"
                children.append(obj)
        await ensure_namespaces(kube, base_ns)
        result["children"] = len(children)
        result["settle_before_seconds"] = await settle(kube)  # e.g. the last run's deletion
        req0 = await apiserver_requests(kube, detail=True)
        lat0 = await apiserver_latency(kube)
        cpu0 = process_cpu()
        workloads = sum(1 for c in children if c["kind"] in ("StatefulSet", "Deployment"))
        async with Tracker(
            watch_kube, [("apps/v1", "StatefulSet"), ("apps/v1", "Deployment")], None, base_ns
        ) as tracker:
            t0 = time.perf_counter()
            result["baseline_apply_seconds"] = await apply_all(kube, children, args.concurrency)
            # Not a target, for perspective: when the cluster has made those workloads
            # Ready (controller manager, scheduler and kwok at work), as convergence must.
            while time.perf_counter() - t0 < args.timeout and not (  # noqa: ASYNC110 - sampling
                len(tracker.objects) >= workloads and workloads_ready(tracker)
            ):
                await asyncio.sleep(0.2)
            result["baseline_workloads_ready_seconds"] = time.perf_counter() - t0
        result["baseline_cpu"] = cpu_delta(
            process_cpu(), cpu0, result["baseline_workloads_ready_seconds"]
        )
        result["baseline_apiserver_latency"] = latency_delta(await apiserver_latency(kube), lat0)
        result["baseline_apiserver_requests"] = req_delta(
            await apiserver_requests(kube, detail=True), req0
        )
        log(
            f"N={len(crs)}: baseline applied {len(children)} children in {result['baseline_apply_seconds']:.1f}s"
        )
        await delete_namespaces(kube, base_ns)
        await wait_gone(kube, base_ns)  # the namespace controller's deletes must not pollute
        result["settle_seconds"] = await settle(kube)
        result["crs_alone"] = await crs_alone(kube, crs, namespaces, args.concurrency)
        log(
            f"N={len(crs)}: CRs alone created and given a status in "
            f"{result['crs_alone']['seconds']:.1f}s"
        )
        await settle(kube)

        # 2. convergence through the operator
        await ensure_namespaces(kube, namespaces)
        await apply_all(kube, [o for ns in namespaces for o in support_objects(ns, env)], 16)
        for ns in namespaces:
            mount_for_connect(ns, env)
        op = OperatorProcess(
            kubeconfig,
            Path(args.out) / "logs" / run_id,
            namespaces=[f"{run_id}-*"],
            verbose=False,  # as in production: DEBUG logs of every event cost real CPU
            env={
                "HEADWATER_WORKERS": str(args.workers),
                "HEADWATER_DATAPLANE_DISABLED": args.dataplane_disabled,
            },
        )
        op.start()
        req0 = await apiserver_requests(kube, detail=True)
        lat0 = await apiserver_latency(kube)
        cpu0 = process_cpu()
        timeline: list[tuple[float, int]] = []
        kind_timeline: list[tuple[float, dict[str, int], dict[str, int]]] = []
        reasons: dict[str, int] = {}
        async with Tracker(
            watch_kube, [(API, k) for k in sorted(kinds)], f"bench={run_id}"
        ) as tracker:
            started = time.perf_counter()
            await apply_all(kube, crs, args.concurrency)
            result["create_seconds"] = time.perf_counter() - started
            last = -1.0
            while True:
                per_kind: dict[str, int] = {}
                done, _, reasons = count_ready(tracker, kinds, per_kind)
                elapsed = time.perf_counter() - started
                finished = done >= len(crs) or elapsed > args.timeout
                if finished or elapsed - last >= 1.0:
                    timeline.append((elapsed, done))
                    kind_timeline.append((elapsed, per_kind, reasons))
                    last = elapsed
                if finished:
                    break
                await asyncio.sleep(0.2)
        result["converge_seconds"] = timeline[-1][0] if timeline[-1][1] >= len(crs) else None
        result["ready_at_end"] = timeline[-1][1]
        result["not_ready_reasons"] = reasons
        result["timeline"] = timeline
        result["kind_timeline"] = kind_timeline
        result["converge_ratio"] = (
            result["converge_seconds"] / result["baseline_apply_seconds"]
            if result["converge_seconds"]
            else None
        )
        result["converge_cpu"] = cpu_delta(process_cpu(), cpu0, timeline[-1][0])
        log(f"N={len(crs)}: converged {timeline[-1][1]}/{len(crs)} in {timeline[-1][0]:.1f}s")
        result["converge_operator_requests"] = op_requests(op)
        result["converge_apiserver_latency"] = latency_delta(await apiserver_latency(kube), lat0)
        result["converge_apiserver_requests"] = req_delta(
            await apiserver_requests(kube, detail=True), req0
        )
        result["converge_operator_cpu_seconds"] = cpu_seconds(op)
        result["converge_reconciles"] = reconciles_by_kind(op)

        # 3. steady state
        await asyncio.sleep(5)
        before_rv = await versions(kube, namespaces, kinds)
        before_req = await apiserver_requests(kube)
        own_before = dict(op_requests(op))
        await asyncio.sleep(args.steady_seconds)
        after_req = await apiserver_requests(kube)
        after_rv = await versions(kube, namespaces, kinds)
        own_after = dict(op_requests(op))
        changed = [k for k in before_rv if after_rv.get(k) != before_rv[k]]
        result["steady_window_seconds"] = args.steady_seconds
        result["steady_objects"] = len(before_rv)
        result["steady_rv_changes"] = len(changed)
        result["steady_rv_changed_examples"] = changed[:10]
        delta = {v: after_req.get(v, 0) - before_req.get(v, 0) for v in after_req}
        result["steady_apiserver_requests"] = {k: v for k, v in delta.items() if v}
        result["steady_operator_requests"] = {
            k: own_after.get(k, 0) - own_before.get(k, 0)
            for k in own_after
            if own_after.get(k, 0) - own_before.get(k, 0)
        }
        resyncs = max(1.0, args.steady_seconds / args.resync_period)
        result["requests_per_cr_per_resync"] = (
            sum(result["steady_operator_requests"].values()) / len(crs) / resyncs
        )
        result["apiserver_requests_per_cr_per_resync"] = sum(delta.values()) / len(crs) / resyncs

        # 4. memory
        assert op.proc is not None
        result["rss_mb"] = rss_mb(op.proc.pid)

        # 5. single spec change latency
        platforms = [c for c in crs if c["kind"] == "DataPlatform"][: args.changes]
        lat: list[float] = []
        for i, p in enumerate(platforms):
            ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
            marker = f"m{i}-{secrets.token_hex(3)}"
            t0 = time.perf_counter()
            await kube.patch(
                API,
                "DataPlatform",
                ns,
                name,
                {"spec": {"kafka": {"managed": {"config": {"bench.marker": marker}}}}},
            )
            while time.perf_counter() - t0 < 30:
                cm = await kube.get("v1", "ConfigMap", ns, f"{name}-kafka-config")
                if cm and marker in cm.get("data", {}).get("server.properties", ""):
                    lat.append(time.perf_counter() - t0)
                    break
                await asyncio.sleep(0.02)
        if lat:
            lat.sort()
            result["spec_change_p50_seconds"] = statistics.median(lat)
            result["spec_change_p95_seconds"] = lat[max(0, round(0.95 * len(lat)) - 1)]
            result["spec_change_samples"] = len(lat)

        # 6. restart: time to the first reconcile of every existing CR
        op.stop()
        t0 = time.perf_counter()
        op.start(wait=False)
        while time.perf_counter() - t0 < 120 and reconciles(op) < len(crs):  # noqa: ASYNC110 - polling a subprocess
            await asyncio.sleep(0.1)
        result["restart_first_reconcile_seconds"] = time.perf_counter() - t0
        log(
            f"N={len(crs)}: rss {result['rss_mb']:.0f} MB, restart {result['restart_first_reconcile_seconds']:.1f}s"
        )
    finally:
        if not args.keep:
            # With the operator still running, so finalizers remove connectors and buckets.
            await delete_namespaces(kube, namespaces)
            await wait_gone(kube, namespaces)
        if op is not None:
            op.stop()
        await kube.close()
        await watch_kube.close()
    return result


def op_requests(op: OperatorProcess) -> dict[str, float]:
    try:
        text = op.metrics()
    except OSError:
        return {}
    return {
        verb: float(v)
        for verb, v in re.findall(
            r'^headwater_kube_api_requests\{verb="(\w+)"\} ([0-9.e+]+)$', text, re.M
        )
    }


# --- report -------------------------------------------------------------------------------


def med(values: list[Any]) -> Any:
    vals = [v for v in values if isinstance(v, int | float)]
    return statistics.median(vals) if vals else None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_n.setdefault(r["n"], []).append(r)
    keys = [
        "baseline_apply_seconds",
        "baseline_workloads_ready_seconds",
        "converge_seconds",
        "converge_operator_cpu_seconds",
        "converge_ratio",
        "steady_rv_changes",
        "requests_per_cr_per_resync",
        "apiserver_requests_per_cr_per_resync",
        "rss_mb",
        "spec_change_p50_seconds",
        "spec_change_p95_seconds",
        "restart_first_reconcile_seconds",
    ]
    return [
        {
            "n": n,
            "repeats": len(rs),
            "children": rs[0].get("children"),
            **{k: med([r.get(k) for r in rs]) for k in keys},
        }
        for n, rs in sorted(by_n.items())
    ]


def verdicts(summary: list[dict[str, Any]]) -> list[tuple[str, str, str, bool | None]]:
    big = max(summary, key=lambda s: s["n"])

    def fmt(v: Any, unit: str = "") -> str:
        return "n/a" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")

    rows = [
        (
            f"{big['n']} CRs -> all Ready",
            "≤ 60 s",
            fmt(big["converge_seconds"], " s"),
            None if big["converge_seconds"] is None else big["converge_seconds"] <= 60,
        ),
        (
            "… vs raw parallel SSA of the children",
            "≤ 1.5x",
            fmt(big["converge_ratio"], "x"),
            None if big["converge_ratio"] is None else big["converge_ratio"] <= 1.5,
        ),
        (
            "steady state: resourceVersion changes",
            "0",
            fmt(big["steady_rv_changes"]),
            big["steady_rv_changes"] == 0,
        ),
        (
            "steady state: API requests per CR per resync",
            "≤ 1",
            fmt(big["requests_per_cr_per_resync"]),
            None
            if big["requests_per_cr_per_resync"] is None
            else big["requests_per_cr_per_resync"] <= 1,
        ),
        (
            f"operator RSS at {big['n']} CRs",
            "≤ 250 MB",
            fmt(big["rss_mb"], " MB"),
            None if big["rss_mb"] is None else big["rss_mb"] <= 250,
        ),
        (
            "spec change -> children updated, p95",
            "≤ 1 s",
            fmt(big["spec_change_p95_seconds"], " s"),
            None if big["spec_change_p95_seconds"] is None else big["spec_change_p95_seconds"] <= 1,
        ),
        (
            f"operator start -> first reconcile of {big['n']} CRs",
            "≤ 20 s",
            fmt(big["restart_first_reconcile_seconds"], " s"),
            None
            if big["restart_first_reconcile_seconds"] is None
            else big["restart_first_reconcile_seconds"] <= 20,
        ),
    ]
    return rows


def write_report(out: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    summary = summarize(runs)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{pyplatform.node()} {os.cpu_count()} cores, Python {pyplatform.python_version()}",
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    (out / "report.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2)
    )
    lines = [
        "# Headwater scale benchmark",
        "",
        f"{meta['date']} — {meta['machine']}; kinds {args.kinds}; repeats {args.repeats}; "
        f"steady window {args.steady_seconds}s; workers {args.workers}.",
        "",
        "| target | goal | measured (median) | met |",
        "|---|---|---|---|",
    ]
    for name, goal, value, ok in verdicts(summary):
        lines.append(
            f"| {name} | {goal} | {value} | {'yes' if ok else ('no' if ok is False else '?')} |"
        )
    lines += [
        "",
        "| N | children | baseline SSA s | baseline workloads Ready s | converge s | ratio | operator CPU s | RSS MB | change p50/p95 s | restart s | steady rv changes | req/CR/resync |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:

        def f(k: str, s: dict[str, Any] = s) -> str:
            v = s.get(k)
            return "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

        lines.append(
            f"| {s['n']} | {s['children']} | {f('baseline_apply_seconds')} | "
            f"{f('baseline_workloads_ready_seconds')} | {f('converge_seconds')} | "
            f"{f('converge_ratio')} | {f('converge_operator_cpu_seconds')} | {f('rss_mb')} | {f('spec_change_p50_seconds')}/{f('spec_change_p95_seconds')} | "
            f"{f('restart_first_reconcile_seconds')} | {f('steady_rv_changes')} | {f('requests_per_cr_per_resync')} |"
        )
    lines += [
        "",
        "Every run. CRs are Ready only when their workloads are, so no operator converges "
        "faster than the cluster makes the baseline's workloads Ready: *floor* is that time "
        "over the baseline's SSA time. *CRs alone* is the CPU all processes spent creating "
        "the CRs from the parallel client and writing one status each, without an operator. "
        "*CPU floor* is the baseline's CPU (until its workloads were Ready) plus that, "
        "divided by the cores: the least time this machine needs to converge, with an "
        "operator that cost nothing. *Busy* is the share of the cores in use and *CPU-s* "
        "all processes' CPU seconds, baseline / convergence:",
        "",
        "| N | baseline SSA s | workloads Ready s | floor | CRs alone CPU-s | CPU floor s | converge s | ratio | busy | CPU-s | leftover CRs/buckets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        b, c = r.get("baseline_cpu") or {}, r.get("converge_cpu") or {}
        floor = r["baseline_workloads_ready_seconds"] / r["baseline_apply_seconds"]
        conv, ratio = r.get("converge_seconds"), r.get("converge_ratio")
        alone = (r.get("crs_alone") or {}).get("cpu", {}).get("total", 0.0)
        lines.append(
            f"| {r['n']} | {r['baseline_apply_seconds']:.1f} | "
            f"{r['baseline_workloads_ready_seconds']:.1f} | {floor:.2f}x | "
            f"{alone:.0f} | {(b.get('total', 0) + alone) / (os.cpu_count() or 1):.1f} | "
            f"{'n/a' if conv is None else f'{conv:.1f}'} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | "
            f"{b.get('machine_share', 0):.0%} / {c.get('machine_share', 0):.0%} | "
            f"{b.get('total', 0):.0f} / {c.get('total', 0):.0f} | "
            f"{r.get('foreign_crs', 0)}/{r.get('foreign_buckets', 0)} |"
        )
    biggest = max(runs, key=lambda r: r["n"])
    if biggest.get("converge_apiserver_requests"):
        lines += [
            "",
            f"API server requests (watches excluded) at N={biggest['n']}, one run:",
            "",
            "| request | baseline (apply + workloads Ready) | convergence |",
            "|---|---|---|",
        ]
        base = biggest.get("baseline_apiserver_requests") or {}
        conv = biggest["converge_apiserver_requests"]
        for key in sorted(set(base) | set(conv), key=lambda k: -conv.get(k, 0))[:20]:
            lines.append(f"| {key} | {base.get(key, 0):.0f} | {conv.get(key, 0):.0f} |")
    if biggest.get("converge_apiserver_latency"):
        lines += [
            "",
            f"Where the API server spent its time during convergence at N={biggest['n']} "
            "(request latency summed, one run):",
            "",
            "| request | requests | mean latency | total s |",
            "|---|---|---|---|",
        ]
        for key, row in biggest["converge_apiserver_latency"].items():
            lines.append(
                f"| {key} | {row['requests']:.0f} | {row['mean_ms']:.0f} ms | {row['seconds']:.0f} |"
            )
    if biggest.get("converge_cpu") and biggest.get("baseline_cpu"):
        base, conv = biggest["baseline_cpu"], biggest["converge_cpu"]
        lines += [
            "",
            f"CPU seconds used on the machine per process at N={biggest['n']}, one run "
            f"(baseline until its workloads are Ready; convergence until all CRs are Ready). "
            f"Machine busy: {base['machine_share']:.0%} of {os.cpu_count()} cores in the baseline, "
            f"{conv['machine_share']:.0%} during convergence:",
            "",
            "| process | baseline | convergence |",
            "|---|---|---|",
        ]
        for name in sorted(
            set(base["by_process"]) | set(conv["by_process"]),
            key=lambda k: -conv["by_process"].get(k, 0),
        ):
            lines.append(
                f"| {name} | {base['by_process'].get(name, 0):.1f} | {conv['by_process'].get(name, 0):.1f} |"
            )
        lines.append(f"| total | {base['total']:.1f} | {conv['total']:.1f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        ns = [s["n"] for s in summary]
        a1.plot(
            ns,
            [s["converge_seconds"] or float("nan") for s in summary],
            "o-",
            label="operator → all Ready",
        )
        a1.plot(
            ns,
            [s["baseline_apply_seconds"] for s in summary],
            "s--",
            label="raw parallel SSA of children",
        )
        (
            a1.set_xlabel("CRs"),
            a1.set_ylabel("seconds"),
            a1.set_title("convergence vs N"),
            a1.legend(),
            a1.grid(alpha=0.3),
        )
        for r in runs:
            xs, ys = zip(*r["timeline"], strict=False) if r.get("timeline") else ([], [])
            a2.plot(xs, ys, label=f"N={r['n']}")
        (
            a2.set_xlabel("seconds since first create"),
            a2.set_ylabel("CRs Ready"),
            a2.set_title("Ready over time"),
        )
        a2.legend(), a2.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "convergence.png", dpi=110)
    except ImportError:
        log("matplotlib missing: no plot (pip install .[bench])")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100,300,1000"))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")))
    parser.add_argument("--kinds", default=",".join(PLURALS))
    parser.add_argument(
        "--steady-seconds", type=float, default=float(os.environ.get("BENCH_STEADY", "300"))
    )
    parser.add_argument(
        "--resync-period",
        type=float,
        default=300.0,
        help="operator resync period assumed for req/CR/resync",
    )
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--dataplane-disabled",
        default="CdcConnector",
        help="kinds whose data plane the operator must not call (HEADWATER_DATAPLANE_DISABLED): "
        "one Postgres has 10 replication slots, not one per benchmark connector",
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    parser.add_argument(
        "--restart-cluster",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="restart the local control plane's processes first (state is kept); the "
        "default when no KUBECONFIG is given. One that had run test suites for hours "
        "measured convergence 20-30%% slower than a freshly started one",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from headwater.devenv import cluster

    kubeconfig = os.environ.get("KUBECONFIG")
    restart = args.restart_cluster if args.restart_cluster is not None else not kubeconfig
    if restart:
        cluster.down()
    if restart or not kubeconfig:
        kubeconfig = kubeconfig or str(cluster.up())
    subprocess.run(
        [sys.executable, "-m", "headwater", "crds", "-q", "-o", str(ROOT / "crds")], check=True
    )
    subprocess.run(
        [
            _kubectl(),
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    for svc in ("postgres", "minio", "kafka", "connect"):
        subprocess.run([str(ROOT / "hack/services.sh"), svc, "start"], check=True)
    env = services_env()
    runs = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for rep in range(args.repeats):
            log(f"N={n} repeat {rep + 1}/{args.repeats}")
            runs.append(asyncio.run(measure(n, args, kubeconfig, env)))
            write_report(out, runs, args)
    return 0


def _kubectl() -> str:
    from headwater.devenv.binaries import locate

    return str(locate(build=False).kubectl)


if __name__ == "__main__":
    sys.exit(main())
