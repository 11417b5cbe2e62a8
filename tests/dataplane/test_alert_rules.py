"""The generated alert rules against Debian's real promtool.

* `promtool check rules` accepts every rule file Headwater generates: for every example
  resource, every component mode of a platform, the promtool cases' resources, and the
  rules ConfigMap exactly as the managed Prometheus mounts it.
* `promtool test rules` runs tests/data/promtool/cases.yaml: synthetic series per alert,
  proving each one fires when it should (with the right labels and annotations) and stays
  silent when it should not.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from headwater.alerts import CATALOGUE, alerts_spec, file_name, rule_file, rule_groups, target
from headwater.api.dataplatform import DataPlatformSpec
from headwater.reconcile.alerting import AlertsService
from headwater.reconcile.base import Context, Store
from headwater.render.common import Owner
from headwater.render.platform import PlatformContext, render_prometheus
from hwtest import DATA, ROOT, example_docs, require

CASES_FILE = DATA / "promtool" / "cases.yaml"
CASES: dict[str, Any] = yaml.safe_load(CASES_FILE.read_text())
NS = "shop"
MODES = {
    "kafka": {"bootstrapServers": ["k.ext:9092"]},
    "connect": {"url": "http://c.ext:8083"},
    "flink": {"restUrl": "http://f.ext:8081"},
    "objectStore": {"endpoint": "http://s3.ext:9000", "credentialsSecretRef": {"name": "s3"}},
    "monitoring": {"url": "http://p.ext:9090"},
}


@pytest.fixture(scope="module")
def promtool() -> str:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "services.sh"), "prometheus", "install"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    path = Path("/usr/bin/promtool")
    require(proc.returncode == 0 and path.exists(), "promtool (Debian package prometheus)")
    return str(path)


def doc(name: str, spec: dict[str, Any], kind: str, status: dict[str, Any] | None = None):
    return {
        "apiVersion": "headwater.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
        "status": status or {},
    }


def case_resources() -> dict[str, dict[str, Any]]:
    return {
        name: doc(name, r.get("spec") or {}, r["kind"], r.get("status"))
        for name, r in CASES["resources"].items()
    }


def platform_variants() -> list[dict[str, Any]]:
    """Every component in every mode (the others managed), plus all external/disabled."""
    out = []
    for comp, ext in MODES.items():
        for mode in ("managed", "external", "disabled"):
            block: dict[str, Any] = {"mode": mode}
            if mode == "external":
                block["external"] = ext
            spec = {comp: block}
            if comp == "kafka" and mode == "disabled":
                spec["connect"] = {"mode": "disabled"}
            out.append(doc(f"{comp}-{mode}", spec, "DataPlatform"))
    out.append(
        doc(
            "all-external",
            {c: {"mode": "external", "external": e} for c, e in MODES.items()},
            "DataPlatform",
        )
    )
    return out


def all_resources() -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(resource, its platform) for everything we check."""
    examples = [copy.deepcopy(d) for d in example_docs() if d["kind"] != "Secret"]
    for d in examples:
        d["metadata"].setdefault("namespace", NS)
    by_name = {d["metadata"]["name"]: d for d in examples if d["kind"] == "DataPlatform"}
    cases = case_resources()
    by_name.update({n: d for n, d in cases.items() if d["kind"] == "DataPlatform"})
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for d in [*examples, *cases.values(), *platform_variants()]:
        ref = ((d.get("spec") or {}).get("platformRef") or {}).get("name")
        out.append((d, by_name.get(ref) if ref else None))
    return out


def groups_of(body: dict[str, Any], platform: dict[str, Any] | None) -> list[dict[str, Any]]:
    alerts = alerts_spec(body)
    assert alerts is not None, body["metadata"]["name"]
    return rule_groups(target(body, platform), alerts)


