"""LakeZone -> the bucket settings it wants and the Kubernetes objects it owns.

Pure: the reconciler hands in the facts it looked up (endpoint, generated keys) and gets back
plain data. The same functions feed `headwater render`, so a review of a LakeZone change can
read the lifecycle rules and access policies it will apply before anything touches a bucket.

Names that identify the zone's artifacts on a *shared* object store (lifecycle rule IDs,
MinIO policies and users, bucket-policy statement IDs) all carry the namespace and the zone
name, so several zones can share one bucket by prefix and one MinIO server across namespaces
without touching each other's settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.lakezone import LakeZoneSpec, Principal
from .common import Obj, Owner, finalize

Access = Literal["read", "write"]
COMPONENT = "lakezone"
# Shown by `headwater render`, where no cluster can be asked.
GENERATED = "<generated on first reconcile>"
FROM_PLATFORM = "<the DataPlatform's s3Endpoint>"

# S3 actions per access level. Writers may delete current objects (compaction, Delta/Iceberg
# housekeeping) but never specific versions nor bypass a retention lock: history stays.
BUCKET_ACTIONS = ("s3:GetBucketLocation",)
LIST_ACTIONS = ("s3:ListBucket",)
WRITE_BUCKET_ACTIONS = ("s3:ListBucketMultipartUploads",)
READ_OBJECT_ACTIONS = ("s3:GetObject",)
WRITE_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


@dataclass(frozen=True)
class ZoneIds:
    """How the zone's artifacts are named on the object store."""

    namespace: str
    name: str

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def rule_prefix(self) -> str:
        """Lifecycle rule IDs of this zone start with this (others' rules are left alone)."""
        return f"headwater:{self.owner}:"

    @property
    def sid_prefix(self) -> str:
        """Bucket-policy statement IDs of this zone start with this."""
        return f"headwater:{self.owner}:"

    @property
    def policy_prefix(self) -> str:
        """MinIO policy names of this zone start with this. `:` cannot occur in Kubernetes
        names nor in principal names, so one zone's prefix never matches another's."""
        return f"headwater:{self.namespace}:{self.name}:"

    def policy_name(self, principal: str) -> str:
        return f"{self.policy_prefix}{principal}"

    def principal_of_policy(self, policy_name: str) -> str | None:
        if not policy_name.startswith(self.policy_prefix):
            return None
        return policy_name[len(self.policy_prefix) :]

    def access_key(self, principal: str) -> str:
        """MinIO access key of a principal: derived, so clean-up finds it without a Secret.

        20 upper-case characters like AWS key ids, the length every S3 tool accepts.
        """
        digest = hashlib.sha256(f"{self.owner}/{principal}".encode()).digest()
        return "HW" + base64.b32encode(digest).decode()[:18]

    def secret_name(self, principal: Principal) -> str:
        return principal.secret_name or f"{self.name}-{principal.name}-s3"


@dataclass(frozen=True)
class LifecycleRule:
    """One lifecycle rule of the zone (one action each, so status lists what is in force)."""

    id: str
    prefix: str
    expiration_days: int | None = None
    noncurrent_days: int | None = None
    abort_multipart_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "prefix": self.prefix}
        if self.expiration_days is not None:
            out["expirationDays"] = self.expiration_days
        if self.noncurrent_days is not None:
            out["noncurrentVersionExpirationDays"] = self.noncurrent_days
        if self.abort_multipart_days is not None:
            out["abortIncompleteMultipartUploadDays"] = self.abort_multipart_days
        return out


@dataclass(frozen=True)
class BucketSettings:
    """Everything the zone wants of its bucket, compared with what the store reports."""

    bucket: str
    prefix: str
    versioning: bool
    object_lock: bool
    lock_mode: str
    lock_days: int
    rules: tuple[LifecycleRule, ...]
    rule_prefix: str

    def fingerprint(self) -> str:
        """Stable hash of the settings: status keeps the last applied one to tell drift
        (the store changed) from an update (the spec changed)."""
        doc = {
            "versioning": self.versioning,
            "lock": [self.object_lock, self.lock_mode, self.lock_days],
            "rules": [r.to_json() for r in self.rules],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Grant:
    """One principal's access to the zone."""

    principal: str
    access: Access
    secret_name: str
    policy_name: str
    access_key: str
    policy: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class Credentials:
    """Keys of one principal, for its Secret. Never logged (no repr of the secret)."""

    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class LakeContext:
    """Facts the reconciler looked up."""

    endpoint: str = FROM_PLATFORM
    region: str = "us-east-1"
    # principal name -> keys; principals without an entry get no Secret (e.g. external S3).
    credentials: dict[str, Credentials] = field(default_factory=dict)


def ids_of(owner: Owner) -> ZoneIds:
    return ZoneIds(owner.namespace, owner.name)


def zone_url(spec: LakeZoneSpec) -> str:
    return f"s3://{spec.bucket}/{spec.prefix}"


def layout(spec: LakeZoneSpec) -> dict[str, str]:
    """What StreamJobs and consumers read to agree on where and how data is written."""
    return {
        "bucket": spec.bucket,
        "prefix": spec.prefix,
        "url": zone_url(spec),
        "pathTemplate": zone_url(spec) + spec.effective_path_template,
        "format": spec.format,
        "compression": spec.compression,
    }


def lifecycle_rules(spec: LakeZoneSpec, ids: ZoneIds) -> tuple[LifecycleRule, ...]:
    r, prefix = spec.retention, spec.prefix
    rules = []
    if r.expiration_days is not None:
        rules.append(LifecycleRule(ids.rule_prefix + "expire-current", prefix, r.expiration_days))
    if r.noncurrent_version_expiration_days is not None:
        rules.append(
            LifecycleRule(
                ids.rule_prefix + "expire-noncurrent",
                prefix,
                noncurrent_days=r.noncurrent_version_expiration_days,
            )
        )
    rules.append(
        LifecycleRule(
            ids.rule_prefix + "abort-multipart",
            prefix,
            abort_multipart_days=r.abort_incomplete_multipart_upload_days,
        )
    )
    return tuple(rules)


def bucket_settings(spec: LakeZoneSpec, ids: ZoneIds) -> BucketSettings:
    return BucketSettings(
        bucket=spec.bucket,
        prefix=spec.prefix,
        versioning=spec.versioning,
        object_lock=spec.object_lock.enabled,
        lock_mode=spec.object_lock.mode,
        lock_days=spec.object_lock.days,
        rules=lifecycle_rules(spec, ids),
        rule_prefix=ids.rule_prefix,
    )


def statements(bucket: str, prefix: str, access: Access) -> list[dict[str, Any]]:
    """IAM statements granting `access` to the keys under `prefix` (no Principal, no Sid)."""
    out: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": list(BUCKET_ACTIONS + (WRITE_BUCKET_ACTIONS if access == "write" else ())),
            "Resource": [f"arn:aws:s3:::{bucket}"],
        }
    ]
    listing: dict[str, Any] = {
        "Effect": "Allow",
        "Action": list(LIST_ACTIONS),
        "Resource": [f"arn:aws:s3:::{bucket}"],
    }
    if prefix:
        # Listing the zone's own keys only (`prefix` itself, for the directory marker).
        listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
    out.append(listing)
    out.append(
        {
            "Effect": "Allow",
            "Action": list(
                READ_OBJECT_ACTIONS + (WRITE_OBJECT_ACTIONS if access == "write" else ())
            ),
            "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
        }
    )
    return out


