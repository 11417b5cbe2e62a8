"""The `headwater` command as users call it (cli.main with an argv), offline: validate,
render, crds and --version, including the `-f` forms kubectl users expect (several files
after one -f, a directory) and clear one-line errors for files that can't be used."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import headwater
from headwater import cli
from hwtest import EXAMPLES, ROOT

BAD_PLATFORM = """\
apiVersion: headwater.dev/v1alpha1
kind: DataPlatform
metadata: {name: shop}
spec:
  kafka: {managed: {replicas: 0}}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_bad_file_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_PLATFORM)
    code, out, _ = run(capsys, "validate", "-f", str(bad))
    assert code == 1
    assert f"{bad}: DataPlatform/shop: invalid" in out
    assert "  - spec.kafka.managed.replicas: Input should be greater than or equal to 1" in out


def test_validate_several_files_after_one_f(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_PLATFORM)
    good = EXAMPLES / "datasource.yaml"
    code, out, _ = run(capsys, "validate", "-f", str(good), str(bad))
    assert code == 1, "one invalid file among several must fail the command"
    assert f"{good}: DataSource/orders-db: valid" in out
    assert f"{bad}: DataPlatform/shop: invalid" in out
    # and -f repeated, as before
    code, out, _ = run(capsys, "validate", "-f", str(good), "-f", str(EXAMPLES / "platform.yaml"))
    assert code == 0 and "DataPlatform/shop: valid" in out


def test_validate_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "-f", str(EXAMPLES))
    assert code == 0, out + err
    # every Headwater resource of every example file, files in sorted order
    expected = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("headwater.dev/"):
                expected.append(f"{path}: {doc['kind']}/{doc['metadata']['name']}: valid")
    assert len(expected) >= 5
    assert [line for line in out.splitlines() if line.endswith(": valid")] == expected


def test_a_directory_picks_yml_and_skips_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.yml").write_text(BAD_PLATFORM)
    (tmp_path / "a.yaml").write_text((EXAMPLES / "platform.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not: [yaml")
    code, out, _ = run(capsys, "validate", "-f", str(tmp_path))
    assert code == 1
    assert out.index("a.yaml: DataPlatform/shop: valid") < out.index("b.yml: DataPlatform")
    assert "notes.txt" not in out


@pytest.mark.parametrize("command", ["validate", "render"])
def test_unusable_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "missing.yaml"
    code, out, err = run(capsys, command, "-f", str(missing))
    assert code == 2
    assert err == f"headwater {command}: error: {missing}: no such file or directory\n"
    assert out == ""

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, command, "-f", str(empty))
    assert code == 2 and "holds no *.yaml or *.yml file" in err

    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [DataPlatform\n")
    code, _, err = run(capsys, command, "-f", str(broken))
    assert code == 1 and err.startswith(f"headwater {command}: error: {broken}: not valid YAML")
    assert "Traceback" not in err


def test_f_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["validate", "-f"])
    assert exit_.value.code == 2
    assert "-f/--filename: expected at least one argument" in capsys.readouterr().err


def test_render_example_platform(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", str(EXAMPLES / "platform.yaml"))
    assert code == 0, err
    objs = list(yaml.safe_load_all(out))
    kinds = {o["kind"] for o in objs}
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap"} <= kinds
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    # one workload per managed component of the example platform
    for workload in (
        ("StatefulSet", "shop-kafka"),
        ("StatefulSet", "shop-minio"),
        ("Deployment", "shop-connect"),
        ("Deployment", "shop-flink-jobmanager"),
        ("Deployment", "shop-prometheus"),
    ):
        assert workload in names, workload


def test_render_invalid_spec_reports_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_PLATFORM)
    code, out, err = run(capsys, "render", "-f", str(bad))
    assert code == 1
    assert "spec.kafka.managed.replicas" in err
    assert [d for d in yaml.safe_load_all(out) if d] == []


def test_crds_output_equals_committed_crds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "crds"
    (out_dir).mkdir()
    (out_dir / "stale.yaml").write_text("{}")  # a CRD that no longer exists is removed
    code, out, _ = run(capsys, "crds", "-o", str(out_dir))
    assert code == 0 and f"to {out_dir}/" in out
    committed = {p.name: p.read_text() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    written = {p.name: p.read_text() for p in sorted(out_dir.glob("*.yaml"))}
    assert len(committed) == 5
    assert written == committed


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"headwater {headwater.__version__}\n"
