#!/usr/bin/env bash
# Real data services on loopback for Headwater's test suites and demo.
#
#   hack/services.sh <service> <install|start|stop|status|env>
#   hack/services.sh all <install|start|stop|status|env>
#
# Services: postgres postgres-replica mariadb kafka connect minio prometheus flink
#           pyspark helm
#
# install  downloads/builds once into $HEADWATER_CACHE/<thing>-<version>/ (cached; a
#          second call returns in about a second).
# start    idempotent; waits until the service really answers; writes a pid file.
# stop     kills exactly the process group it started, waits for it to exit; idempotent.
# status   exit 0 when running.
# env      KEY=value lines for tests to source (see hack/README.md).
#
# Runtime state (data, logs, pid files) lives in ${HEADWATER_RUN:-$HEADWATER_CACHE/run}/<service>/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HEADWATER_RUN="${HEADWATER_RUN:-$HEADWATER_CACHE/run}"
SERVICES_DIR="$HACK_DIR/services"
# Everything listens on loopback only; tests and the demo never need more.
HEADWATER_HOST="${HEADWATER_HOST:-127.0.0.1}"

# Order matters for `all start`: Connect needs Kafka, Flink reads MinIO's keys.
ALL_SERVICES=(postgres postgres-replica mariadb kafka connect minio prometheus flink pyspark helm)

# ---------------------------------------------------------------- shared helpers

# timed LABEL CMD...: run CMD, then log how long it took (install steps report their cost).
timed() {
  local label="$1"; shift
  local t0=$SECONDS
  "$@"
  log "$label: done in $((SECONDS - t0))s"
}

run_dir() { printf '%s/%s' "$HEADWATER_RUN" "$1"; }

# _starttime PID: the process's start time in clock ticks since boot (field 22 of
# /proc/PID/stat). Stored next to the pid so a recycled pid is never mistaken for ours.
_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"            # drop "pid (comm) ", comm may contain spaces
  # shellcheck disable=SC2086     # split the remaining fields on purpose
  set -- $stat
  echo "${20}"                   # field 22 overall = 20th after pid and comm
}

# _pidfile_pid PIDFILE: the recorded pid if it still denotes the process we started.
_pidfile_pid() {
  local pidfile="$1" pid start
  [[ -s "$pidfile" ]] || return 1
  read -r pid start <"$pidfile" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [[ -n "${start:-}" && "$(_starttime "$pid")" != "$start" ]]; then return 1; fi
  echo "$pid"
}

# pid_alive PIDFILE: the recorded process (group leader) still runs.
pid_alive() {
  local pid
  pid="$(_pidfile_pid "$1")" || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie still answers kill -0; treat it as dead.
  [[ "$(ps -o stat= -p "$pid" 2>/dev/null | tr -d ' ')" != Z* ]]
}

# spawn PIDFILE LOGFILE CMD...: start CMD detached in its own session, so that it is the
# leader of a fresh process group that `stop` can kill as a whole (launch scripts and
# servers fork helpers), and so it outlives the calling shell. setsid does not fork here
# (a non-interactive shell's background job is no group leader), and every CMD execs
# its server, so the recorded pid is the server's own.
spawn() {
  local pidfile="$1" logfile="$2"; shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  : >"$logfile"
  # Close every inherited descriptor above stderr first: a server holding run_locked's
  # lock (fd 9), or the flock of whoever called us, keeps that lock for its lifetime and
  # the next caller waits forever. The subshell execs into setsid, which execs the
  # server, so $! is the server's pid.
  (
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$logfile" 2>&1
  ) &
  local pid=$!
  echo "$pid $(_starttime "$pid" || true)" >"$pidfile"
}

# kill_group PIDFILE [TIMEOUT]: TERM the process group, wait, then KILL. Idempotent.
# The group is killed even when its leader already died and left children behind (a
# pgid is not reused while any member lives).
kill_group() {
  local pidfile="$1" timeout="${2:-30}" pid i
  if ! pid="$(_pidfile_pid "$pidfile")"; then rm -f "$pidfile"; return 0; fi
  if ! kill -0 "$pid" 2>/dev/null && ! pgrep -g "$pid" >/dev/null 2>&1; then
    rm -f "$pidfile"; return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    # Wait for the whole group, not just the leader.
    pgrep -g "$pid" >/dev/null 2>&1 || break
    sleep 0.1
  done
  if pgrep -g "$pid" >/dev/null 2>&1; then
    log "process group $pid did not stop within ${timeout}s; sending KILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do pgrep -g "$pid" >/dev/null 2>&1 || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

# wait_until TIMEOUT PIDFILE LOGFILE WHAT CMD...: poll CMD until it succeeds. Fails early
# when the process died, and fails with the log's tail so CI output shows why.
wait_until() {
  local timeout="$1" pidfile="$2" logfile="$3" what="$4"; shift 4
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [[ -n "$pidfile" ]] && ! pid_alive "$pidfile"; then
      log "$what: process exited before it became ready; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "$what: not ready after ${timeout}s; last lines of $logfile:"
  tail -n 40 "$logfile" >&2 || true
  return 1
}

# http_ok URL: 2xx answer.
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }

