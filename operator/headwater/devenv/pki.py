"""Certificates and keys for the dev control plane, made with the ``openssl`` CLI.

The ``cryptography`` package is not available here and the harness must stay
stdlib-only, so we shell out to ``openssl`` (3.x or 1.1.1). Every component gets its
own client certificate so the apiserver sees the identities RBAC's bootstrap
bindings expect (``system:kube-controller-manager``, ``system:kube-scheduler``), and
audit/metrics can tell the callers apart.

Generation is idempotent: files that exist are kept, so restarts reuse the same CA
and service-account signing key and previously issued tokens stay valid. A missing
CA invalidates everything signed by the old one, so then the whole directory is
regenerated.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from headwater.devenv.config import SERVICE_IP

CERT_DAYS = 3650
_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


class PkiError(RuntimeError):
    """An ``openssl`` invocation failed; the message carries its stderr."""


@dataclass(frozen=True)
class CertSpec:
    """One leaf certificate: file stem, subject and X.509 extensions."""

    name: str
    common_name: str
    organization: str | None = None
    server: bool = False

    def subject(self) -> str:
        """OpenSSL ``-subj`` string; ``O`` becomes a Kubernetes group."""
        org = f"/O={self.organization}" if self.organization else ""
        return f"{org}/CN={self.common_name}"

    def extensions(self) -> str:
        """Extension config: serving certs get SANs, client certs ``clientAuth``."""
        lines = ["basicConstraints=critical,CA:FALSE"]
        if self.server:
            sans = [
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP:127.0.0.1",
                f"IP:{SERVICE_IP}",
            ]
            lines += [
                "keyUsage=critical,digitalSignature,keyEncipherment",
                "extendedKeyUsage=serverAuth",
                "subjectAltName=" + ",".join(sans),
            ]
        else:
            lines += [
                "keyUsage=critical,digitalSignature,keyEncipherment",
                "extendedKeyUsage=clientAuth",
            ]
        return "\n".join(lines) + "\n"


# system:masters is how the admin and kwok get full access without any RBAC objects
# (kwok patches node/pod status, PVs and leases across the cluster).
LEAF_CERTS = (
    CertSpec("apiserver", "kube-apiserver", server=True),
    CertSpec("admin", "headwater-admin", organization="system:masters"),
    CertSpec("controller-manager", "system:kube-controller-manager"),
    CertSpec("scheduler", "system:kube-scheduler"),
    CertSpec("kwok", "kwok-controller", organization="system:masters"),
    # The apiserver's client identity towards aggregated APIs (metrics-server & co.).
    CertSpec("front-proxy-client", "front-proxy-client"),
)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated material in ``pki_dir``."""

    pki_dir: Path

    @property
    def ca_cert(self) -> Path:
        """Cluster CA: signs every serving and client certificate."""
        return self.pki_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """CA key, also used by kube-controller-manager's CSR signer."""
        return self.pki_dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        """Service-account token signing key (private, RSA)."""
        return self.pki_dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """Public half of :attr:`sa_key`, for the apiserver to verify tokens."""
        return self.pki_dir / "sa.pub"

    def cert(self, name: str) -> Path:
        """Certificate of the leaf called ``name``."""
        return self.pki_dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        """Private key of the leaf called ``name``."""
        return self.pki_dir / f"{name}.key"

    def ensure(self) -> None:
        """Create whatever is missing; a missing CA regenerates everything."""
        if not (self.ca_cert.is_file() and self.ca_key.is_file()):
            shutil.rmtree(self.pki_dir, ignore_errors=True)
        self.pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.ca_cert.is_file():
            self._make_ca()
        for spec in LEAF_CERTS:
            if not (self.cert(spec.name).is_file() and self.key(spec.name).is_file()):
                self._make_leaf(spec)
        if not (self.sa_key.is_file() and self.sa_pub.is_file()):
            self._make_sa_keypair()

    def _make_ca(self) -> None:
        """Self-signed EC CA (fast to generate, accepted by every Go TLS stack)."""
        _openssl(
            "req", "-x509", "-new", "-nodes", *_EC_KEY,
            "-keyout", str(self.ca_key), "-out", str(self.ca_cert),
            "-days", str(CERT_DAYS), "-subj", "/CN=headwater-devenv-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        self.ca_key.chmod(0o600)

    def _make_leaf(self, spec: CertSpec) -> None:
        """Key + CSR, then sign with the CA using an extension file (portable)."""
        with tempfile.TemporaryDirectory(dir=self.pki_dir) as tmp:
            csr = Path(tmp) / "req.csr"
            ext = Path(tmp) / "ext.cnf"
            ext.write_text(spec.extensions())
            _openssl(
                "req", "-new", "-nodes", *_EC_KEY,
                "-keyout", str(self.key(spec.name)), "-out", str(csr),
                "-subj", spec.subject(),
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", str(csr),
                "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
                "-set_serial", str(secrets.randbits(63)), "-days", str(CERT_DAYS),
                "-extfile", str(ext), "-out", str(self.cert(spec.name)),
            )  # fmt: skip
        self.key(spec.name).chmod(0o600)

    def _make_sa_keypair(self) -> None:
        """RSA so tokens are RS256, what every OIDC/JWT consumer expects by default."""
        _openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(self.sa_key),
        )  # fmt: skip
        _openssl("pkey", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub))
        self.sa_key.chmod(0o600)


def _openssl(*args: str) -> None:
    """Run ``openssl`` quietly; raise :class:`PkiError` with its stderr on failure."""
    binary = shutil.which("openssl")
    if binary is None:
        raise PkiError("the openssl CLI is required to create the dev cluster's certificates")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: {proc.stderr.strip()}")
