#!/usr/bin/env bash
# Who may join a coordinator. With a join token, a client or node without it
# (or with a wrong one) is refused, and one with it works. With mutual TLS, a
# node or client whose certificate the cluster CA did not sign is refused, and
# one with a cluster certificate works. Open mode refuses non-loopback URLs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/coord_lib.bash"
export -n EVO_COORDINATOR 2>/dev/null || true

# ---- join token
coord_start --token s3cret
unset EVO_TOKEN
coord_spawn good "$EVO" node --name good --no-calibrate --token s3cret
coord_wait_alive_token() {
  for i in $(seq 100); do
    evo devices --token s3cret 2>/dev/null | grep -q ' alive ' && return 0; sleep 0.1
  done
  fail "the node with the token did not register"
}
coord_wait_alive_token
evo devices --token s3cret | grep -qE '^good +alive' || fail "devices with the token"
evo devices 2> "$coord_tmp/e1" && fail "a client without the token was served"
grep -q "requires a join token" "$coord_tmp/e1" || fail "unclear refusal: $(cat "$coord_tmp/e1")"
evo devices --token wrong 2> "$coord_tmp/e2" && fail "a client with a wrong token was served"
grep -q "HMAC does not match" "$coord_tmp/e2" || fail "unclear refusal: $(cat "$coord_tmp/e2")"
evo node --name stray --no-calibrate --token wrong 2> "$coord_tmp/e3" && fail "a stray node registered"
grep -q "refused" "$coord_tmp/e3" || fail "unclear refusal: $(cat "$coord_tmp/e3")"
evo devices --token s3cret | grep -q stray && fail "the stray node is in the registry"
# A submission without the token is refused too.
echo "not a model" > "$coord_tmp/x.onnx"
evo model add "$coord_tmp/x.onnx" --coordinator "$COORD" 2> "$coord_tmp/e4" && fail "unauthenticated model add"
grep -q "requires a join token" "$coord_tmp/e4" || fail "unclear refusal: $(cat "$coord_tmp/e4")"
kill -TERM "$pid_good" "$pid_coord"
wait "$pid_coord" || fail "the coordinator did not stop cleanly"
grep -q "evo coordinator: stopped" "$coord_tmp/coord.log" || fail "no clean shutdown"

# ---- open mode is for loopback only
evo coordinator --listen tcp://0.0.0.0:0 --db "$coord_tmp/open.db" 2> "$coord_tmp/e5" \
  && fail "open mode on a wildcard address"
grep -q "refusing to listen beyond loopback" "$coord_tmp/e5" || fail "unclear refusal: $(cat "$coord_tmp/e5")"

# ---- mutual TLS
command -v openssl >/dev/null || { echo "skip: no openssl for the TLS part"; exit 0; }
certs=$coord_tmp/certs
bash "$EVO_SRC/scripts/make-cluster-certs.sh" "$certs" --rogue coordinator node1 node2 client > /dev/null
rm -f "$coord_tmp/port"
coord_spawn tcoord "$EVO" coordinator --listen tls+tcp://127.0.0.1:0 --db "$coord_tmp/tls.db" \
  --port-file "$coord_tmp/port" --tls-cert "$certs/coordinator.pem" \
  --tls-key "$certs/coordinator.key" --tls-ca "$certs/ca.pem"
for i in $(seq 100); do [ -s "$coord_tmp/port" ] && break; sleep 0.05; done
TURL=tls+tcp://127.0.0.1:$(cat "$coord_tmp/port")
tls() { echo --tls-cert "$certs/$1.pem" --tls-key "$certs/$1.key" --tls-ca "$certs/ca.pem"; }
coord_spawn tnode "$EVO" node --coordinator "$TURL" --name node1 --no-calibrate $(tls node1)
for i in $(seq 100); do
  evo devices --coordinator "$TURL" $(tls client) 2>/dev/null | grep -q ' alive ' && break; sleep 0.1
done
evo devices --coordinator "$TURL" $(tls client) | grep -qE '^node1 +alive' || fail "TLS node did not register"
evo node --coordinator "$TURL" --name rogue --no-calibrate $(tls rogue) 2> "$coord_tmp/e6" \
  && fail "a node with a rogue certificate registered"
grep -q "TLS handshake" "$coord_tmp/e6" || fail "unclear refusal: $(cat "$coord_tmp/e6")"
evo devices --coordinator "$TURL" --tls-ca "$certs/ca.pem" 2> "$coord_tmp/e7" \
  && fail "a client without a certificate was served"
evo devices --coordinator "$TURL" $(tls client) | grep -q rogue && fail "the rogue node is registered"

# A model split over two TLS nodes: its input, the tensor between the
# stages and the result cross TLS data channels (tls+tcp+stream) and the
# answer matches ONNX Runtime's.
vww=${EVO_SHARED:-}/models/tiny_vww_mbv1
if [ -f "$vww/model.onnx" ]; then
  # Neither node can hold the model alone (as in coord_cluster.sh).
  kill -TERM "$pid_tnode"; wait "$pid_tnode" || true
  coord_spawn tnode1 "$EVO" node --coordinator "$TURL" --name node1 --memory 900K --no-calibrate $(tls node1)
  coord_spawn tnode2 "$EVO" node --coordinator "$TURL" --name node2 --memory 900K --no-calibrate $(tls node2)
  for i in $(seq 100); do
    [ "$(evo devices --coordinator "$TURL" $(tls client) 2>/dev/null | grep -c ' alive ')" = 2 ] && break
    sleep 0.1
  done
  evo model add "$vww/model.onnx" --coordinator "$TURL" $(tls client) > /dev/null || fail "model add over TLS"
  evo deploy tiny_vww_mbv1 --coordinator "$TURL" $(tls client) > "$coord_tmp/tplan.txt" \
    || fail "deploy over TLS"
  [ "$(grep -cE '^[0-9]+ ' "$coord_tmp/tplan.txt")" = 2 ] || fail "expected 2 stages: $(cat "$coord_tmp/tplan.txt")"
  evo infer tiny_vww_mbv1 --coordinator "$TURL" $(tls client) --repeat 20 \
    --input "$vww/test_data_set_0/input_0.pb" --expect "$vww/test_data_set_0/output_0.pb" \
    > "$coord_tmp/tinfer.txt" || fail "infer over TLS: $(cat "$coord_tmp/tinfer.txt")"
  cat "$coord_tmp/tinfer.txt"
  grep -q "max abs error .*, OK" "$coord_tmp/tinfer.txt" || fail "no reference check over TLS"
else
  echo "note: ../shared models absent, TLS inference not run"
fi
echo "coord_auth: all checks passed"
