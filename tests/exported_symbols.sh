#!/usr/bin/env bash
# exported_symbols.sh LIBDESCENT_SO HEADER CC [CPPFLAGS...] - the shared library exports
# exactly the functions that descent.h declares, both ways:
#   * every function the header declares carries DSC_API and is exported;
#   * every dynamic symbol the library defines is one of them (internal
#     functions, the JSON reader and the kernels stay hidden).
# The header's declarations come from the compiler's preprocessor, with
# DSC_API replaced by a marker, so comments and macros cannot fool the
# parse; the exports come from `nm -D --defined-only`.
set -euo pipefail
lib=$1 header=$2 cc=${3:-cc}
shift 3 || shift $#
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One declaration per line: the preprocessed header joined and cut at ';'.
"$cc" -E -P "$@" -DDSC_API=__dsc_api_marker__ -x c "$header" | tr '\n' ' ' | tr ';' '\n' >"$tmp/decls"
# Keep the first name followed by "(" (not "(*": that is a function pointer,
# a struct member or a parameter) of each declaration: the function.
awk -v declared="$tmp/declared" -v unmarked="$tmp/unmarked" '
    /typedef/ { next }
    match($0, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\([^*]/) {
        name = substr($0, RSTART, RLENGTH)
        sub(/[ \t]*\(.$/, "", name)
        if (name == "__attribute__") next
        print name > declared
        if ($0 !~ /__dsc_api_marker__/) print name > unmarked
    }' "$tmp/decls"
touch "$tmp/declared" "$tmp/unmarked"
sort -u -o "$tmp/declared" "$tmp/declared"

# Defined dynamic symbols, less what the toolchain adds: the linker's
# section markers, the sanitizers' globals, and names that are not C
# identifiers (clang's OpenMP reductions export a lock named
# ".gomp_critical_user_.reduction.var", which no program can refer to).
nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' |
    grep -v '^_init$\|^_fini$\|^_edata$\|^_end$\|^__bss_start$\|^__odr_asan\|^__asan\|^__ubsan\|^__sanitizer\|^\.' |
    sort -u >"$tmp/exported"

fail=0
if [ -s "$tmp/unmarked" ]; then
    echo "declared in $header without DSC_API:"; sed 's/^/  /' "$tmp/unmarked"; fail=1
fi
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
    echo "declared in $header but not exported by $lib:"; sed 's/^/  /' "$tmp/missing"; fail=1
fi
if [ -s "$tmp/extra" ]; then
    echo "exported by $lib but not declared in $header:"; sed 's/^/  /' "$tmp/extra"; fail=1
fi
ndecl=$(wc -l <"$tmp/declared")
if [ "$ndecl" -lt 10 ]; then
    echo "only $ndecl declarations parsed from $header: the parse is broken"; fail=1
fi
[ $fail -eq 0 ] || exit 1
echo "exported_symbols: $ndecl functions declared, the same $ndecl exported"
