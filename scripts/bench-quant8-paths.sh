#!/usr/bin/env bash
# bench-quant8-paths.sh BUILD [--quick] - issue 15's target 1 on the three
# code paths of the 8-bit steps, on this one machine:
#   avx512    BUILD/bench_quant8 as built (the AVX-512 8-bit kernels, when
#             the CPU has AVX-512 F/BW/VL/DQ)
#   avx2      the portable C of every step compiled for AVX2 + FMA without
#             function clones (BUILD-avx2), the AVX-512 kernels off
#             (DESCENT_KERNELS=portable): what a CPU with AVX2 and no
#             AVX-512 runs
#   baseline  the same for the x86-64 baseline, SSE2 (BUILD-baseline): what
#             a build without clones, or another compiler, runs
# Each path's 8-bit step over its own float32 step (the same optimizer on the
# same path), so each ratio compares like with like. The two extra builds are
# made once (only libdescent and bench_quant8) and reused. Prints the
# programs' output with their SUMMARY rows, which name the path.
set -euo pipefail
build=${1:?usage: scripts/bench-quant8-paths.sh BUILD [--quick]}
flags=()
[ "${2:-}" = --quick ] && flags=(--quick)
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

configure() { # configure DIR C_FLAGS
    if [ ! -f "$1/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$2" >/dev/null
    fi
    cmake --build "$1" -j "$jobs" --target bench_quant8 >/dev/null
}

if [ "$(uname -m)" != x86_64 ]; then
    echo "bench-quant8-paths: the AVX2 and baseline builds are x86-64 only; measuring the" \
         "build as it is"
    "$build/bench_quant8" "${flags[@]}"
    exit 0
fi
echo "== avx512 path (or the portable path where the CPU lacks AVX-512)"
"$build/bench_quant8" "${flags[@]}"
if grep -q avx2 /proc/cpuinfo 2>/dev/null; then
    configure "$build-avx2" "-DDESCENT_NO_CLONES -mavx2 -mfma"
    echo "== avx2 path"
    DESCENT_KERNELS=portable "$build-avx2/bench_quant8" --path avx2 "${flags[@]}"
else
    echo "== avx2 path: this CPU has no AVX2, not measured"
fi
configure "$build-baseline" "-DDESCENT_NO_CLONES"
echo "== baseline path"
DESCENT_KERNELS=portable "$build-baseline/bench_quant8" --path baseline "${flags[@]}"
