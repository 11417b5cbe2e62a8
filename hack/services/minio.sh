# MinIO server built from the Go module proxy (single drive, xl-single backend).
# Sourced by hack/services.sh.

HEADWATER_MINIO_PORT="${HEADWATER_MINIO_PORT:-59000}"
HEADWATER_MINIO_CONSOLE_PORT="${HEADWATER_MINIO_CONSOLE_PORT:-59001}"
MINIO_BIN_DIR="$HEADWATER_CACHE/bin/minio-$MINIO_VERSION"

minio_install() {
  [[ -x "$MINIO_BIN_DIR/minio" ]] && return 0
  local t0=$SECONDS
  log "minio $MINIO_VERSION: go install github.com/minio/minio (a few minutes of CPU)"
  # `go install` works because minio's go.mod has no replace directives; it builds the
  # published module exactly as the proxy serves it. CGO is not needed.
  mkdir -p "$MINIO_BIN_DIR.tmp"
  CGO_ENABLED=0 GOBIN="$MINIO_BIN_DIR.tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION"
  mkdir -p "$MINIO_BIN_DIR"
  mv "$MINIO_BIN_DIR.tmp/minio" "$MINIO_BIN_DIR/minio"
  rmdir "$MINIO_BIN_DIR.tmp"
  log "minio $MINIO_VERSION: built in $((SECONDS - t0))s ($(du -sh "$MINIO_BIN_DIR" | cut -f1))"
}

# The root password is generated once per run dir and kept there (0600), so restarts
# keep the same credentials and existing buckets stay readable.
_minio_credentials() {
  local dir; dir="$(run_dir minio)"
  mkdir -p "$dir"
  if [[ ! -s "$dir/credentials" ]]; then
    # Create-if-absent atomically (link(2) fails if the name exists): Flink's start reads
    # the same file and must never see a different password than MinIO's.
    local tmp; tmp="$(mktemp "$dir/.credentials.XXXXXX")"
    printf 'headwater\n%s\n' "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >"$tmp"
    ln "$tmp" "$dir/credentials" 2>/dev/null || true
    rm -f "$tmp"
  fi
  MINIO_ACCESS_KEY="$(sed -n 1p "$dir/credentials")"
  MINIO_SECRET_KEY="$(sed -n 2p "$dir/credentials")"
}

minio_start() {
  local dir pidfile logfile
  dir="$(run_dir minio)"; pidfile="$dir/pid"; logfile="$dir/minio.log"
  if pid_alive "$pidfile"; then return 0; fi
  minio_install
  require_port_free "$HEADWATER_MINIO_PORT" minio
  require_port_free "$HEADWATER_MINIO_CONSOLE_PORT" minio-console
  _minio_credentials
  mkdir -p "$dir/data"
  # MINIO_BROWSER stays on (console on its own port); update checks and anonymous
  # telemetry-like callbacks are off: there is no network beyond loopback.
  spawn "$pidfile" "$logfile" env \
    MINIO_ROOT_USER="$MINIO_ACCESS_KEY" MINIO_ROOT_PASSWORD="$MINIO_SECRET_KEY" \
    MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    "$MINIO_BIN_DIR/minio" server "$dir/data" \
    --address "$HEADWATER_HOST:$HEADWATER_MINIO_PORT" \
    --console-address "$HEADWATER_HOST:$HEADWATER_MINIO_CONSOLE_PORT"
  wait_until 60 "$pidfile" "$logfile" minio \
    http_ok "http://$HEADWATER_HOST:$HEADWATER_MINIO_PORT/minio/health/live" || return 1
  wait_until 30 "$pidfile" "$logfile" minio \
    http_ok "http://$HEADWATER_HOST:$HEADWATER_MINIO_PORT/minio/health/ready" || return 1
  log "minio: ready on http://$HEADWATER_HOST:$HEADWATER_MINIO_PORT (console :$HEADWATER_MINIO_CONSOLE_PORT)"
}

minio_stop() { kill_group "$(run_dir minio)/pid" 30; }
minio_status() { pid_alive "$(run_dir minio)/pid"; }
minio_env() {
  _minio_credentials
  cat <<ENV
HEADWATER_MINIO_HOST=$HEADWATER_HOST
HEADWATER_MINIO_PORT=$HEADWATER_MINIO_PORT
HEADWATER_MINIO_ENDPOINT=$HEADWATER_HOST:$HEADWATER_MINIO_PORT
HEADWATER_MINIO_URL=http://$HEADWATER_HOST:$HEADWATER_MINIO_PORT
HEADWATER_MINIO_CONSOLE_URL=http://$HEADWATER_HOST:$HEADWATER_MINIO_CONSOLE_PORT
HEADWATER_MINIO_ACCESS_KEY=$MINIO_ACCESS_KEY
HEADWATER_MINIO_SECRET_KEY=$MINIO_SECRET_KEY
HEADWATER_MINIO_REGION=us-east-1
MINIO=$MINIO_BIN_DIR/minio
ENV
}
