#!/usr/bin/env bash
# Run `descent gpt2 study` (or `descent classify study`) as N processes that
# share one output folder, then write the report with the plain command.
#
#   scripts/study-parallel.sh N OUT -- STUDY-COMMAND [FLAGS...]
#   e.g. scripts/study-parallel.sh 2 out/study-gpt2 -- build/descent gpt2 study --preset full
#
# The study keeps every finished run as a folder and reads it back instead of
# redoing it, so the runs are exactly the ones the single command would make;
# this only decides who runs what. Jobs are one method's seed 1 (which first
# tunes that method's learning rate), then the other seeds; AdamW comes first
# because Muon + AdamW takes AdamW's tuned rate for its non-matrix part. A job
# is handed out once (a lock serializes the queue), so two processes never
# run the same job. Resumable: start it again after an interruption.
set -euo pipefail
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: $0 N OUT -- STUDY-COMMAND [FLAGS...]" >&2; exit 2
fi
workers=$1; out=$2; shift 3
case $workers in ''|*[!0-9]*) echo "$0: N must be a positive integer" >&2; exit 2 ;; esac
methods=${STUDY_METHODS:-adamw sgd sgdm signsgd signum lion muon}
seeds=${STUDY_SEEDS:-3}
mkdir -p "$out"
queue="$out/.queue"; lock="$out/.queue.lock"
: > "$queue"
for s in $(seq 1 "$seeds"); do for m in $methods; do echo "$m $s" >> "$queue"; done; done

next_job() {  # pops the first line of the queue under the lock
    exec 9>"$lock"; flock 9
    local line; line=$(head -n 1 "$queue" || true)
    if [ -n "$line" ]; then tail -n +2 "$queue" > "$queue.new"; mv "$queue.new" "$queue"; fi
    flock -u 9; echo "$line"
}
worker() {
    local w=$1 job
    while job=$(next_job) && [ -n "$job" ]; do
        set -- $job
        echo "[worker $w] $1 seed $2: start $(date -u +%H:%M:%S)"
        "${cmd[@]}" --out "$out" --threads 1 --seeds "$seeds" --methods "$1" --only-seed "$2" \
            > "$out/.log.$1.$2" 2>&1 || { echo "[worker $w] $1 seed $2 failed (see $out/.log.$1.$2)"; return 1; }
        echo "[worker $w] $1 seed $2: done $(date -u +%H:%M:%S)"
    done
}
cmd=("$@")
pids=()
for w in $(seq 1 "$workers"); do worker "$w" & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || exit $status
"${cmd[@]}" --out "$out" --threads 1 --seeds "$seeds"
