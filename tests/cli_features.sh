#!/usr/bin/env bash
# cli_features.sh DESCENT - maximize, decoupled_weight_decay, layer_decay and
# the ema / lookahead wrappers against torch 1.13 (tests/torch_features.py,
# through libdescent.so beside the command), and their spec errors.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"
lib="$(dirname "$bin")/libdescent.so"
py=/usr/bin/python3

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
