"""S3 / MinIO client for LakeZones: bucket settings, access, usage and data-safe deletion.

Built on the `minio` SDK (S3 API and, for MinIO servers, its admin API for users and
policies); nothing here signs a request by hand. Every method is blocking: reconcilers call
them through `ctx.blocking`. Every failure leaves as an `ObjectStoreError` whose `kind`
says what the reconciler should do (back off, report credentials, report a refusal), and
whose message names no credential.

Settings are compared with what the store reports before anything is written, so a steady
state costs only reads, and whatever differs is reported back as a change (drift when the
reconciler did not expect one).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import urllib3
from minio import Minio, MinioAdmin
from minio.commonconfig import ENABLED, Filter
from minio.credentials.providers import StaticProvider
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioAdminException, S3Error, ServerError
from minio.lifecycleconfig import (
    AbortIncompleteMultipartUpload,
    Expiration,
    LifecycleConfig,
    NoncurrentVersionExpiration,
    Rule,
)
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import SUSPENDED, VersioningConfig

from ..render.lakezone import BucketSettings, Grant, LifecycleRule

ErrorKind = Literal["unavailable", "auth", "refused", "immutable"]
AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
)
# Codes a store answers when it does not know a lifecycle action (MinIO: AbortIncomplete...).
UNSUPPORTED_CODES = frozenset({"InvalidArgument", "MalformedXML", "NotImplemented"})
NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "InvalidRequest"})
DELETE_BATCH = 1000
# How many locked versions are asked for their retain-until date (the message needs the
# latest date, not an exact census of millions of objects).
RETENTION_SAMPLE = 200


class ObjectStoreError(Exception):
    """A failed object-store call. `kind`: unavailable (network, 5xx: back off and retry),
    auth (credentials refused), refused (the store said no: the message says why),
    immutable (the bucket cannot become what the spec asks)."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Connection:
    """Where and as whom the operator talks to an object store."""

    endpoint: str  # URL the operator can reach (after endpoint overrides)
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    admin: bool = False  # a MinIO server: the admin API manages users and policies
    verify: bool = True
    ca_pem: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc

    @property
    def secure(self) -> bool:
        return urlsplit(self.endpoint).scheme == "https"


@dataclass
class BucketReport:
    """What the bucket looks like after `ensure_bucket`, and what had to change."""

    created: bool = False
    versioning: str = "Off"
    object_lock: str = "Off"
    rule_ids: list[str] = field(default_factory=list)
    multipart_cleanup: str = ""
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    objects: int
    bytes: int
    newest: dt.datetime | None


@dataclass(frozen=True)
class PurgeResult:
    """Outcome of deleting every version under a prefix (never bypassing a lock)."""

    deleted: int
    locked: int
    locked_until: dt.datetime | None
    other_failures: list[str]


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    """Translate SDK and network exceptions into ObjectStoreError (credential-free text)."""
    try:
        yield
    except ObjectStoreError:
        raise
    except S3Error as err:
        kind: ErrorKind = "auth" if err.code in AUTH_CODES else "refused"
        raise ObjectStoreError(kind, f"{where}: {err.code}: {err.message}") from None
    except ServerError as err:
        raise ObjectStoreError("unavailable", f"{where}: HTTP {err.status_code}") from None
    except InvalidResponseError as err:
        raise ObjectStoreError("unavailable", f"{where}: invalid response ({err})") from None
    except MinioAdminException as err:
        status = int(getattr(err, "_code", 0) or 0)
        body = str(getattr(err, "_body", "") or "")
        detail = _admin_message(body)
        if status >= 500 or status == 0:
            raise ObjectStoreError("unavailable", f"{where}: HTTP {status} {detail}") from None
        kind = "auth" if status in (401, 403) else "refused"
        raise ObjectStoreError(kind, f"{where}: HTTP {status} {detail}") from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise ObjectStoreError(
            "unavailable", f"{where}: {type(reason).__name__}: {_short(reason)}"
        ) from None


def _short(err: object) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:200] + "..."


def _admin_message(body: str) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return _short(body.strip())
    return f"{doc.get('Code', '')}: {doc.get('Message', '')}".strip(": ")


