#!/usr/bin/env bash
# cli_gpt2.sh DESCENT - `descent gpt2` and `descent demo` end to end on a tiny
# model and the committed reference tokens: help texts, exit codes, train with
# metrics and checkpoints, resume, sample, bench. No network, no data/ folder.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

expect 0 "gpt2 --help" -- "$bin" gpt2 --help
contains "$tmp/out" "compare" "gpt2 --help lists compare"
expect 0 "help gpt2" -- "$bin" help gpt2
expect 2 "gpt2 alone" -- "$bin" gpt2
expect 2 "gpt2 unknown subcommand" -- "$bin" gpt2 frob
contains "$tmp/err" "frob" "unknown subcommand is named"
for sub in prepare encode train compare sample bench study; do
    expect 0 "gpt2 $sub --help" -- "$bin" gpt2 $sub --help
    contains "$tmp/out" "usage: descent gpt2 $sub" "gpt2 $sub --help"
done
expect 0 "gpt2 train --help lists the shared flags" -- "$bin" gpt2 train --help
contains "$tmp/out" "--matrix-optimizer" "train help names --matrix-optimizer"
expect 0 "demo --help" -- "$bin" demo --help
contains "$tmp/out" "moby-dick" "demo help names the corpus"
expect 0 "classify study --help" -- "$bin" classify study --help
contains "$tmp/out" "usage: descent classify study" "classify study --help"
expect 2 "classify alone" -- "$bin" classify
expect 2 "classify study bad flag" -- "$bin" classify study --frob
expect 2 "classify study bad hidden" -- "$bin" classify study --hidden 0,3
expect 1 "classify study without data" -- "$bin" classify study --data "$tmp/none" --quiet
contains "$tmp/err" "dataset-fashion-mnist" "missing Fashion-MNIST names the package"
expect 2 "study bad preset" -- "$bin" gpt2 study --preset huge
expect 2 "study bad seeds" -- "$bin" gpt2 study --seeds 0
expect 2 "study per-decade below 3" -- "$bin" gpt2 study --per-decade 2
expect 2 "study stray argument" -- "$bin" gpt2 study extra
expect 2 "demo bad flag" -- "$bin" demo --frob
expect 2 "bench bad flag" -- "$bin" gpt2 bench --frob
expect 2 "train bad flag" -- "$bin" gpt2 train --frob
expect 2 "train bad value" -- "$bin" gpt2 train --steps -3
expect 2 "train bad metrics" -- "$bin" gpt2 train --metrics xml
expect 2 "compare bad optimizer" -- "$bin" gpt2 compare --optimizers sgd,nope
expect 2 "compare bad grid" -- "$bin" gpt2 compare --grid adamw=x
expect 1 "train without data" -- "$bin" gpt2 train --data "$tmp/none"
contains "$tmp/err" "gpt2 prepare" "missing data suggests prepare"
expect 2 "sample without model" -- "$bin" gpt2 sample
expect 1 "sample missing model" -- "$bin" gpt2 sample --model "$tmp/none.bin"

# tiny training run on the 17 reference tokens (vocabulary 61 fits 64)
tok=tests/data/gpt2_ref_tokens.bin
tiny=(--train "$tok" --val "$tok" --vocab-size 64 --layers 1 --channels 16 --heads 2
      --max-seq-len 8 -B 1 -T 8 --eval-every 2 --eval-batches 1 --no-plot --quiet)
expect 0 "train tiny" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 --phi 2 --out "$tmp/a" \
    --optimizer signum:lr=1e-3 --matrix-optimizer adamw:lr=1e-3
contains "$tmp/out" "final val loss" "train prints a summary"
contains "$tmp/out" "phi at step 4" "train prints phi"
contains "$tmp/a/metrics.csv" "^train,4," "metrics has step 4"
contains "$tmp/a/metrics.csv" "^phi,2," "metrics has phi in the middle"
contains "$tmp/a/metrics.csv" "phi,update_norm,clipped,skipped$" "csv header has the update norm, clip and skip columns"
contains "$tmp/a/metrics.csv" "^train,4,.*,,[0-9.e-]*[1-9][0-9.e-]*,0,0$" "train rows: a non-zero update norm, no clip, no skip"
expect 0 "train with a tiny clip" -- "$bin" gpt2 train "${tiny[@]}" --steps 2 --clip 1e-6 \
    --metrics jsonl --out "$tmp/c"
