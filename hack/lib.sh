# Shared helpers for hack/ scripts. Source it; do not run it.
# Everything built or downloaded lives under $HEADWATER_CACHE (never in the repo),
# in a directory named after its version, so a second run finds it and returns at once.
set -euo pipefail

HEADWATER_CACHE="${HEADWATER_CACHE:-$HOME/.cache/headwater}"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

# Pinned versions: one place to bump them.
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# MinIO's repository is archived. Its last release tag (RELEASE.2025-10-15T17-29-55Z,
# commit 9e49d5e7a648) is refused by the Go module proxy (403 "This module version is not
# available", as tag, commit and pseudo-version); the newest commit it serves is pinned.
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
# Debezium 3.6.1.Final is built against Kafka 4.3.0 (version.kafka in debezium-build-parent).
KAFKA_VERSION="${KAFKA_VERSION:-4.3.0}"
DEBEZIUM_VERSION="${DEBEZIUM_VERSION:-3.6.1.Final}"
# debezium-connector-mariadb was last published to Maven Central at 3.5.0.Final.
DEBEZIUM_MARIADB_VERSION="${DEBEZIUM_MARIADB_VERSION:-3.5.0.Final}"
STRIMZI_CONFIG_PROVIDER_VERSION="${STRIMZI_CONFIG_PROVIDER_VERSION:-1.2.2}"
LOG4J_VERSION="${LOG4J_VERSION:-2.25.3}"
SLF4J_VERSION="${SLF4J_VERSION:-2.0.17}"
FLINK_VERSION="${FLINK_VERSION:-2.3.0}"
# The JMX exporter agent the managed Kafka/Connect pods use (render/platform.py JMX_AGENT_VERSION).
JMX_EXPORTER_VERSION="${JMX_EXPORTER_VERSION:-1.0.1}"
FLINK_KAFKA_CONNECTOR_VERSION="${FLINK_KAFKA_CONNECTOR_VERSION:-5.0.0-2.2}"
# Shaded Hadoop client jars that Flink's Parquet format needs.
FLINK_HADOOP_VERSION="${FLINK_HADOOP_VERSION:-3.3.6}"
PYSPARK_VERSION="${PYSPARK_VERSION:-4.1.4}"

log() { printf '[hack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# run_locked NAME CMD...: serialise concurrent builds of the same artefact.
run_locked() {
  local name="$1"; shift
  mkdir -p "$HEADWATER_CACHE/locks"
  ( flock 9; "$@" ) 9>"$HEADWATER_CACHE/locks/$name.lock"
}
