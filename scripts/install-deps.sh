#!/usr/bin/env bash
# Install the Debian packages evo needs to build and test, when they are
# missing. Runs apt-get only if something is absent, so it is cheap to call
# before every build. Needs root (or sudo) the first time on a fresh machine.
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also what bench/ uses (ORT via node, hyperfine)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  libprotobuf-c-dev protobuf-c-compiler   # ONNX parsing
  libcjson-dev                            # JSON output
  libnng-dev libmbedtls-dev               # transport, TLS, digests
  openssl                                 # test certificates (scripts/make-test-certs.sh)
  libcoap3-dev                            # CoAP for constrained nodes
  libsqlite3-dev                          # model database
  libzstd-dev liblz4-dev                  # tensor compression
  libcmocka-dev                           # unit tests
  clang libclang-rt-14-dev                # fuzzing, sanitizers
  python3 python3-numpy python3-onnx      # reference data tools
  graphviz                                # plan pictures
  jq iproute2                             # scripts/testbed.sh (namespaces, tbf)
  gcc-arm-none-eabi libnewlib-arm-none-eabi  # Cortex-M build check
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(hyperfine nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "evo: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "evo: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
