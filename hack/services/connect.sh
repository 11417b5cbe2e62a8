# Kafka Connect distributed worker with Debezium plugins. Sourced by hack/services.sh.
#
# The worker runs from Kafka's libs (kafka.sh installs connect-runtime/-json/-transforms
# with the broker). Plugins live in $HEADWATER_CACHE/connect-plugins-<debezium>/,
# one subdirectory per plugin with its runtime closure minus the Kafka and slf4j jars,
# which the worker provides (Connect loads those from its own class path anyway).

HEADWATER_CONNECT_PORT="${HEADWATER_CONNECT_PORT:-58083}"
# Worker, connector, task and Debezium MBeans through the JMX exporter (managed pods' rules).
HEADWATER_CONNECT_METRICS_PORT="${HEADWATER_CONNECT_METRICS_PORT:-58084}"
CONNECT_PLUGIN_DIR="$HEADWATER_CACHE/connect-plugins-$DEBEZIUM_VERSION"
CONNECT_HEAP_OPTS="${CONNECT_HEAP_OPTS:--Xms128m -Xmx768m}"
# Set HEADWATER_CONNECT_K8S_PROVIDERS=1 to also register Strimzi's Kubernetes
# Secret/ConfigMap config providers as `secrets`/`configmaps` (needs a kubeconfig or
# in-cluster credentials when a connector config actually uses them).
HEADWATER_CONNECT_K8S_PROVIDERS="${HEADWATER_CONNECT_K8S_PROVIDERS:-0}"

# Jars the worker provides. Debezium's own plugin archives leave out Jackson too: its
# converters (e.g. CloudEventsConverter) call connect-json's JsonConverter with Jackson
# types, which only links when both sides see the worker's Jackson classes.
CONNECT_PROVIDED=org.apache.kafka,org.slf4j
DEBEZIUM_PROVIDED=$CONNECT_PROVIDED,com.fasterxml.jackson.core,com.fasterxml.jackson.datatype

# name groupId artifactId version excluded-groupIds
CONNECT_PLUGINS=(
  "debezium-connector-postgres io.debezium debezium-connector-postgres $DEBEZIUM_VERSION $DEBEZIUM_PROVIDED"
  "debezium-connector-mysql io.debezium debezium-connector-mysql $DEBEZIUM_VERSION $DEBEZIUM_PROVIDED"
  "debezium-connector-mariadb io.debezium debezium-connector-mariadb $DEBEZIUM_MARIADB_VERSION $DEBEZIUM_PROVIDED"
  # Fabric8's Kubernetes client brings its own Jackson modules; keep them with it.
  "strimzi-kubernetes-config-provider io.strimzi kafka-kubernetes-config-provider $STRIMZI_CONFIG_PROVIDER_VERSION $CONNECT_PROVIDED"
)

_connect_plugin_install() {
  local name="$1" group="$2" artifact="$3" version="$4" excluded="$5"
  local dest="$CONNECT_PLUGIN_DIR/$name" stamp="$group:$artifact:$version -$excluded"
  if [[ -e "$dest/.complete" && "$(<"$dest/.complete")" == "$stamp" ]]; then return 0; fi
  local t0=$SECONDS
  rm -rf "$dest" "$dest.tmp"
  mvn_fetch "$SERVICES_DIR/plugin-pom.xml" "$dest.tmp" \
    -Dplugin.groupId="$group" -Dplugin.artifactId="$artifact" -Dplugin.version="$version" \
    -DexcludeGroupIds="$excluded"
  mv "$dest.tmp" "$dest"
  echo "$stamp" >"$dest/.complete"
  log "connect: plugin $group:$artifact:$version fetched in $((SECONDS - t0))s ($(du -sh "$dest" | cut -f1))"
}

connect_install() {
  # Connect runs from Kafka's libs; take Kafka's install lock for that part.
  run_locked install-kafka kafka_install
  local p
  for p in "${CONNECT_PLUGINS[@]}"; do
    # shellcheck disable=SC2086  # a plugin spec is five words
    _connect_plugin_install $p
  done
}

