"""Finding the control-plane binaries.

``hack/build-k8s.sh all`` owns building and caching them; from a checkout we simply
call it (it returns in well under a second once the cache is warm, and otherwise
builds what is missing, with its progress on stderr). Outside a checkout, or to test
other builds, ``HEADWATER_K8S_BIN``, ``HEADWATER_KWOK_BIN`` and ``HEADWATER_ETCD_BIN``
point at the three directories directly.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

K8S_BIN_ENV = "HEADWATER_K8S_BIN"
KWOK_BIN_ENV = "HEADWATER_KWOK_BIN"
ETCD_BIN_ENV = "HEADWATER_ETCD_BIN"
_ENV_VARS = (K8S_BIN_ENV, KWOK_BIN_ENV, ETCD_BIN_ENV)


class BinariesNotFoundError(RuntimeError):
    """Raised when the binaries can be neither found nor built."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable the cluster runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path

    @classmethod
    def from_dirs(cls, k8s: Path, kwok: Path, etcd: Path) -> Binaries:
        """Assemble from the three bin directories, checking each file is executable."""
        found = cls(
            etcd=etcd / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kubectl=k8s / "kubectl",
            kwok=kwok / "kwok",
        )
        missing = [str(p) for p in found.all() if not os.access(p, os.X_OK)]
        if missing:
            raise BinariesNotFoundError("not executable or missing: " + ", ".join(missing))
        return found

    def all(self) -> list[Path]:
        """Every binary, for validation."""
        return [
            self.etcd,
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.kubectl,
            self.kwok,
        ]


def repo_root() -> Path | None:
    """The checkout this module lives in, if it is one (has ``hack/build-k8s.sh``)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "hack" / "build-k8s.sh").is_file() else None


def locate(build: bool = True) -> Binaries:
    """Resolve the binaries: env vars first, else ``hack/build-k8s.sh all``.

    ``build=False`` never runs the build script; it is for read-only callers such as
    ``status`` or the self-checks, which should not start a 20-minute compile.
    """
    dirs = _dirs_from_env()
    if dirs is None:
        dirs = _dirs_from_build_script(build)
    return Binaries.from_dirs(*dirs)


def _dirs_from_env() -> tuple[Path, Path, Path] | None:
    """All three ``HEADWATER_*_BIN`` directories, or ``None`` if any is unset."""
    values = [os.environ.get(var, "").strip() for var in _ENV_VARS]
    if not all(values):
        if any(values):
            unset = [var for var, val in zip(_ENV_VARS, values, strict=True) if not val]
            raise BinariesNotFoundError(
                "set all of " + ", ".join(_ENV_VARS) + " or none; unset: " + ", ".join(unset)
            )
        return None
    k8s, kwok, etcd = (Path(v).expanduser().resolve() for v in values)
    return k8s, kwok, etcd


def _dirs_from_build_script(build: bool) -> tuple[Path, Path, Path]:
    """Run the build script (cached, locked) and parse the dirs from its last line."""
    root = repo_root()
    if root is None:
        raise BinariesNotFoundError(
            "not running from a Headwater checkout; set " + ", ".join(_ENV_VARS)
        )
    if not build:
        return _cached_dirs(root)
    proc = subprocess.run(
        ["bash", str(root / "hack" / "build-k8s.sh"), "all"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BinariesNotFoundError(
            f"hack/build-k8s.sh all failed (exit {proc.returncode}); "
            "see ~/.cache/headwater/logs/ or run it by hand"
        )
    parts = lines[-1].split()
    if len(parts) != 3:
        raise BinariesNotFoundError(f"unexpected last line from build-k8s.sh: {lines[-1]!r}")
    k8s, kwok, etcd = (Path(p) for p in parts)
    return k8s, kwok, etcd


def _cached_dirs(root: Path) -> tuple[Path, Path, Path]:
    """The dirs the build script would print, derived from its pinned versions.

    Reading ``hack/lib.sh`` keeps the versions in one place without running a build.
    """
    versions = _pinned_versions(root / "hack" / "lib.sh")
    cache = Path(os.environ.get("HEADWATER_CACHE", "") or Path.home() / ".cache" / "headwater")
    bin_dir = cache.expanduser() / "bin"
    return (
        bin_dir / f"kubernetes-{versions['K8S_VERSION']}",
        bin_dir / f"kwok-{versions['KWOK_VERSION']}",
        bin_dir / f"etcd-{versions['ETCD_VERSION']}",
    )


def _pinned_versions(lib_sh: Path) -> dict[str, str]:
    """Parse ``NAME="${NAME:-vX.Y.Z}"`` lines, honouring env overrides like bash does."""
    versions: dict[str, str] = {}
    for line in lib_sh.read_text().splitlines():
        name, sep, rest = line.partition('="${')
        if not sep or not name.isidentifier() or ":-" not in rest:
            continue
        default = rest.split(":-", 1)[1].split("}", 1)[0]
        versions[name] = os.environ.get(name) or default
    missing = {"K8S_VERSION", "KWOK_VERSION", "ETCD_VERSION"} - versions.keys()
    if missing:
        raise BinariesNotFoundError(f"could not read {sorted(missing)} from {lib_sh}")
    return versions
