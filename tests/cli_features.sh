#!/usr/bin/env bash
# cli_features.sh DESCENT - maximize, decoupled_weight_decay, layer_decay and
# the ema / lookahead wrappers against torch 1.13 (tests/torch_features.py,
# through libdescent.so beside the command), and their spec errors.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"
lib="$(dirname "$bin")/libdescent.so"
py=/usr/bin/python3

# descent list: shell patterns, wrappers and the keys any optimizer accepts.
expect 0 "list 'adam*'" -- "$bin" list 'adam*'
contains "$tmp/out" "^adamw  -" "adam* lists adamw"
contains "$tmp/out" "^adam8bit  -" "adam* lists adam8bit"
if grep -q "^lion  -" "$tmp/out"; then fails=$((fails + 1)); echo "FAILED: adam* lists lion"; fi
expect 0 "list '*8bit' '[s]gd'" -- "$bin" list '*8bit' '[s]gd'
contains "$tmp/out" "^lion8bit  -" "*8bit lists lion8bit"
contains "$tmp/out" "decoupled_weight_decay" "sgd lists decoupled_weight_decay"
expect 0 "list ema lookahead any" -- "$bin" list ema lookahead any
contains "$tmp/out" "warmup_power" "ema keys listed"
contains "$tmp/out" "alpha" "lookahead keys listed"
contains "$tmp/out" "layer_decay" "layer_decay listed"
contains "$tmp/out" "maximize" "maximize listed"
contains "$tmp/out" "^  coordinate_clip  .*\[0, 1\]" "coordinate_clip listed with its range"
contains "$tmp/out" "^  coordinate_clip_scale .*1e+30" "coordinate_clip_scale listed with its range"
expect 0 "list an[y] (a pattern)" -- "$bin" list 'an[y]'
contains "$tmp/out" "coordinate_clip_scale" "the pattern shows the group keys"
expect 2 "list a pattern matching nothing" -- "$bin" list 'zz*'
contains "$tmp/err" "zz\*" "the pattern is named"
expect 0 "full list has the wrappers" -- "$bin" list
contains "$tmp/out" "^lookahead  -" "full list has lookahead"

if [ ! -f "$lib" ]; then
    echo "SKIP torch checks: no shared library at $lib"
elif ldd "$lib" 2>/dev/null | grep -q 'libasan\|libubsan'; then
    echo "SKIP torch checks: sanitizer build (Python cannot load an ASan library); the" \
         "regular build runs them"
elif ! "$py" -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP torch checks: $py has no torch/numpy (scripts/install-deps.sh --ci installs" \
         "python3-torch python3-numpy)"
else
    count=$((count + 1))
    if ! OMP_NUM_THREADS=2 "$py" tests/torch_features.py "$lib" >"$tmp/out" 2>&1; then
        fails=$((fails + 1))
        echo "FAILED: torch_features.py"
    fi
    cat "$tmp/out"
fi
cli_report cli_features
