#!/usr/bin/env bash
# install_check.sh BUILD PYTHON - `cmake --install` into a temporary prefix,
# then import the installed package with the prefix's python directory on
# PYTHONPATH only (no DESCENT_LIBRARY): it must load the library installed
# beside it, run a step, and still work after the prefix is moved.
set -eu
build=$1 py=$2
if grep -q '^DESCENT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "python_install: skipped in a sanitizer build"
    exit 77
fi
if ! "$py" -c "import numpy" 2>/dev/null; then
    echo "python_install: skipped: $py has no numpy (Debian: python3-numpy)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pydir=$(grep '^DESCENT_PYTHON_DIR:' "$build/CMakeCache.txt" | cut -d= -f2-)
check() {
    (cd "$tmp" && env -u DESCENT_LIBRARY PYTHONPATH="$1/$pydir" "$py" -c "
import os, sys, numpy as np, descent
lib = os.path.realpath(descent.library_path)
assert lib.startswith(os.path.realpath(sys.argv[1])), lib
w = np.ones(4, np.float32); g = np.ones(4, np.float32)
o = descent.Optimizer(); o.add_group('g', 'sgd:lr=0.5'); o.add_param('w', w, g, group='g')
o.step(); assert np.all(w == 0.5), w
print('python_install: loaded', lib)
" "$1")
}
check "$tmp/prefix"
mv "$tmp/prefix" "$tmp/moved"
check "$tmp/moved"
echo "python_install: 2 passed, 0 failed"
