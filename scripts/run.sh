#!/usr/bin/env bash
# `make run`: the server in the foreground on ./data; once it is ready, a local agent ships this
# host's metrics to it (instance = this host's name, job = node). The agent stops when the server
# stops (Ctrl-C stops both). AGENT=0 runs the server alone; AGENT_ARGS are passed to `clearsight agent`;
# AGENT_URL names the server when a config file moves it (a --listen in ARGS is followed).
# The agent ships over OTLP/gRPC to the server's --otlp-grpc-listen (127.0.0.1:4317 by default); when that
# port is already taken before the server starts (a local OTel Collector: the server then runs without
# its gRPC listener) or the listener is disabled, the agent ships over HTTP instead, so it never sends
# this host's data to another program.
set -u
PY=${PY:-.venv/bin/python}
AGENT=${AGENT:-1}
# the server's addresses: AGENT_URL, else a --listen in the arguments, else the default; the same for
# --otlp-grpc-listen
listen=""
grpc_listen="127.0.0.1:4317"
prev=""
for arg in "$@"; do
  case "$arg" in
    --listen=*) listen=${arg#--listen=} ;;
    --otlp-grpc-listen=*) grpc_listen=${arg#--otlp-grpc-listen=} ;;
    *) [ "$prev" = "--listen" ] && listen=$arg
       [ "$prev" = "--otlp-grpc-listen" ] && grpc_listen=$arg ;;
  esac
  prev=$arg
done
local_addr() {  # host:port as the agent reaches it (a wildcard host is this machine)
  local host=${1%:*}
  case "$host" in ""|0.0.0.0|"[::]"|::) host=127.0.0.1 ;; esac
  echo "$host:${1##*:}"
}
[ -n "$listen" ] && listen=$(local_addr "$listen")
AGENT_URL=${AGENT_URL:-http://${listen:-127.0.0.1:9800}}
AGENT_ARGS=${AGENT_ARGS:-}
agent_protocol="--protocol http"
if [ -n "$grpc_listen" ]; then
  grpc_addr=$(local_addr "$grpc_listen")
  if "$PY" -c "import socket, sys; h, _, p = sys.argv[1].rpartition(':'); s = socket.socket(socket.AF_INET6 if ':' in h.strip('[]') else socket.AF_INET); s.bind((h.strip('[]'), int(p)))" "$grpc_addr" 2>/dev/null; then
    agent_protocol="--protocol grpc --grpc-address $grpc_addr"
  else
    echo "clearsight: $grpc_addr is taken by another program: the local agent ships over HTTP" >&2
  fi
fi

"$PY" -m clearsight server --data-dir ./data "$@" &
server=$!
agent=""
trap 'kill -TERM "$server" 2>/dev/null' INT TERM

if [ "$AGENT" != "0" ]; then
  # wait until the server answers /ready (or exits: then there is nothing to ship to)
  while kill -0 "$server" 2>/dev/null; do
    if "$PY" -c "import sys, httpx; sys.exit(httpx.get(sys.argv[1] + '/ready', timeout=1).status_code != 200)" \
        "$AGENT_URL" 2>/dev/null; then
      # shellcheck disable=SC2086  # agent_protocol and AGENT_ARGS are lists of flags
      "$PY" -m clearsight.agent --url "$AGENT_URL" $agent_protocol $AGENT_ARGS &
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
