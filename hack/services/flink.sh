# Apache Flink standalone session cluster (1 JobManager + 1 TaskManager) and SQL Gateway.
# Sourced by hack/services.sh.
#
# PyPI's apache-flink/apache-flink-libraries wheels carry a complete Flink distribution
# (flink-dist, table planner, bin/ scripts) inside the pyflink package, so a venv is the
# "tarball". Only the jars are needed, so pip installs them with --no-deps (the Python
# runtime deps — apache-beam, pandas, pyarrow... — would add hundreds of MB for nothing).
# Our additions live next to the venv, and FLINK_LIB_DIR/FLINK_OPT_DIR/FLINK_PLUGINS_DIR
# point Flink's own scripts at them:
#   $FLINK_CACHE/lib      pyflink's lib/ (symlinks) + Kafka SQL connector + Parquet + Hadoop client
#   $FLINK_CACHE/opt      pyflink's opt/ (symlinks) + flink-sql-gateway
#   $FLINK_CACHE/plugins  s3-fs-hadoop/ (s3:// on MinIO), metrics-prometheus/

HEADWATER_FLINK_PORT="${HEADWATER_FLINK_PORT:-58081}"
HEADWATER_FLINK_GATEWAY_PORT="${HEADWATER_FLINK_GATEWAY_PORT:-58091}"
HEADWATER_FLINK_RPC_PORT="${HEADWATER_FLINK_RPC_PORT:-58123}"
HEADWATER_FLINK_BLOB_PORT="${HEADWATER_FLINK_BLOB_PORT:-58124}"
HEADWATER_FLINK_TM_PORTS="${HEADWATER_FLINK_TM_PORTS:-58125-58129}"
# Prometheus reporter of the JobManager and the TaskManager (first free port each).
HEADWATER_FLINK_METRICS_PORTS="${HEADWATER_FLINK_METRICS_PORTS:-58131-58133}"
FLINK_CACHE="$HEADWATER_CACHE/flink-$FLINK_VERSION"

_flink_home() { echo "$FLINK_CACHE"/venv/lib/python3*/site-packages/pyflink; }