def _admin_code(err: MinioAdminException) -> str:
    try:
        return str(json.loads(str(getattr(err, "_body", "") or "{}")).get("Code", ""))
    except ValueError:
        return ""


def canonical(value: Any) -> Any:
    """A policy document in a form where equal meaning compares equal: lists (of actions,
    resources, principals, statements) as sorted sets, a lone string as a one-item list."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items() if k != "Version"}
    if isinstance(value, list | tuple):
        items = [v if isinstance(v, str) else canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str):
        return [value]
    return value


def _rule_of(rule: Rule) -> LifecycleRule | None:
    """Our representation of a rule the store reported; None when it holds anything we
    never write (a transition, a tag filter, a disabled status...), i.e. it was altered."""
    if rule.status != ENABLED or rule.transition or rule.noncurrent_version_transition:
        return None
    flt = rule.rule_filter
    if flt is not None and (flt.tag is not None or flt.and_operator is not None):
        return None
    exp = rule.expiration
    if exp is not None and (exp.date is not None or exp.expired_object_delete_marker):
        return None
    nce = rule.noncurrent_version_expiration
    if nce is not None and nce.newer_noncurrent_versions:
        return None
    return LifecycleRule(
        id=rule.rule_id or "",
        prefix=(flt.prefix if flt is not None else "") or "",
        expiration_days=exp.days if exp is not None else None,
        noncurrent_days=nce.noncurrent_days if nce is not None else None,
        abort_multipart_days=(
            rule.abort_incomplete_multipart_upload.days_after_initiation
            if rule.abort_incomplete_multipart_upload is not None
            else None
        ),
    )


def _to_rule(rule: LifecycleRule) -> Rule:
    return Rule(
        ENABLED,
        rule_filter=Filter(prefix=rule.prefix),
        rule_id=rule.id,
        expiration=Expiration(days=rule.expiration_days) if rule.expiration_days else None,
        noncurrent_version_expiration=(
            NoncurrentVersionExpiration(noncurrent_days=rule.noncurrent_days)
            if rule.noncurrent_days
            else None
        ),
        abort_incomplete_multipart_upload=(
            AbortIncompleteMultipartUpload(rule.abort_multipart_days)
            if rule.abort_multipart_days
            else None
        ),
    )


def lifecycle_config(foreign: Sequence[Rule], desired: Sequence[LifecycleRule]) -> LifecycleConfig:
    """The lifecycle configuration written to a bucket: everybody else's rules as the store
    reported them, then the zone's."""
    return LifecycleConfig([*foreign, *(_to_rule(r) for r in desired)])


def _http(conn: Connection) -> urllib3.PoolManager:
    """Short timeouts and one quick retry: an unreachable store must surface as a status
    within seconds, not after the SDK's default minutes of retrying."""
    kw: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=min(conn.timeout, 5.0), read=conn.timeout),
        "maxsize": 10,
        "retries": urllib3.Retry(
            total=2, connect=1, read=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]
        ),
    }
    if conn.secure:
        kw["cert_reqs"] = "CERT_REQUIRED" if conn.verify else "CERT_NONE"
        if conn.ca_pem:
            kw["ca_cert_data"] = conn.ca_pem
    return urllib3.PoolManager(**kw)


