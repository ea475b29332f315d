#!/usr/bin/env bash
# The main job: cooperative inference on loopback. Starts a coordinator and
# three nodes of different sizes (one MCU-class with a 256 KiB budget),
# submits a real model, deploys it across them (the memory budgets force a
# split), runs inference, prints the plan and the per-stage timings, checks
# the result against ONNX Runtime's reference output, and shuts everything
# down cleanly.
#
#   scripts/demo.sh [path/to/evo]
# EVO_DEMO_MODEL picks another zoo model (default mobilenet_v2).
set -euo pipefail
evo=${1:-build/evo}
evo=$(cd "$(dirname "$evo")" && pwd)/$(basename "$evo")
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${EVO_SHARED:-$here/../shared}
model=${EVO_DEMO_MODEL:-mobilenet_v2}
dir="$shared/models/$model"
if [ ! -f "$dir/model.onnx" ]; then
  dir="$here/examples/models/tiny_mlp"
  model=tiny_mlp
  echo "evo demo: ../shared is absent; using the bundled $dir"
fi
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
spawn() { local name=$1; shift; "$@" > "$work/$name.log" 2>&1 & pids+=($!); }
show_logs() { for f in "$work"/*.log; do echo "--- $f"; tail -15 "$f"; done; }
bounded() { timeout 120 "$evo" "$@"; }

echo "== coordinator on loopback"
spawn coordinator "$evo" coordinator --listen tcp://127.0.0.1:0 --db "$work/evo.db" \
  --port-file "$work/port" --heartbeat-ms 250 --lost-after-ms 1500
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { show_logs; echo "evo demo: the coordinator did not start" >&2; exit 1; }
export EVO_COORDINATOR=tcp://127.0.0.1:$(cat "$work/port")
echo "coordinator at $EVO_COORDINATOR (open mode: loopback only)"

# Budgets for .evm stage + work + arena. The whole of mobilenet_v2 needs about 20 MiB,
# so no node can hold it alone; tiny models fit the big node.
case $model in
  mobilenet_v2) big=16M mid=8M ;;
  tiny_vww_mbv1) big=900K mid=900K ;;
  *) big=64M mid=16M ;;
esac
echo
echo "== three nodes: big ($big), mid ($mid), mcu (256K); each calibrates itself (~1 s)"
spawn big "$evo" node --name big --memory "$big" --class edge
spawn mid "$evo" node --name mid --memory "$mid" --class edge
spawn mcu "$evo" node --name mcu --memory 256K --class mcu
for _ in $(seq 300); do
  [ "$(bounded devices 2>/dev/null | grep -c ' alive ' || true)" -ge 3 ] && break
  sleep 0.1
done
bounded devices || { show_logs; exit 1; }

echo
echo "== evo model add $model (through the coordinator)"
bounded model add "$dir/model.onnx"
echo
echo "== evo deploy $model"
bounded deploy "$model" || { show_logs; exit 1; }
echo
echo "== evo infer $model (reference input, 20 pipelined requests, checked against ONNX Runtime)"
inputs=()
for f in "$dir"/test_data_set_0/input_*.pb; do inputs+=(--input "$f"); done
expects=()
for f in "$dir"/test_data_set_0/output_*.pb; do expects+=(--expect "$f"); done
bounded infer "$model" "${inputs[@]}" "${expects[@]}" --repeat 20 || { show_logs; exit 1; }
echo
echo "== evo status"
bounded status
echo
echo "== shutting down"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
grep -h "stopped" "$work"/*.log
echo "evo demo: done"
