# Apache Kafka broker (KRaft combined mode, single node) from Maven Central jars.
# Sourced by hack/services.sh.
#
# Apache's download sites (and so the release tarball) are unreachable here, but every
# jar of the tarball's libs/ is on Maven Central: kafka-pom.xml lists the broker, the CLI
# tools and the Connect worker, and Maven copies their runtime closure into
# $HEADWATER_CACHE/kafka-<ver>/libs. Broker and Connect share that directory, exactly as
# they share libs/ in the tarball.

HEADWATER_KAFKA_PORT="${HEADWATER_KAFKA_PORT:-59092}"
HEADWATER_KAFKA_CONTROLLER_PORT="${HEADWATER_KAFKA_CONTROLLER_PORT:-59093}"
# The broker's MBeans through the JMX exporter, with the rules the managed pods get.
HEADWATER_KAFKA_METRICS_PORT="${HEADWATER_KAFKA_METRICS_PORT:-59094}"
KAFKA_HOME="$HEADWATER_CACHE/kafka-$KAFKA_VERSION"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"

kafka_install() {
  [[ -e "$KAFKA_HOME/.complete" ]] && return 0
  local t0=$SECONDS
  log "kafka $KAFKA_VERSION: fetching broker, tools and Connect jars from Maven Central"
  rm -rf "$KAFKA_HOME"
  mvn_fetch "$SERVICES_DIR/kafka-pom.xml" "$KAFKA_HOME/libs.tmp" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" -Dslf4j.version="$SLF4J_VERSION"
  mv "$KAFKA_HOME/libs.tmp" "$KAFKA_HOME/libs"
  touch "$KAFKA_HOME/.complete"
  log "kafka $KAFKA_VERSION: installed in $((SECONDS - t0))s ($(du -sh "$KAFKA_HOME" | cut -f1))"
}

# kafka_java MAINCLASS ARGS...: run a class from Kafka's libs with our log4j2 config.
kafka_java() {
  local logcfg="${KAFKA_LOG4J_CONFIG:-$SERVICES_DIR/log4j2.properties}"
  # shellcheck disable=SC2086  # heap options are a word list on purpose
  "$(java_bin)" ${KAFKA_JAVA_OPTS:-$KAFKA_HEAP_OPTS -XX:+UseSerialGC} \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$logcfg" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

# kafka_tool MAINCLASS ARGS...: CLI tools log only warnings (their stdout is their output).
kafka_tool() {
  KAFKA_JAVA_OPTS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
  KAFKA_LOG4J_CONFIG="$SERVICES_DIR/log4j2-tools.properties" kafka_java "$@"
}

# shellcheck disable=SC2034  # locals are read by name in render
kafka_start() {
  local dir pidfile logfile
  dir="$(run_dir kafka)"; pidfile="$dir/pid"; logfile="$dir/kafka.log"
  if pid_alive "$pidfile"; then return 0; fi
  kafka_install
  require_port_free "$HEADWATER_KAFKA_PORT" kafka
  require_port_free "$HEADWATER_KAFKA_CONTROLLER_PORT" kafka-controller
  mkdir -p "$dir"
  local KAFKA_DATA_DIR="$dir/data"
  render "$SERVICES_DIR/kafka-server.properties" "$dir/server.properties" \
    KAFKA_DATA_DIR HEADWATER_HOST HEADWATER_KAFKA_PORT HEADWATER_KAFKA_CONTROLLER_PORT
  if [[ ! -e "$dir/data/meta.properties" ]]; then
    local t0=$SECONDS cluster_id
    # The cluster id is a random base64 UUID; any 22-char url-safe id works, and making
    # it here saves a JVM start.
    cluster_id="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    rm -rf "$dir/data"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || { tail -n 20 "$dir/format.log" >&2; return 1; }
    log "kafka: storage formatted (cluster $cluster_id) in $((SECONDS - t0))s"
  fi
  # shellcheck disable=SC2086  # heap options are a word list on purpose
  require_port_free "$HEADWATER_KAFKA_METRICS_PORT" kafka-metrics
  local agent
  agent="$(jmx_agent_opts kafka "$HEADWATER_KAFKA_METRICS_PORT" KAFKA_JMX_EXPORTER_CONFIG)" || return 1
  # shellcheck disable=SC2086  # heap options are a word list; an empty agent adds nothing
  spawn "$pidfile" "$logfile" "$(java_bin)" $KAFKA_HEAP_OPTS -XX:+UseSerialGC $agent \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SERVICES_DIR/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$dir/server.properties"
  # A real round trip through the broker, not just an open port: the metadata request
  # only succeeds once the broker has joined its own controller quorum.
  wait_until 120 "$pidfile" "$logfile" kafka _kafka_ready || return 1
  log "kafka: ready on $HEADWATER_HOST:$HEADWATER_KAFKA_PORT"
}

# _kafka_ready: the broker answers an ApiVersions request (Kafka wire protocol, v0)
# with error_code 0. In KRaft mode the broker only opens request processing on its
# listener after it has caught up with the controller's metadata, so an answer means
# it is really serving.
_kafka_ready() {
  python3 - "$HEADWATER_HOST" "$HEADWATER_KAFKA_PORT" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"headwater-probe"
body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
with socket.create_connection((host, port), timeout=3) as s:
    s.sendall(struct.pack(">i", len(body)) + body)
    head = s.recv(4)
    size = struct.unpack(">i", head)[0]
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            break
        data += chunk
corr, err = struct.unpack(">ih", data[:6])
sys.exit(0 if corr == 1 and err == 0 else 1)
PY
}

kafka_stop() { kill_group "$(run_dir kafka)/pid" 60; }
kafka_status() { pid_alive "$(run_dir kafka)/pid"; }
kafka_env() {
  cat <<ENV
HEADWATER_KAFKA_HOST=$HEADWATER_HOST
HEADWATER_KAFKA_PORT=$HEADWATER_KAFKA_PORT
HEADWATER_KAFKA_BOOTSTRAP=$HEADWATER_HOST:$HEADWATER_KAFKA_PORT
HEADWATER_KAFKA_CONTROLLER=$HEADWATER_HOST:$HEADWATER_KAFKA_CONTROLLER_PORT
HEADWATER_KAFKA_LIBS=$KAFKA_HOME/libs
HEADWATER_KAFKA_VERSION=$KAFKA_VERSION
HEADWATER_KAFKA_METRICS_URL=http://$HEADWATER_HOST:$HEADWATER_KAFKA_METRICS_PORT/metrics
ENV
}
