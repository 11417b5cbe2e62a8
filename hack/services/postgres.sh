# PostgreSQL 15 (Debian's binaries) with logical decoding for Debezium.
# Sourced by hack/services.sh.
#
# Postgres refuses to run as root, and the run dir lives under root's 0700 home.
# Instead of creating a user and loosening permissions, the server runs in a user
# namespace that maps our uid to "nobody" (65534, present on every Debian): postgres sees
# a non-root euid, while file access is still checked against the real owner (us), so
# data files stay ours and no directory has to be opened up.

PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
HEADWATER_PG_PORT="${HEADWATER_PG_PORT:-55432}"
HEADWATER_PG_REPLICA_PORT="${HEADWATER_PG_REPLICA_PORT:-55433}"
PG_SUPERUSER=postgres

PG_USERNS=()
[[ $EUID -ne 0 ]] || PG_USERNS=(unshare --user --map-user=65534 --map-group=65534 --)

postgres_install() {
  if [[ -x "$PG_BINDIR/postgres" ]]; then return 0; fi
  local t0=$SECONDS
  apt_install postgresql-15 postgresql-client-15
  log "postgres: installed Debian postgresql-15 in $((SECONDS - t0))s"
}

# _pg_start NAME PORT WAL_LEVEL
_pg_start() {
  local name="$1" port="$2" wal_level="$3"
  local dir data pidfile logfile
  dir="$(run_dir "$name")"; data="$dir/data"; pidfile="$dir/pid"; logfile="$dir/postgres.log"
  if pid_alive "$pidfile"; then return 0; fi
  postgres_install
  require_port_free "$port" "$name"
  mkdir -p "$dir/socket"
  if [[ ! -s "$data/PG_VERSION" ]]; then
    local t0=$SECONDS
    rm -rf "$data"
    # The superuser authenticates by trust on the unix socket only (tests use it to set
    # things up); TCP logins need a real password, so a wrong one is really rejected.
    "${PG_USERNS[@]}" "$PG_BINDIR/initdb" -D "$data" -U "$PG_SUPERUSER" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
      || { tail -n 20 "$dir/initdb.log" >&2; return 1; }
    cat >>"$data/postgresql.conf" <<CONF
# headwater
listen_addresses = '$HEADWATER_HOST'
port = $port
unix_socket_directories = '$dir/socket'
wal_level = $wal_level
max_replication_slots = 10
max_wal_senders = 10
password_encryption = scram-sha-256
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
logging_collector = off
CONF
    cat >"$data/pg_hba.conf" <<HBA
local   all             all                                     trust
local   replication     all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
HBA
    log "$name: initdb done in $((SECONDS - t0))s"
    touch "$dir/needs-bootstrap"
  fi
  # Our pid file says the server is gone and nobody holds the port, so lock files left by
  # a killed server are stale. Remove them: after a reboot their pid may belong to some
  # other process, and postgres (which cannot signal processes outside its user namespace)
  # would take that as "another postmaster is running" and refuse to start.
  rm -f "$data/postmaster.pid" "$dir/socket/.s.PGSQL.$port.lock"
  spawn "$pidfile" "$logfile" "${PG_USERNS[@]}" "$PG_BINDIR/postgres" -D "$data"
  wait_until 60 "$pidfile" "$logfile" "$name" \
    "$PG_BINDIR/pg_isready" -q -h "$dir/socket" -p "$port" -U "$PG_SUPERUSER" || return 1
  if [[ -e "$dir/needs-bootstrap" ]]; then
    # The bootstrap SQL is not idempotent: if it fails, throw the cluster away so the
    # next start begins from a fresh initdb instead of a half-made one.
    if ! _pg_bootstrap "$dir/socket" "$port"; then
      log "$name: creating roles/database failed; removing $data"
      kill_group "$pidfile" 30; rm -rf "$data"; return 1
    fi
    rm -f "$dir/needs-bootstrap"
  fi
  log "$name: ready on $HEADWATER_HOST:$port (wal_level=$wal_level)"
}

_pg_bootstrap() {
  local sock="$1" port="$2"
  "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$PG_SUPERUSER" -d postgres <<'SQL'
CREATE ROLE debezium LOGIN REPLICATION PASSWORD 'dbz';
CREATE ROLE noreplication LOGIN PASSWORD 'norep';
CREATE DATABASE shop OWNER debezium;
SQL
  "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U debezium -d shop <<'SQL'
CREATE TABLE customers (
  id    serial PRIMARY KEY,
  name  text NOT NULL,
  email text
);
CREATE TABLE orders (
  id          serial PRIMARY KEY,
  customer_id integer REFERENCES customers(id),
  amount      numeric(12,2) NOT NULL,
  status      text NOT NULL DEFAULT 'new',
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email) VALUES
  ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com');
INSERT INTO orders (customer_id, amount, status) VALUES (1, 42.00, 'new'), (2, 7.50, 'paid');
-- noreplication may read (so preflight failures are about REPLICATION, not grants).
GRANT CONNECT ON DATABASE shop TO noreplication;
GRANT USAGE ON SCHEMA public TO noreplication;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO noreplication;
SQL
}

_pg_stop() { kill_group "$(run_dir "$1")/pid" 60; }
_pg_status() { pid_alive "$(run_dir "$1")/pid"; }

_pg_env() {
  local prefix="$1" name="$2" port="$3"
  cat <<ENV
${prefix}_HOST=$HEADWATER_HOST
${prefix}_PORT=$port
${prefix}_DB=shop
${prefix}_USER=debezium
${prefix}_PASSWORD=dbz
${prefix}_NOREPL_USER=noreplication
${prefix}_NOREPL_PASSWORD=norep
${prefix}_SUPERUSER=$PG_SUPERUSER
${prefix}_SOCKET_DIR=$(run_dir "$name")/socket
${prefix}_DSN=postgresql://debezium:dbz@$HEADWATER_HOST:$port/shop
ENV
}

postgres_start() { _pg_start postgres "$HEADWATER_PG_PORT" logical; }
postgres_stop() { _pg_stop postgres; }
postgres_status() { _pg_status postgres; }
postgres_env() {
  _pg_env HEADWATER_PG postgres "$HEADWATER_PG_PORT"
  echo "HEADWATER_PG_BINDIR=$PG_BINDIR"
  echo "PSQL=$PG_BINDIR/psql"
}

# Second instance with wal_level=replica: Debezium's preflight must refuse it.
postgres_replica_install() { postgres_install; }
postgres_replica_start() { _pg_start postgres-replica "$HEADWATER_PG_REPLICA_PORT" replica; }
postgres_replica_stop() { _pg_stop postgres-replica; }
postgres_replica_status() { _pg_status postgres-replica; }
postgres_replica_env() { _pg_env HEADWATER_PG_REPLICA postgres-replica "$HEADWATER_PG_REPLICA_PORT"; }
