#!/usr/bin/env bash
# A slow board and a fast cloud on one machine: the coordinator and each node
# run in their own network namespace (created here, named evo-tb-$$-*), joined
# to the coordinator's namespace by veth pairs shaped with tbf, and each node
# runs in its own cgroup v1 cpu group with a CFS quota. For each link setting
# the script deploys a zoo model in several modes and prints the partitioner's
# predicted latency next to the measured end-to-end median.
#
#   scripts/testbed.sh [--quick] [path/to/evo]
#
# Root only (exit 77 otherwise, or when ip netns, tc or the cgroup v1 cpu
# controller are missing). Environment:
#   EVO_TB_MODEL     zoo model (default tiny_vww_mbv1)
#   EVO_TB_SETTINGS  "board/cloud" Mbit/s pairs (default "10/50 2/20 50/200 100/10";
#                    the last one is a board on a fast LAN and a cloud behind a slow uplink)
#   EVO_TB_REPEAT    requests per measurement (default 20)
#   EVO_TB_BOARD_CPU board CPU quota in percent of one core (default 20)
#   EVO_TB_BOARD_AT_SOURCE=1  run the board node in the coordinator's namespace
#                    (the camera is on the board: the input starts there and
#                    only the cloud's link is shaped; the board figure of each
#                    setting is then unused)
#   EVO_TB_BOARD_GFLOPS  declare the board's speed (node --no-calibrate --gflops)
#                    instead of letting it calibrate (calibration scales its
#                    rates by the CFS quota it finds, evo_cpu_quota)
#   EVO_SHARED       the shared data directory (default ../shared)
# --quick: one setting (10/50), 5 repeats; what tests/cli/testbed.sh runs.
#
# Traffic never leaves the namespaces made here: the only addresses are in
# 10.213.0.0/16 on the veths and on the coordinator namespace's loopback,
# each node namespace routes only 10.213.0.0/16 (through the coordinator
# namespace, which forwards between its two veths), and nothing is attached
# to the host's interfaces. netem is not available on this kernel, so there
# is no added delay: round-trip times are what tbf's queue and the real stack
# give (tens of microseconds when idle, more when the bucket is empty).
set -euo pipefail

quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
here=$(cd "$(dirname "$0")/.." && pwd)
evo=${1:-${EVO:-$here/build/evo}}
shared=${EVO_SHARED:-$here/../shared}
model=${EVO_TB_MODEL:-tiny_vww_mbv1}
settings=${EVO_TB_SETTINGS:-"10/50 2/20 50/200 100/10"}
repeat=${EVO_TB_REPEAT:-20}
board_cpu=${EVO_TB_BOARD_CPU:-20}
at_source=${EVO_TB_BOARD_AT_SOURCE:-0}
if [ "$quick" = 1 ]; then settings="10/50"; repeat=5; fi

