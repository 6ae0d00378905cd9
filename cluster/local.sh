#!/usr/bin/env bash
# A multi-node Ray cluster on this machine, with token authentication: one head and N worker nodes
# (separate raylets) whose custom resource `gpu_node` stands in for a GPU node.
#
#   cluster/local.sh up       start head + workers (prints RAY_ADDRESS and how to submit a job)
#   cluster/local.sh status   nodes and resources (`ray status`)
#   cluster/local.sh env      the shell exports for using the cluster (`eval "$(cluster/local.sh env)"`)
#   cluster/local.sh down     stop this cluster's processes (only these: never `ray stop`)
#
# Environment (defaults in brackets):
#   OMNIVAD_CLUSTER_DIR      state dir: token, pids, logs [$HOME/.omnivad/cluster]
#   OMNIVAD_RAY_PORT         GCS port [6380]
#   OMNIVAD_DASHBOARD_PORT   dashboard / job API port, bound to 127.0.0.1 [8265]
#   OMNIVAD_CLIENT_PORT      Ray client server port [10001]
#   OMNIVAD_CLUSTER_WORKERS  worker nodes [2]
#   OMNIVAD_HEAD_CPUS        CPUs the head offers to tasks [1]
#   OMNIVAD_WORKER_CPUS      CPUs per worker node [2]
#   OMNIVAD_WORKER_RESOURCES custom resources per worker node ['{"gpu_node": 1}']
#   OMNIVAD_OBJECT_STORE_MB  object store per node [300]
#   OMNIVAD_PYTHON           python whose Ray runs the nodes (and their workers) [python3]
#   OMNIVAD_NODE_TIMEOUT     seconds to wait for each node [180]
set -euo pipefail

STATE=${OMNIVAD_CLUSTER_DIR:-$HOME/.omnivad/cluster}
PY=${OMNIVAD_PYTHON:-python3}
# `ray start` for a worker node that keeps 127.0.0.1 as its node IP (see cmd_up)
LOOPBACK_RAY_START='import sys
import ray._private.services as services
services.resolve_ip_for_localhost = lambda host: host
from ray.scripts.scripts import main
sys.argv = ["ray", *sys.argv[1:]]
main()'
CONF="$STATE/cluster.env"

log() { printf '[local.sh] %s\n' "$*" >&2; }
ray_cli() { "$PY" -m ray.scripts.scripts "$@"; }
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

load_conf() {
  if [[ ! -f "$CONF" ]]; then
    return 1
  fi
  # shellcheck disable=SC1090
  . "$CONF"
}

auth_env() {
  export RAY_AUTH_MODE=token
  export RAY_AUTH_TOKEN_PATH="$STATE/auth_token"
  unset RAY_AUTH_TOKEN
  # Loopback only: Ray binds its gRPC servers to every interface unless the node IP is 127.0.0.1, and on
  # Linux rewrites --node-ip-address=127.0.0.1 to the machine's address unless this is 0.
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
}

wait_started() {  # LOGFILE PIDFILE NAME
  local deadline=$((SECONDS + ${OMNIVAD_NODE_TIMEOUT:-180}))
  while ((SECONDS < deadline)); do
    if grep -q "Ray runtime started" "$1" 2>/dev/null; then
      return 0
    fi
    if ! alive "$2"; then
      log "$3 exited during startup; last lines of $1:"
      tail -n 20 "$1" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "$3 did not start within ${OMNIVAD_NODE_TIMEOUT:-180}s; see $1"
  return 1
}

wait_nodes() {  # EXPECTED_NODES RAY_PORT: until the GCS reports every node (a started raylet registers a bit later)
  local deadline=$((SECONDS + ${OMNIVAD_NODE_TIMEOUT:-180})) n=0
  while ((SECONDS < deadline)); do
    n=$( (auth_env; ray_cli status --address="127.0.0.1:$2") 2>/dev/null |
      awk '/^Active:/{a=1; next} /^Pending:/{a=0} a && /node_/{c++} END{print c+0}')
    if ((n >= $1)); then
      return 0
    fi
    sleep 2
  done
  log "only $n of $1 nodes registered within ${OMNIVAD_NODE_TIMEOUT:-180}s"
  return 1
}

print_env() {
  cat <<EOF
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH='$STATE/auth_token'
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_ADDRESS='127.0.0.1:$RAY_PORT'
export RAY_API_SERVER_ADDRESS='http://127.0.0.1:$DASH_PORT'
EOF
}

