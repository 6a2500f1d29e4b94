#!/usr/bin/env bash
# descent-man.sh DESCENT OUT.1 - the man page, made by help2man from the
# command's own help texts, so it cannot say something `descent --help` does
# not: NAME and SYNOPSIS from `descent --help`, the version from `descent
# --version`, and a COMMANDS section with `descent help CMD` for every
# command listed by `descent --help`. Run by the build (CMakeLists.txt).
set -euo pipefail
bin=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The commands are the indented words under "commands:" in the overview.
cmds=$("$bin" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && $1 != "commands:" {print $1}')
[ -n "$cmds" ] || { echo "descent-man: no commands in \`$bin --help\`" >&2; exit 1; }
{
    echo "[COMMANDS]"
    for c in $cmds; do
        echo ".SS $c"
        echo ".nf"
        # roff: a backslash is \e; a line may not start with . or '.
        "$bin" help "$c" | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
        echo ".fi"
    done
    cat <<'ROFF'
[ENVIRONMENT]
.TP
.B OMP_NUM_THREADS
threads for the optimizer kernels; results are the same for any count.
.TP
.B DESCENT_KERNELS
.B ref
runs the plain reference loops,
.B portable
turns off the AVX-512 path for 8-bit states and the AVX512-BF16 kernel
of the bf16 Newton-Schulz.
.TP
.B DESCENT_DATADIR
the folder that holds the installed data (digits/, gpt2/, golden/);
by default the share/descent folder of this install.
.TP
.B DESCENT_DATA
the data folder of `descent gpt2' (default ./data).
[FILES]
.TP
.I PREFIX/share/descent
the digits set, the GPT-2 vocabulary and the golden files, with their licences.
.TP
.I PREFIX/share/doc/descent
README, LICENSE, NOTICE, CHANGELOG and the documents (optimizers, matrix
methods, data, provenance of the golden files).
ROFF
} >"$tmp/include"
# `descent --version` also names the build (BLAS, threads), which is no part
# of the version: give help2man the number alone.
version=$("$bin" --version | awk 'NR == 1 {print $2}')
help2man --no-info --no-discard-stderr --section 1 --source "descent $version" \
    --version-string "$version" \
    --name "optimizers for neural-network training, and a lab to compare them" \
    --include "$tmp/include" --output "$tmp/descent.1" "$bin"
mv "$tmp/descent.1" "$out"
