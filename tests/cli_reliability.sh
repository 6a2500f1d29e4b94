#!/usr/bin/env bash
# cli_reliability.sh DESCENT - issue 17's command-level reproducers: clear
# messages for empty paths, directories and special files; a 1 KB model
# header asking for gigabytes; overflowing golden dimensions; a NaN weight;
# a diverging run exits non-zero and leaves `latest` on the last good
# checkpoint; stale temporary files of dead writers are removed; --keep.
# Then kill -9 during checkpoint writes: a tiny trainer killed at several
# moments, resumed each time, must end bit for bit where an uninterrupted
# run ends.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

tok=tests/data/gpt2_ref_tokens.bin
tiny=(--train "$tok" --val "$tok" --vocab-size 64 --layers 1 --channels 16 --heads 2
      --max-seq-len 8 -B 1 -T 8 --eval-every 2 --eval-batches 1 --no-plot --quiet --phi 0
      --threads 1)
mkdir -p "$tmp/dir"

# ------------------------------------------------ paths: empty, folders, devices
expect 1 "--out empty" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --out ""
contains "$tmp/err" "folder name is empty" "--out \"\" says the name is empty"
if grep -q "Success" "$tmp/err"; then fails=$((fails + 1)); echo "FAILED: --out \"\" printed Success"; fi
expect 1 "--train on a folder" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --train "$tmp/dir"
contains "$tmp/err" "is a directory" "--train on a folder says so"
expect 1 "--train /dev/null" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --train /dev/null
contains "$tmp/err" "is a device" "--train /dev/null says it is a device"
expect 1 "--train empty" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --train ""
contains "$tmp/err" "empty" "--train \"\" says the name is empty"
expect 1 "--val on a folder" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --val "$tmp/dir"
contains "$tmp/err" "is a directory" "--val on a folder says so"
expect 1 "--init on a folder" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --init "$tmp/dir"
contains "$tmp/err" "is a directory" "--init on a folder says so"
expect 1 "--init /dev/null" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --init /dev/null
contains "$tmp/err" "is a device" "--init /dev/null says it is a device"
expect 2 "replay a folder" -- "$bin" replay "$tmp/dir"
contains "$tmp/err" "is a directory" "replay on a folder says so"
expect 2 "replay /dev/null" -- "$bin" replay /dev/null
contains "$tmp/err" "is a device" "replay /dev/null says it is a device"
touch "$tmp/file"
expect 1 "--out on a file" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --out "$tmp/file"
contains "$tmp/err" "not a folder" "--out on a file says so"

# ------------------------------------------------- strict specs on the command line
expect 1 "--optimizer adamw:lr=0x10" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --optimizer adamw:lr=0x10
contains "$tmp/err" "hex floats" "a hex float is refused"
expect 1 "--optimizer with a duplicate key" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 \
    --optimizer adamw:lr=1e-3,lr=2e-3
contains "$tmp/err" "duplicate key" "a duplicate key is refused"
expect 1 "--schedule warmup=1e30" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 \
    --schedule cosine:warmup=1e30,total=10
contains "$tmp/err" "warmup = 1e+30 is out of range" "warmup=1e30 names the key and range"
expect 1 "--schedule total=1e19" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --schedule cosine:total=1e19
contains "$tmp/err" "total = 1e+19 is out of range" "total=1e19 names the key and range"
expect 1 "--schedule warmup=1.5" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 \
    --schedule cosine:warmup=1.5,total=10
contains "$tmp/err" "warmup is an integer" "a fractional step count is refused"

# ---------------------------------------- a model header asking for gigabytes
# 1024-byte header of an llm.c GPT-2 checkpoint (magic 20240326, version 3):
# 48 layers, 1600 channels, 25 heads, 1024 positions, vocabulary 50257/50304,
# that is 1.56e9 parameters (6.2 GB for weights and gradients), and no data.
python3 - "$tmp/huge.bin" <<'EOF'
import struct, sys
h = [20240326, 3, 1024, 50257, 48, 25, 1600, 50304] + [0] * 248
open(sys.argv[1], "wb").write(struct.pack("<256i", *h))
EOF
expect 1 "1 KB header asking for 6 GB" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --init "$tmp/huge.bin"
contains "$tmp/err" "the file has 1024 bytes" "the size is checked before allocating"

