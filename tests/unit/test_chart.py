"""The Helm chart, the plain install manifests and the Dockerfile, checked offline.

`helm` is the real Helm v3 built by `hack/services.sh helm install` (with the Kubernetes
version of the dev cluster stamped in); rendering uses `helm template`, exactly what users and
GitOps tools run. The cluster-side proof is tests/e2e/test_helm_e2e.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import headwater
from headwater import rbac
from hwtest import ROOT, require
from hwtest import services as svc

CHART = ROOT / "charts" / "headwater"


@pytest.fixture(scope="module")
def helm() -> str:
    path = ""
    with contextlib.suppress(svc.ServiceUnavailable):
        path = svc.env("helm").get("HELM", "")
    require(bool(path) and Path(path).exists(), "helm (hack/services.sh helm install)")
    return path


def template(
    helm: str, *args: str, chart: Path = CHART, check: bool = True
) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [helm, "template", "hw", str(chart), "--namespace", "hw-system", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def fails(helm: str, *args: str) -> str:
    proc = subprocess.run(
        [helm, "template", "hw", str(CHART), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0, f"helm accepted {args}"
    return proc.stderr


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


# --- versions and generated files -----------------------------------------------------------


def test_one_version_everywhere() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == headwater.__version__
    assert chart["version"] == headwater.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", headwater.__version__)
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "headwater"), "--version"], capture_output=True, text=True
    )
    assert out.stdout.strip() == f"headwater {headwater.__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{headwater.__version__}]" in changelog, "CHANGELOG.md has no entry for it"


def test_chart_crds_are_the_generated_ones() -> None:
    generated = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").glob("headwater.dev_*.yaml")}
    assert in_chart == generated, "charts/headwater/crds is stale: run `make chart`"


def test_kopf_peering_crds_are_what_kopf_watches() -> None:
    from kopf._cogs.structs import references

    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()))
    by_plural = {d["spec"]["names"]["plural"]: d for d in docs}
    for selector, scope in [
        (references.CLUSTER_PEERINGS_K, "Cluster"),
        (references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ]:
        crd = by_plural[selector.any_name]
        assert crd["spec"]["group"] == selector.group
        assert crd["spec"]["versions"][0]["name"] == selector.version
        assert crd["spec"]["scope"] == scope


def test_install_manifests_are_current(helm: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "render-install.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={"HELM": helm, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    committed = ROOT / "manifests" / "install"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in committed.iterdir())
    stale = [n for n in names if (tmp_path / n).read_text() != (committed / n).read_text()]
    assert not stale, f"manifests/install is stale for {stale}: run `make install-manifests`"
    kustomization = yaml.safe_load((committed / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["crds.yaml", "namespace.yaml", "headwater.yaml"]


def test_lint_strict(helm: str) -> None:
    proc = subprocess.run(
        [helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


# --- values.yaml and its schema -------------------------------------------------------------


def _chart_keys(schema: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    """Keys the chart defines, as dotted paths -> whether their own keys are closed too
    (free-form Kubernetes objects such as podSecurityContext are not walked into)."""
    out: dict[str, bool] = {}
    if schema.get("additionalProperties") is False:
        for name, sub in schema.get("properties", {}).items():
            out[prefix + name] = sub.get("additionalProperties") is False
            out.update(_chart_keys(sub, f"{prefix}{name}."))
    return out


def _documented_keys() -> set[str]:
    """Dotted paths of values.yaml keys that have a comment line right above them."""
    documented, stack = set(), []
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][\w-]*):", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack[depth:] = [m.group(2)]
        if i and lines[i - 1].strip().startswith("#"):
            documented.add(".".join(stack))
    return documented


def test_every_value_is_documented_and_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = _chart_keys(schema)
    missing_doc = [k for k in keys if k not in _documented_keys()]
    assert not missing_doc, f"values.yaml keys without a comment: {missing_doc}"

    def paths(d: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            out.append(prefix + k)
            if isinstance(v, dict) and keys.get(prefix + k):
                out += paths(v, f"{prefix}{k}.")
        return out

    assert set(paths(values)) - set(keys) == set(), "values.yaml keys missing from the schema"
    assert set(keys) - set(paths(values)) == set(), "schema keys with no default in values.yaml"


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--set", "replicas=0"], "/replicas"),
        (["--set", "replicas=two"], "/replicas"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "metrics.port=80"], "/metrics/port"),
        (["--set", "operator.logLevel=trace"], "/operator/logLevel"),
        (["--set", "watchNamespace=shop"], "additional properties 'watchNamespace'"),
        (["--set", "metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
        (["--set", "image.digest=latest"], "/image/digest"),
        (["--set", "podDisruptionBudget.maxUnavailable=0"], "/podDisruptionBudget"),
    ],
    ids=lambda a: a[1] if isinstance(a, list) else None,
)
def test_schema_rejects_bad_values(helm: str, args: list[str], expect: str) -> None:
    err = fails(helm, *args)
    assert "values don't meet the specifications of the schema" in err, err
    assert expect in err, err


def test_template_refuses_unsupported_combinations(helm: str) -> None:
    err = fails(helm, "--set", "replicas=2", "--set", "watchNamespaces={team-*}")
    assert "replicas > 1 needs watchNamespaces empty" in err
    err = fails(
        helm,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.service.enabled=false",
    )
    assert "needs metrics.service.enabled" in err
    err = fails(helm, "--set", "serviceAccount.create=false")
    assert "serviceAccount.name is required" in err


# --- what the templates render --------------------------------------------------------------


def test_default_install_is_hardened(helm: str) -> None:
    docs = template(helm)
    dep = one(docs, "Deployment", "hw-headwater")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http-metrics"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HEADWATER_METRICS_PORT"] == str(port) == "8080"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert container["args"] is None or container["args"] == []  # all namespaces
    assert container["image"] == f"headwater/operator:{headwater.__version__}"
    assert "HEADWATER_PEERING" not in env
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    svc_ = one(docs, "Service", "hw-headwater-metrics")
    assert svc_["spec"]["ports"][0]["targetPort"] == "http-metrics"
    assert svc_["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["policyTypes"] == ["Ingress"]
    assert netpol["spec"]["ingress"] == [{"ports": [{"port": "http-metrics", "protocol": "TCP"}]}]
    # Optional objects stay off by default; a single replica gets no PDB and no peering.
    for kind in ("ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "ClusterKopfPeering"):
        assert not find(docs, kind), kind
    assert not [d for d in docs if d["kind"] == "ConfigMap"]


def _rules(docs: list[dict[str, Any]], name: str) -> rbac.Grants:
    return rbac.expand(one(docs, "ClusterRole", name)["rules"])


def test_rbac_in_the_chart_is_the_codes(helm: str) -> None:
    docs = template(helm)
    assert _rules(docs, "hw-headwater") == rbac.namespaced_grants()
    assert _rules(docs, "hw-headwater-cluster") == rbac.expand(
        r.to_dict() for r in rbac.permission_sets()["cluster"]
    )
    crbs = {d["metadata"]["name"]: d for d in find(docs, "ClusterRoleBinding")}
    assert set(crbs) == {"hw-headwater", "hw-headwater-cluster"}
    assert {crb["roleRef"]["name"] for crb in crbs.values()} == set(crbs)
    for crb in crbs.values():
        assert crb["subjects"] == [
            {"kind": "ServiceAccount", "name": "hw-headwater", "namespace": "hw-system"}
        ]


def test_exact_namespaces_get_rolebindings_only(helm: str) -> None:
    docs = template(helm, "--set", "watchNamespaces={shop,billing}")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--namespace=shop", "--namespace=billing"]
    rbs = find(docs, "RoleBinding")
    assert {rb["metadata"]["namespace"] for rb in rbs} == {"shop", "billing"}
    assert {rb["roleRef"]["kind"] for rb in rbs} == {"ClusterRole"}
    assert [b["metadata"]["name"] for b in find(docs, "ClusterRoleBinding")] == [
        "hw-headwater-cluster"
    ]
    cluster = _rules(docs, "hw-headwater-cluster")
    assert cluster[("", "namespaces")] == {"get", "list", "watch"}
    assert not any(k[0] != "" and k[1] != "customresourcedefinitions" for k in cluster if k[0])


def test_globs_bind_cluster_wide(helm: str) -> None:
    docs = template(helm, "--set", "watchNamespaces={team-*}")
    assert {b["metadata"]["name"] for b in find(docs, "ClusterRoleBinding")} == {
        "hw-headwater",
        "hw-headwater-cluster",
    }
    assert not find(docs, "RoleBinding")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--namespace=team-*"]


def test_replicas_turn_on_peering_and_pdb(helm: str) -> None:
    docs = template(helm, "--set", "replicas=2")
    dep = one(docs, "Deployment")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HEADWATER_PEERING"]["value"] == "hw-headwater"
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    peering = one(docs, "ClusterKopfPeering", "hw-headwater")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert _rules(docs, "hw-headwater-cluster")[("kopf.dev", "clusterkopfpeerings")] == {
        "get",
        "list",
        "patch",
        "watch",
    }
    docs = template(helm, "--set", "replicas=2", "--set", "watchNamespaces={shop}")
    assert one(docs, "KopfPeering")["metadata"]["namespace"] == "shop"
    assert ("kopf.dev", "kopfpeerings") in _rules(docs, "hw-headwater")


def test_values_reach_the_deployment(helm: str) -> None:
    docs = template(
        helm,
        "--set",
        "image.repository=registry.example/hw",
        "--set",
        "image.digest=sha256:" + "a" * 64,
        "--set",
        "operator.workers=4",
        "--set",
        "operator.logLevel=debug",
        "--set",
        "metrics.port=9100",
        "--set",
        "nodeSelector.disk=ssd",
    )
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/hw@sha256:" + "a" * 64
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HEADWATER_WORKERS"] == "4" and env["HEADWATER_METRICS_PORT"] == "9100"
    assert "--verbose" in container["args"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9100


CHART_RULE_ALERTS = {
    "HeadwaterOperatorDown",
    "HeadwaterReconcileErrors",
    "HeadwaterWorkqueueBacklog",
    "HeadwaterReconcileSlow",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or ""
    with contextlib.suppress(svc.ServiceUnavailable):
        path = svc.env("prometheus").get("PROMTOOL", path)
    require(bool(path) and Path(path).exists(), "promtool (hack/services.sh prometheus)")
    return path


def chart_rule_docs(helm: str) -> list[dict[str, Any]]:
    return template(
        helm,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.prometheusRule.alertLabels.team=data",
    )


def test_prometheus_rule_passes_promtool(helm: str, promtool: str, tmp_path: Path) -> None:
    docs = chart_rule_docs(helm)
    monitor = one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    assert selector <= one(docs, "Service")["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    rule = one(docs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == CHART_RULE_ALERTS
    assert all(a["labels"]["team"] == "data" for a in alerts.values())
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout
    # Every metric an alert uses is one the operator exports.
    from headwater.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    for alert in alerts.values():
        for metric in re.findall(r"\b(headwater_[a-z_]+)", alert["expr"]):
            assert metric.removesuffix("_bucket").removesuffix("_total") in exported, metric


CHART_CASES: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "tests" / "data" / "promtool" / "chart_cases.yaml").read_text()
)["cases"]


def _shown(template_text: str, labels: dict[str, str], shown: str | None) -> str:
    """What Prometheus prints for the chart's annotation templates (`$labels.x`, `$value`
    plain, humanized or as a duration), given the expected value text."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template_text)
    if "$value" in text:
        assert shown is not None, f"case needs `shown` for: {template_text}"
        text = re.sub(r"\{\{ \$value( \| humanize(Duration)?)? \}\}", shown, text)
    return text