cmd_up() {
  if load_conf && alive "$STATE/head.pid"; then
    log "already running (state in $STATE)"
    cmd_status
    return 0
  fi
  local ray_port=${OMNIVAD_RAY_PORT:-6380} dash_port=${OMNIVAD_DASHBOARD_PORT:-8265}
  local client_port=${OMNIVAD_CLIENT_PORT:-10001} workers=${OMNIVAD_CLUSTER_WORKERS:-2}
  local head_cpus=${OMNIVAD_HEAD_CPUS:-1} worker_cpus=${OMNIVAD_WORKER_CPUS:-2}
  local worker_res=${OMNIVAD_WORKER_RESOURCES:-'{"gpu_node": 1}'}
  local store=$(( ${OMNIVAD_OBJECT_STORE_MB:-300} * 1024 * 1024 ))

  mkdir -p "$STATE"
  chmod 700 "$STATE"
  if [[ ! -s "$STATE/auth_token" ]]; then
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$STATE/auth_token")
  fi
  chmod 600 "$STATE/auth_token"
  # Ray's temp dir holds unix sockets (path limit ~107 bytes): keep it short, one per cluster.
  local ray_tmp
  ray_tmp=$(mktemp -d /tmp/omnivad-ray.XXXXXX)
  cat > "$CONF" <<EOF
RAY_PORT=$ray_port
DASH_PORT=$dash_port
RAY_TMP=$ray_tmp
WORKERS=$workers
EOF
  auth_env
  export RAY_USAGE_STATS_ENABLED=0
  # SIGTERM to `ray start --block` stops its node at once instead of draining for 30 s.
  export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0
  local common=(--block --node-ip-address=127.0.0.1 --object-store-memory="$store" --dashboard-agent-listen-port=0
                --min-worker-port=0 --max-worker-port=0 --disable-usage-stats)

  log "head: GCS port $ray_port, dashboard 127.0.0.1:$dash_port, $head_cpus CPU(s)"
  setsid nohup "$PY" -m ray.scripts.scripts start --head --port="$ray_port" \
      --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" --ray-client-server-port="$client_port" \
      --num-cpus="$head_cpus" --num-gpus=0 --temp-dir="$ray_tmp/head" "${common[@]}" \
      > "$STATE/head.log" 2>&1 < /dev/null &
  echo $! > "$STATE/head.pid"
  if ! wait_started "$STATE/head.log" "$STATE/head.pid" head; then
    cmd_down
    return 1
  fi

  # Worker nodes: each its own --temp-dir (distinct socket names; several raylets started at once
  # in one temp dir race for the same socket name), random node-manager/object-manager/agent ports.
  local i
  for ((i = 1; i <= workers; i++)); do
    log "worker $i: $worker_cpus CPU(s), resources $worker_res"
    # A worker node cannot join with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (`ray start` refuses multi-node then),
    # and with it on, Ray rewrites 127.0.0.1 (node IP and head address) to the machine's address, binding the
    # node to every interface (any other loopback address, e.g. 127.0.0.2, binds to every interface too). So
    # worker nodes run `ray start` with that rewrite switched off (resolve_ip_for_localhost, Ray 2.60's one place
    # for it): node IP 127.0.0.1, every socket on loopback (tests/cluster/test_local_cluster.py checks).
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 setsid nohup "$PY" -c "$LOOPBACK_RAY_START" start --address="127.0.0.1:$ray_port" \
        --num-cpus="$worker_cpus" --num-gpus=0 --resources="$worker_res" \
        --temp-dir="$ray_tmp/worker$i" "${common[@]}" \
        > "$STATE/worker$i.log" 2>&1 < /dev/null &
    echo $! > "$STATE/worker$i.pid"
  done
  for ((i = 1; i <= workers; i++)); do
    if ! wait_started "$STATE/worker$i.log" "$STATE/worker$i.pid" "worker $i"; then
      cmd_down
      return 1
    fi
  done
  if ! wait_nodes $((workers + 1)) "$ray_port"; then
    cmd_down
    return 1
  fi
  load_conf
  print_env > "$STATE/env.sh"
  cat <<EOF
omnivad local Ray cluster is up: 1 head + $workers worker node(s) (token auth; state in $STATE)

  RAY_ADDRESS=127.0.0.1:$ray_port                  (drivers: ray.init / jobs/mdvad.py)
  RAY_API_SERVER_ADDRESS=http://127.0.0.1:$dash_port   (dashboard and job API, this host only)

Submit a job (token from $STATE/auth_token):
  . $STATE/env.sh
  ray job submit --working-dir . -- python jobs/mdvad.py --protocol E1 --workers $workers \\
      --set 'scaling.resources_per_worker={gpu_node: 1}'
Stop it:  cluster/local.sh down
EOF
}

cmd_status() {
  if ! load_conf || ! alive "$STATE/head.pid"; then
    echo "omnivad local cluster: not running (state dir $STATE)"
    return 3
  fi
  auth_env
  echo "omnivad local cluster: GCS 127.0.0.1:$RAY_PORT, dashboard http://127.0.0.1:$DASH_PORT"
  local f
  for f in "$STATE"/*.pid; do
    if alive "$f"; then echo "  $(basename "$f" .pid): pid $(cat "$f") running"; else echo "  $(basename "$f" .pid): stopped"; fi
  done
  ray_cli status --address="127.0.0.1:$RAY_PORT"
}

# pids of processes whose command line mentions DIR (this cluster's unique temp dir)
pids_under() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ "$pid" == "$$" ]] && continue
    if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$1"; then
      echo "$pid"
    fi
  done
}

cmd_down() {
  if ! load_conf; then
    echo "omnivad local cluster: not running (state dir $STATE)"
    return 0
  fi
  local f pid deadline
  # Workers first, then the head: SIGTERM makes each `ray start --block` stop its node's processes.
  for f in "$STATE"/worker*.pid "$STATE/head.pid"; do
    [[ -e "$f" ]] || continue
    if alive "$f"; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + 30))
  for f in "$STATE"/worker*.pid "$STATE/head.pid"; do
    [[ -e "$f" ]] || continue
    while alive "$f" && ((SECONDS < deadline)); do sleep 0.5; done
    if alive "$f"; then kill -KILL "$(cat "$f")" 2>/dev/null || true; fi
    rm -f "$f"
  done
  # Anything of this cluster still around (workers, agents): matched by its own temp dir only.
  if [[ -n "${RAY_TMP:-}" && "$RAY_TMP" == /tmp/omnivad-ray.* ]]; then
    for pid in $(pids_under "$RAY_TMP"); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $(pids_under "$RAY_TMP"); do kill -KILL "$pid" 2>/dev/null || true; done
    if [[ -z "${OMNIVAD_KEEP_RAY_TMP:-}" ]]; then rm -rf "$RAY_TMP"; fi
  fi
  rm -f "$CONF" "$STATE/env.sh"
  echo "omnivad local cluster: stopped"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) load_conf && print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