def policy_document(bucket: str, prefix: str, access: Access) -> dict[str, Any]:
    """A MinIO (IAM) policy for one principal."""
    return {"Version": "2012-10-17", "Statement": statements(bucket, prefix, access)}


def grants(spec: LakeZoneSpec, ids: ZoneIds) -> list[Grant]:
    out = []
    for access, principals in (("read", spec.access.readers), ("write", spec.access.writers)):
        for p in principals:
            out.append(
                Grant(
                    principal=p.name,
                    access=access,  # type: ignore[arg-type]
                    secret_name=ids.secret_name(p),
                    policy_name=ids.policy_name(p.name),
                    access_key=ids.access_key(p.name),
                    policy=policy_document(spec.bucket, spec.prefix, access),  # type: ignore[arg-type]
                )
            )
    return out


def principal_arn(name: str) -> str:
    """How a principal is named in a bucket policy on a non-MinIO store (Ceph RGW, AWS-style
    IAM users of the tenant)."""
    return f"arn:aws:iam:::user/{name}"


def bucket_policy_statements(spec: LakeZoneSpec, ids: ZoneIds) -> list[dict[str, Any]]:
    """The zone's statements in a bucket policy (external S3 without MinIO's admin API)."""
    out: list[dict[str, Any]] = []
    for access, principals in (("read", spec.access.readers), ("write", spec.access.writers)):
        if not principals:
            continue
        arns = sorted(principal_arn(p.name) for p in principals)
        for i, stmt in enumerate(statements(spec.bucket, spec.prefix, access)):  # type: ignore[arg-type]
            out.append({"Sid": f"{ids.sid_prefix}{access}-{i}", "Principal": {"AWS": arns}, **stmt})
    return out


def _settings_configmap(spec: LakeZoneSpec, owner: Owner) -> Obj:
    ids = ids_of(owner)
    data = {
        "layout.json": json.dumps(layout(spec), indent=2, sort_keys=True) + "\n",
        "lifecycle.json": json.dumps(
            [r.to_json() for r in lifecycle_rules(spec, ids)], indent=2, sort_keys=True
        )
        + "\n",
        "policies.json": json.dumps(
            {g.principal: {"access": g.access, "policy": g.policy} for g in grants(spec, ids)},
            indent=2,
            sort_keys=True,
        )
        + "\n",
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{owner.name}-lakezone"},
        "data": data,
    }


def _credentials_secret(
    spec: LakeZoneSpec, grant: Grant, creds: Credentials, ctx: LakeContext
) -> Obj:
    data = {
        "accessKey": creds.access_key,
        "secretKey": creds.secret_key,
        "endpoint": ctx.endpoint,
        "region": ctx.region,
        "bucket": spec.bucket,
        "prefix": spec.prefix,
        # The names every AWS SDK, Spark's s3a and Flink's S3 filesystem read from the
        # environment, so `envFrom: [{secretRef: ...}]` is all a workload needs.
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_ENDPOINT_URL": ctx.endpoint,
        "AWS_REGION": ctx.region,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": grant.secret_name},
        "type": "Opaque",
        "stringData": data,
    }


def render_lakezone(spec: LakeZoneSpec, owner: Owner, ctx: LakeContext) -> list[Obj]:
    """The zone's Kubernetes children: its settings ConfigMap and one credentials Secret per
    principal that has keys."""
    objs = [_settings_configmap(spec, owner)]
    for grant in grants(spec, ids_of(owner)):
        creds = ctx.credentials.get(grant.principal)
        if creds is not None:
            objs.append(_credentials_secret(spec, grant, creds, ctx))
    return [finalize(o, owner, COMPONENT) for o in objs]


def offline_context(spec: LakeZoneSpec, owner: Owner) -> LakeContext:
    """What `headwater render` shows without a cluster: placeholders for generated keys."""
    ids = ids_of(owner)
    return LakeContext(
        credentials={
            g.principal: Credentials(ids.access_key(g.principal), GENERATED)
            for g in grants(spec, ids)
        }
    )
