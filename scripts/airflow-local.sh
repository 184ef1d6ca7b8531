#!/usr/bin/env bash
# A local Airflow 3 for this repository: `airflow standalone` (SQLite, LocalExecutor, parallelism
# sized for 2 cores) with this repo's dags/, in its own session, stopped as a whole.
#
#   scripts/airflow-local.sh            start in the foreground; Ctrl-C stops every process
#   scripts/airflow-local.sh start -d   start in the background and return
#   scripts/airflow-local.sh stop       stop it (from any terminal)
#   scripts/airflow-local.sh status     is it running, where
#   eval "$(scripts/airflow-local.sh env)"   this terminal's airflow CLI talks to it (dags trigger, ...)
#
# Settings (environment): AIRFLOW_HOME (default logs/airflow in the repo), AIRFLOW_PORT (8080),
# AIRFLOW_PARALLELISM (4), SYNTHGATE_ROOT (default the repo), MLFLOW_TRACKING_URI (default:
# sqlite mlflow.db in SYNTHGATE_ROOT).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AIRFLOW_HOME=${AIRFLOW_HOME:-$REPO/logs/airflow}
PORT=${AIRFLOW_PORT:-8080}
SIDFILE=$AIRFLOW_HOME/standalone.sid
LOG=$AIRFLOW_HOME/standalone.log
PASSWORDS=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
URL=http://127.0.0.1:$PORT

say() { printf 'airflow-local: %s\n' "$*" >&2; }

session_pids() { # every process of the session (tasks move to their own groups, not sessions)
  ps -eo pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

running_sid() { # the recorded session id, if any of its processes is still alive
  [[ -f $SIDFILE ]] || return 1
  local sid
  sid=$(cat "$SIDFILE")
  [[ $sid =~ ^[0-9]+$ && -n $(session_pids "$sid") ]] || return 1
  echo "$sid"
}

stop() {
  local sid pids waited=0
  if ! sid=$(running_sid); then
    rm -f "$SIDFILE"
    say "not running"
    return 0
  fi
  say "stopping session $sid ($(session_pids "$sid" | wc -l) processes)"
  kill -TERM -- "-$sid" 2>/dev/null || true
  # shellcheck disable=SC2046  # word splitting of the pid list is intended
  kill -TERM $(session_pids "$sid") 2>/dev/null || true
  while pids=$(session_pids "$sid") && [[ -n $pids ]]; do
    if ((waited >= 30)); then
      say "still running after 30 s, killing: $(echo "$pids" | tr '\n' ' ')"
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "$SIDFILE"
  say "stopped"
}

healthy() { # every component reported healthy by the API server
  local body
  body=$(curl -fsS --max-time 5 "$URL/api/v2/monitor/health" 2>/dev/null) || return 1
  python - "$body" <<'EOF'
import json, sys
health = json.loads(sys.argv[1])
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
sys.exit(0 if all((health.get(p) or {}).get("status") == "healthy" for p in parts) else 1)
EOF
}

settings() { # the environment every airflow command of this local setup needs (start and `env`)
  export AIRFLOW_HOME
  export AIRFLOW__CORE__DAGS_FOLDER=$REPO/dags
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  export AIRFLOW__CORE__PARALLELISM=${AIRFLOW_PARALLELISM:-4}
  export PYTHONHASHSEED=0  # reproducible multi-table sampling (pipelines/determinism.py)
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME/airflow.db
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT=$PORT
  export AIRFLOW__API__WORKERS=1
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$URL/execution/
  export SYNTHGATE_ROOT=${SYNTHGATE_ROOT:-$REPO}
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
}

print_env() { # `eval "$(scripts/airflow-local.sh env)"`: the airflow CLI of this terminal talks to the local Airflow
  settings
  local name
  for name in AIRFLOW_HOME AIRFLOW__CORE__DAGS_FOLDER AIRFLOW__CORE__LOAD_EXAMPLES AIRFLOW__CORE__EXECUTOR \
    AIRFLOW__CORE__PARALLELISM PYTHONHASHSEED AIRFLOW__DATABASE__SQL_ALCHEMY_CONN AIRFLOW__API__HOST \
    AIRFLOW__API__PORT AIRFLOW__API__WORKERS AIRFLOW__CORE__EXECUTION_API_SERVER_URL SYNTHGATE_ROOT PYTHONPATH; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
  [[ -x $REPO/.venv/bin/airflow ]] && printf 'export PATH=%q:"$PATH"\n' "$REPO/.venv/bin"
  return 0
}

start() {
  local detach=${1:-}
  if sid=$(running_sid); then
    say "already running (session $sid): $URL; stop it with: $0 stop"
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    say "port $PORT is in use; set AIRFLOW_PORT to a free port"
    exit 1
  fi
  [[ -x $REPO/.venv/bin/airflow ]] && export PATH=$REPO/.venv/bin:$PATH
  command -v airflow >/dev/null || { say "airflow not found (run make setup)"; exit 1; }
  mkdir -p "$AIRFLOW_HOME"

  settings

  : >"$LOG"
  setsid airflow standalone >>"$LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$SIDFILE"
  if [[ -z $detach ]]; then
    trap 'echo >&2; exit 130' INT TERM
    trap stop EXIT
  fi
  say "starting (session $pid, log $LOG) ..."
  local waited=0
  until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "airflow standalone exited; last lines of $LOG:"
      tail -n 30 "$LOG" >&2
      stop
      exit 1
    fi
    if ((waited >= 240)); then
      say "not healthy after 240 s; last lines of $LOG:"
      tail -n 30 "$LOG" >&2
      stop
      exit 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  local password="(see $PASSWORDS)"
  [[ -f $PASSWORDS ]] && password=$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS")
  cat <<EOF

  Airflow is up: $URL
  login:         admin / $password
  DAGs:          $(python -c 'import sys; from pipelines.config import load_params; print(" ".join("synth_" + n for n in load_params(sys.argv[1]).datasets))' "$SYNTHGATE_ROOT/params.yaml" 2>&1 | tail -n 1)
  log:           $LOG
  airflow CLI:   eval "\$($0 env)"   (then e.g. airflow dags trigger synth_hdma)
  stop:          $( [[ -z $detach ]] && echo "Ctrl-C, or " )$0 stop

EOF
  if [[ -n $detach ]]; then
    exit 0
  fi
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1 &
    wait $! || true
  done
  say "airflow standalone exited on its own; last lines of $LOG:"
  tail -n 20 "$LOG" >&2
}

case ${1:-start} in
  start) start "$([[ ${2:-} == -d || ${2:-} == --detach ]] && echo detach)" ;;
  stop) stop ;;
  env) print_env ;;
  status)
    if sid=$(running_sid); then
      echo "running: session $sid, $(session_pids "$sid" | wc -l) processes, $URL, log $LOG"
    else
      echo "not running"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 [start [-d] | stop | status | env]" >&2
    exit 2
    ;;
esac