# port_free PORT: nothing listens on HOST:PORT (so a foreign server is not mistaken for ours).
port_free() { ! (exec 3<>"/dev/tcp/$HEADWATER_HOST/$1") 2>/dev/null; }

require_port_free() {
  local port="$1" what="$2"
  if ! port_free "$port"; then
    log "$what: port $HEADWATER_HOST:$port is already in use by another process (not started by hack/services.sh)"
    return 1
  fi
}

# reserve_ports: our fixed ports (53306, 55432, 59092, ...) lie inside Linux's ephemeral
# range (32768-60999), so any outgoing connection on the box may be handed one of them as
# its local port, and a server starting a moment later fails with EADDRINUSE (seen once
# with MariaDB). Listing them in net.ipv4.ip_local_reserved_ports stops the kernel from
# doing that; it changes nothing else. Best effort: needs root and a writable /proc/sys.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports
  [[ $EUID -eq 0 && -w $f ]] || return 0
  local want="$HEADWATER_PG_PORT,$HEADWATER_PG_REPLICA_PORT,$HEADWATER_MARIADB_PORT"
  want+=",$HEADWATER_KAFKA_PORT,$HEADWATER_KAFKA_CONTROLLER_PORT,$HEADWATER_CONNECT_PORT"
  want+=",$HEADWATER_MINIO_PORT,$HEADWATER_MINIO_CONSOLE_PORT,$HEADWATER_PROM_PORT"
  want+=",$HEADWATER_FLINK_PORT,$HEADWATER_FLINK_GATEWAY_PORT,$HEADWATER_FLINK_RPC_PORT"
  want+=",$HEADWATER_FLINK_BLOB_PORT,$HEADWATER_FLINK_TM_PORTS"
  local have; have="$(<"$f")"
  # The kernel merges and normalises the list; only write when something is missing.
  local p missing=0
  for p in ${want//,/ }; do
    [[ ",$have," == *",$p,"* ]] && continue
    python3 - "$have" "$p" <<'PY' || missing=1
import sys
have, want = sys.argv[1], sys.argv[2]
lo, _, hi = want.partition("-")
lo, hi = int(lo), int(hi or lo)
spans = [tuple(map(int, (r.split("-") + [r])[:2])) for r in have.split(",") if r]
sys.exit(0 if any(a <= lo and hi <= b for a, b in spans) else 1)
PY
  done
  ((missing)) || return 0
  echo "${have:+$have,}$want" >"$f" 2>/dev/null || true
}

# apt_install PKG...: install Debian packages that are missing, without letting their
# maintainer scripts start system services (we run our own instances on our own ports).
# `apt-get update` runs at most once per invocation of this script, and only when needed.
APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  # policy-rc.d exit 101 = "action forbidden": invoke-rc.d then skips starting services.
  # Only install it when none exists, and remove only the one we created.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  if ((APT_UPDATED == 0)); then
    log "apt-get update (missing: ${missing[*]})"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300 || rc=$?
    APT_UPDATED=1
  fi
  if ((rc == 0)); then
    log "apt-get install --no-install-recommends ${missing[*]}"
    # Wait for a dpkg lock held by someone else instead of failing at once.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null || rc=$?
  fi
  ((created_policy)) && "${sudo[@]}" rm -f "$policy"
  return "$rc"
}

# mvn_fetch POM DEST [-Dprop=value...]: copy the runtime closure of the pom's
# dependencies into DEST (a flat dir of jars), through the normal ~/.m2 cache.
mvn_fetch() {
  local pom="$1" dest="$2"; shift 2
  mkdir -p "$dest"
  local out rc=0
  out="$(mktemp)"
  # Maven's output only matters when it fails (it also sprinkles colour codes).
  mvn -B -q -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$dest" -DincludeScope=runtime "$@" >"$out" 2>&1 || rc=$?
  if ((rc != 0)); then
    log "mvn failed for $pom $*:"
    grep -E 'ERROR|FAIL' "$out" | head -n 30 >&2 || tail -n 30 "$out" >&2
  fi
  rm -f "$out"
  return "$rc"
}

# jmx_agent_opts SERVICE PORT CONFIG: the -javaagent option that serves the JVM's MBeans
# as Prometheus metrics on $HEADWATER_HOST:PORT, with the exporter rules the operator
# renders for its managed pods (headwater.render.platform.CONFIG), so the data-plane
# tests check the alert rules' metric names against a real exporter. Prints nothing
# (and logs why) when the project's venv is not there to render the rules.
jmx_agent_opts() {
  local service="$1" port="$2" config="$3" dir jar
  local python="$REPO_ROOT/.venv/bin/python"
  dir="$(run_dir "$service")"
  if [[ ! -x "$python" ]]; then
    log "$service: no $python, so no JMX exporter (make install first)"
    return 0
  fi
  jar="$HEADWATER_CACHE/jmx-exporter-$JMX_EXPORTER_VERSION/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
  if [[ ! -e "$jar" ]]; then
    run_locked install-jmx-exporter mvn_fetch "$SERVICES_DIR/plugin-pom.xml" "$(dirname "$jar")" \
      -Dplugin.groupId=io.prometheus.jmx -Dplugin.artifactId=jmx_prometheus_javaagent \
      -Dplugin.version="$JMX_EXPORTER_VERSION" >&2 || return 1
  fi
  mkdir -p "$dir"
  "$python" -c 'import sys; from headwater.render import platform; sys.stdout.write(getattr(platform, sys.argv[1]))' \
    "$config" >"$dir/jmx-exporter.yaml" || return 1
  printf '%s' "-javaagent:$jar=$HEADWATER_HOST:$port:$dir/jmx-exporter.yaml"
}

