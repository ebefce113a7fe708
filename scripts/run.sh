#!/usr/bin/env bash
# `make run`: the server in the foreground on ./data; once it is ready, a local agent ships this
# host's metrics to it (instance = this host's name, job = node). The agent stops when the server
# stops (Ctrl-C stops both). AGENT=0 runs the server alone; AGENT_ARGS are passed to `clearsight agent`;
# AGENT_URL names the server when a config file moves it (a --listen in ARGS is followed).
set -u
PY=${PY:-.venv/bin/python}
AGENT=${AGENT:-1}
# the server's address: AGENT_URL, else a --listen in the arguments, else the default
listen=""
prev=""
for arg in "$@"; do
  case "$arg" in
    --listen=*) listen=${arg#--listen=} ;;
    *) [ "$prev" = "--listen" ] && listen=$arg ;;
  esac
  prev=$arg
done
if [ -n "$listen" ]; then
  host=${listen%:*}
  case "$host" in ""|0.0.0.0|"[::]"|::) host=127.0.0.1 ;; esac
  listen="$host:${listen##*:}"
fi
AGENT_URL=${AGENT_URL:-http://${listen:-127.0.0.1:9800}}
AGENT_ARGS=${AGENT_ARGS:-}

"$PY" -m clearsight server --data-dir ./data "$@" &
server=$!
agent=""
trap 'kill -TERM "$server" 2>/dev/null' INT TERM

if [ "$AGENT" != "0" ]; then
  # wait until the server answers /ready (or exits: then there is nothing to ship to)
  while kill -0 "$server" 2>/dev/null; do
    if "$PY" -c "import sys, httpx; sys.exit(httpx.get(sys.argv[1] + '/ready', timeout=1).status_code != 200)" \
        "$AGENT_URL" 2>/dev/null; then
      # shellcheck disable=SC2086  # AGENT_ARGS is a list of flags
      "$PY" -m clearsight.agent --url "$AGENT_URL" $AGENT_ARGS &
      agent=$!
      break
    fi
    sleep 0.3
  done
fi

while kill -0 "$server" 2>/dev/null; do
  wait "$server"
done
wait "$server"
rc=$?
if [ -n "$agent" ]; then
  kill -TERM "$agent" 2>/dev/null
  wait "$agent"
fi
exit "$rc"
