# Helpers for the coordinator's end-to-end tests (sourced by tests/cli/coord_*.sh).
# Every process started with coord_spawn is killed when the test exits.

: "${EVO:?EVO must name the evo binary}"
coord_tmp=$(mktemp -d)
coord_pids=()
coord_cleanup() {
  local p
  for p in "${coord_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${coord_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${COORD_KEEP:-0}" = 1 ]; then echo "logs kept in $coord_tmp"; else rm -rf "$coord_tmp"; fi
}
trap coord_cleanup EXIT
# Every client command is bounded in time, so a test cannot hang.
evo() { timeout "${COORD_CMD_LIMIT:-90}" "$EVO" "$@"; }

fail() { echo "FAIL: $*" >&2; for f in "$coord_tmp"/*.log; do echo "--- $f"; tail -25 "$f"; done >&2; exit 1; }

# coord_spawn NAME CMD...: start CMD in the background, log to NAME.log,
# remember its pid in the variable pid_NAME.
coord_spawn() {
  local name=$1; shift
  "$@" > "$coord_tmp/$name.log" 2>&1 &
  coord_pids+=($!)
  printf -v "pid_$name" '%s' "$!"
}

# Start a coordinator on an ephemeral loopback port; sets COORD (its URL).
coord_start() { # extra flags...
  rm -f "$coord_tmp/port"
  coord_spawn coord "$EVO" coordinator --listen tcp://127.0.0.1:0 --db "$coord_tmp/evo.db" \
    --port-file "$coord_tmp/port" --heartbeat-ms 200 --lost-after-ms 1200 \
    --request-timeout-ms 4000 "$@"
  local i
  for i in $(seq 100); do [ -s "$coord_tmp/port" ] && break; sleep 0.05; done
  [ -s "$coord_tmp/port" ] || fail "the coordinator did not start"
  COORD=tcp://127.0.0.1:$(cat "$coord_tmp/port")
  export EVO_COORDINATOR=$COORD
}

# Wait until `evo devices` lists N live devices.
coord_wait_alive() { # N
  local i n
  for i in $(seq 100); do
    n=$(evo devices 2>/dev/null | grep -c ' alive ' || true)
    [ "$n" -ge "$1" ] && return 0
    sleep 0.1
  done
  evo devices >&2 || true
  fail "expected $1 live devices"
}
