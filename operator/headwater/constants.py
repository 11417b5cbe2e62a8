"""Names, labels, annotation keys and condition reasons: defined once, used everywhere."""

from __future__ import annotations

from typing import Final

GROUP: Final = "headwater.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "headwater"
FIELD_MANAGER: Final = "headwater"

# Finalizer used only by kinds that clean something outside Kubernetes.
FINALIZER: Final = f"{GROUP}/cleanup"

# --- labels -------------------------------------------------------------------------------
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_VERSION: Final = "app.kubernetes.io/version"
MANAGED_BY: Final = "headwater"
# Inventory labels: which CR owns a child. Pruning selects on these (not on ownerReferences,
# which a list call cannot filter by).
LABEL_OWNER_KIND: Final = f"{GROUP}/owner-kind"
LABEL_OWNER_NAME: Final = f"{GROUP}/owner-name"
LABEL_OWNER_UID: Final = f"{GROUP}/owner-uid"
LABEL_PLATFORM: Final = f"{GROUP}/platform"
# Objects with this label are created once and never pruned or rewritten (generated secrets).
LABEL_RETAIN: Final = f"{GROUP}/retain"
# Which part of the operator owns a child (pruning happens per group); absent means "main".
LABEL_APPLY_GROUP: Final = f"{GROUP}/apply-group"
# Everything a StreamJob's Spark run creates (Jobs a CronJob spawns, driver/executor pods).
LABEL_STREAMJOB: Final = f"{GROUP}/streamjob"

# --- annotations --------------------------------------------------------------------------
ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"
ANNOTATION_APPLIED_HASH: Final = f"{GROUP}/applied-hash"
ANNOTATION_PAUSED: Final = f"{GROUP}/paused"
ANNOTATION_RESTART: Final = f"{GROUP}/restarted-at"

# --- condition types ------------------------------------------------------------------------
COND_READY: Final = "Ready"
COND_RECONCILING: Final = "Reconciling"
COND_STALLED: Final = "Stalled"
COND_REACHABLE: Final = "Reachable"
COND_CDC_READY: Final = "CdcReady"
# False when the operator was told not to call a kind's data plane (dry runs, benchmarks).
COND_DATAPLANE: Final = "DataPlane"


class Reason:
    """CamelCase condition reasons. Users grep for these; never rename one lightly."""

    READY: Final = "Ready"
    PROGRESSING: Final = "Progressing"
    COMPONENTS_NOT_READY: Final = "ComponentsNotReady"
    INVALID_SPEC: Final = "InvalidSpec"
    PAUSED: Final = "Paused"
    APPLY_FAILED: Final = "ApplyFailed"
    RECONCILE_ERROR: Final = "ReconcileError"
    MISSING_REFERENCE: Final = "MissingReference"
    REFERENCE_NOT_READY: Final = "ReferenceNotReady"
    SECRET_NOT_FOUND: Final = "SecretNotFound"
    IMMUTABLE_FIELD: Final = "ImmutableField"
    DELETING: Final = "Deleting"
    # data plane
    CONNECT_UNAVAILABLE: Final = "ConnectUnavailable"
    CONNECTOR_FAILED: Final = "ConnectorFailed"
    CONNECTOR_PAUSED: Final = "ConnectorPaused"
    CONNECTOR_STOPPED: Final = "ConnectorStopped"
    CONNECTOR_NOT_RUNNING: Final = "ConnectorNotRunning"
    RESTART_LIMIT_REACHED: Final = "RestartLimitReached"
    UNREACHABLE: Final = "Unreachable"
    AUTHENTICATION_FAILED: Final = "AuthenticationFailed"
    PREFLIGHT_FAILED: Final = "PreflightFailed"
    DATAPLANE_DISABLED: Final = "DataPlaneDisabled"
    PREFLIGHT_PASSED: Final = "PreflightPassed"
    PREFLIGHT_NOT_SUPPORTED: Final = "PreflightNotSupported"
    OBJECT_STORE_UNAVAILABLE: Final = "ObjectStoreUnavailable"
    RETENTION_LOCKED: Final = "RetentionLocked"
    FLINK_UNAVAILABLE: Final = "FlinkUnavailable"
    JOB_FAILING: Final = "JobFailing"
    JOB_SUSPENDED: Final = "JobSuspended"
    JOB_NOT_RUNNING: Final = "JobNotRunning"
    SAVEPOINT_FAILED: Final = "SavepointFailed"
    # StreamJob
    SUBMISSION_FAILED: Final = "SubmissionFailed"
    UPGRADING: Final = "Upgrading"
    JOB_SUBMITTED: Final = "JobSubmitted"
    JOB_LOST: Final = "JobLost"
    JOB_CANCELLED: Final = "JobCancelled"
    SAVEPOINT_COMPLETED: Final = "SavepointCompleted"
    # CDC (DataSource preflight, CdcConnector)
    CONNECTED: Final = "Connected"
    DATABASE_NOT_FOUND: Final = "DatabaseNotFound"
    PREFLIGHT_DISABLED: Final = "PreflightDisabled"
    CONNECTOR_CONFIG_REJECTED: Final = "ConnectorConfigRejected"
    CONNECTOR_CREATED: Final = "ConnectorCreated"
    CONNECTOR_UPDATED: Final = "ConnectorUpdated"
    CONNECTOR_RESTARTED: Final = "ConnectorRestarted"
    CONNECTOR_DELETED: Final = "ConnectorDeleted"
    SLOT_DROPPED: Final = "ReplicationSlotDropped"
    SLOT_RETAINED: Final = "ReplicationSlotRetained"
    CLEANUP_SKIPPED: Final = "CleanupSkipped"
    # LakeZone
    BUCKET_CREATED: Final = "BucketCreated"
    BUCKET_DELETED: Final = "BucketDeleted"
    BUCKET_RETAINED: Final = "BucketRetained"
    BUCKET_CONFLICT: Final = "BucketConflict"
    SECRET_CONFLICT: Final = "SecretConflict"
    OBJECT_STORE_REFUSED: Final = "ObjectStoreRefused"
    DRIFT_REPAIRED: Final = "DriftRepaired"
    CREDENTIALS_ISSUED: Final = "CredentialsIssued"
    CLEANUP_INCOMPLETE: Final = "CleanupIncomplete"


