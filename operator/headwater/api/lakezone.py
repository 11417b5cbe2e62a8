"""LakeZone: a bronze/silver/gold zone of the lake on an S3-compatible object store."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    AlertsSpec,
    ConditionList,
    LocalObjectReference,
    Model,
    SecretName,
    cel,
    cel_rules,
)

# S3 bucket naming rules: 3-63 chars, lowercase letters, digits, dots and hyphens, starting and
# ending with a letter or digit, no "..", not an IP address.
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PATH_TOKENS = ("source", "table", "yyyy", "mm", "dd", "hh", "date", "zone", "tier")
_TOKEN_RE = re.compile(r"\{([A-Za-z]+)\}")
PATH_TEMPLATE = r"^([A-Za-z0-9_=./-]|\{(source|table|yyyy|mm|dd|hh|date|zone|tier)\})+$"
DEFAULT_PATH_TEMPLATES = {
    "bronze": "{source}/{table}/year={yyyy}/month={mm}/day={dd}/hour={hh}",
    "silver": "{table}/date={date}",
    "gold": "{table}",
}


class Retention(Model):
    """Lifecycle rules of the bucket (applied to the zone's prefix)."""

    expiration_days: int | None = Field(default=None, ge=1, le=36500)
    """Expire current objects after this many days; kept forever when unset."""
    noncurrent_version_expiration_days: int | None = Field(default=None, ge=1, le=36500)
    """Delete noncurrent versions after this many days (versioned buckets)."""
    abort_incomplete_multipart_upload_days: int = Field(default=7, ge=1, le=365)
    """Abort multipart uploads not completed within this many days."""


class ObjectLock(Model):
    """S3 Object Lock (WORM). It can only be enabled when the bucket is created."""

    enabled: bool = False
    """Create the bucket with Object Lock."""
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    """Default retention mode: COMPLIANCE cannot be shortened by anyone."""
    days: int = Field(default=30, ge=1, le=36500)
    """Default retention in days of new objects."""


# A principal name ends up in Secret names (`<zone>-<name>-s3`), MinIO policy names and IAM
# ARNs, so it keeps to the characters all three accept.
PRINCIPAL = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"


class Principal(Model):
    """A reader or writer of the zone."""

    name: Annotated[str, Field(min_length=3, max_length=63, pattern=PRINCIPAL)]
    """Principal name. With MinIO (managed, or external `kind: minio`) the operator creates one MinIO user per zone and principal and writes its keys into `secretName`; on other S3 stores it is granted in the bucket policy as `arn:aws:iam:::user/<name>`."""
    secret_name: SecretName | None = None
    """Secret that receives the generated credentials (MinIO only; keys accessKey, secretKey, endpoint, region, bucket, prefix and the AWS_* equivalents); `<zone>-<name>-s3` when unset."""


class Access(Model):
    """Who may read and write the zone."""

    readers: Annotated[list[Principal], Field(max_length=64)] = Field(default_factory=list)
    """Principals with read-only access to the zone's prefix."""
    writers: Annotated[list[Principal], Field(max_length=64)] = Field(default_factory=list)
    """Principals with read-write access to the zone's prefix."""


class LakeZoneSpec(Model):
    """Desired state of a LakeZone."""

    platform_ref: LocalObjectReference
    """DataPlatform whose object store holds the zone."""
    tier: Literal["bronze", "silver", "gold"]
    """Medallion tier: bronze (raw, as ingested), silver (cleaned, conformed), gold (curated for analytics)."""
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=BUCKET)]
    """Bucket name (S3 naming rules)."""
    prefix: Annotated[str, Field(max_length=512, pattern=r"^([A-Za-z0-9_=.-]+/)*$")] = ""
    """Key prefix of the zone inside the bucket, ending in `/` (empty: the whole bucket)."""
    path_template: (
        Annotated[str, Field(min_length=1, max_length=512, pattern=PATH_TEMPLATE)] | None
    ) = None
    """Object key layout under the prefix. Tokens: {source} {table} {yyyy} {mm} {dd} {hh} {date} {zone} {tier}. Tier default when unset."""
    format: Literal["json", "avro", "parquet", "iceberg", "delta"] = "parquet"
    """File/table format StreamJob sinks write."""
    compression: Literal["none", "snappy", "gzip", "zstd"] = "snappy"
    """Compression codec for the format."""
    versioning: bool = True
    """Keep object versions (needed for Object Lock and noncurrent-version retention)."""
    retention: Retention = Field(default_factory=Retention, json_schema_extra={"default": {}})
    """Lifecycle rules."""
    object_lock: ObjectLock = Field(default_factory=ObjectLock, json_schema_extra={"default": {}})
    """Object Lock (at bucket creation only)."""
    access: Access = Field(default_factory=Access, json_schema_extra={"default": {}})
    """Readers and writers."""
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    """Retain: deleting the LakeZone keeps bucket and data. Delete: removes objects and bucket (never objects under retention lock)."""
    deletion_timeout_seconds: int = Field(default=600, ge=0, le=604800)
    """With deletionPolicy Delete: how long a deletion blocked by objects under retention lock (or an unreachable object store) keeps retrying. Then the operator removes its finalizer, leaves what could not be deleted and says so in a Warning Event."""
    usage_scan_interval_seconds: int = Field(default=3600, ge=60, le=86400)
    """How often object count, size and newest object time are measured (a listing of the zone's prefix; large zones take longer)."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec, json_schema_extra={"default": {}})
    """Alert rules for this zone (freshness, capacity)."""

    @property
    def effective_path_template(self) -> str:
        return self.path_template or DEFAULT_PATH_TEMPLATES[self.tier]

    @model_validator(mode="after")
    def _checks(self) -> LakeZoneSpec:
        if self.object_lock.enabled and not self.versioning:
            raise ValueError("objectLock: Object Lock requires versioning")
        if self.retention.noncurrent_version_expiration_days and not self.versioning:
            raise ValueError(
                "retention.noncurrentVersionExpirationDays: noncurrent versions need versioning"
            )
        if ".." in self.bucket or re.fullmatch(r"[0-9]+(\.[0-9]+){3}", self.bucket):
            raise ValueError("bucket: must not contain '..' or be an IP address")
        if self.path_template:
            unknown = set(_TOKEN_RE.findall(self.path_template)) - set(PATH_TOKENS)
            if unknown:
                raise ValueError(f"pathTemplate: unknown tokens {sorted(unknown)}")
        names = [p.name for p in (*self.access.readers, *self.access.writers)]
        if len(names) != len(set(names)):
            raise ValueError("access: a principal may appear once, as reader or writer")
        return self

    model_config = Model.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!self.objectLock.enabled || self.versioning",
                "objectLock: Object Lock requires versioning",
                field_path=".objectLock.enabled",
            ),
            cel(
                "!has(self.retention.noncurrentVersionExpirationDays) || self.versioning",
                "retention.noncurrentVersionExpirationDays: noncurrent versions need versioning",
                field_path=".retention.noncurrentVersionExpirationDays",
            ),
            # Transition rules (checked on update only): these decide which bucket and keys the
            # zone owns, and Object Lock can only be chosen when a bucket is created.
            cel(
                "self.bucket == oldSelf.bucket",
                "bucket is immutable: create another LakeZone for another bucket",
                field_path=".bucket",
            ),
            cel(
                "self.prefix == oldSelf.prefix",
                "prefix is immutable: create another LakeZone for another prefix",
                field_path=".prefix",
            ),
            cel(
                "self.objectLock.enabled == oldSelf.objectLock.enabled",
                "objectLock.enabled is immutable: Object Lock can only be set when the bucket is created",
                field_path=".objectLock.enabled",
            ),
            cel(
                "!self.bucket.contains('..') && !self.bucket.matches('^[0-9]+([.][0-9]+){3}$')",
                "bucket: must not contain '..' or be an IP address",
                field_path=".bucket",
            ),
            cel(
                "!has(self.access.readers) || !has(self.access.writers) || "
                "self.access.readers.all(r, !self.access.writers.exists(w, w.name == r.name))",
                "access: a principal may appear once, as reader or writer",
                field_path=".access",
            ),
        )
    }


class PrincipalStatus(Model):
    """A principal as provisioned."""

    name: str
    """Principal name."""
    access: Literal["read", "write"]
    """Granted access."""
    secret_name: str | None = None
    """Secret with its credentials (MinIO only)."""


class LakeZoneStatus(Model):
    """Observed state of a LakeZone."""

    observed_generation: int | None = None
    """The generation the status reflects."""
    conditions: ConditionList
    """Ready, Reconciling, Stalled."""
    endpoint: str | None = None
    """S3 endpoint of the bucket (as workloads in the cluster reach it)."""
    bucket: str | None = None
    """Bucket the zone lives in."""
    prefix: str | None = None
    """Key prefix of the zone inside the bucket."""
    url: str | None = None
    """`s3://<bucket>/<prefix>`: the root of the zone."""
    bucket_exists: bool | None = None
    """The bucket exists."""
    versioning: Literal["Enabled", "Suspended", "Off"] | None = None
    """Bucket versioning as read back."""
    lifecycle_rules: Annotated[list[str], Field(max_length=64)] = Field(default_factory=list)
    """IDs of the zone's lifecycle rules in place."""
    object_lock: str | None = None
    """Object Lock as read back, e.g. `GOVERNANCE 30d` or `Off`."""
    multipart_cleanup: str | None = None
    """How incomplete multipart uploads are cleaned up: the zone's lifecycle rule, or (MinIO, which has no such rule) the server's own stale-upload expiry."""
    policy: Literal["minio-users", "bucket-policy", "none"] | None = None
    """Access setup: MinIO users and policies, statements in the bucket policy, or none."""
    principals: Annotated[list[PrincipalStatus], Field(max_length=128)] = Field(
        default_factory=list
    )
    """Provisioned readers and writers."""
    path_template: str | None = None
    """Effective layout: `s3://<bucket>/<prefix><pathTemplate>`; StreamJob sinks write there."""
    format: str | None = None
    """Format recorded for StreamJob sinks."""
    compression: str | None = None
    """Compression codec recorded for StreamJob sinks."""
    applied_hash: str | None = None
    """Hash of the bucket settings last applied; a difference found later is drift and is repaired with an Event."""
    object_count: int | None = None
    """Objects under the prefix at the last usage scan (current versions)."""
    size_bytes: int | None = None
    """Bytes under the prefix at the last usage scan (current versions)."""
    last_usage_scan_time: str | None = None
    """When the usage was measured."""
    last_object_time: str | None = None
    """Newest object's modification time at the last usage scan (freshness)."""
