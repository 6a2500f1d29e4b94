#!/usr/bin/env bash
# parallel_convention.sh SRC_DIR - the one parallel-loop convention of
# docs/CONTRIBUTING.md ("Parallel loops") holds: the core and the optimizer
# families open no OpenMP region of their own. Their loops are range
# functions run by dsc_parallel_ranges, items run by dsc_parallel_items, or
# fixed-order sums run by dsc_reduce_blocks (src/kernels/parallel.h, vec.h).
# Only two constructs that open no region are allowed there, each where its
# comment says why: `omp simd` (a vectorization hint) and `omp atomic` (an
# integer add inside a range function). Every other `#pragma omp` must be in
# src/kernels/.
set -euo pipefail
src=${1:?usage: parallel_convention.sh SRC_DIR}
[ -d "$src/core" ] && [ -d "$src/optimizers" ] || { echo "no $src/core or $src/optimizers" >&2; exit 2; }
bad=$(grep -n -E '^[[:space:]]*#[[:space:]]*pragma[[:space:]]+omp' "$src"/core/*.c "$src"/core/*.h \
          "$src"/optimizers/*.c "$src"/optimizers/*.h |
      grep -v -E 'pragma[[:space:]]+omp[[:space:]]+(simd|atomic)([[:space:]]|$)' || true)
if [ -n "$bad" ]; then
    echo "OpenMP regions outside src/kernels (use dsc_parallel_ranges / dsc_parallel_items /"
    echo "dsc_reduce_blocks, docs/CONTRIBUTING.md \"Parallel loops\"):"
    echo "$bad"
    exit 1
fi
echo "ok: no OpenMP region in src/core or src/optimizers"