# render TEMPLATE DEST VAR...: substitute ${VAR} for each listed variable (taken from the
# caller's shell variables, locals included); other $ signs in the template stay as is.
render() {
  local template="$1" dest="$2"; shift 2
  local vars="" v
  for v in "$@"; do vars+="\${$v} "; done
  # shellcheck disable=SC2163  # export the variables named in $@
  ( export "$@"; envsubst "$vars" <"$template" >"$dest" )
}

# java_bin: the JVM for Kafka, Connect and Flink. Debian's JDK 17 is preferred even when
# JAVA_HOME points elsewhere (this machine also has Temurin 25, which Flink 2.3 does not
# support); HEADWATER_JAVA_HOME overrides.
java_bin() {
  local h
  for h in "${HEADWATER_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 "${JAVA_HOME:-}"; do
    if [[ -n "$h" && -x "$h/bin/java" ]]; then echo "$h/bin/java"; return; fi
  done
  command -v java
}

# ---------------------------------------------------------------- per-service logic

for f in "$SERVICES_DIR"/*.sh; do
  # shellcheck source=/dev/null
  source "$f"
done

# Service name -> function prefix (postgres-replica -> postgres_replica).
fn_prefix() { printf '%s' "${1//-/_}"; }

dispatch() {
  local svc="$1" action="$2" prefix
  prefix="$(fn_prefix "$svc")"
  if ! declare -F "${prefix}_${action}" >/dev/null; then
    case "$action" in
      # Install-only tools: start/stop are no-ops, status means "installed".
      start|stop) return 0 ;;
      *) log "$svc: action '$action' is not supported"; return 2 ;;
    esac
  fi
  "${prefix}_${action}"
}

usage() {
  echo "usage: $0 <service|all> <install|start|stop|status|env>" >&2
  echo "services: ${ALL_SERVICES[*]}" >&2
  exit 2
}

main() {
  (($# == 2)) || usage
  local svc="$1" action="$2"
  case "$action" in install|start|stop|status|env) ;; *) usage ;; esac
  [[ "$action" != start ]] || reserve_ports
  if [[ "$svc" != all ]]; then
    local known=0 s
    for s in "${ALL_SERVICES[@]}"; do [[ "$s" == "$svc" ]] && known=1; done
    ((known)) || usage
    case "$action" in
      install) run_locked "install-$(fn_prefix "$svc")" dispatch "$svc" install ;;
      # start installs first (cached), under the same lock as an explicit install.
      start) run_locked "install-$(fn_prefix "$svc")" dispatch "$svc" install &&
             run_locked "run-$(fn_prefix "$svc")" dispatch "$svc" start ;;
      # start/stop of one service are serialised, so concurrent callers (parallel test
      # sessions) never spawn a second server on the same data dir.
      stop) run_locked "run-$(fn_prefix "$svc")" dispatch "$svc" stop ;;
      *) dispatch "$svc" "$action" ;;
    esac
    return
  fi
  local list=("${ALL_SERVICES[@]}") rc=0 s
  case "$action" in
    install)
      local t0=$SECONDS
      for s in "${list[@]}"; do
        [[ "$s" == postgres-replica ]] && continue   # same install as postgres
        run_locked "install-$(fn_prefix "$s")" dispatch "$s" install
      done
      log "all install: done in $((SECONDS - t0))s" ;;
    start)
      local t0=$SECONDS
      local t1
      for s in "${list[@]}"; do
        run_locked "install-$(fn_prefix "$s")" dispatch "$s" install
        t1=$SECONDS
        run_locked "run-$(fn_prefix "$s")" dispatch "$s" start
        log "$s: start took $((SECONDS - t1))s"
      done
      log "all start: done in $((SECONDS - t0))s" ;;
    stop)
      # Reverse order: Connect before Kafka, so it shuts down cleanly.
      local i
      for ((i = ${#list[@]} - 1; i >= 0; i--)); do
        run_locked "run-$(fn_prefix "${list[i]}")" dispatch "${list[i]}" stop || rc=1
      done ;;
    status)
      for s in "${list[@]}"; do
        if dispatch "$s" status >/dev/null 2>&1; then echo "$s: running/installed"
        else echo "$s: down"; rc=1; fi
      done ;;
    env)
      for s in "${list[@]}"; do dispatch "$s" env; done ;;
  esac
  return "$rc"
}

main "$@"