# ------------------------------------------------------- a NaN weight in a model
"$bin" gpt2 train "${tiny[@]}" --steps 1 --out "$tmp/base" >/dev/null 2>&1
python3 - "$tmp/base/ckpt_00000001/model.bin" "$tmp/nan.bin" "$tmp/big.bin" <<'EOF'
import array, sys
d = open(sys.argv[1], "rb").read()
a = array.array("f"); a.frombytes(d[1024:])
n = array.array("f", a); n[100] = float("nan")
open(sys.argv[2], "wb").write(d[:1024] + n.tobytes())
# finite weights so large that the first forward pass overflows to NaN
b = array.array("f", [x * 1e37 if abs(x * 1e37) < 3e38 else x for x in a])
open(sys.argv[3], "wb").write(d[:1024] + b.tobytes())
EOF
expect 1 "one NaN weight" -- "$bin" gpt2 train "${tiny[@]}" --steps 1 --init "$tmp/nan.bin"
contains "$tmp/err" "parameter 100 is NaN" "a NaN weight is refused at load"

# ------------------------------------------ a diverging run fails loudly
"$bin" gpt2 train "${tiny[@]}" --steps 2 --ckpt-every 1 --out "$tmp/div" >/dev/null 2>&1
contains "$tmp/div/latest" "ckpt_00000002" "a good run's latest"
expect 3 "non-finite loss ends the run with status 3" -- "$bin" gpt2 train "${tiny[@]}" \
    --steps 4 --ckpt-every 1 --init "$tmp/big.bin" --out "$tmp/div"
contains "$tmp/err" "non-finite at step 1" "the message names the step"
contains "$tmp/div/latest" "ckpt_00000002" "latest still names the last good checkpoint"
[ -d "$tmp/div/ckpt_00000001" ] && [ ! -f "$tmp/div/ckpt_00000001/trainer.txt" ] &&
    { fails=$((fails + 1)); echo "FAILED: a checkpoint was started after the divergence"; }
expect 0 "--continue-on-nonfinite keeps going" -- "$bin" gpt2 train "${tiny[@]}" --steps 3 \
    --init "$tmp/big.bin" --continue-on-nonfinite
contains "$tmp/err" "continued" "the divergence is still reported"
contains "$tmp/out" "steps 3" "and the run went to the end"

# ------------------------------------------------- golden dimensions that wrap
cat >"$tmp/wrap.golden" <<'EOF'
golden 1
name wrap
optimizer sgd
hyper lr 0.1
tolerance 1e-6
param W 3 67108864 67108864 4096
init W 1
step 1
grad W 1
expect W 1
end
EOF
expect 2 "2^26 x 2^26 x 2^12 golden dims" -- "$bin" replay "$tmp/wrap.golden"
contains "$tmp/err" "more than 268435456 elements" "the product is overflow-checked"

# ------------------------------------ stale temporary files and retention
mkdir -p "$tmp/st/ckpt_00000002"
sh -c 'exit 0' & dead=$!; wait $dead          # a pid that no longer runs
for f in "$tmp/st/latest.tmp.$dead" "$tmp/st/metrics.csv.tmp.$dead" \
         "$tmp/st/ckpt_00000002/model.bin.tmp.$dead" "$tmp/st/ckpt_00000002/optimizer.safetensors.tmp.$dead"; do
    echo junk >"$f"
done
echo live >"$tmp/st/latest.tmp.$$"            # this shell runs: not stale
expect 0 "train into a folder with stale temporary files" -- "$bin" gpt2 train "${tiny[@]}" \
    --steps 4 --ckpt-every 1 --out "$tmp/st"
