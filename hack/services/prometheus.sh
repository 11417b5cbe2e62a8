# Prometheus (Debian 12's package) with our own config, storage and port.
# Sourced by hack/services.sh.

HEADWATER_PROM_PORT="${HEADWATER_PROM_PORT:-59090}"

prometheus_install() {
  if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then return 0; fi
  local t0=$SECONDS
  apt_install prometheus
  # The package enables its own service (port 9090) — not wanted, and not started
  # thanks to policy-rc.d; stop it in case something started it anyway.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
  log "prometheus: installed Debian prometheus in $((SECONDS - t0))s"
}

_prom_config() {
  if [[ -n "${HEADWATER_PROM_CONFIG:-}" ]]; then echo "$HEADWATER_PROM_CONFIG"; return; fi
  echo "$(run_dir prometheus)/prometheus.yml"
}

prometheus_start() {
  local dir pidfile logfile config
  dir="$(run_dir prometheus)"; pidfile="$dir/pid"; logfile="$dir/prometheus.log"
  if pid_alive "$pidfile"; then return 0; fi
  prometheus_install
  require_port_free "$HEADWATER_PROM_PORT" prometheus
  mkdir -p "$dir/data"
  config="$(_prom_config)"
  if [[ -z "${HEADWATER_PROM_CONFIG:-}" ]]; then
    # Minimal default: scrape itself, so /api/v1/query has something real to return.
    cat >"$config" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$HEADWATER_HOST:$HEADWATER_PROM_PORT']
YAML
  fi
  [[ -r "$config" ]] || { log "prometheus: config $config not readable"; return 1; }
  # --web.enable-lifecycle: tests reload rules/config with POST /-/reload.
  spawn "$pidfile" "$logfile" /usr/bin/prometheus \
    --config.file="$config" \
    --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=1d \
    --web.listen-address="$HEADWATER_HOST:$HEADWATER_PROM_PORT" \
    --web.enable-lifecycle
  wait_until 60 "$pidfile" "$logfile" prometheus http_ok "http://$HEADWATER_HOST:$HEADWATER_PROM_PORT/-/ready" || return 1
  log "prometheus: ready on $HEADWATER_HOST:$HEADWATER_PROM_PORT (config $config)"
}

prometheus_stop() { kill_group "$(run_dir prometheus)/pid" 30; }
prometheus_status() { pid_alive "$(run_dir prometheus)/pid"; }
prometheus_env() {
  cat <<ENV
HEADWATER_PROM_HOST=$HEADWATER_HOST
HEADWATER_PROM_PORT=$HEADWATER_PROM_PORT
HEADWATER_PROM_URL=http://$HEADWATER_HOST:$HEADWATER_PROM_PORT
HEADWATER_PROM_CONFIG_FILE=$(_prom_config)
PROMETHEUS=/usr/bin/prometheus
PROMTOOL=/usr/bin/promtool
ENV
}
