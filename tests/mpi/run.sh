#!/usr/bin/env bash
# run.sh MPIEXEC TEST_MPI DESCENT DESCENT_MPI - the MPI tests (ctest "mpi"):
#   1. test_mpi under mpirun -np 2 and -np 3: sharded steps equal one
#      process bit for bit, decisions agree, checkpoints (tests/mpi/test_mpi.c);
#   2. the tiny GPT-2 trained by `mpirun -np 2 descent-mpi gpt2 train` gives
#      the same losses, bit for bit, as `descent gpt2 train --accum 2`, and
#      resumes from its sharded checkpoint exactly;
#   3. a resume on another number of ranks fails on every rank, with a
#      message that says why.
# Exit 77 (ctest: skipped) with a message when mpirun is missing.
set -u
mpiexec=${1:-}; test_mpi=$2; bin=$3; binmpi=$4
if [ -z "$mpiexec" ] || ! command -v "$mpiexec" >/dev/null 2>&1; then
    echo "SKIPPED: mpirun not found (install openmpi-bin and libopenmpi-dev)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# Loopback only, shared memory without the cross-memory-attach mechanism
# (unavailable in containers); root needs --allow-run-as-root.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm_rsh_agent=
export OMP_NUM_THREADS=1
# Waiting ranks yield the core (the tests oversubscribe small machines).
export OMPI_MCA_mpi_yield_when_idle=1
# Under AddressSanitizer: OpenMPI's plugins keep allocations until exit and
# are unloaded before the leak report, so their frames are anonymous and no
# suppression matches them; leak checking is off for MPI processes (other
# ASan and UBSan errors still fail). shard.c's leaks are checked by
# test_shard (a communicator of size 1, no MPI) in the ordinary suite.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
run=("$mpiexec" --oversubscribe)
[ "$(id -u)" = 0 ] && run+=(--allow-run-as-root)

for np in 2 3; do
    mkdir -p "$tmp/np$np"
    if ! timeout 120 "${run[@]}" -np $np "$test_mpi" "$tmp/np$np" >"$tmp/out" 2>&1; then
        echo "FAIL: test_mpi -np $np"; cat "$tmp/out"; fail=1
    else
        grep -E "rank 0|state bytes" "$tmp/out"
    fi
done

# Tiny GPT-2 on the committed reference tokens: 2 ranks vs one process with
# the same global batch (2 micro-batches of B=1).
tok=tests/data/gpt2_ref_tokens.bin
tiny=(--train "$tok" --val "$tok" --vocab-size 64 --layers 1 --channels 16 --heads 2
      --max-seq-len 8 -B 1 -T 8 --eval-every 3 --eval-batches 1 --phi 0 --no-plot --quiet
      --optimizer adamw:lr=1e-2 --matrix-optimizer muon:lr=0.02 --clip 1.0 --steps 6)
"$bin" gpt2 train "${tiny[@]}" --accum 2 --out "$tmp/one" >"$tmp/o1" 2>&1 || { echo "FAIL: one process"; cat "$tmp/o1"; fail=1; }
timeout 120 "${run[@]}" -np 2 "$binmpi" gpt2 train "${tiny[@]}" --out "$tmp/two" >"$tmp/o2" 2>&1 || { echo "FAIL: 2 ranks"; cat "$tmp/o2"; fail=1; }
# losses and gradient norms (columns 1-6 of the train/val rows), bit for bit
cut -d, -f1-6 "$tmp/one/metrics.csv" >"$tmp/m1"
cut -d, -f1-6 "$tmp/two/metrics.csv" >"$tmp/m2"
if cmp -s "$tmp/m1" "$tmp/m2" && [ "$(grep -c '^train' "$tmp/m1")" = 6 ]; then
    echo "ok: tiny GPT-2, 2 ranks = 1 process with accum 2 (6 losses, bit for bit)"
else
    echo "FAIL: tiny GPT-2 losses differ between 2 ranks and 1 process"; diff "$tmp/m1" "$tmp/m2"; fail=1
fi
cmp -s "$tmp/one/ckpt_00000006/model.bin" "$tmp/two/ckpt_00000006/model.bin" \
    && echo "ok: final weights identical" || { echo "FAIL: final weights differ"; fail=1; }
grep -q "^6,2," "$tmp/two/metrics_dp.csv" \
    && echo "ok: metrics_dp.csv has per-rank state bytes and phase times" \
    || { echo "FAIL: metrics_dp.csv"; cat "$tmp/two/metrics_dp.csv"; fail=1; }
# stop at 3 and resume on 2 ranks: the same weights as the uninterrupted run
timeout 120 "${run[@]}" -np 2 "$binmpi" gpt2 train "${tiny[@]}" --out "$tmp/res" --stop-after 3 >"$tmp/o3" 2>&1 \
  && timeout 120 "${run[@]}" -np 2 "$binmpi" gpt2 train "${tiny[@]}" --out "$tmp/res" --resume "$tmp/res" >"$tmp/o4" 2>&1 \
  || { echo "FAIL: stop/resume on 2 ranks"; cat "$tmp/o3" "$tmp/o4"; fail=1; }
cmp -s "$tmp/two/ckpt_00000006/model.bin" "$tmp/res/ckpt_00000006/model.bin" \
    && echo "ok: resumed 2-rank run identical" || { echo "FAIL: resumed run differs"; fail=1; }
# the 2-rank checkpoint on 3 ranks and on one process: clear errors, no hang
timeout 120 "${run[@]}" -np 3 "$binmpi" gpt2 train "${tiny[@]}" --out "$tmp/r3" --resume "$tmp/res/ckpt_00000003" >"$tmp/o5" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "saved by 2 ranks and this run has 3" "$tmp/o5"; then
    echo "ok: resume on 3 ranks refused: $(grep -m1 -o 'saved by 2 ranks[^;]*' "$tmp/o5")"
else
    echo "FAIL: resume on 3 ranks (exit $rc)"; cat "$tmp/o5"; fail=1
fi
"$bin" gpt2 train "${tiny[@]}" --out "$tmp/r1" --resume "$tmp/res/ckpt_00000003" >"$tmp/o6" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "sharded checkpoint written by 2 ranks" "$tmp/o6"; then
    echo "ok: resume in one process refused"
else
    echo "FAIL: resume of a 2-rank checkpoint in one process (exit $rc)"; cat "$tmp/o6"; fail=1
fi
exit $fail
