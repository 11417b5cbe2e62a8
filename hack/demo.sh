#!/usr/bin/env bash
# The main job (`make demo`): the local control plane, the real data services, the CRDs,
# the operator, and the e-commerce pipeline of manifests/demo/pipeline.yaml — then rows
# written to Postgres travel Debezium -> Kafka -> Flink -> Parquet in the bronze zone.
#
#   hack/demo.sh [up]     bring everything up and print the pipeline's status
#   hack/demo.sh status   print the status again
#   hack/demo.sh down     stop the operator, the services and the control plane
#
# Everything is installed on first use and cached in $HEADWATER_CACHE; a second `up` takes
# about a minute (mostly starting the JVMs of Kafka, Connect and Flink).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="${VENV:-$REPO_ROOT/.venv}"
HW="$VENV/bin/headwater"
PY="$VENV/bin/python"
NS="${DEMO_NAMESPACE:-shop}"
DEMO_RUN="${HEADWATER_RUN:-$HEADWATER_CACHE/run}/demo"
OPERATOR_PORT="${DEMO_OPERATOR_PORT:-58080}"
SERVICES=(postgres kafka connect minio flink)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

kubectl_() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

load_env() {
  local line
  while IFS= read -r line; do
    [[ "$line" == *=* ]] && export "${line?}"
  done < <(for s in "${SERVICES[@]}"; do "$HACK_DIR/services.sh" "$s" env; done)
  export DEMO_TOPIC_PREFIX="shop"
  export DEMO_BUCKET_PREFIX="demo-shop"
  export DEMO_FLINK_STATE="$DEMO_RUN/flink-state"
}

cluster_env() {
  KUBECONFIG="$("$HW" dev kubeconfig)"
  KUBECTL="$("$PY" -c 'from headwater.devenv.binaries import locate; print(locate(build=False).kubectl)')"
  export KUBECONFIG KUBECTL
}

operator_running() {
  [[ -s "$DEMO_RUN/operator.pid" ]] && kill -0 "$(<"$DEMO_RUN/operator.pid")" 2>/dev/null
}

start_operator() {
  mkdir -p "$DEMO_RUN"
  if operator_running; then
    log "operator already running (pid $(<"$DEMO_RUN/operator.pid"))"
    return
  fi
  HEADWATER_METRICS_PORT="$OPERATOR_PORT" KUBECONFIG="$KUBECONFIG" \
    setsid "$HW" run -n "$NS" >>"$DEMO_RUN/operator.log" 2>&1 </dev/null &
  echo $! >"$DEMO_RUN/operator.pid"
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$OPERATOR_PORT/readyz" >/dev/null 2>&1; then
      log "operator ready (pid $(<"$DEMO_RUN/operator.pid"), log $DEMO_RUN/operator.log)"
      return
    fi
    operator_running || { tail -40 "$DEMO_RUN/operator.log" >&2; echo "operator exited" >&2; exit 1; }
    sleep 0.5
  done
  tail -40 "$DEMO_RUN/operator.log" >&2
  echo "operator not ready after 60 s" >&2
  exit 1
}

stop_operator() {
  if operator_running; then
    local pid; pid="$(<"$DEMO_RUN/operator.pid")"
    kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "-$pid" 2>/dev/null || true
  fi
  rm -f "$DEMO_RUN/operator.pid"
}