flink_install() {
  [[ -e "$FLINK_CACHE/.complete" ]] && return 0
  local t0=$SECONDS home
  rm -rf "$FLINK_CACHE"
  log "flink $FLINK_VERSION: pip install --no-deps apache-flink apache-flink-libraries into a venv"
  python3 -m venv "$FLINK_CACHE/venv"
  "$FLINK_CACHE/venv/bin/pip" install -q --no-cache-dir --no-deps \
    "apache-flink==$FLINK_VERSION" "apache-flink-libraries==$FLINK_VERSION"
  log "flink $FLINK_VERSION: pip done in $((SECONDS - t0))s"
  home="$(_flink_home)"
  [[ -x "$home/bin/jobmanager.sh" ]] || { log "flink: $home/bin/jobmanager.sh missing"; return 1; }

  local t1=$SECONDS extra="$FLINK_CACHE/maven"
  log "flink $FLINK_VERSION: fetching SQL gateway, Kafka connector, Parquet, S3 plugin from Maven Central"
  mvn_fetch "$SERVICES_DIR/flink-pom.xml" "$extra" -DexcludeTransitive=true \
    -Dflink.version="$FLINK_VERSION" -Dflink.kafka.version="$FLINK_KAFKA_CONNECTOR_VERSION" \
    -Dhadoop.version="$FLINK_HADOOP_VERSION"
  log "flink $FLINK_VERSION: maven done in $((SECONDS - t1))s"

  mkdir -p "$FLINK_CACHE/lib" "$FLINK_CACHE/opt" "$FLINK_CACHE/plugins/s3-fs-hadoop"
  local j
  for j in "$home"/lib/*.jar; do ln -s "$j" "$FLINK_CACHE/lib/"; done
  for j in "$home"/opt/*.jar; do ln -s "$j" "$FLINK_CACHE/opt/"; done
  ln -s "$home/plugins/metrics-prometheus" "$FLINK_CACHE/plugins/metrics-prometheus"
  mv "$extra"/flink-sql-gateway-*.jar "$FLINK_CACHE/opt/"
  mv "$extra"/flink-s3-fs-hadoop-*.jar "$FLINK_CACHE/plugins/s3-fs-hadoop/"
  mv "$extra"/*.jar "$FLINK_CACHE/lib/"
  rmdir "$extra"
  touch "$FLINK_CACHE/.complete"
  log "flink $FLINK_VERSION: installed in $((SECONDS - t0))s ($(du -shL "$FLINK_CACHE" 2>/dev/null | cut -f1) incl. venv)"
}

# _flink_script_env: sets FLINK_SCRIPT_ENV, the `env` prefix that makes Flink's own bin/
# scripts use our lib/opt/plugins dirs, config, log and pid dirs, and JDK 17.
# Flink's own conf/config.yaml carries the --add-opens/--add-exports flags Flink needs on
# JDK 17 (env.java.opts.all); our config replaces that file, so they are passed on here.
# Without them SQL jobs still run, but running a jar (POST /jars/:id/run) fails in the
# JobManager with InaccessibleObjectException (java.util not opened), and from then on with
# ExceptionInInitializerError until the JobManager restarts.
_flink_script_env() {
  local dir java_opts; dir="$(run_dir flink)"
  java_opts="$(sed -n 's/^ *all: *\(--add-.*\)$/\1/p' "$(_flink_home)/conf/config.yaml" | head -n 1)"
  [[ -n "$java_opts" ]] || log "flink: no env.java.opts.all in Flink's own config.yaml; jar jobs may fail on JDK 17"
  FLINK_SCRIPT_ENV=(env FLINK_CONF_DIR="$dir/conf" FLINK_LIB_DIR="$FLINK_CACHE/lib"
    FLINK_ENV_JAVA_OPTS="-XX:+IgnoreUnrecognizedVMOptions $java_opts"
    FLINK_OPT_DIR="$FLINK_CACHE/opt" FLINK_PLUGINS_DIR="$FLINK_CACHE/plugins"
    FLINK_LOG_DIR="$dir/log" FLINK_PID_DIR="$dir/flink-pids" FLINK_IDENT_STRING=headwater
    # The gateway gets no memory settings from Flink (it would default to 1/4 of RAM).
    FLINK_ENV_JAVA_OPTS_SQL_GATEWAY="-Xmx384m -XX:+UseSerialGC"
    JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(java_bin)")")")")
}

# shellcheck disable=SC2034  # locals are read by name in render
_flink_render_conf() {
  local dir home; dir="$(run_dir flink)"; home="$(_flink_home)"
  mkdir -p "$dir/conf" "$dir/log" "$dir/checkpoints" "$dir/flink-pids"
  _minio_credentials
  local FLINK_LOG_DIR="$dir/log" FLINK_RUN_DIR="$dir" FLINK_PID_DIR="$dir/flink-pids"
  local FLINK_JAVA_HOME HEADWATER_MINIO_URL="http://$HEADWATER_HOST:$HEADWATER_MINIO_PORT"
  FLINK_JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(java_bin)")")")"
  local HEADWATER_MINIO_ACCESS_KEY="$MINIO_ACCESS_KEY" HEADWATER_MINIO_SECRET_KEY="$MINIO_SECRET_KEY"
  render "$SERVICES_DIR/flink-config.yaml" "$dir/conf/config.yaml" \
    FLINK_LOG_DIR FLINK_RUN_DIR FLINK_PID_DIR FLINK_JAVA_HOME HEADWATER_HOST HEADWATER_FLINK_PORT \
    HEADWATER_FLINK_GATEWAY_PORT HEADWATER_FLINK_RPC_PORT HEADWATER_FLINK_BLOB_PORT \
    HEADWATER_FLINK_TM_PORTS HEADWATER_FLINK_METRICS_PORTS HEADWATER_MINIO_URL HEADWATER_MINIO_ACCESS_KEY HEADWATER_MINIO_SECRET_KEY
  chmod 600 "$dir/conf/config.yaml"
  # Console logging config that `start-foreground` uses; keep Flink's own.
  cp "$home/conf/log4j-console.properties" "$home/conf/log4j-cli.properties" \
     "$home/conf/log4j.properties" "$dir/conf/"
}

flink_start() {
  local dir; dir="$(run_dir flink)"
  flink_install
  _flink_script_env
  local home; home="$(_flink_home)"
  if ! pid_alive "$dir/jobmanager.pid"; then
    require_port_free "$HEADWATER_FLINK_PORT" flink-rest
    require_port_free "$HEADWATER_FLINK_RPC_PORT" flink-rpc
    _flink_render_conf
    # start-foreground execs the JVM, so the pid we record is the JobManager itself.
    spawn "$dir/jobmanager.pid" "$dir/jobmanager.out" "${FLINK_SCRIPT_ENV[@]}" "$home/bin/jobmanager.sh" start-foreground
  fi
  if ! pid_alive "$dir/taskmanager.pid"; then
    spawn "$dir/taskmanager.pid" "$dir/taskmanager.out" "${FLINK_SCRIPT_ENV[@]}" "$home/bin/taskmanager.sh" start-foreground
  fi
  # The gateway only needs the JobManager when a statement is submitted, so it boots
  # alongside the others (the JVM starts overlap; on 2 cores this saves ~10 s).
  if ! pid_alive "$dir/gateway.pid"; then
    require_port_free "$HEADWATER_FLINK_GATEWAY_PORT" flink-sql-gateway
    spawn "$dir/gateway.pid" "$dir/gateway.out" "${FLINK_SCRIPT_ENV[@]}" "$home/bin/sql-gateway.sh" start-foreground
  fi
  wait_until 180 "$dir/jobmanager.pid" "$dir/jobmanager.out" flink-jobmanager \
    http_ok "http://$HEADWATER_HOST:$HEADWATER_FLINK_PORT/overview" || return 1
  wait_until 180 "$dir/taskmanager.pid" "$dir/taskmanager.out" flink-taskmanager _flink_tm_registered || return 1
  wait_until 180 "$dir/gateway.pid" "$dir/gateway.out" flink-sql-gateway \
    http_ok "http://$HEADWATER_HOST:$HEADWATER_FLINK_GATEWAY_PORT/v1/info" || return 1
  log "flink: ready (REST http://$HEADWATER_HOST:$HEADWATER_FLINK_PORT, SQL gateway http://$HEADWATER_HOST:$HEADWATER_FLINK_GATEWAY_PORT)"
}

_flink_tm_registered() {
  curl -fsS --max-time 5 "http://$HEADWATER_HOST:$HEADWATER_FLINK_PORT/overview" | grep -q '"taskmanagers":[1-9]'
}

flink_stop() {
  local dir; dir="$(run_dir flink)"
  kill_group "$dir/gateway.pid" 30
  kill_group "$dir/taskmanager.pid" 30
  kill_group "$dir/jobmanager.pid" 30
  # Flink's scripts keep their own pid bookkeeping; ours (above) is what counts.
  rm -rf "$dir/flink-pids"
}

flink_status() {
  local dir; dir="$(run_dir flink)"
  pid_alive "$dir/jobmanager.pid" && pid_alive "$dir/taskmanager.pid" && pid_alive "$dir/gateway.pid"
}

flink_env() {
  cat <<ENV
HEADWATER_FLINK_HOST=$HEADWATER_HOST
HEADWATER_FLINK_PORT=$HEADWATER_FLINK_PORT
HEADWATER_FLINK_URL=http://$HEADWATER_HOST:$HEADWATER_FLINK_PORT
HEADWATER_FLINK_GATEWAY_PORT=$HEADWATER_FLINK_GATEWAY_PORT
HEADWATER_FLINK_GATEWAY_URL=http://$HEADWATER_HOST:$HEADWATER_FLINK_GATEWAY_PORT
HEADWATER_FLINK_HOME=$(_flink_home)
HEADWATER_FLINK_LIB_DIR=$FLINK_CACHE/lib
HEADWATER_FLINK_CONF_DIR=$(run_dir flink)/conf
HEADWATER_FLINK_METRICS_PORTS=$HEADWATER_FLINK_METRICS_PORTS
FLINK=$(_flink_home)/bin/flink
ENV
}