def _histogram_series(spec: dict[str, Any], minutes: int) -> dict[str, str]:
    """Cumulative `_bucket` series over the buckets the operator really exports."""
    from headwater.metrics import Metrics

    bounds = [float(b) for b in Metrics().duration._upper_bounds]  # ends with +Inf
    assert bounds[-1] == float("inf")
    per_minute = {float(k): int(v) for k, v in spec["per_minute"].items()}
    labels = ",".join(f'{k}="{v}"' for k, v in spec["labels"].items())
    out = {}
    for le in bounds:
        n = sum(count for seconds, count in per_minute.items() if seconds <= le)
        le_text = "+Inf" if le == float("inf") else repr(le)
        out[f'headwater_reconcile_duration_seconds_bucket{{{labels},le="{le_text}"}}'] = (
            f"0+{n}x{minutes}"
        )
    return out


@pytest.mark.parametrize("case", CHART_CASES, ids=[c["alert"] for c in CHART_CASES])
def test_prometheus_rule_promtool_cases(
    helm: str, promtool: str, tmp_path: Path, case: dict[str, Any]
) -> None:
    """`promtool test rules` on the rendered chart rule: each alert fires when it should
    (labels, annotations with the value) and stays silent when it should not."""
    rule = one(chart_rule_docs(helm), "PrometheusRule")
    groups = rule["spec"]["groups"]
    (alert,) = [r for g in groups for r in g["rules"] if r["alert"] == case["alert"]]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = []
    for t in case["tests"]:
        series = dict(t.get("series") or {})
        if "histogram" in t:
            series.update(_histogram_series(t["histogram"], t["minutes"]))
        expected = []
        for exp in t["expect"]:
            labels = {**exp["labels"], "team": "data"}  # the alertLabels set above
            annotations = {
                k: _shown(v, labels, exp.get("shown")) for k, v in alert["annotations"].items()
            }
            expected.append({"exp_labels": labels, "exp_annotations": annotations})
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "alert_rule_test": [
                    {"eval_time": t["at"], "alertname": case["alert"], "exp_alerts": expected}
                ],
            }
        )
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        )
    )
    proc = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_reconcile_slow_threshold_fits_the_operators_histogram(helm: str) -> None:
    """histogram_quantile never returns more than the largest finite bucket, so the chart
    compares with `>=` against at most that bound (the 45 s case above fires only so) and
    refuses a threshold that could never fire."""
    from headwater.metrics import Metrics

    last = max(b for b in Metrics().duration._upper_bounds if b != float("inf"))
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    match = re.search(r"\$lastBucket := (\d+(?:\.\d+)?)", text)
    assert match and float(match.group(1)) == last, "chart and metrics.py buckets disagree"
    enabled = ("--set", "metrics.prometheusRule.enabled=true")
    err = fails(helm, *enabled, "--set", f"metrics.prometheusRule.reconcileSeconds={last + 1:g}")
    assert f"histogram ends at {last:g}s" in err
    rule = one(
        template(helm, *enabled, "--set", "metrics.prometheusRule.reconcileSeconds=20"),
        "PrometheusRule",
    )
    (slow,) = [r for g in rule["spec"]["groups"] for r in g["rules"] if "Slow" in r["alert"]]
    assert slow["expr"].endswith(">= 20")


