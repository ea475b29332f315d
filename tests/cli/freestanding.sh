#!/usr/bin/env bash
# core/, the executor and the reference kernels build freestanding for a
# Cortex-M4 and use no stdio, heap or OS symbols.
exec bash "$EVO_SRC/scripts/check-freestanding.sh" "$EVO_BUILD/freestanding"