def test_promtool_checks_every_generated_rule_file(promtool: str, tmp_path: Path) -> None:
    expected: dict[str, int] = {}
    for body, platform in all_resources():
        groups = groups_of(body, platform)
        if not groups:
            continue
        path = tmp_path / f"{body['metadata']['name']}-{file_name(target(body, None))}"
        path.write_text(yaml.safe_dump(rule_file(groups), sort_keys=False))
        expected[str(path)] = sum(len(g["rules"]) for g in groups)
    assert len(expected) >= 20
    proc = subprocess.run(
        [promtool, "check", "rules", *expected], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = dict(re.findall(r"Checking (\S+)\n\s+SUCCESS: (\d+) rules found", proc.stdout))
    assert {k: int(v) for k, v in found.items()} == expected, proc.stdout


def test_promtool_checks_the_managed_prometheus_configmap(promtool: str, tmp_path: Path) -> None:
    """The ConfigMap as rendered for the managed Prometheus, files and all."""
    cases = case_resources()
    store = Store()
    for body in cases.values():
        store.put((body["kind"], NS, body["metadata"]["name"]), body)
    ctx = Context(
        kube=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        applier=None,  # type: ignore[arg-type]
        store=store,
        events=None,  # type: ignore[arg-type]
        settings=None,  # type: ignore[arg-type]
        executor=None,  # type: ignore[arg-type]
    )
    platform = cases["shop"]
    spec = DataPlatformSpec.model_validate(platform["spec"])
    files = AlertsService().platform_rule_files(ctx, platform, spec)
    objs = render_prometheus(spec, Owner.from_body(platform), PlatformContext(alert_rules=files))
    cm = next(o for o in objs if o["metadata"]["name"] == "shop-prometheus-rules")
    assert set(cm["data"]) == {
        "dataplatform-shop.yaml",
        "datasource-orders-db.yaml",  # what the platform's connectors capture from
        "cdcconnector-orders.yaml",
        "cdcconnector-tuned.yaml",
        "streamjob-agg.yaml",
        "lakezone-bronze.yaml",
    }
    for name, text in cm["data"].items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [promtool, "check", "rules", *(str(tmp_path / n) for n in cm["data"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- promtool test rules ------------------------------------------------------------------------


def _render_annotation(template: str, labels: dict[str, str], shown: str | None) -> str:
    """What Prometheus prints for our annotation templates, given the expected value text."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    if "$value" in text:
        assert shown is not None, f"case needs `shown` for: {template}"
        text = re.sub(r"\{\{ \$value \| humanize(Duration)? \}\}", shown, text)
    return text


def _promtool_test(case: dict[str, Any], tmp_path: Path) -> Path:
    resources = case_resources()
    body = resources[case["resource"]]
    ref = ((body.get("spec") or {}).get("platformRef") or {}).get("name")
    platform = resources.get(ref) if ref else None
    groups = groups_of(body, platform)
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert case["alert"] in rules, f"{case['alert']} not generated for {case['resource']}"
    rule = rules[case["alert"]]
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(yaml.safe_dump(rule_file(groups), sort_keys=False))
    # a DataSource is on no platform: no platform label
    identity = {
        k: rule["labels"][k]
        for k in ("namespace", "kind", "name", "platform")
        if k in rule["labels"]
    }
    assert set(identity) >= {"namespace", "kind", "name"}
    tests = []
    for t in case["tests"]:
        expected = []
        for alert in t["expect"]:
            labels = {**identity, **alert["labels"]}
            for key, val in rule["labels"].items():  # the resource's own extra labels
                labels.setdefault(key, val)
            expected.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": {
                        k: _render_annotation(v, labels, alert.get("shown"))
                        for k, v in rule["annotations"].items()
                    },
                }
            )
        tests.append(
            {
                "interval": case.get("interval", "1m"),
                "input_series": [{"series": s, "values": str(v)} for s, v in t["series"].items()],
                "alert_rule_test": [
                    {"eval_time": t["at"], "alertname": case["alert"], "exp_alerts": expected}
                ],
            }
        )
    test_path = tmp_path / "test.yaml"
    test_path.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_path.name], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        )
    )
    return test_path


@pytest.mark.parametrize(
    "case", CASES["cases"], ids=[f"{c['alert']}-{c['resource']}" for c in CASES["cases"]]
)
def test_promtool_alert_cases(promtool: str, tmp_path: Path, case: dict[str, Any]) -> None:
    path = _promtool_test(case, tmp_path)
    proc = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_has_a_firing_and_a_silent_case() -> None:
    fires = {c["alert"] for c in CASES["cases"] for t in c["tests"] if t["expect"]}
    silent = {c["alert"] for c in CASES["cases"] for t in c["tests"] if not t["expect"]}
    names = {r.alert for r in CATALOGUE}
    assert names - fires == set(), "rules without a firing promtool case"
    assert names - silent == set(), "rules without a silent promtool case"


def test_a_broken_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """The harness can fail: the same case with a wrong threshold expectation is refused."""
    case = copy.deepcopy(next(c for c in CASES["cases"] if c["alert"] == "CdcConnectorLagHigh"))
    case["tests"] = [case["tests"][1]]  # the silent one...
    case["tests"][0]["expect"] = [{"labels": {"severity": "critical"}, "shown": "1.5"}]
    path = _promtool_test(case, tmp_path)
    proc = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every query of the shipped Grafana dashboard parses (as recording rules, after
    substituting Grafana's variables)."""
    import json

    dash = json.loads((ROOT / "charts/headwater/dashboards/headwater-pipeline.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    substitutions = {"$namespace": "shop", "$platform": "shop", "$__rate_interval": "5m"}
    rules = []
    for i, raw in enumerate(exprs):
        expr = raw
        for var, value in substitutions.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout
