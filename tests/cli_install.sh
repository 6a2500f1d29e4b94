#!/usr/bin/env bash
# cli_install.sh DESCENT - `cmake --install` into a temporary prefix, then:
#  1. build examples/quickstart.c against it with the README's own pkg-config
#     line (read from README.md, so the two cannot drift), statically with
#     `pkg-config --static`, and with CMake's find_package; run all three;
#  2. run every `descent` command of the installed copy from a folder outside
#     the repository, so each must find its data in PREFIX/share/descent
#     (inputs the commands would download or that are not shipped are made
#     here: small token files, a synthetic Fashion-MNIST); every command
#     `descent --help` lists must run, and every `gpt2` subcommand, except
#     the ones named in `download_only` below, whose help and bad input run;
#  3. check what else is installed: man page, bash completion, licences.
set -u
bin_built=$1
build=$(dirname "$bin_built")
if grep -q '^DESCENT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "cli_install: skipped in a sanitizer build (plain compilers cannot link it)"
    exit 0
fi
repo=$PWD
. "$repo/tests/lib/cli_check.sh"
prefix=$tmp/prefix
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "cli_install: cmake --install failed"
    exit 1
fi
libdir=$(ls -d "$prefix"/lib*/ | head -1)
libdir=${libdir%/}
export PKG_CONFIG_PATH="$libdir/pkgconfig"
bin=$prefix/bin/descent

# `make install PREFIX=DIR` hands DIR to CMake (dry run: nothing is built).
expect 0 "make install PREFIX= (dry run)" -- make -n -C "$repo" install BUILD="$build" \
    PREFIX="$tmp/elsewhere"
contains "$tmp/out" "cmake --install .* --prefix \"$tmp/elsewhere\"" "make install passes PREFIX"

# ------------------------------------------------------- 1. link the example
# The README says: `cc app.c $(pkg-config --cflags --libs descent)`.
line=$(grep -o 'cc app\.c \$(pkg-config [^)]*)' README.md | head -1)
count=$((count + 1))
if [ -z "$line" ]; then
    fails=$((fails + 1)); echo "FAILED: README.md has no 'cc app.c \$(pkg-config ...)' line"
fi
pcflags=$(echo "$line" | sed 's/^cc app\.c \$(pkg-config \(.*\))$/\1/')
expect 0 "the README's pkg-config line links quickstart.c" -- \
    cc -std=c11 -Wall -Wextra -Werror -o "$tmp/qs" examples/quickstart.c $(pkg-config $pcflags)
expect 0 "quickstart (shared)" -- env -C "$tmp" LD_LIBRARY_PATH="$libdir" ./qs
contains "$tmp/out" "final loss" "quickstart prints its loss"
# Static: Libs.private must bring what libdescent.a needs (libm, OpenMP).
expect 0 "pkg-config --static links quickstart.c" -- \
    cc -std=c11 -o "$tmp/qs_static" examples/quickstart.c \
    $(pkg-config --static --cflags --libs descent | sed 's/-ldescent\b/-l:libdescent.a/')
expect 0 "quickstart (static)" -- env -C "$tmp" ./qs_static
mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(quick C)
find_package(descent REQUIRED)
add_executable(qs $repo/examples/quickstart.c)
target_link_libraries(qs descent::descent)
CM
expect 0 "find_package(descent) configures" -- \
    cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix"
expect 0 "find_package(descent) builds" -- cmake --build "$tmp/proj/build"
expect 0 "quickstart (CMake)" -- env -C "$tmp" LD_LIBRARY_PATH="$libdir" ./proj/build/qs

# ------------------------------------ 2. every command, outside the repository
out=$tmp/run
mkdir "$out"
cp tests/data/gpt2_ref_tokens.bin "$tmp/tokens.bin"
cd "$out" || exit 1
run() { expect "$@"; }
run 0 "--version" -- "$bin" --version
contains "$tmp/out" "^descent $(sed -n 's/^project(descent VERSION \([0-9.]*\).*/\1/p' \
    "$repo/CMakeLists.txt") " "--version prints CMake's project version"
run 0 "version" -- "$bin" version
contains "$tmp/out" "^data: $(cd "$prefix/share/descent" && pwd -P)\$" \
    "the installed command reads PREFIX/share/descent"
