# MariaDB (Debian 12's 10.11) with a row-based binlog for Debezium.
# Sourced by hack/services.sh.
#
# Debian's package is installed only for its binaries; its own service (port 3306,
# /var/lib/mysql) is never started. We run our own mariadbd with its datadir, socket and
# binlogs in the run dir. mariadbd may run as root when told --user=root explicitly,
# which avoids handing the run dir to the `mysql` user.

HEADWATER_MARIADB_PORT="${HEADWATER_MARIADB_PORT:-53306}"

_mariadb_bin() {
  local b
  for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do [[ -x $b ]] && { echo "$b"; return; }; done
  return 1
}

mariadb_install() {
  if _mariadb_bin >/dev/null && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null; then
    return 0
  fi
  local t0=$SECONDS
  apt_install mariadb-server mariadb-client
  # If the package's service got started anyway (no policy-rc.d honoured), stop it:
  # it would hold /run/mysqld and port 3306 for nothing.
  if command -v systemctl >/dev/null && systemctl is-active --quiet mariadb 2>/dev/null; then
    systemctl stop mariadb || true
  fi
  log "mariadb: installed Debian mariadb-server in $((SECONDS - t0))s"
}

# shellcheck disable=SC2120  # callers pass either SQL on stdin or -e '...'
_mariadb_cli() {
  local dir; dir="$(run_dir mariadb)"
  mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" "$@"
}

mariadb_start() {
  local dir data pidfile logfile
  dir="$(run_dir mariadb)"; data="$dir/data"; pidfile="$dir/pid"; logfile="$dir/mariadb.log"
  if pid_alive "$pidfile"; then return 0; fi
  mariadb_install
  require_port_free "$HEADWATER_MARIADB_PORT" mariadb
  mkdir -p "$dir" "$dir/binlog" "$dir/tmp"
  cat >"$dir/my.cnf" <<CNF
[mariadbd]
user = root
datadir = $data
socket = $dir/mysqld.sock
pid-file = $dir/mariadbd.pid
tmpdir = $dir/tmp
bind-address = $HEADWATER_HOST
port = $HEADWATER_MARIADB_PORT
skip-name-resolve
# Debezium needs a full row image binlog.
server_id = 1
log_bin = $dir/binlog/mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
expire_logs_days = 1
# Keep it small: this is a test server on a 2-core box.
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = 2
performance_schema = OFF
log_error = $dir/mariadb-error.log
CNF
  if [[ ! -d "$data/mysql" ]]; then
    local t0=$SECONDS
    rm -rf "$data"
    mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install-db.log" 2>&1 || { tail -n 20 "$dir/install-db.log" >&2; return 1; }
    touch "$dir/needs-bootstrap"
    log "mariadb: install-db done in $((SECONDS - t0))s"
  fi
  spawn "$pidfile" "$logfile" "$(_mariadb_bin)" --defaults-file="$dir/my.cnf"
  wait_until 60 "$pidfile" "$dir/mariadb-error.log" mariadb _mariadb_cli -e 'SELECT 1' || return 1
  if [[ -e "$dir/needs-bootstrap" ]]; then
    # Not idempotent: on failure start over from mariadb-install-db next time.
    if ! _mariadb_bootstrap; then
      log "mariadb: creating users/database failed; removing $data"
      kill_group "$pidfile" 30; rm -rf "$data"; return 1
    fi
    rm -f "$dir/needs-bootstrap"
  fi
  log "mariadb: ready on $HEADWATER_HOST:$HEADWATER_MARIADB_PORT"
}

_mariadb_bootstrap() {
  # Debezium's MySQL/MariaDB connectors need SELECT, RELOAD, SHOW DATABASES, REPLICATION
  # SLAVE and REPLICATION CLIENT; since MariaDB 10.5 REPLICATION CLIENT is an alias of
  # BINLOG MONITOR, and SHOW SLAVE/REPLICA STATUS needs REPLICA MONITOR (10.5.9+), so
  # both are granted explicitly. LOCK TABLES lets the snapshot lock when it must.
  # shellcheck disable=SC2119
  _mariadb_cli <<'SQL'
CREATE DATABASE shop;
USE shop;
CREATE TABLE customers (
  id    INT AUTO_INCREMENT PRIMARY KEY,
  name  VARCHAR(255) NOT NULL,
  email VARCHAR(255)
);
CREATE TABLE orders (
  id          INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT,
  amount      DECIMAL(12,2) NOT NULL,
  status      VARCHAR(32) NOT NULL DEFAULT 'new',
  created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  FOREIGN KEY (customer_id) REFERENCES customers(id)
);
INSERT INTO customers (name, email) VALUES
  ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com');
INSERT INTO orders (customer_id, amount, status) VALUES (1, 42.00, 'new'), (2, 7.50, 'paid');
CREATE USER 'debezium'@'%' IDENTIFIED BY 'dbz';
CREATE USER 'debezium'@'localhost' IDENTIFIED BY 'dbz';
GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, REPLICATION CLIENT,
      BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'debezium'@'%';
GRANT SELECT, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, REPLICATION CLIENT,
      BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'debezium'@'localhost';
-- Like the Postgres role that owns `shop`, debezium may also write the tables, so tests
-- and the demo can make changes with the same credentials.
GRANT INSERT, UPDATE, DELETE ON shop.* TO 'debezium'@'%';
GRANT INSERT, UPDATE, DELETE ON shop.* TO 'debezium'@'localhost';
CREATE USER 'nogrants'@'%' IDENTIFIED BY 'nog';
CREATE USER 'nogrants'@'localhost' IDENTIFIED BY 'nog';
GRANT SELECT ON *.* TO 'nogrants'@'%';
GRANT SELECT ON *.* TO 'nogrants'@'localhost';
FLUSH PRIVILEGES;
SQL
}

mariadb_stop() { kill_group "$(run_dir mariadb)/pid" 60; }
mariadb_status() { pid_alive "$(run_dir mariadb)/pid"; }
mariadb_env() {
  cat <<ENV
HEADWATER_MARIADB_HOST=$HEADWATER_HOST
HEADWATER_MARIADB_PORT=$HEADWATER_MARIADB_PORT
HEADWATER_MARIADB_DB=shop
HEADWATER_MARIADB_USER=debezium
HEADWATER_MARIADB_PASSWORD=dbz
HEADWATER_MARIADB_NOGRANTS_USER=nogrants
HEADWATER_MARIADB_NOGRANTS_PASSWORD=nog
HEADWATER_MARIADB_SOCKET=$(run_dir mariadb)/mysqld.sock
HEADWATER_MARIADB_SERVER_ID=1
ENV
}
