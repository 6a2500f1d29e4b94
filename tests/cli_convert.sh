#!/usr/bin/env bash
# cli_convert.sh DESCENT - `descent convert` from the command line: help,
# usage errors and inputs that are not optimizer state. The conversions
# themselves are checked against torch in tests/python/test_convert_torch.py,
# the readers in tests/test_tensorfile.c.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

expect 0 "help convert" -- "$bin" help convert
contains "$tmp/out" "state_dict" "help convert explains the direction"
expect 0 "--help lists convert" -- "$bin" --help
contains "$tmp/out" "^  convert" "convert is a command"
expect 0 "list adamw" -- "$bin" list adamw
contains "$tmp/out" "torch.optim.AdamW (descent convert)" "list names the torch twin"

expect 2 "no operands" -- "$bin" convert
expect 2 "one operand" -- "$bin" convert "$tmp/a"
expect 2 "three operands" -- "$bin" convert a b c
expect 2 "unknown option" -- "$bin" convert --bogus a b
expect 2 "missing input" -- "$bin" convert "$tmp/none.npz" "$tmp/out.safetensors"
contains "$tmp/err" "none.npz" "the missing file is named"
printf 'not a tensor file at all' >"$tmp/junk"
expect 2 "not a tensor file" -- "$bin" convert "$tmp/junk" "$tmp/out.safetensors"
contains "$tmp/err" "header length" "the reason is given"
printf 'PK\003\004 truncated zip' >"$tmp/junk.npz"
expect 2 "a broken zip" -- "$bin" convert "$tmp/junk.npz" "$tmp/out.safetensors"
contains "$tmp/err" "not a zip archive" "a broken zip is named as such"
expect 2 "a directory" -- "$bin" convert "$tmp" "$tmp/out.safetensors"
expect 2 "bad --format" -- "$bin" convert --format csv "$tmp/junk" "$tmp/out"
contains "$tmp/err" "safetensors or npz" "--format's values are listed"

# A safetensors file with no metadata: torch's side, but no param_groups.
# A safetensors file with no metadata (one step scalar): torch's side, but
# the optimizer and param_groups are missing.
header='{"state.0.step":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'
len=${#header}
pad=$(( (8 - len % 8) % 8 ))
header="$header$(printf '%*s' "$pad" '')"
len=${#header}
{ printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))\\x00\\x00\\x00\\x00\\x00\\x00"
  printf '%s' "$header"; printf '\x00\x00\x80\x3f'; } >"$tmp/nometa.safetensors"
expect 2 "no optimizer named" -- "$bin" convert "$tmp/nometa.safetensors" "$tmp/o.safetensors"
contains "$tmp/err" "--optimizer" "asks for --optimizer"
expect 2 "no param_groups" -- "$bin" convert --optimizer adamw "$tmp/nometa.safetensors" \
    "$tmp/o.safetensors"
contains "$tmp/err" "param_groups" "asks for param_groups"
expect 2 "torch-only class" -- "$bin" convert --optimizer rmsprop "$tmp/nometa.safetensors" \
    "$tmp/o.safetensors"
contains "$tmp/err" "square_avg" "says what RMSprop keeps"
count=$((count + 1))
[ ! -e "$tmp/o.safetensors" ] || { fails=$((fails + 1)); echo "FAILED: output written on error"; }
cli_report cli_convert
