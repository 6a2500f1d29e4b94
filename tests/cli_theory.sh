#!/usr/bin/env bash
# cli_theory.sh DESCENT - `descent theory`: options, bad input, and the files one
# quick experiment writes (its JSON with computed verdicts, its section, --resume).
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

expect 0 "theory list" -- "$bin" theory list
contains "$tmp/out" "scaling" "list names scaling"
expect 0 "theory --help" -- "$bin" theory --help
contains "$tmp/out" "--large" "help documents --large"
expect 2 "theory without an experiment" -- "$bin" theory
expect 2 "unknown experiment" -- "$bin" theory nosuch
contains "$tmp/err" "nosuch" "the unknown experiment is named"
expect 2 "--full was renamed" -- "$bin" theory --full all
contains "$tmp/err" "--large" "the message names the new option"
expect 2 "bad seed" -- "$bin" theory --seed 12x all
expect 2 "negative seed" -- "$bin" theory --seed -3 all
expect 2 "--out without a value" -- "$bin" theory all --out
expect 2 "bad plots kind" -- "$bin" theory --plots gif all
expect 2 "unknown option" -- "$bin" theory --bogus all

out="$tmp/th"
expect 0 "noise-density --quick" -- "$bin" theory --quick --plots none --out "$out" noise-density
contains "$out/noise-density.json" '"experiment": "noise-density"' "the JSON names the experiment"
contains "$out/noise-density.json" '"verdict": "supported"' "the JSON holds computed verdicts"
contains "$out/noise-density.json" '"edge_hits": 0' "the JSON counts edge hits"
contains "$out/noise-density.section.md" "### Verdicts" "the section ends with verdicts"
# --resume reuses the finished section instead of running again
expect 0 "noise-density --resume" -- "$bin" theory --quick --resume --plots none --out "$out" noise-density
contains "$tmp/out" "reusing the finished section" "--resume reuses the section"
# a different seed does not reuse it
expect 0 "noise-density --resume, other seed" -- "$bin" theory --quick --resume --seed 7 --plots none --out "$out" noise-density
if grep -q "reusing" "$tmp/out"; then fails=$((fails + 1)); echo "FAILED: another seed reused the cache"; fi
count=$((count + 1))

cli_report cli_theory