def test_every_chart_rule_has_a_firing_and_a_silent_case() -> None:
    fires = {c["alert"] for c in CHART_CASES for t in c["tests"] if t["expect"]}
    silent = {c["alert"] for c in CHART_CASES for t in c["tests"] if not t["expect"]}
    assert fires == CHART_RULE_ALERTS, "chart rules without a firing promtool case"
    assert silent == CHART_RULE_ALERTS, "chart rules without a silent promtool case"


def test_dashboards_configmap_only_when_there_are_dashboards(helm: str, tmp_path: Path) -> None:
    chart = tmp_path / "headwater"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("dashboards"))
    enabled = ("--set", "grafana.dashboards.enabled=true")
    assert not [d for d in template(helm, *enabled, chart=chart) if d["kind"] == "ConfigMap"]
    (chart / "dashboards").mkdir()
    (chart / "dashboards" / "operator.json").write_text('{"title": "Headwater operator"}')
    cm = one(template(helm, *enabled, chart=chart), "ConfigMap", "hw-headwater-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["operator.json"]) == {"title": "Headwater operator"}
    assert not [d for d in template(helm, chart=chart) if d["kind"] == "ConfigMap"]


def test_no_secret_material_in_the_chart(helm: str) -> None:
    """The operator gets its credentials from the ServiceAccount token, nothing else."""
    docs = template(helm, "--set", "replicas=2", "--set", "metrics.prometheusRule.enabled=true")
    assert not find(docs, "Secret")
    for dep in find(docs, "Deployment"):
        for env in dep["spec"]["template"]["spec"]["containers"][0]["env"]:
            assert not re.search(r"(?i)password|secret|token|key", env["name"]), env


# --- Dockerfile -----------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_non_root_with_headwater_entrypoint() -> None:
    instructions = _dockerfile()
    stages = [i for i, (instr, _) in enumerate(instructions) if instr == "FROM"]
    assert len(stages) == 2, "a build stage and a final stage"
    final = instructions[stages[-1] :]
    users = [rest for instr, rest in final if instr == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    entry = [rest for instr, rest in final if instr == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["headwater", "run"]
    # Nothing is built or installed in the final stage: it only copies the virtualenv.
    assert not [rest for instr, rest in final if instr == "RUN"]
    assert [rest for instr, rest in final if instr == "COPY"] == [
        "--from=build /opt/headwater /opt/headwater"
    ]
    assert "slim" in next(rest for instr, rest in instructions if instr == "ARG")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert users[-1].split(":")[0] == str(values["podSecurityContext"]["runAsUser"])


def test_dockerfile_copies_only_what_exists_and_dockerignore_keeps() -> None:
    copies = [rest.split() for instr, rest in _dockerfile() if instr == "COPY"]
    sources = [s for parts in copies if not parts[0].startswith("--from") for s in parts[:-1]]
    assert sources, "no COPY from the build context"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for src in sources:
        assert (ROOT / src).exists(), src
        assert f"!{src}" in ignore, f".dockerignore drops {src}"
