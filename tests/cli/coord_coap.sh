#!/usr/bin/env bash
# The CoAP node path: a node joins over CoAP (`evo node --transport coap`)
# through the coordinator's --coap-listen; the budgets force a split of
# tiny_vww_mbv1 across it and an nng node, so the tensors between the two
# stages are relayed by the coordinator; `evo infer` matches the ONNX
# conformance output. A CoAP node that gives a wrong join token is refused.
set -euo pipefail
. "$(dirname "$0")/coord_lib.bash"
vww=${EVO_SHARED:-}/models/tiny_vww_mbv1
[ -f "$vww/model.onnx" ] || exit 77

coap_port_of() {
  local p="" i
  for i in $(seq 100); do
    p=$(sed -n 's/.*CoAP nodes on .*(port \([0-9]*\)).*/\1/p' "$coord_tmp/coord.log")
    [ -n "$p" ] && break
    sleep 0.05
  done
  echo "$p"
}
coord_start --coap-listen coap://127.0.0.1:0
coap_port=$(coap_port_of)
[ -n "$coap_port" ] && [ "$coap_port" -gt 0 ] || fail "the coordinator did not report its CoAP port"

coord_spawn a "$EVO" node --name a --memory 900K --no-calibrate --gflops 4
coord_spawn m "$EVO" node --name m --transport coap --coordinator "coap://127.0.0.1:$coap_port" \
  --memory 900K --no-calibrate --gflops 2 --class mcu
coord_wait_alive 2
evo devices > "$coord_tmp/devices.txt" || fail "devices"
grep -qE '^m +alive +mcu +coap ' "$coord_tmp/devices.txt" || fail "node m is not listed as a CoAP node"

evo model add "$vww/model.onnx" > /dev/null || fail "model add"
evo deploy tiny_vww_mbv1 > "$coord_tmp/plan.txt" || fail "deploy"
cat "$coord_tmp/plan.txt"
[ "$(grep -cE '^[0-9]+ ' "$coord_tmp/plan.txt")" -eq 2 ] || fail "expected 2 stages"
grep -qE '^[0-9]+ +m .*relayed by coordinator' "$coord_tmp/plan.txt" \
  || grep -qE '^1 +a .*relayed by coordinator' "$coord_tmp/plan.txt" \
  || fail "the stage after or on the CoAP node is not relayed"
ref=(--input "$vww/test_data_set_0/input_0.pb" --expect "$vww/test_data_set_0/output_0.pb")
evo infer tiny_vww_mbv1 "${ref[@]}" --repeat 4 > "$coord_tmp/infer.txt" || fail "infer"
cat "$coord_tmp/infer.txt"
grep -q "max abs error .*, OK" "$coord_tmp/infer.txt" || fail "no reference check"
grep -qE '^[01] +m ' "$coord_tmp/infer.txt" || fail "no timing from the CoAP node"
grep -q "holds tiny_vww_mbv1 stage" "$coord_tmp/m.log" || fail "the CoAP node holds no stage"

# The CoAP node's stage is still served after the coordinator re-sends the
# plan (held digests are not sent again).
evo deploy tiny_vww_mbv1 --json > "$coord_tmp/plan2.json" || fail "second deploy"
grep -qE '"sent_bytes":[[:space:]]*[1-9]' "$coord_tmp/plan2.json" && fail "a held stage was sent again"
evo infer tiny_vww_mbv1 "${ref[@]}" | grep -q "OK" || fail "infer after re-deploy"
kill -TERM "$pid_m" "$pid_a" "$pid_coord"
wait "$pid_coord" || fail "the coordinator did not stop cleanly"

# ---- a join token guards the CoAP listener too
coord_start --token s3cret --coap-listen coap://127.0.0.1:0
coap_port=$(coap_port_of)
[ -n "$coap_port" ] || fail "the coordinator did not report its CoAP port"
evo node --name stray --transport coap --coordinator "coap://127.0.0.1:$coap_port" \
  --no-calibrate --token wrong 2> "$coord_tmp/e1" && fail "a CoAP node with a wrong token registered"
grep -q "refused" "$coord_tmp/e1" || fail "unclear refusal: $(cat "$coord_tmp/e1")"
coord_spawn good "$EVO" node --name good --transport coap \
  --coordinator "coap://127.0.0.1:$coap_port" --no-calibrate --token s3cret
for _ in $(seq 100); do
  evo devices --token s3cret 2>/dev/null | grep -qE '^good +alive' && break
  sleep 0.1
done
evo devices --token s3cret > "$coord_tmp/devices2.txt" || fail "devices with the token"
grep -qE '^good +alive .* coap ' "$coord_tmp/devices2.txt" || fail "the CoAP node with the token did not register"
grep -q stray "$coord_tmp/devices2.txt" && fail "the stray CoAP node is in the registry"
echo "coord_coap: OK"