run 0 "--help" -- "$bin" --help
# Every command `descent --help` lists explains itself; the ones this script
# does not run below are named at the end.
commands=$("$bin" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && $1 != "commands:" {print $1}')
ran=" list replay convert polar stability theory gpt2 demo classify bench version help "
for c in $commands; do
    run 0 "help $c" -- "$bin" help "$c"
    contains "$tmp/out" "usage: descent" "help $c prints a usage line"
done
run 0 "list" -- "$bin" list
run 0 "list adam --memory" -- "$bin" list --memory adam
contains "$tmp/out" "bytes per parameter" "list --memory"
run 0 "list --markdown" -- "$bin" list --markdown
# Every installed golden file replays, by path and by bare name.
golden=$(ls "$prefix"/share/descent/golden/*.golden | wc -l)
count=$((count + 1))
if [ "$golden" != "$(ls "$repo"/tests/golden/*.golden | wc -l)" ]; then
    fails=$((fails + 1)); echo "FAILED: $golden golden files installed"
fi
run 0 "replay every installed golden file" -- "$bin" replay "$prefix"/share/descent/golden/*.golden
run 0 "replay a bare name finds the installed file" -- "$bin" replay adam_default_3x5.golden
contains "$tmp/out" "^PASS adam_default_3x5" "bare-name replay passes"
run 0 "polar --steps=3" -- "$bin" polar --steps=3 --draws 2 4x6
run 0 "stability (digits from share/descent)" -- "$bin" stability --steps=10 --seeds 1 \
    --spike-every 5 --out "$out/stab"
count=$((count + 1))
[ -f "$out/stab/report.md" ] || { fails=$((fails + 1)); echo "FAILED: stability wrote no report"; }
run 0 "theory noise-density" -- "$bin" theory noise-density --out "$out/theory"
run 0 "gpt2 encode (vocabulary from share/descent)" -- "$bin" gpt2 encode "Hello world"
contains "$tmp/out" "^15496 995\$" "gpt2 encode gives GPT-2's ids"
tiny=(--train "$tmp/tokens.bin" --val "$tmp/tokens.bin" --vocab-size 64 --layers 1
      --channels 16 --heads 2 --max-seq-len 8 -B 1 -T 8 --eval-every 2 --eval-batches 1
      --no-plot --quiet)
run 0 "gpt2 train" -- "$bin" gpt2 train "${tiny[@]}" --steps 2 --out "$out/gpt2"
run 0 "gpt2 sample (vocabulary from share/descent)" -- "$bin" gpt2 sample --model "$out/gpt2" \
    --tokens 3
run 0 "gpt2 bench" -- "$bin" gpt2 bench --layers 1 --channels 32 --heads 2 -B 1 -T 8 \
    --steps 1 --threads 1
# llm.c token files (header: magic, version, count; then uint16 ids) of
# 600 tokens alternating two GPT-2 ids: what `gpt2 prepare` would download,
# enough for one batch of the demo's B=8, T=64.
tokens600() {
    { printf '\x88\xd8\x34\x01\x01\x00\x00\x00\x58\x02\x00\x00'; head -c 1012 /dev/zero
      for _ in $(seq 300); do printf '\x07\x00\x08\x00'; done; } >"$1"
}
mkdir -p "$tmp/data/moby-dick" "$tmp/data/sotu"
for f in moby-dick/train moby-dick/val sotu/train sotu/val; do tokens600 "$tmp/data/$f.bin"; done
run 0 "gpt2 compare" -- "$bin" gpt2 compare "${tiny[@]}" --optimizers sgd --grid sgd=0.1 \
    --steps 2 --phi 0 --out "$out/compare"
run 0 "gpt2 study (tiny, vocabulary from share/descent)" -- "$bin" gpt2 study --preset tiny \
    --data "$tmp/data" --methods sgd --seeds 1 --steps 2 --tune-steps 2 --max-tune-runs 3 \
    --out "$out/study" --quiet
contains "$tmp/out" "study done" "gpt2 study finishes"
# The demo on the small token files: one optimizer, one update per run.
run 0 "demo" -- "$bin" demo --data "$tmp/data" --steps 1 --optimizers sgd --threads 2 --quiet \
    --out "$out/demo"
count=$((count + 1))
[ -f "$out/demo/summary.md" ] || { fails=$((fails + 1)); echo "FAILED: demo wrote no summary"; }
# Fashion-MNIST's four IDX files (magic, counts, 28 x 28 images), made up:
# more training images than the 5000 held out for validation, labels 0.
be32() { printf "$(printf '\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) \
    $(($1 & 255)))"; }
idx() { # idx FILE TYPE COUNT BYTES_PER_ITEM (type 1: labels, 3: images)
    { printf '\x00\x00\x08'; printf "$(printf '\\x%02x' "$2")"; be32 "$3"
      [ "$4" = 1 ] || { be32 28; be32 28; }
      head -c $(($3 * $4)) /dev/zero | tr '\0' '\7'; } | gzip -1 >"$1"
}
mkdir "$tmp/fashion"
idx "$tmp/fashion/train-images-idx3-ubyte.gz" 3 5100 784
idx "$tmp/fashion/train-labels-idx1-ubyte.gz" 1 5100 1
idx "$tmp/fashion/t10k-images-idx3-ubyte.gz" 3 100 784
idx "$tmp/fashion/t10k-labels-idx1-ubyte.gz" 1 100 1
run 0 "classify study (tiny)" -- "$bin" classify study --data "$tmp/fashion" --preset tiny \
    --methods sgd --seeds 1 --steps 2 --tune-steps 2 --max-tune-runs 3 --out "$out/classify" \
    --quiet
count=$((count + 1))
[ -f "$out/classify/summary.md" ] ||
    { fails=$((fails + 1)); echo "FAILED: classify wrote no summary"; }
# convert: torch's AdamW state (the fuzz corpus's seed, less its first
# byte, which only steers the fuzzer) to a descent checkpoint and back.
tail -c +2 "$repo/tests/fuzz/corpus/tensorfile/torch_adamw_safetensors" >"$tmp/torch.safetensors"
mkdir "$out/convert"
run 0 "convert torch -> descent" -- "$bin" convert "$tmp/torch.safetensors" \
    "$out/convert/descent.safetensors"
run 0 "convert descent -> torch (.npz)" -- "$bin" convert "$out/convert/descent.safetensors" \
    "$out/convert/torch.npz"
# bench: the shortest measurement (one family, 1M parameters).
run 0 "bench elementwise --quick --only sgd" -- "$bin" bench elementwise --quick --only sgd
contains "$tmp/out" "triad" "bench measures the bandwidth"
run 2 "bench without a benchmark" -- "$bin" bench
run 2 "bench elementwise bad option" -- "$bin" bench elementwise --frob
# gpt2 prepare downloads the corpora with npm: its help and a bad flag only.
download_only=" prepare "
run 0 "gpt2 prepare --help" -- "$bin" gpt2 prepare --help
run 2 "gpt2 prepare bad flag" -- "$bin" gpt2 prepare --frob
gpt2_ran=" encode train sample bench compare study "
# descent-mpi (built when MPI is found) is the same command inside an MPI job.
if [ -x "$prefix/bin/descent-mpi" ] && command -v mpirun >/dev/null; then
    mpi=(mpirun --oversubscribe -np 1)
    [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
    run 0 "descent-mpi version (mpirun -np 1)" -- env OMPI_MCA_btl=self,vader \
        OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm_rsh_agent= \
        timeout 120 "${mpi[@]}" "$prefix/bin/descent-mpi" version
    contains "$tmp/out" "^data: $(cd "$prefix/share/descent" && pwd -P)\$" \
        "the installed descent-mpi reads PREFIX/share/descent"
else
    echo "cli_install: descent-mpi not built or mpirun missing, not run"
fi
count=$((count + 1))
if ls "$out" | grep -qv -e '^stab$' -e '^theory$' -e '^gpt2$' -e '^compare$' -e '^study$' \
        -e '^demo$' -e '^classify$' -e '^convert$'; then
    fails=$((fails + 1)); echo "FAILED: commands left stray files: $(ls "$out")"
fi
cd "$repo" || exit 1

# --------------------------------------------------- 3. the rest of the install
share=$prefix/share
for f in descent/digits/digits.csv.gz descent/digits/LICENSE descent/gpt2/vocab.bpe \
         descent/gpt2/vocab.bpe.LICENSE doc/descent/LICENSE doc/descent/NOTICE \
         doc/descent/CHANGELOG.md doc/descent/optimizers.md; do
    count=$((count + 1))
    [ -f "$share/$f" ] || { fails=$((fails + 1)); echo "FAILED: not installed: share/$f"; }
done
if command -v help2man >/dev/null; then
    count=$((count + 1))
    if [ -f "$share/man/man1/descent.1" ]; then
        grep -q "^\.TH DESCENT .*descent $(sed -n "s/^project(descent VERSION \\([0-9.]*\\).*/\\1/p" CMakeLists.txt)" "$share/man/man1/descent.1" ||
            { fails=$((fails + 1)); echo "FAILED: descent.1 has no .TH header"; }
    else
        fails=$((fails + 1)); echo "FAILED: man page not installed"
    fi
else
    echo "cli_install: help2man not found, man page not checked (CI installs it)"
fi
comp=$share/bash-completion/completions/descent
expect 0 "bash completion parses" -- bash -n "$comp"
# Complete "descent st" and "descent list ad" as bash would.
complete_words() { # complete_words WORD... : prints COMPREPLY, one per line
    PATH="$prefix/bin:$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
             COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _descent descent; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$comp" "$@"
}
expect 0 "complete a command" -- complete_words descent st
contains "$tmp/out" "^stability\$" "completion offers stability for st"
expect 0 "complete an optimizer" -- complete_words descent list ad
contains "$tmp/out" "^adamw\$" "completion offers adamw after list"

# Every command and every gpt2 subcommand ran (or is download-only).
not_run=""
for c in $commands; do [[ $ran == *" $c "* ]] || not_run="$not_run $c"; done
subs=$("$bin" help gpt2 | sed -n '/^subcommands:/,/^`/p' | awk '/^  [a-z]/ {print $1}')
for c in $subs; do
    [[ $gpt2_ran == *" $c "* ]] || [[ $download_only == *" $c "* ]] || not_run="$not_run gpt2-$c"
done
count=$((count + 1))
if [ -n "$not_run" ] || [ -z "$subs" ]; then
    fails=$((fails + 1))
    echo "FAILED: not run from the install:${not_run:- (no gpt2 subcommands found)}"
fi
cli_report cli_install
