#!/usr/bin/env bash
# bench-all.sh BUILD [--quick] - what `make bench` runs: every benchmark
# program BUILD/bench_* (bench_elementwise three times, its rows' medians in
# the summary), then `descent gpt2 bench` on GPT-2 124M (B=4, T=64,
# 2 threads), each printing its figures and its SUMMARY rows (bench_quant8
# on each of its code paths: scripts/bench-quant8-paths.sh); everything
# goes to BUILD/bench.log, and the summary table of the speed targets
# (scripts/bench-summary.sh) to BUILD/bench-summary.md and the terminal.
# --quick: the short modes (--quick, or --reps 1 --skip-step for
# bench_matrix; 2 timed GPT-2 steps): small sizes, so its rows are not the
# targets' 100M-parameter figures. Run with OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset, as a user's machine has them (docs/performance.md).
set -uo pipefail
build=${1:?usage: scripts/bench-all.sh BUILD [--quick]}
quick=0
[ "${2:-}" = --quick ] && quick=1
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then
    echo "warning: OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set; the figures are not" \
         "what a user's machine gives (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make bench)" >&2
fi
log=$build/bench.log
: >"$log"
status=0
run() { # run NAME COMMAND...: output to the terminal and the log
    echo "== $*" | tee -a "$log"
    "${@:2}" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" != 0 ]; then
        echo "$1 failed (exit $rc)" | tee -a "$log"
        status=1
    fi
}
echo "load before: $(uptime)" | tee -a "$log"
for b in "$build"/bench_*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    name=$(basename "$b")
    [ "$name" = bench_quant8 ] && continue # below, on each of its code paths
    flags=()
    if [ "$quick" = 1 ]; then
        case $name in
        bench_matrix) flags=(--reps 1 --skip-step) ;;
        bench_mpi) ;;
        *) flags=(--quick) ;;
        esac
    fi
    rounds=1
    # The element-wise rows move by a tenth from one minute to the next on a
    # shared machine: three runs, spread over a few minutes, and the summary
    # takes each row's median (scripts/bench-summary.sh).
    [ "$name" = bench_elementwise ] && [ "$quick" = 0 ] && rounds=3
    for ((r = 1; r <= rounds; r++)); do
        label=$name
        [ "$rounds" -gt 1 ] && label="$name (run $r of $rounds)"
        run "$label" "$b" "${flags[@]}"
    done
done
# target 1 on the AVX-512, AVX2 and baseline paths (two extra builds, made
# once into BUILD-avx2 and BUILD-baseline)
qflags=()
[ "$quick" = 1 ] && qflags=(--quick)
run "bench_quant8 paths" bash "$here/bench-quant8-paths.sh" "$build" "${qflags[@]}"
steps=9 # an odd count, so the median is one of the steps
[ "$quick" = 1 ] && steps=2
run "gpt2 bench" "$build/descent" gpt2 bench --124m -B 4 -T 64 --threads 2 --steps "$steps"
echo "load after: $(uptime)" | tee -a "$log"
echo
echo "Summary of the speed targets (docs/performance.md), same-run ratios:"
bash "$here/bench-summary.sh" "$log" | tee "$build/bench-summary.md"
exit "$status"