left=$(find "$tmp/st" -name "*.tmp.$dead" | wc -l)
count=$((count + 1)); [ "$left" = 0 ] || { fails=$((fails + 1)); echo "FAILED: $left stale temporary files left"; }
count=$((count + 1)); [ -f "$tmp/st/latest.tmp.$$" ] || { fails=$((fails + 1)); echo "FAILED: a live writer's file was removed"; }
n=$(ls -d "$tmp/st"/ckpt_* | wc -l)
count=$((count + 1)); [ "$n" = 3 ] || { fails=$((fails + 1)); echo "FAILED: default retention kept $n checkpoints, expected 3"; }
expect 0 "--keep 1" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 --ckpt-every 1 --keep 1 --out "$tmp/k1"
n=$(ls -d "$tmp/k1"/ckpt_* | wc -l)
count=$((count + 1)); [ "$n" = 1 ] && [ -f "$tmp/k1/ckpt_00000004/trainer.txt" ] ||
    { fails=$((fails + 1)); echo "FAILED: --keep 1 kept $n checkpoints"; }
expect 0 "--keep 0 keeps all" -- "$bin" gpt2 train "${tiny[@]}" --steps 4 --ckpt-every 1 --keep 0 --out "$tmp/k0"
n=$(ls -d "$tmp/k0"/ckpt_* | wc -l)
count=$((count + 1)); [ "$n" = 4 ] || { fails=$((fails + 1)); echo "FAILED: --keep 0 kept $n checkpoints"; }
expect 0 "resume from the kept checkpoint" -- "$bin" gpt2 train "${tiny[@]}" --steps 6 \
    --ckpt-every 1 --keep 1 --resume "$tmp/k1" --out "$tmp/k1"
contains "$tmp/k1/latest" "ckpt_00000006" "resumed to step 6"

# --------------------------------------------- kill -9 during checkpoint writes
# A model big enough that saving a checkpoint (fsync included) takes most of
# each step's time, a checkpoint after every update: kills at spread-out
# moments land inside the writes of the model, the optimizer state,
# trainer.txt and latest.
kr=(--train "$tok" --val "$tok" --vocab-size 64 --layers 2 --channels 128 --heads 2
    --max-seq-len 8 -B 1 -T 8 --eval-every 0 --eval-batches 1 --no-plot --quiet --phi 0
    --threads 1 --ckpt-every 1 --keep 2 --steps 40)
"$bin" gpt2 train "${kr[@]}" --out "$tmp/ref" >/dev/null 2>&1
kills=0 midwrite=0
for delay in 0.12 0.3 0.2 0.4 0.25 0.15 0.35 0.22; do
    resume=()
    [ -f "$tmp/kill/latest" ] && resume=(--resume "$tmp/kill")
    "$bin" gpt2 train "${kr[@]}" "${resume[@]}" --out "$tmp/kill" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null
    # evidence that kills land inside writes: the temporary files they leave
    midwrite=$((midwrite + $(find "$tmp/kill" -name '*.tmp.*' 2>/dev/null | wc -l)))
done
resume=()
[ -f "$tmp/kill/latest" ] && resume=(--resume "$tmp/kill")
expect 0 "the killed run finishes after $kills kills" -- "$bin" gpt2 train "${kr[@]}" \
    "${resume[@]}" --out "$tmp/kill"
for f in model.bin optimizer.safetensors; do
    count=$((count + 1))
    cmp -s "$tmp/ref/ckpt_00000040/$f" "$tmp/kill/ckpt_00000040/$f" ||
        { fails=$((fails + 1)); echo "FAILED: $f after kill -9 and resume differs from the uninterrupted run"; }
done
left=$(find "$tmp/kill" -name '*.tmp.*' | wc -l)
count=$((count + 1)); [ "$left" = 0 ] || { fails=$((fails + 1)); echo "FAILED: $left temporary files left after the kills"; }
echo "kill -9: $kills kills, $midwrite temporary files seen right after them (kills inside writes)"

cli_report cli_reliability