class ObjectStore:
    """One object store as one operator identity."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.label = conn.host
        http = _http(conn)
        self.s3 = Minio(
            conn.host,
            access_key=conn.access_key,
            secret_key=conn.secret_key,
            secure=conn.secure,
            region=conn.region,
            http_client=http,
            cert_check=conn.verify,
        )
        self.admin = (
            MinioAdmin(
                endpoint=conn.host,
                credentials=StaticProvider(conn.access_key, conn.secret_key),
                region=conn.region,
                secure=conn.secure,
                cert_check=conn.verify,
                http_client=http,
            )
            if conn.admin
            else None
        )
        # MinIO refuses AbortIncompleteMultipartUpload rules (it expires stale uploads
        # itself); other stores may too. Learned on the first refusal, then not retried.
        self.abort_rules_supported: bool | None = False if conn.admin else None
        self._stale_expiry: str | None = None  # "" once read and absent
        self._stale_lock = threading.Lock()

    # --- bucket settings ---------------------------------------------------------------------

    def ensure_bucket(self, want: BucketSettings) -> BucketReport:
        """Create the bucket if needed and make versioning, Object Lock retention and the
        zone's lifecycle rules what `want` says. Other rules in the bucket stay untouched."""
        report = BucketReport()
        b = want.bucket
        with _errors(f"bucket {b}"):
            if not self.s3.bucket_exists(b):
                region = self.conn.region if self.conn.region != "us-east-1" else None
                self.s3.make_bucket(b, location=region, object_lock=want.object_lock)
                report.created = True
                report.changes.append(
                    f"created bucket {b}" + (" with Object Lock" if want.object_lock else "")
                )
            self._ensure_lock(want, report)
            self._ensure_versioning(want, report)
            if want.object_lock:
                self._ensure_default_retention(want, report)
            self._ensure_lifecycle(want, report)
        return report

    def _lock_config(self, bucket: str) -> ObjectLockConfig | None:
        try:
            return self.s3.get_object_lock_config(bucket)
        except S3Error as err:
            if err.code in NO_LOCK_CODES:
                return None
            raise

    def _ensure_lock(self, want: BucketSettings, report: BucketReport) -> None:
        cfg = self._lock_config(want.bucket)
        has_lock = cfg is not None
        if has_lock != want.object_lock:
            have = "has Object Lock" if has_lock else "was created without Object Lock"
            asked = "enabled" if want.object_lock else "disabled"
            raise ObjectStoreError(
                "immutable",
                f"bucket {want.bucket} {have} but the spec asks for it {asked}; Object Lock "
                "can only be chosen when a bucket is created (use another bucket)",
            )
        report.object_lock = _lock_text(cfg)

    def _ensure_versioning(self, want: BucketSettings, report: BucketReport) -> None:
        status = self.s3.get_bucket_versioning(want.bucket).status or "Off"
        if want.versioning and status != ENABLED:
            self.s3.set_bucket_versioning(want.bucket, VersioningConfig(ENABLED))
            report.changes.append(f"versioning {status} -> Enabled")
            status = ENABLED
        elif not want.versioning and status == ENABLED:
            self.s3.set_bucket_versioning(want.bucket, VersioningConfig(SUSPENDED))
            report.changes.append("versioning Enabled -> Suspended")
            status = SUSPENDED
        report.versioning = status

    def _ensure_default_retention(self, want: BucketSettings, report: BucketReport) -> None:
        desired = f"{want.lock_mode} {want.lock_days}d"
        if report.object_lock != desired:
            self.s3.set_object_lock_config(
                want.bucket, ObjectLockConfig(want.lock_mode, want.lock_days, DAYS)
            )
            report.changes.append(f"default retention {report.object_lock} -> {desired}")
            report.object_lock = desired

    def _ensure_lifecycle(self, want: BucketSettings, report: BucketReport) -> None:
        current = self.s3.get_bucket_lifecycle(want.bucket)
        rules: list[Rule] = list(current.rules) if current is not None else []
        foreign = [r for r in rules if not (r.rule_id or "").startswith(want.rule_prefix)]
        have = [_rule_of(r) for r in rules if (r.rule_id or "").startswith(want.rule_prefix)]
        desired = self.applicable_rules(want)
        if sorted(have, key=repr) != sorted(desired, key=repr):
            desired = self._put_lifecycle(want.bucket, foreign, desired)
            report.changes.append("lifecycle rules " + ("restored" if have else "applied"))
        report.rule_ids = [r.id for r in desired]
        report.multipart_cleanup = self._multipart_note(want)

    def applicable_rules(self, want: BucketSettings) -> list[LifecycleRule]:
        """The zone's rules this store is sent: all of them, except the
        AbortIncompleteMultipartUpload rule on a store known not to implement it (MinIO, or
        one that refused it before)."""
        return [
            r
            for r in want.rules
            if r.abort_multipart_days is None or self.abort_rules_supported is not False
        ]

    def _put_lifecycle(
        self, bucket: str, foreign: list[Rule], desired: list[LifecycleRule]
    ) -> list[LifecycleRule]:
        try:
            self._write_lifecycle(bucket, lifecycle_config(foreign, desired))
        except S3Error as err:
            aborts = [r for r in desired if r.abort_multipart_days is not None]
            if err.code not in UNSUPPORTED_CODES or not aborts:
                raise
            # The store does not know AbortIncompleteMultipartUpload: apply the rest.
            self.abort_rules_supported = False
            desired = [r for r in desired if r.abort_multipart_days is None]
            self._write_lifecycle(bucket, lifecycle_config(foreign, desired))
        else:
            if any(r.abort_multipart_days is not None for r in desired):
                self.abort_rules_supported = True
        return desired

    def _write_lifecycle(self, bucket: str, config: LifecycleConfig) -> None:
        if config.rules:
            self.s3.set_bucket_lifecycle(bucket, config)
        else:
            self.s3.delete_bucket_lifecycle(bucket)

    def _multipart_note(self, want: BucketSettings) -> str:
        days = next((r.abort_multipart_days for r in want.rules if r.abort_multipart_days), None)
        if days is None:
            return ""
        if self.abort_rules_supported is not False:
            return f"lifecycle rule: abort after {days}d"
        expiry = self._stale_upload_expiry() if self.admin is not None else None
        return "the store does not support AbortIncompleteMultipartUpload rules" + (
            f"; MinIO aborts stale uploads after {expiry} (server-wide)" if expiry else ""
        )

    def _stale_upload_expiry(self) -> str | None:
        """MinIO's server-wide stale upload expiry (read once per client: it is server
        configuration, and status only reports it). Reading it is costly on both sides (the
        admin API encrypts its answer with an Argon2-derived key), so a failed or empty read
        is remembered too."""
        assert self.admin is not None
        with self._stale_lock:  # one read, not one per data-plane thread at start-up
            if self._stale_expiry is None:
                found = ""
                with contextlib.suppress(Exception):
                    for item in self.admin.config_get("api").split():
                        key, _, value = item.partition("=")
                        if key == "stale_uploads_expiry":
                            found = value
                self._stale_expiry = found
        return self._stale_expiry or None

    def remove_lifecycle_rules(self, bucket: str, rule_prefix: str) -> None:
        with _errors(f"bucket {bucket}"):
            current = self.s3.get_bucket_lifecycle(bucket)
            if current is None:
                return
            keep = [r for r in current.rules if not (r.rule_id or "").startswith(rule_prefix)]
            if len(keep) != len(current.rules):
                self._write_lifecycle(bucket, lifecycle_config(keep, []))

    def bucket_exists(self, bucket: str) -> bool:
        with _errors(f"bucket {bucket}"):
            return bool(self.s3.bucket_exists(bucket))

    # --- access: bucket policy (any S3) -------------------------------------------------------

    def _bucket_policy(self, bucket: str) -> dict[str, Any]:
        try:
            text = self.s3.get_bucket_policy(bucket)
        except S3Error as err:
            if err.code == "NoSuchBucketPolicy":
                return {"Version": "2012-10-17", "Statement": []}
            raise
        doc: dict[str, Any] = json.loads(text) if text else {}
        doc.setdefault("Version", "2012-10-17")
        doc.setdefault("Statement", [])
        return doc

    def ensure_bucket_policy(
        self, bucket: str, statements: Sequence[dict[str, Any]], sid_prefix: str
    ) -> list[str]:
        """Make the zone's statements (Sid starting with `sid_prefix`) exactly `statements`,
        keeping everybody else's. Returns the changes made."""
        with _errors(f"bucket {bucket} policy"):
            doc = self._bucket_policy(bucket)
            foreign = [s for s in doc["Statement"] if not _ours(s, sid_prefix)]
            mine = [s for s in doc["Statement"] if _ours(s, sid_prefix)]
            if canonical(mine) == canonical(list(statements)):
                return []
            new = foreign + list(statements)
            if new:
                self.s3.set_bucket_policy(
                    bucket, json.dumps({"Version": doc["Version"], "Statement": new})
                )
            else:
                self.s3.delete_bucket_policy(bucket)
            return ["bucket policy " + ("restored" if mine else "applied")]

    def bucket_policy_statements(self, bucket: str, sid_prefix: str) -> list[dict[str, Any]]:
        with _errors(f"bucket {bucket} policy"):
            return [s for s in self._bucket_policy(bucket)["Statement"] if _ours(s, sid_prefix)]

    # --- access: MinIO users and policies -----------------------------------------------------

    def _need_admin(self) -> MinioAdmin:
        if self.admin is None:
            raise ObjectStoreError("refused", "users and policies need MinIO's admin API")
        return self.admin

    def _policy(self, name: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self._need_admin().policy_info(name))
            return doc
        except MinioAdminException as err:
            if _admin_code(err) == "XMinioAdminNoSuchPolicy":
                return None
            raise

    def _user(self, access_key: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self._need_admin().user_info(access_key))
            return doc
        except MinioAdminException as err:
            if _admin_code(err) == "XMinioAdminNoSuchUser":
                return None
            raise

    def ensure_grant(self, grant: Grant, secret_key: str, set_key: bool) -> list[str]:
        """The principal's policy, user (with `secret_key`) and attachment, as they should be.

        `set_key` forces the user's secret to `secret_key` (a newly generated Secret);
        otherwise an existing user keeps the key it has (the admin API cannot read it back).
        """
        admin = self._need_admin()
        changes: list[str] = []
        with _errors(f"MinIO access for {grant.principal}"):
            policy = self._policy(grant.policy_name)
            if policy is None or canonical(policy) != canonical(grant.policy):
                admin.policy_add(grant.policy_name, policy=grant.policy)
                changes.append(
                    f"policy {grant.policy_name} " + ("restored" if policy else "created")
                )
            user = self._user(grant.access_key)
            if user is None or set_key:
                admin.user_add(grant.access_key, secret_key)
                changes.append(f"user for {grant.principal} " + ("set" if user else "created"))
                user = self._user(grant.access_key) or {}
            if user.get("status") not in (None, "enabled"):
                admin.user_enable(grant.access_key)
                changes.append(f"user for {grant.principal} re-enabled")
            attached = {p for p in str(user.get("policyName") or "").split(",") if p}
            if grant.policy_name not in attached:
                admin.attach_policy([grant.policy_name], user=grant.access_key)
                changes.append(f"policy attached to {grant.principal}")
            stray = attached - {grant.policy_name}
            if stray:
                admin.detach_policy(sorted(stray), user=grant.access_key)
                changes.append(f"extra policies detached from {grant.principal}")
        return changes

    def revoke(self, policy_prefix: str, keep: Iterable[str], access_key_of: Any) -> list[str]:
        """Remove the users and policies of this zone's principals not in `keep`.

        Finds them by policy name prefix, so it also cleans up after principals whose
        Secrets are long gone. `access_key_of(principal)` derives a principal's user.
        """
        admin = self._need_admin()
        keep = set(keep)
        removed: list[str] = []
        with _errors("MinIO access clean-up"):
            for name in sorted(json.loads(admin.policy_list() or "{}")):
                if not name.startswith(policy_prefix):
                    continue
                principal = name[len(policy_prefix) :]
                if principal in keep:
                    continue
                with contextlib.suppress(MinioAdminException):
                    admin.user_remove(access_key_of(principal))
                with contextlib.suppress(MinioAdminException):
                    admin.policy_remove(name)
                removed.append(principal)
        return removed

    def user_exists(self, access_key: str) -> bool:
        with _errors("MinIO user"):
            return self._user(access_key) is not None

    # --- usage and deletion -------------------------------------------------------------------

    def usage(self, bucket: str, prefix: str) -> Usage:
        """Count, size and newest modification time of the current objects under `prefix`."""
        count = size = 0
        newest: dt.datetime | None = None
        with _errors(f"bucket {bucket} listing"):
            for obj in self.s3.list_objects(bucket, prefix=prefix or None, recursive=True):
                count += 1
                size += int(obj.size or 0)
                if obj.last_modified and (newest is None or obj.last_modified > newest):
                    newest = obj.last_modified
        return Usage(count, size, newest)

    def purge(self, bucket: str, prefix: str) -> PurgeResult:
        """Delete every version and delete marker under `prefix`, never bypassing Object
        Lock: versions under retention or legal hold stay and are counted."""
        deleted = 0
        locked: list[tuple[str, str | None]] = []
        others: list[str] = []
        with _errors(f"bucket {bucket} purge"):
            versions = (
                DeleteObject(o.object_name or "", o.version_id)
                for o in self.s3.list_objects(
                    bucket, prefix=prefix or None, recursive=True, include_version=True
                )
            )
            for batch in _batches(versions, DELETE_BATCH):
                errors = list(self.s3.remove_objects(bucket, batch))
                deleted += len(batch) - len(errors)
                for e in errors:
                    if _is_lock_refusal(e.code, e.message):
                        locked.append((e.name or "", e.version_id))
                    else:
                        others.append(f"{e.name}: {e.code}")
            until = self._latest_retention(bucket, locked[:RETENTION_SAMPLE])
        return PurgeResult(deleted, len(locked), until, others[:10])

    def _latest_retention(
        self, bucket: str, versions: list[tuple[str, str | None]]
    ) -> dt.datetime | None:
        latest: dt.datetime | None = None
        for name, version in versions:
            with contextlib.suppress(S3Error):
                ret = self.s3.get_object_retention(bucket, name, version)
                until = ret.retain_until_date if ret is not None else None
                if until is not None and (latest is None or until > latest):
                    latest = until
        return latest

    def remove_bucket_if_empty(self, bucket: str) -> bool:
        """Remove the bucket when no version of anything is left in it."""
        with _errors(f"bucket {bucket}"):
            if not self.s3.bucket_exists(bucket):
                return True
            leftover = self.s3.list_objects(bucket, recursive=True, include_version=True)
            if next(iter(leftover), None) is not None:
                return False
            self.s3.remove_bucket(bucket)
            return True


