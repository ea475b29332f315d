#!/usr/bin/env bash
# Compile the portable parts of evo (core/ without the hosted IR container,
# the executor and the op kernels) for a Cortex-M4 with arm-none-eabi-gcc,
# freestanding, and report their .text/.data/.bss sizes. Fails if any of them
# needs stdio, malloc or another OS facility (the link of a tiny program with
# -nostdlib-style checks would need a board; we check symbols instead).
#
#   scripts/check-freestanding.sh [OUT_DIR]
# Exit 77 (skip) when arm-none-eabi-gcc is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
command -v arm-none-eabi-gcc >/dev/null || { echo "skip: arm-none-eabi-gcc not installed"; exit 77; }
mkdir -p "$out"
flags=(-std=c11 -Os -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
       -ffreestanding -ffunction-sections -fdata-sections -DEVO_FREESTANDING
       -Wall -Wextra -Werror -Wno-unused-parameter -Wno-double-promotion
       -I"$here/include" -I"$here/node")
# The portable set: everything in core/ but the hosted graph container, the
# executor, the registry and the reference kernels (no x86 files).
srcs=()
for f in "$here"/core/*.c "$here"/node/exec.c "$here"/node/memplan.c "$here"/node/ops_registry.c \
         "$here"/node/kernels/*.c "$here"/node/kernels/ref/*.c; do
  [ -f "$f" ] || continue
  case "$(basename "$f")" in graph.c) continue ;; esac
  srcs+=("$f")
done
objs=()
for f in "${srcs[@]}"; do
  o="$out/$(basename "$(dirname "$f")")_$(basename "${f%.c}").o"
  arm-none-eabi-gcc "${flags[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
# No object may call into stdio, the heap or the OS.
forbidden='^(malloc|calloc|realloc|free|aligned_alloc|printf|fprintf|vfprintf|sprintf|snprintf|vsnprintf|puts|fopen|fread|fwrite|fclose|exit|abort|_sbrk|time|clock|clock_gettime|getenv)$'
bad=$(arm-none-eabi-nm -u "${objs[@]}" 2>/dev/null | awk '{print $2}' | grep -E "$forbidden" | sort -u || true)
if [ -n "$bad" ]; then
  echo "portable code uses OS/heap/stdio symbols:"; echo "$bad"
  for s in $bad; do arm-none-eabi-nm -A -u "${objs[@]}" | grep -w "$s" | head -3; done
  exit 1
fi
arm-none-eabi-size -t "${objs[@]}" | tail -1 | awk '{printf "cortex-m4 portable code: text %d B, data %d B, bss %d B (%d objects)\n", $1, $2, $3, n}' n=${#objs[@]}