skip() { echo "testbed: skipped: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tc, cgroups)"
command -v ip > /dev/null && ip netns list > /dev/null 2>&1 || skip "ip netns is unavailable"
command -v tc > /dev/null || skip "tc is unavailable"
command -v jq > /dev/null || skip "jq is unavailable"
cg=/sys/fs/cgroup/cpu
[ -w "$cg" ] && [ -e "$cg/cpu.cfs_quota_us" ] || skip "the cgroup v1 cpu controller is unavailable"
[ -x "$evo" ] || { echo "testbed: no evo binary at $evo" >&2; exit 1; }
evo=$(cd "$(dirname "$evo")" && pwd)/$(basename "$evo")
dir=$shared/models/$model
[ -f "$dir/model.onnx" ] || skip "no $dir/model.onnx (../shared is absent)"

tag=evo-tb-$$
ns_c=$tag-coord
ns_b=$tag-board
ns_k=$tag-cloud
vb=tb$$b   # veth names must fit in 15 characters
vk=tb$$k
work=$(mktemp -d)
pids=()
token=tb-$$-$RANDOM$RANDOM
coord_url=tcp://10.213.0.1:7400

cleanup() {
    local p n
    for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    # Anything still in a namespace (a client cut off by the trap) dies with it.
    for n in "$ns_c" "$ns_b" "$ns_k"; do
        for p in $(ip netns pids "$n" 2> /dev/null); do kill -KILL "$p" 2> /dev/null || true; done
        ip netns del "$n" 2> /dev/null || true
    done
    ip link del "${vb}0" 2> /dev/null || true
    ip link del "${vk}0" 2> /dev/null || true
    for n in board cloud; do
        [ -d "$cg/$tag-$n" ] && rmdir "$cg/$tag-$n" 2> /dev/null || true
    done
    if [ "${EVO_TB_KEEP:-0}" = 1 ]; then echo "testbed: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "testbed: FAIL: $*" >&2
    for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done >&2
    exit 1
}
# Every step is bounded in time.
run() { timeout "${EVO_TB_STEP_LIMIT:-120}" "$@"; }
# A client command, run in the coordinator's namespace.
client() {
    run ip netns exec "$ns_c" env EVO_COORDINATOR=$coord_url EVO_TOKEN=$token "$evo" "$@"
}

# ---- namespaces and links
for n in "$ns_c" "$ns_b" "$ns_k"; do
    run ip netns add "$n"
    run ip -n "$n" link set lo up
done
run ip -n "$ns_c" addr add 10.213.0.1/32 dev lo
# The coordinator's namespace is the hub: nodes reach each other through it.
run ip netns exec "$ns_c" sysctl -q -w net.ipv4.ip_forward=1
link() { # veth-prefix node-namespace subnet-octet
    run ip link add "${1}0" type veth peer name "${1}1"
    run ip link set "${1}0" netns "$ns_c"
    run ip link set "${1}1" netns "$2"
    run ip -n "$ns_c" addr add "10.213.$3.1/30" dev "${1}0"
    run ip -n "$2" addr add "10.213.$3.2/30" dev "${1}1"
    run ip -n "$ns_c" link set "${1}0" up
    run ip -n "$2" link set "${1}1" up
    run ip -n "$2" route add 10.213.0.0/16 via "10.213.$3.1"
}
link "$vb" "$ns_b" 1
link "$vk" "$ns_k" 2

# shape VETH-PREFIX NODE-NS MBIT: tbf on both ends, so both directions are limited.
shape() {
    local kbit=$(($3 * 1000)) burst
    # A bucket of ~4 ms of traffic, at least 32 kbit (tbf needs >= rate/HZ).
    burst=$((kbit / 250))
    [ "$burst" -lt 32 ] && burst=32
    run ip netns exec "$ns_c" tc qdisc replace dev "${1}0" root tbf rate "${3}mbit" \
        burst "${burst}kbit" latency 50ms
    run ip netns exec "$2" tc qdisc replace dev "${1}1" root tbf rate "${3}mbit" \
        burst "${burst}kbit" latency 50ms
}

# ---- CPU: the board gets board_cpu% of one core, the cloud one full core.
# A short CFS period (5 ms; the quota may not go below 1 ms) spreads the board's quota evenly over an
# inference of a few milliseconds instead of letting it run at full speed
# until a 100 ms period's budget runs out.
cgroup() { # name percent
    local d=$cg/$tag-$1
    mkdir "$d"
    echo 5000 > "$d/cpu.cfs_period_us"
    echo $((50 * $2)) > "$d/cpu.cfs_quota_us"
}
cgroup board "$board_cpu"
cgroup cloud 100

# spawn LOGNAME CGROUP-NAME|- NS CMD...: start CMD in NS (and in the cgroup).
spawn() {
    local name=$1 group=$2 ns=$3
    shift 3
    if [ "$group" = - ]; then
        ip netns exec "$ns" "$@" > "$work/$name.log" 2>&1 &
    else
        # The shell joins the cgroup first, so the exec'd node starts inside it.
        # nsenter enters only the network namespace: `ip netns exec` also
        # mounts a fresh /sys, which hides the cgroup hierarchy and so the
        # CPU quota the node's calibration reads (evo_cpu_quota).
        sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg/$tag-$group" \
            nsenter --net="/run/netns/$ns" "$@" > "$work/$name.log" 2>&1 &
    fi
    pids+=($!)
    last_pid=$!
}

alive_count() { client devices 2> /dev/null | grep -c ' alive ' || true; }
wait_alive() { # N
    for _ in $(seq 300); do
        [ "$(alive_count)" -eq "$1" ] && return 0
        sleep 0.1
    done
    client devices >&2 || true
    fail "expected $1 live node(s)"
}

inputs=()
for f in "$dir"/test_data_set_0/input_*.pb; do inputs+=(--input "$f"); done
expects=()
for f in "$dir"/test_data_set_0/output_*.pb; do expects+=(--expect "$f"); done

# measure LABEL MODE: deploy, then infer REPEAT requests one at a time; append a row.
measure() {
    local label=$1 mode=$2 plan res pred med ok where comp
    plan=$(client deploy "$model" --mode "$mode" --json) || fail "deploy --mode $mode ($label)"
    echo "$plan" > "$work/plan-$sid-${label// /_}.json"
    pred=$(jq -r '.predicted_latency_ms' <<< "$plan")
    where=$(jq -r '[.stages[] | "\(.device):\(.first)-\(.last)"] | join(" ")' <<< "$plan")
    # --window 1: one request in flight, so the median is latency, not queueing.
    res=$(client infer "$model" "${inputs[@]}" "${expects[@]}" --repeat "$repeat" --window 1 \
        --json) || { echo "$res" >&2; fail "infer after deploy --mode $mode ($label)"; }
    echo "$res" > "$work/infer-$sid-${label// /_}.json"
    med=$(jq -r '.latency_ms.median' <<< "$res")
    # Compute summed over the stages (mean per request, as the node reports it).
    comp=$(jq -r '[.stages[] | .compute_ms] | add' <<< "$res")
    ok=$(jq -r 'if ([.checks[] | .ok] | all) and (.checks | length) > 0 then "OK" else "MISMATCH" end' \
        <<< "$res")
    [ "$ok" = OK ] || fail "outputs differ from the reference ($label)"
    printf '%-9s %-13s %-10s %9.2f %9.2f %7s %8.2f  %s\n' "$setting" "$label" \
        "$(jq -r .mode <<< "$plan")" "$pred" "$med" "$(awk -v p="$pred" -v m="$med" 'BEGIN { printf "%+.0f%%", (m - p) / p * 100 }')" \
        "$comp" "$where" | tee -a "$work/table"
}

echo "testbed: model $model, board ${board_cpu}% of a core, cloud one core, $repeat request(s)" \
    "per measurement, settings (board/cloud Mbit/s): $settings"
[ "$at_source" = 1 ] && echo "testbed: the board node shares the coordinator's namespace (input at the board)"
: > "$work/table"
for setting in $settings; do
    bm=${setting%/*}
    km=${setting#*/}
    sid=$bm-$km
    shape "$vb" "$ns_b" "$bm"
    shape "$vk" "$ns_k" "$km"
    rm -f "$work/evo.db"
    spawn "coord-$bm-$km" - "$ns_c" "$evo" coordinator --listen "$coord_url" --token "$token" \
        --db "$work/evo.db" --heartbeat-ms 200 --lost-after-ms 1200 --request-timeout-ms 20000
    pid_coord=$last_pid
    for _ in $(seq 100); do client devices > /dev/null 2>&1 && break; sleep 0.1; done
    # The nodes calibrate (CPU) and measure their link to the coordinator
    # when they register, so they start after the shaping is in place.
    if [ "$at_source" = 1 ]; then
        board_ns=$ns_c board_listen=tcp://10.213.0.1:0
    else
        board_ns=$ns_b board_listen=tcp://10.213.1.2:0
    fi
    board_speed=()
    [ -n "${EVO_TB_BOARD_GFLOPS:-}" ] && board_speed=(--no-calibrate --gflops "$EVO_TB_BOARD_GFLOPS")
    spawn "board-$bm-$km" board "$board_ns" "$evo" node --name board --class edge --memory 64M \
        --listen "$board_listen" --coordinator "$coord_url" --token "$token" "${board_speed[@]}"
    spawn "cloud-$bm-$km" cloud "$ns_k" "$evo" node --name cloud --class cloud --memory 1G \
        --listen tcp://10.213.2.2:0 --coordinator "$coord_url" --token "$token"
    pid_cloud=$last_pid
    wait_alive 2
    client devices > "$work/devices-$sid.txt"
    # A calibrating board must have seen its quota (or its speed is the full core's).
    if [ -z "${EVO_TB_BOARD_GFLOPS:-}" ]; then
        grep -q "CPU quota of 0\.[0-9]* of a core applies" "$work/board-$bm-$km.log" \
            || fail "the board calibrated without seeing its CPU quota: $(cat "$work/board-$bm-$km.log")"
    fi
    # What the nodes measured when they registered (the partitioner's inputs).
    awk -v s="$setting" 'NR > 1 { printf "%s: %s measured %s GFLOP/s, link RTT %s us, %s Mbit/s\n", s, $1, $7, $8, $9 }' \
        "$work/devices-$sid.txt" | tee -a "$work/devices"
    client model add "$dir/model.onnx" > /dev/null || fail "model add"
    measure "evo plan" auto
    measure "cloud split" cloud
    measure "best single" standalone
    # All on the board: take the cloud away, then a standalone plan has one device.
    kill -TERM "$pid_cloud"
    wait "$pid_cloud" 2> /dev/null || true
    wait_alive 1
    measure "all on board" standalone
    kill -TERM "$pid_coord" 2> /dev/null || true
    for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    pids=()
done

echo
printf '%-9s %-13s %-10s %9s %9s %7s %8s  %s\n' "MBIT/S" "CONFIG" "PLAN" "PRED(ms)" \
    "MEAS(ms)" "GAP" "COMP(ms)" "STAGES (device:first-last node)"
cat "$work/table"
echo
cat "$work/devices"
echo "testbed: every output matched the reference"
