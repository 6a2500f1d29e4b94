#!/usr/bin/env bash
# docs-tables.sh DESCENT [--check] - fill the generated blocks of the
# documents from the library, so tables of keys, defaults and papers cannot
# drift from the code. A block is
#     <!-- generated: descent ARGS... -->
#     (whatever `descent ARGS...` prints)
#     <!-- end generated -->
# in README.md or docs/*.md; DESCENT is the command to run (e.g.
# build/descent). Without --check the files are rewritten in place (atomically);
# with --check nothing is written, differences are shown, and the exit status
# is 1 if any block is stale. Run from the repository root.
set -euo pipefail
bin=${1:?usage: scripts/docs-tables.sh DESCENT [--check]}
check=0
[ "${2:-}" = --check ] && check=1
stale=0
for doc in README.md docs/*.md; do
    grep -q '^<!-- generated: descent ' "$doc" || continue
    new=$(mktemp "$doc.XXXXXX")
    inside=0
    while IFS= read -r line || [ -n "$line" ]; do
        if [ $inside = 1 ]; then
            [ "$line" = "<!-- end generated -->" ] || continue
            inside=0
        fi
        printf '%s\n' "$line" >>"$new"
        if [[ $line =~ ^\<\!--\ generated:\ descent\ (.*)\ --\>$ ]]; then
            read -r -a args <<<"${BASH_REMATCH[1]}"
            if ! "$bin" "${args[@]}" >>"$new"; then
                rm -f "$new"
                echo "docs-tables: \`descent ${BASH_REMATCH[1]}\` failed (in $doc)" >&2
                exit 2
            fi
            inside=1
        fi
    done <"$doc"
    if [ $inside = 1 ]; then
        rm -f "$new"
        echo "docs-tables: $doc: a generated block has no end marker" >&2
        exit 2
    fi
    if cmp -s "$doc" "$new"; then
        rm -f "$new"
    elif [ $check = 1 ]; then
        echo "docs-tables: $doc is stale; run: scripts/docs-tables.sh $bin" >&2
        diff -u "$doc" "$new" | head -40 >&2 || true
        rm -f "$new"
        stale=1
    else
        chmod --reference="$doc" "$new"
        mv "$new" "$doc"
        echo "docs-tables: updated $doc"
    fi
done
exit $stale