# shellcheck disable=SC2034  # locals are read by name in render
connect_start() {
  local dir pidfile logfile
  dir="$(run_dir connect)"; pidfile="$dir/pid"; logfile="$dir/connect.log"
  if pid_alive "$pidfile"; then return 0; fi
  connect_install
  kafka_status || { log "connect: kafka is not running (hack/services.sh kafka start)"; return 1; }
  require_port_free "$HEADWATER_CONNECT_PORT" connect
  mkdir -p "$dir" "$dir/secrets"
  chmod 700 "$dir/secrets"
  local providers=file,dir,env extra=""
  if [[ "$HEADWATER_CONNECT_K8S_PROVIDERS" == 1 ]]; then
    providers+=",secrets,configmaps"
    extra=$'config.providers.secrets.class=io.strimzi.kafka.KubernetesSecretConfigProvider\nconfig.providers.configmaps.class=io.strimzi.kafka.KubernetesConfigMapConfigProvider'
  fi
  local HEADWATER_KAFKA_BOOTSTRAP="$HEADWATER_HOST:$HEADWATER_KAFKA_PORT"
  local CONNECT_PLUGIN_PATH="$CONNECT_PLUGIN_DIR"
  local CONNECT_PLUGIN_DISCOVERY="${HEADWATER_CONNECT_PLUGIN_DISCOVERY:-service_load}"
  local CONNECT_CONFIG_PROVIDERS="$providers" CONNECT_EXTRA_PROPERTIES="$extra"
  local HEADWATER_CONNECT_SECRETS_DIR="$dir/secrets"
  render "$SERVICES_DIR/connect-distributed.properties" "$dir/connect-distributed.properties" \
    HEADWATER_KAFKA_BOOTSTRAP HEADWATER_HOST HEADWATER_CONNECT_PORT CONNECT_PLUGIN_PATH \
    CONNECT_PLUGIN_DISCOVERY CONNECT_CONFIG_PROVIDERS CONNECT_EXTRA_PROPERTIES HEADWATER_CONNECT_SECRETS_DIR
  require_port_free "$HEADWATER_CONNECT_METRICS_PORT" connect-metrics
  local agent
  agent="$(jmx_agent_opts connect "$HEADWATER_CONNECT_METRICS_PORT" CONNECT_JMX_EXPORTER_CONFIG)" || return 1
  # shellcheck disable=SC2086  # heap options are a word list on purpose; an empty agent adds nothing
  spawn "$pidfile" "$logfile" "$(java_bin)" $CONNECT_HEAP_OPTS -XX:+UseSerialGC $agent \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SERVICES_DIR/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" org.apache.kafka.connect.cli.ConnectDistributed "$dir/connect-distributed.properties"
  wait_until 180 "$pidfile" "$logfile" connect _connect_ready || return 1
  log "connect: ready on http://$HEADWATER_HOST:$HEADWATER_CONNECT_PORT"
}

# Ready = the REST API lists the Debezium source connectors (the herder has joined the
# group and loaded the plugins).
_connect_ready() {
  local body
  body="$(curl -fsS --max-time 5 "http://$HEADWATER_HOST:$HEADWATER_CONNECT_PORT/connector-plugins")" || return 1
  [[ "$body" == *io.debezium.connector.postgresql.PostgresConnector* ]] || return 1
  # /connectors answers only once the worker has read the config topic.
  curl -fsS --max-time 5 -o /dev/null "http://$HEADWATER_HOST:$HEADWATER_CONNECT_PORT/connectors"
}

connect_stop() { kill_group "$(run_dir connect)/pid" 60; }
connect_status() { pid_alive "$(run_dir connect)/pid"; }
connect_env() {
  cat <<ENV
HEADWATER_CONNECT_HOST=$HEADWATER_HOST
HEADWATER_CONNECT_PORT=$HEADWATER_CONNECT_PORT
HEADWATER_CONNECT_URL=http://$HEADWATER_HOST:$HEADWATER_CONNECT_PORT
HEADWATER_CONNECT_METRICS_URL=http://$HEADWATER_HOST:$HEADWATER_CONNECT_METRICS_PORT/metrics
HEADWATER_CONNECT_GROUP_ID=headwater-connect
HEADWATER_CONNECT_PLUGIN_DIR=$CONNECT_PLUGIN_DIR
HEADWATER_CONNECT_SECRETS_DIR=$(run_dir connect)/secrets
ENV
}