contains "$tmp/c/metrics.jsonl" "\"update_norm\":[0-9.e-]*,\"clipped\":1,\"skipped\":0}" "jsonl rows count the clip"
contains "$tmp/a/latest" "ckpt_00000004" "latest names the checkpoint"
expect 0 "train jsonl, stop early" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 \
    --stop-after 2 --metrics jsonl --out "$tmp/b"
contains "$tmp/b/metrics.jsonl" "\"kind\":\"train\",\"step\":2" "jsonl rows"
expect 0 "resume" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 --metrics jsonl \
    --resume "$tmp/b" --out "$tmp/b"
contains "$tmp/b/metrics.jsonl" "\"kind\":\"train\",\"step\":4" "resumed to step 4"
expect 1 "resume with another optimizer" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 \
    --optimizer sgd:lr=0.1 --resume "$tmp/b" --out "$tmp/b"
contains "$tmp/err" "optimizer" "the mismatch is named"
if [ -f tests/data/gpt2_vocab.bpe ]; then
    expect 0 "sample" -- "$bin" gpt2 sample --model "$tmp/a" --tokens 5 \
        --vocab tests/data/gpt2_vocab.bpe
fi
expect 0 "bench" -- "$bin" gpt2 bench --layers 1 --channels 32 --heads 2 -B 1 -T 8 \
    --steps 1 --threads 1
contains "$tmp/out" "tokens/s" "bench prints tokens/s"
contains "$tmp/out" "step / sgemm" "bench prints the fraction of the sgemm rate"
contains "$tmp/out" "^SUMMARY.4 gpt2" "bench prints its summary row"
contains "$tmp/out" "step / those: median" "bench pairs each step with sgemm timed after it"
contains "$tmp/out" "optimizer / its traffic: median" "bench pairs AdamW with its memory traffic"
# make bench's table: the gpt2 row, and met / NOT met computed from the numbers
cp "$tmp/out" "$tmp/bench.out"
expect 0 "bench summary table" -- bash scripts/bench-summary.sh "$tmp/bench.out"
contains "$tmp/out" "^| 4 gpt2 | GPT-2 L=1 C=32" "the summary table has the gpt2 row"
printf 'SUMMARY\t1 q\ta\t1.2\t<=\t1.3\nSUMMARY\t1 q\tb\t1.4\t<=\t1.3\nSUMMARY\t2 e\tc\t0.95\t>=\t0.9\nSUMMARY\t2 e\td\tx\t>=\t0.9\nSUMMARY\t2 e\tf\t0.5\t>=\t0.9\tpattern: traffic 60%%\nSUMMARY\t2 e\tg\t0.95\t>=\t0.9\tarithmetic: unused when met\nSUMMARY\t1 q\th\t1.5\t<=\t1.3\tarithmetic: in cache 1.4x\nSUMMARY\t1 q\ti\t1.4\t<=\t1.3\tserial: the two added 1.45x\n' \
    >"$tmp/rows"
expect 0 "bench summary of fixed rows" -- bash scripts/bench-summary.sh "$tmp/rows"
contains "$tmp/out" "^| 1 q | a | 1.200 | <= 1.3 | met |" "<= limit met"
contains "$tmp/out" "^| 1 q | b | 1.400 | <= 1.3 | NOT met |" "<= limit not met"
contains "$tmp/out" "^| 2 e | c | 0.950 | >= 0.9 | met |" ">= limit met"
contains "$tmp/out" "| bad row |" "a malformed value is flagged"
contains "$tmp/out" "^| 2 e | f | 0.500 | >= 0.9 | NOT met; pattern: traffic 60% |" \
    "a row not met shows the benchmark's reading"
contains "$tmp/out" "^| 2 e | g | 0.950 | >= 0.9 | met |" "a met row shows no reading"
contains "$tmp/out" "^3 of 8 rows met; of the rest, 2 with a measured bound (arithmetic or pattern), 1 serial (arithmetic and traffic, each measured, add up to the time), 1 without" \
    "the count of rows met, bounded, serial and open"
