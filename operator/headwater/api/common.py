"""Building blocks shared by every Headwater API kind.

The pydantic models in this package are the single source of truth of the API: the CRDs in
`crds/` are generated from them (`headwater crds`), the operator parses live objects with them,
and `headwater validate` uses them offline. Field docstrings become the CRD descriptions that
`kubectl explain` prints, so write them for users.

Cross-field rules are declared twice, on purpose and side by side: as CEL
(`x-kubernetes-validations`, enforced by the API server at `kubectl apply`) and as a pydantic
validator (enforced offline and by the operator when an older CRD let something through).
`tests/unit/test_validation_corpus.py` feeds one corpus of bad specs to both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ..constants import ALERT_RESERVED_LABELS, ALERT_RULE_NAMES

# Kubernetes names -------------------------------------------------------------------------
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"

K8sName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
SecretName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY)]
Quantity = Annotated[str, Field(max_length=32, pattern=QUANTITY)]
# JVM/Spark memory sizes (`512m`, `2g`), not Kubernetes quantities.
JvmSize = Annotated[str, Field(max_length=16, pattern=r"^[0-9]+[kKmMgG]?$")]
Image = Annotated[str, Field(min_length=1, max_length=512)]
ShortText = Annotated[str, Field(max_length=1024)]
ConfigMap = Annotated[
    dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]],
    Field(max_length=256),
]

ComponentMode = Literal["managed", "external", "disabled"]


def cel(rule: str, message: str, *, field_path: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry."""
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` carrying CEL rules for a model or field."""
    return {"x-kubernetes-validations": list(rules)}


class Model(BaseModel):
    """Base of every spec/status model: immutable, camelCase on the wire, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
        validate_default=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in the Kubernetes API (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class LocalObjectReference(Model):
    """A reference to another object in the same namespace."""

    name: K8sName
    """Name of the referenced object (same namespace)."""


class SecretKeyReference(Model):
    """One key of a Secret in the same namespace."""

    name: SecretName
    """Name of the Secret."""
    key: SecretKey
    """Key inside the Secret's data."""


class CredentialsSecretReference(Model):
    """A Secret holding a username and a password. The operator reads it; the values never
    appear in a spec, a status, an Event, a log line or a Kafka Connect REST payload."""

    name: SecretName
    """Name of the Secret (same namespace)."""
    username_key: SecretKey = "username"
    """Key holding the user name."""
    password_key: SecretKey = "password"
    """Key holding the password."""


class AccessKeySecretReference(Model):
    """A Secret holding S3 credentials (access key id and secret access key)."""

    name: SecretName
    """Name of the Secret (same namespace)."""
    access_key_key: SecretKey = "accessKey"
    """Key holding the access key id."""
    secret_key_key: SecretKey = "secretKey"
    """Key holding the secret access key."""


class ResourceList(Model):
    """CPU and memory quantities."""

    cpu: Quantity | None = None
    """CPU, e.g. `500m` or `2`."""
    memory: Quantity | None = None
    """Memory, e.g. `512Mi` or `2Gi`."""


class Resources(Model):
    """Container resource requests and limits."""

    requests: ResourceList | None = None
    """Minimum resources the scheduler reserves."""
    limits: ResourceList | None = None
    """Maximum resources the container may use."""


class Storage(Model):
    """Persistent storage for a stateful component."""

    size: Quantity = "10Gi"
    """Size of each volume claim."""
    storage_class_name: K8sName | None = None
    """StorageClass of the claims; the cluster default when unset."""


class TLSConfig(Model):
    """TLS towards an external endpoint."""

    enabled: bool = False
    """Use TLS."""
    ca_secret_ref: SecretKeyReference | None = None
    """CA bundle to verify the server; system trust store when unset."""
    insecure_skip_verify: bool = False
    """Skip server certificate verification (testing only)."""


Severity = Literal["critical", "warning", "info"]


class AlertRuleOverride(Model):
    """Settings of one generated alert rule."""

    enabled: bool = True
    """Generate this rule."""
    threshold: float | None = Field(default=None, ge=0)
    """Threshold in the rule's unit (see the rule's description); the built-in default when unset."""
    for_: str | None = Field(default=None, alias="for", pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")
    """How long the condition must hold before the alert fires, e.g. `5m`."""
    severity: Severity | None = None
    """Severity label of the alert."""


# Prometheus label names; values may not contain `{{` (rule labels are Go templates, and one
# broken template makes Prometheus refuse the whole rule file).
PROM_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
ALERT_RULE_UNKNOWN = "rules: unknown alert rule name (see docs/observability.md for the list)"
ALERT_LABEL_RESERVED = (
    "labels: alertname, severity, namespace, kind, name and platform are set by the operator"
)
ALERT_LABEL_TEMPLATE = "labels: values must not contain '{{'"


class AlertsSpec(Model):
    """Alert rules Headwater generates for this resource (Prometheus)."""

    enabled: bool = True
    """Generate alert rules for this resource at all."""
    rules: dict[
        Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9]+$")], AlertRuleOverride
    ] = Field(
        default_factory=dict,
        max_length=64,
        json_schema_extra=cel_rules(
            cel(f"self.all(k, k in {list(ALERT_RULE_NAMES)})", ALERT_RULE_UNKNOWN)
        ),
    )
    """Per-rule overrides keyed by alert name (e.g. `CdcConnectorLagHigh`); see docs/observability.md for the rules of each kind."""
    labels: dict[
        Annotated[str, Field(max_length=128, pattern=PROM_LABEL_NAME)],
        Annotated[str, Field(max_length=1024)],
    ] = Field(
        default_factory=dict,
        max_length=32,
        json_schema_extra=cel_rules(
            cel(f"self.all(k, !(k in {list(ALERT_RESERVED_LABELS)}))", ALERT_LABEL_RESERVED),
            cel("self.all(k, !self[k].contains('{{'))", ALERT_LABEL_TEMPLATE),
        ),
    )
    """Extra labels on every generated alert (e.g. `team: data`), for Alertmanager routing. Names are Prometheus label names."""

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: dict[str, AlertRuleOverride]) -> dict[str, AlertRuleOverride]:
        unknown = sorted(k for k in value if k not in ALERT_RULE_NAMES)
        if unknown:
            raise ValueError(f"{ALERT_RULE_UNKNOWN}: {', '.join(unknown)}")
        return value

    @field_validator("labels")
    @classmethod
    def _safe_labels(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k in ALERT_RESERVED_LABELS)
        if reserved:
            raise ValueError(f"{ALERT_LABEL_RESERVED}: {', '.join(reserved)}")
        if any("{{" in v for v in value.values()):
            raise ValueError(ALERT_LABEL_TEMPLATE)
        return value


# --- status ---------------------------------------------------------------------------------


class Condition(Model):
    """A Kubernetes API convention condition."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type: Ready, Reconciling, Stalled, or a kind-specific one."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)]
    """CamelCase machine-readable reason."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable explanation."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed for."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""


ConditionList = Annotated[
    list[Condition],
    Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    ),
]