# Kafka Connect connector config key carrying the version of the credentials Secret (never
# its content): a rotated password changes the config, and Connect restarts the connector,
# which makes its config providers read the new value.
CONNECT_CREDENTIALS_VERSION_KEY: Final = f"{GROUP}/auth-version"


# --- alerting and metrics -------------------------------------------------------------------
# Apply group of the per-resource PrometheusRule/ServiceMonitor objects (pruned only there).
APPLY_GROUP_ALERTS: Final = "alerts"
MONITORING_API_VERSION: Final = "monitoring.coreos.com/v1"
# Services that expose a managed component's metrics carry this label (ServiceMonitors select it).
LABEL_METRICS: Final = f"{GROUP}/metrics"
# Labels every generated alert carries; `spec.alerts.labels` may not override them.
ALERT_RESERVED_LABELS: Final = ("alertname", "severity", "namespace", "kind", "name", "platform")
# Every alert rule Headwater generates (operator/headwater/alerts/catalogue.py defines them).
ALERT_RULE_NAMES: Final = (
    "ResourceNotReady",
    "HighPipelineErrorRate",
    "KafkaBrokerDown",
    "KafkaUnderReplicatedPartitions",
    "KafkaOfflinePartitions",
    "KafkaConsumerLag",
    "ConnectWorkerDown",
    "FlinkJobManagerDown",
    "ObjectStoreCapacityHigh",
    "PrometheusTargetDown",
    "CdcConnectorFailed",
    "CdcConnectorLagHigh",
    "CdcConnectorNoEvents",
    "StreamJobNotRunning",
    "StreamJobRestarting",
    "StreamJobCheckpointFailures",
    "StreamJobConsumerLagHigh",
    "LakeZoneStale",
    "LakeZoneCapacityHigh",
    "LakeZoneSizeHigh",
)
# Ports of the metrics endpoints of managed components.
JMX_EXPORTER_PORT: Final = 9404
FLINK_METRICS_PORT: Final = 9249
KAFKA_EXPORTER_PORT: Final = 9308
# Event reason when `spec.alerts.rules` names a rule that does not exist for the CR's kind.
REASON_ALERT_RULES_IGNORED: Final = "AlertRulesIgnored"
# Event reason when a platform's rule files outgrow its rules ConfigMap.
REASON_ALERT_RULES_TRUNCATED: Final = "AlertRulesTruncated"
