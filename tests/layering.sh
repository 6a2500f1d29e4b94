#!/usr/bin/env bash
# layering.sh REPO [BUILD] - includes and calls point one way
# (docs/CONTRIBUTING.md, "Layers"):
#
#   util/ <- src/kernels/ <- src/core/ <- src/optimizers/ <- lab/ <- tools/,
#   bench/, examples/                       (each may use what is left of it)
#
#   1. a file under src/kernels includes nothing from src/core or
#      src/optimizers; one under src/core nothing from src/optimizers;
#   2. nothing under src/ or util/ includes from lab/, tools/, bench/,
#      examples/ or tests/, and util/ nothing from src/;
#   3. nothing under lab/ includes from tools/, bench/ or examples/ (they
#      sit on the lab), and nothing under lab/, tools/, bench/, examples/
#      includes a header of src/, whether by path ("core/internal.h",
#      "../src/...") or through an include directory that names src/ (the
#      compiler's own dependency files in BUILD say which header each
#      object really read);
#   4. only the tests listed in INTERNAL_TESTS below include src/ headers:
#      they compare internal kernels with their references, which the public
#      API cannot reach; any other test uses descent.h like a user;
#   5. at link level, the objects of src/kernels call nothing defined in
#      src/core or src/optimizers, and those of src/core nothing defined in
#      src/optimizers, except the registry's table of families
#      (src/core/registry.c names each `dsc_family_<name>`: the one way the
#      core reaches a family, through its function pointers).
#
# Checks 1-4 read the sources (always) and, when BUILD is given and has
# them, the dependency files of every object; check 5 needs BUILD's objects.
set -uo pipefail
repo=${1:?usage: layering.sh REPO [BUILD]}
build=${2:-}
cd "$repo" || exit 2
[ -d src/kernels ] && [ -d src/core ] && [ -d src/optimizers ] ||
    { echo "no src/ in $repo" >&2; exit 2; }

# The tests allowed to include src/ headers, and why (keep in step with the
# comment in CMakeLists.txt above the tests' include directories).
INTERNAL_TESTS="test_elementwise test_matrix test_quant8 test_lowrank test_stability
                test_bf16_state"
INTERNAL_TESTS=$(echo $INTERNAL_TESTS) # one line, single spaces

fails=0
bad() { echo "LAYERING: $*"; fails=$((fails + 1)); }

