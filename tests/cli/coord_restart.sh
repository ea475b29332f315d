#!/usr/bin/env bash
# A coordinator that restarts (same address, same database) gets its nodes
# back without restarting them: their heartbeats fail, they register again
# (still holding their stages), and the model deploys again and answers as
# ONNX Runtime does. Then the same with mutual TLS, whose streams do not
# report a dead peer by themselves.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/coord_lib.bash"
vww=${EVO_SHARED:-}/models/tiny_vww_mbv1
[ -f "$vww/model.onnx" ] || { echo "skip: ../shared models absent"; exit 77; }
ref=(--input "$vww/test_data_set_0/input_0.pb" --expect "$vww/test_data_set_0/output_0.pb")

coord_start
port=$(cat "$coord_tmp/port")
# Two nodes that cannot hold the model alone, so both get a stage.
coord_spawn a "$EVO" node --name a --memory 900K --no-calibrate --gflops 2
coord_spawn b "$EVO" node --name b --memory 900K --no-calibrate --gflops 2
coord_wait_alive 2
evo model add "$vww/model.onnx" > /dev/null || fail "model add"
evo deploy tiny_vww_mbv1 > "$coord_tmp/plan1.txt" || fail "deploy"
[ "$(grep -cE '^[0-9]+ ' "$coord_tmp/plan1.txt")" = 2 ] || fail "expected 2 stages: $(cat "$coord_tmp/plan1.txt")"
evo infer tiny_vww_mbv1 "${ref[@]}" | grep -q "OK" || fail "infer before the restart"

# The coordinator dies without a word and comes back on the same port.
kill -KILL "$pid_coord"
wait "$pid_coord" 2>/dev/null || true
coord_spawn coord2 "$EVO" coordinator --listen "tcp://127.0.0.1:$port" --db "$coord_tmp/evo.db" \
  --heartbeat-ms 200 --lost-after-ms 1200 --request-timeout-ms 4000
# It knows the nodes from its database (offline) until they register again.
coord_wait_alive 2
grep -q "node a: registered again" "$coord_tmp/a.log" || fail "node a did not say it registered again"
grep -q "node b: registered again" "$coord_tmp/b.log" || fail "node b did not say it registered again"

# Their heartbeats tell the new coordinator they still hold their stages.
held=no
for i in $(seq 50); do
  evo devices --json > "$coord_tmp/devices.json"
  python3 -c '
import json, sys
held = {d["name"]: d.get("stages", 0) for d in json.load(open(sys.argv[1]))}
sys.exit(0 if held.get("a") == 1 and held.get("b") == 1 else 1)' "$coord_tmp/devices.json" \
    && { held=yes; break; }
  sleep 0.1
done
[ "$held" = yes ] || fail "the nodes do not report their stages: $(cat "$coord_tmp/devices.json")"
# The model is in the database: it deploys again (a plan whose stages land
# where they were sends nothing; which node gets which stage may differ).
evo deploy tiny_vww_mbv1 > "$coord_tmp/plan2.txt" || fail "deploy after the restart"
evo infer tiny_vww_mbv1 "${ref[@]}" --repeat 20 > "$coord_tmp/infer.txt" \
  || fail "infer after the restart: $(cat "$coord_tmp/infer.txt")"
grep -q "max abs error .*, OK" "$coord_tmp/infer.txt" || fail "no reference check after the restart"
kill -TERM "$pid_a" "$pid_b" "$pid_coord2"

# ---- mutual TLS
if command -v openssl > /dev/null; then
  certs=$coord_tmp/certs
  bash "$EVO_SRC/scripts/make-cluster-certs.sh" "$certs" coordinator t1 client > /dev/null
  tls() { echo --tls-cert "$certs/$1.pem" --tls-key "$certs/$1.key" --tls-ca "$certs/ca.pem"; }
  rm -f "$coord_tmp/port"
  # Default heartbeats (500 ms): a node that only noticed when nng's TLS
  # buffer filled up took 18 s to come back; one that notices the peer
  # going is back in about 2.5 s (2 s of failed heartbeats, then register).
  coord_spawn tcoord "$EVO" coordinator --listen tls+tcp://127.0.0.1:0 --db "$coord_tmp/tls.db" \
    --port-file "$coord_tmp/port" $(tls coordinator)
  for i in $(seq 100); do [ -s "$coord_tmp/port" ] && break; sleep 0.05; done
  tport=$(cat "$coord_tmp/port")
  TURL=tls+tcp://127.0.0.1:$tport
  coord_spawn t1 "$EVO" node --coordinator "$TURL" --name t1 --no-calibrate $(tls t1)
  tls_alive() { # within 8 s
    for i in $(seq 80); do
      evo devices --coordinator "$TURL" $(tls client) 2> /dev/null | grep -qE '^t1 +alive' && return 0
      sleep 0.1
    done
    return 1
  }
  tls_alive || fail "the TLS node did not register"
  kill -KILL "$pid_tcoord"
  wait "$pid_tcoord" 2> /dev/null || true
  coord_spawn tcoord2 "$EVO" coordinator --listen "$TURL" --db "$coord_tmp/tls.db" $(tls coordinator)
  tls_alive || fail "the TLS node did not come back within 8 s"
  grep -q "node t1: registered again" "$coord_tmp/t1.log" || fail "node t1 did not say it registered again"
else
  echo "note: no openssl, the TLS part is not run"
fi
echo "coord_restart: all checks passed"