# The Connect worker reads DataSource credentials from files (DirectoryConfigProvider), the
# way a pod reads a mounted Secret: <mount>/<namespace>/<secret>/<key>.
mount_secret() {
  local dir="$HEADWATER_CONNECT_SECRETS_DIR/$NS/orders-db-cdc"
  mkdir -p "$dir" && chmod 700 "$dir"
  printf '%s' "$HEADWATER_PG_USER" >"$dir/username"
  printf '%s' "$HEADWATER_PG_PASSWORD" >"$dir/password"
  chmod 600 "$dir"/*
}

render_pipeline() {
  "$PY" - "$REPO_ROOT/manifests/demo/pipeline.yaml" <<'PY'
import os, string, sys
print(string.Template(open(sys.argv[1]).read()).substitute(os.environ))
PY
}

psql_() {
  "$PSQL" -X -q -h "$HEADWATER_PG_SOCKET_DIR" -p "$HEADWATER_PG_PORT" -U "$HEADWATER_PG_SUPERUSER" \
    -d "$HEADWATER_PG_DB" -v ON_ERROR_STOP=1 "$@"
}

wait_ready() {
  local deadline=$((SECONDS + ${1:-240})) total ready
  while ((SECONDS < deadline)); do
    read -r ready total < <(kubectl_ get headwater -n "$NS" -o json | "$PY" -c '
import json, sys
items = json.load(sys.stdin)["items"]
ok = sum(1 for i in items if any(c["type"] == "Ready" and c["status"] == "True"
         for c in i.get("status", {}).get("conditions", []))
         and i.get("status", {}).get("observedGeneration") == i["metadata"]["generation"])
print(ok, len(items))')
    printf '\r   %s/%s resources Ready ' "$ready" "$total"
    if [[ "$total" -gt 0 && "$ready" == "$total" ]]; then echo; return 0; fi
    sleep 3
  done
  echo
  return 1
}

show_status() {
  step "kubectl get headwater -n $NS"
  kubectl_ get headwater -n "$NS"
  step "lineage of orders-to-bronze"
  kubectl_ get streamjob orders-to-bronze -n "$NS" -o json | "$PY" -c '
import json, sys
for e in json.load(sys.stdin).get("status", {}).get("lineage", []):
    print("   " + e["source"] + "  ->  " + e["target"])'
  step "Parquet files in the bronze zone (s3://$DEMO_BUCKET_PREFIX-bronze/shop/orders/)"
  "$PY" - <<'PY' || true
import os
from minio import Minio
ep = os.environ["HEADWATER_MINIO_ENDPOINT"]
c = Minio(ep, os.environ["HEADWATER_MINIO_ACCESS_KEY"], os.environ["HEADWATER_MINIO_SECRET_KEY"], secure=False)
bucket = os.environ["DEMO_BUCKET_PREFIX"] + "-bronze"
objs = [o for o in c.list_objects(bucket, prefix="shop/orders/", recursive=True) if not o.object_name.split("/")[-1].startswith(".")]
for o in objs[:10]:
    print(f"   {o.object_name}  {o.size} bytes")
print(f"   {len(objs)} file(s); Flink commits a file at each checkpoint (every 10 s)")
PY
}

up() {
  step "1/6 build (cached) and start the local control plane"
  "$HW" dev up >/dev/null
  cluster_env
  "$KUBECTL" --kubeconfig "$KUBECONFIG" get nodes

  step "2/6 install (cached) and start the data services: ${SERVICES[*]}"
  for s in "${SERVICES[@]}"; do "$HACK_DIR/services.sh" "$s" start; done
  load_env

  step "3/6 install the CRDs (server-side apply)"
  kubectl_ apply --server-side --force-conflicts -f "$REPO_ROOT/crds" >/dev/null
  kubectl_ wait --for=condition=Established --timeout=60s -f "$REPO_ROOT/crds" >/dev/null
  kubectl_ get crd -l app.kubernetes.io/part-of=headwater

  step "4/6 start the operator (watching namespace $NS)"
  kubectl_ create namespace "$NS" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  start_operator

  step "5/6 apply the pipeline (manifests/demo/pipeline.yaml)"
  mkdir -p "$DEMO_FLINK_STATE"
  mount_secret
  render_pipeline | kubectl_ apply -n "$NS" -f -
  if ! wait_ready 300; then
    kubectl_ get headwater -n "$NS" -o wide
    echo "not everything became Ready within 5 minutes; see $DEMO_RUN/operator.log" >&2
    exit 1
  fi

  step "6/6 write to the orders table: insert, update, delete"
  local id=$((RANDOM + 1000))
  psql_ <<SQL
INSERT INTO orders (id, customer_id, amount, status) VALUES ($id, 1, 42.50, 'new');
UPDATE orders SET status = 'paid' WHERE id = $id;
DELETE FROM orders WHERE id = $id;
SQL
  log "order $id inserted, updated and deleted; waiting for Flink's next checkpoint"
  sleep 25
  show_status
  cat <<TXT

Done. Try:
  export KUBECONFIG=$KUBECONFIG
  $KUBECTL get headwater -n $NS -o wide
  $KUBECTL describe cdcconnector orders-cdc -n $NS
  tail -f $DEMO_RUN/operator.log
Stop everything with: make demo-down
TXT
}

down() {
  stop_operator
  if "$HW" dev status >/dev/null 2>&1; then
    cluster_env
    load_env 2>/dev/null || true
    # Delete the pipeline first so the finalizers remove the connector, slot and buckets.
    if operator_running || true; then
      start_operator >/dev/null 2>&1 || true
      kubectl_ delete namespace "$NS" --timeout=90s >/dev/null 2>&1 || true
      stop_operator
    fi
  fi
  for s in "${SERVICES[@]}"; do "$HACK_DIR/services.sh" "$s" stop || true; done
  "$HW" dev down
}

case "${1:-up}" in
  up) up ;;
  status) cluster_env; load_env; show_status ;;
  down) down ;;
  *) echo "usage: $0 [up|status|down]" >&2; exit 2 ;;
esac