# The layer of a path relative to the repository ("" for what anyone may
# include: include/, generated headers, system headers).
layer() {
    case $1 in
    util/*) echo util ;;
    src/kernels/*) echo kernels ;;
    src/core/*) echo core ;;
    src/optimizers/*) echo optimizers ;;
    src/*) echo src ;;
    lab/*) echo lab ;;
    tools/*) echo tools ;;
    bench/*) echo bench ;;
    examples/*) echo examples ;;
    tests/*) echo tests ;;
    *) echo "" ;;
    esac
}

# May a file of layer $1 include a header of layer $2?
allowed() {
    local from=$1 to=$2
    [ -z "$to" ] && return 0
    [ "$to" = util ] && return 0 # the bottom layer: anyone
    case $from in
    util) return 1 ;;
    kernels) [ "$to" = kernels ] ;;
    core) [ "$to" = kernels ] || [ "$to" = core ] ;;
    optimizers | src) [ "$to" = kernels ] || [ "$to" = core ] || [ "$to" = optimizers ] ||
        [ "$to" = src ] ;;
    lab)
        case $to in
        kernels | core | optimizers | src | tests | tools | bench | examples) return 1 ;;
        esac ;;
    tools | bench | examples)
        case $to in kernels | core | optimizers | src | tests) return 1 ;; esac ;;
    tests)
        case $to in
        kernels | core | optimizers | src) [[ " $INTERNAL_TESTS " == *" $test_name "* ]] ;;
        esac ;;
    *) return 0 ;;
    esac
}

# Where the compiler would find `#include "name"` from file f: next to f,
# then in the include directories of f's part of the tree (what
# CMakeLists.txt gives it), then anywhere a wrong include directory could
# make it visible (src/ and its parts), which is what check 3 is about.
resolve() {
    local f=$1 name=$2 d
    d=$(dirname "$f")
    if [ -f "$d/$name" ]; then realpath -m --relative-to=. "$d/$name"; return; fi
    for d in include util lab tools/cli bench/lib bench tests tests/fuzz src src/core src/kernels \
             src/optimizers; do
        if [ -f "$d/$name" ]; then realpath -m --relative-to=. "$d/$name"; return; fi
    done
}

# ------------------------------------------------------- 1-4: the sources
while IFS= read -r f; do
    from=$(layer "$f")
    test_name=$(basename "$f" .c)
    while IFS= read -r name; do
        target=$(resolve "$f" "$name")
        [ -n "$target" ] || continue # generated (descent_version.h) or system
        to=$(layer "$target")
        allowed "$from" "$to" || bad "$f includes \"$name\" ($target: $from may not include $to)"
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find util src lab tools bench examples tests \( -name '*.c' -o -name '*.h' \) 2>/dev/null |
         sort)

# ----------------------------------- 1-4 again: what each object really read
ndeps=0
if [ -n "$build" ] && [ -d "$build/CMakeFiles" ]; then
    root=$(pwd -P)
    while IFS= read -r dep; do
        ndeps=$((ndeps + 1))
        # "obj: source header header ...", continued over lines with "\".
        words=$(sed 's/\\$//' "$dep" | tr -s ' \t' '\n\n' | grep -v ':$' | grep -v '^$')
        src_file=$(echo "$words" | head -1)
        rel=${src_file#"$root"/}
        [ "$rel" != "$src_file" ] || continue # a source outside the repository
        from=$(layer "$rel")
        test_name=$(basename "$rel" .c)
        while IFS= read -r h; do
            hr=${h#"$root"/}
            [ "$hr" != "$h" ] || continue
            allowed "$from" "$(layer "$hr")" ||
                bad "$rel reads $hr when compiled ($dep): $from may not include $(layer "$hr")"
        done < <(echo "$words" | tail -n +2)
    done < <(find "$build/CMakeFiles" -name '*.o.d' | sort)
fi

# ------------------------------------------------------- 5: link level
nobj=0
if [ -n "$build" ] && command -v nm >/dev/null; then
    objdir=$(find "$build/CMakeFiles" -type d -path '*descent_static.dir/src' | head -1)
    if [ -n "$objdir" ]; then
        defined() {
            nm --defined-only "$objdir"/$1/*.o 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u
        }
        defined core >"$build/layering.core"
        defined optimizers >"$build/layering.optimizers"
        for o in "$objdir"/kernels/*.o "$objdir"/core/*.o; do
            nobj=$((nobj + 1))
            part=$(basename "$(dirname "$o")")
            unresolved=$(nm --undefined-only "$o" | awk '{print $NF}' | sort -u)
            above=$(comm -12 <(echo "$unresolved") "$build/layering.optimizers")
            [ "$part" = kernels ] &&
                above="$above"$'\n'$(comm -12 <(echo "$unresolved") "$build/layering.core")
            # The registry's table: dsc_family_<name> objects, nothing else.
            [ "$(basename "$o")" = registry.c.o ] && above=$(echo "$above" | grep -v '^dsc_family_')
            above=$(echo "$above" | grep -v '^$')
            [ -z "$above" ] ||
                bad "src/$part/$(basename "$o" .o) uses what a higher layer defines:" $above
        done
        rm -f "$build/layering.core" "$build/layering.optimizers"
    fi
fi

if [ "$fails" -gt 0 ]; then
    echo "$fails layering violation(s) (docs/CONTRIBUTING.md, \"Layers\")"
    exit 1
fi
echo "ok: layering holds (sources; $ndeps dependency files; $nobj library objects)"