def _is_lock_refusal(code: str | None, message: str | None) -> bool:
    """A delete refused because of Object Lock (MinIO: InvalidRequest "Object is WORM
    protected"; AWS: AccessDenied mentioning retention or legal hold)."""
    text = (message or "").lower()
    return code in ("AccessDenied", "InvalidRequest") and any(
        word in text for word in ("worm", "retention", "legal hold", "object lock")
    )


def _lock_text(cfg: ObjectLockConfig | None) -> str:
    """`GOVERNANCE 30d`, `COMPLIANCE 1y`, `Enabled` (no default retention) or `Off`."""
    if cfg is None:
        return "Off"
    if not cfg.mode or not cfg.duration:
        return "Enabled"
    unit = "d" if cfg.duration_unit == DAYS else "y"
    return f"{cfg.mode} {cfg.duration}{unit}"


def _ours(statement: dict[str, Any], sid_prefix: str) -> bool:
    return str(statement.get("Sid") or "").startswith(sid_prefix)


def _batches(items: Iterable[DeleteObject], size: int) -> Iterator[list[DeleteObject]]:
    batch: list[DeleteObject] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class ObjectStoreFactory:
    """Clients by connection, shared by all zones on one store (bounded, thread-safe)."""

    def __init__(self, max_clients: int = 64):
        self._clients: OrderedDict[Connection, ObjectStore] = OrderedDict()
        self._max = max_clients
        self._lock = threading.Lock()

    def get(self, conn: Connection) -> ObjectStore:
        with self._lock:
            client = self._clients.get(conn)
            if client is None:
                client = ObjectStore(conn)
                self._clients[conn] = client
                while len(self._clients) > self._max:
                    self._clients.popitem(last=False)
            else:
                self._clients.move_to_end(conn)
            return client


__all__ = [
    "BucketReport",
    "Connection",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreFactory",
    "PurgeResult",
    "Usage",
    "canonical",
    "lifecycle_config",
]
