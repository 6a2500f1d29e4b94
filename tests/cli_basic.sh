#!/usr/bin/env bash
# cli_basic.sh DESCENT - the command's help, exit codes and bad input.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

expect 0 "--help" -- "$bin" --help
contains "$tmp/out" "replay" "--help lists replay"
contains "$tmp/out" "list" "--help lists list"
expect 2 "no command" -- "$bin"
expect 2 "unknown command" -- "$bin" frobnicate
contains "$tmp/err" "frobnicate" "unknown command is named"
expect 0 "help replay" -- "$bin" help replay
contains "$tmp/out" "max_err" "help replay explains the output"
expect 0 "replay --help" -- "$bin" replay --help
expect 2 "help for an unknown command" -- "$bin" help nope
expect 0 "list" -- "$bin" list
contains "$tmp/out" "sgd" "list shows sgd"
contains "$tmp/out" "momentum" "list shows keys"
expect 0 "list --memory" -- "$bin" list --memory sgd
contains "$tmp/out" "bytes per parameter" "list --memory prints state size"
expect 2 "list unknown optimizer" -- "$bin" list nosuch
expect 2 "replay without files" -- "$bin" replay
expect 2 "replay missing file" -- "$bin" replay "$tmp/none.golden"
contains "$tmp/err" "none.golden" "missing file is named"
expect 2 "replay bad option" -- "$bin" replay --bogus x

# A real golden file passes; damaged copies are reported, never crash.
golden=tests/golden/sgd_plain_3x5.golden
expect 0 "replay a golden file" -- "$bin" replay "$golden"
contains "$tmp/out" "^PASS sgd_plain_3x5 max_err=" "PASS line format"
head -c 2000 "$golden" >"$tmp/trunc.golden"
expect 2 "replay truncated golden" -- "$bin" replay "$tmp/trunc.golden"
contains "$tmp/err" "trunc.golden" "truncation names the file"
sed 's/^expect W \([-0-9.e]*\)/expect W 99.0/' "$golden" >"$tmp/wrong.golden"
expect 1 "replay a wrong expectation" -- "$bin" replay "$tmp/wrong.golden"
contains "$tmp/out" "^FAIL sgd_plain_3x5" "FAIL line"
sed 's/^optimizer sgd/optimizer warpdrive/' "$golden" >"$tmp/unsup.golden"
expect 1 "replay an unknown optimizer" -- "$bin" replay "$tmp/unsup.golden"
contains "$tmp/out" "^UNSUPPORTED sgd_plain_3x5 optimizer=warpdrive" "UNSUPPORTED line"
sed 's/^hyper lr .*/hyper lr nan/' "$golden" >"$tmp/nan.golden"
expect 1 "replay a NaN hyperparameter" -- "$bin" replay "$tmp/nan.golden"
contains "$tmp/err" "lr" "NaN hyperparameter named"

# Options through getopt_long (lab/opts.h): "--key=value" and
# "--key value", options after operands, clear errors for the rest.
expect 0 "polar --steps=3 --draws=2" -- "$bin" polar --steps=3 --draws=2 4x6
contains "$tmp/out" "ns5 with 3 steps" "--steps=3 is read"
expect 0 "polar, an option after the operand" -- "$bin" polar 4x6 --steps 2 --draws 1
contains "$tmp/out" "ns5 with 2 steps" "--steps after the shape is read"
expect 0 "polar --bf16" -- "$bin" polar --bf16 --draws 1 16x5
contains "$tmp/out" "bf16-input products" "--bf16 is read"
expect 2 "polar --steps=x" -- "$bin" polar --steps=x
contains "$tmp/err" "--steps needs an integer" "a bad value is named"
expect 2 "polar --steps without a value" -- "$bin" polar --steps
contains "$tmp/err" "needs a value" "a missing value is named"
expect 2 "list --memory=1 (takes no value)" -- "$bin" list --memory=1
contains "$tmp/err" "memory=1" "the bad option is named"
expect 2 "stability --nope" -- "$bin" stability --nope
contains "$tmp/err" "unknown option \"--nope\"" "an unknown option is named"
expect 2 "stability operand" -- "$bin" stability extra
expect 2 "stability --seeds=0" -- "$bin" stability --seeds=0
expect 0 "replay, --ref after the file" -- \
    "$bin" replay "$golden" --ref
expect 2 "version takes no arguments" -- "$bin" version extra

cli_report cli_basic