# A row repeated over runs (make bench runs bench_elementwise three times):
# one row, the median run's value and reading, the range beside it; for an
# even count the middle value further from the goal.
printf 'SUMMARY\t2 e\tr\t0.95\t>=\t0.9\nSUMMARY\t2 e\tr\t0.85\t>=\t0.9\tcode: x\nSUMMARY\t2 e\tr\t0.92\t>=\t0.9\nSUMMARY\t2 e\ts\t0.5\t>=\t0.9\tpattern: p\nSUMMARY\t2 e\ts\t0.7\t>=\t0.9\tcode: c\nSUMMARY\t2 e\ts\t0.6\t>=\t0.9\tserial: s\nSUMMARY\t1 q\tu\t1.2\t<=\t1.3\nSUMMARY\t1 q\tu\t1.4\t<=\t1.3\tarithmetic: a\n' \
    >"$tmp/rows3"
expect 0 "bench summary of repeated rows" -- bash scripts/bench-summary.sh "$tmp/rows3"
contains "$tmp/out" "^| 2 e | r | 0.920 | >= 0.9 | met (median of 3 runs, range 0.850-0.950) |" \
    "a repeated row is its median run"
contains "$tmp/out" "^| 2 e | s | 0.600 | >= 0.9 | NOT met; serial: s (median of 3 runs, range 0.500-0.700) |" \
    "the median run's reading"
contains "$tmp/out" "^| 1 q | u | 1.400 | <= 1.3 | NOT met; arithmetic: a (median of 2 runs, range 1.200-1.400) |" \
    "an even count takes the middle value further from the goal"
contains "$tmp/out" "^1 of 3 rows met; of the rest, 1 with a measured bound (arithmetic or pattern), 1 serial" \
    "repeated rows count once"
expect 0 "bench without the reference" -- "$bin" gpt2 bench --layers 1 --channels 32 \
    --heads 2 -B 1 -T 8 --steps 1 --threads 1 --no-reference
count=$((count + 1))
if grep -q "step / sgemm" "$tmp/out"; then
    fails=$((fails + 1)); echo "FAILED: --no-reference still timed sgemm"
fi

# Every subcommand parses with getopt_long (lab/opts.h): "--steps=3"
# reads as "--steps 3", unknown flags are named and exit 2.
expect 0 "train --steps=2 and --key=value" -- "$bin" gpt2 train "${tiny[@]}" --steps=2 \
    --optimizer=sgd:lr=1e-3 --eval-every=1
contains "$tmp/out" "^steps 2 " "--steps=2 is read"
expect 0 "train -B1 -T8 --steps 1 --layers=1" -- "$bin" gpt2 train "${tiny[@]}" -B1 -T8 \
    --steps 1 --layers=1
contains "$tmp/out" "^steps 1 " "--steps 1 is read"
expect 0 "bench --steps=1 --layers=1" -- "$bin" gpt2 bench --layers=1 --channels=32 \
    --heads=2 -B 1 -T 8 --steps=1 --threads=1
contains "$tmp/out" "median of 1" "bench --steps=1 is read"
for sub in prepare encode train compare sample bench study; do
    expect 2 "gpt2 $sub --frob" -- "$bin" gpt2 $sub --frob
    contains "$tmp/err" "descent gpt2 $sub: unknown option \"--frob\"" "gpt2 $sub names the flag"
done
expect 2 "train --steps=x" -- "$bin" gpt2 train --steps=x
contains "$tmp/err" "--steps" "a bad value is named"
expect 2 "train --steps without a value" -- "$bin" gpt2 train --steps
contains "$tmp/err" "needs a value" "a missing value is named"
expect 2 "train --quiet=1 (takes no value)" -- "$bin" gpt2 train --quiet=1
expect 2 "train stray operand" -- "$bin" gpt2 train extra
expect 2 "sample --tokens=x" -- "$bin" gpt2 sample --model=x --tokens=x
expect 2 "study --preset=huge" -- "$bin" gpt2 study --preset=huge
expect 2 "prepare --corpus=nope" -- "$bin" gpt2 prepare --corpus=nope --data "$tmp/none"
if [ -f tests/data/gpt2_vocab.bpe ]; then
    expect 0 "encode --vocab=FILE TEXT" -- "$bin" gpt2 encode --vocab=tests/data/gpt2_vocab.bpe "Hello"
    contains "$tmp/out" "15496" "encode reads --vocab=FILE"
fi

cli_report cli_gpt2
