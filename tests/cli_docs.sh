#!/usr/bin/env bash
# cli_docs.sh DESCENT - the documents agree with the library: the generated
# tables (README.md, docs/*.md; scripts/docs-tables.sh) are what the command
# prints now, every registered optimizer has a section in docs/optimizers.md,
# and no tracked file cites a document that is not in the repository.
set -u
bin=$1
. "$(dirname "$0")/lib/cli_check.sh"

expect 0 "generated tables are up to date (else: scripts/docs-tables.sh $bin)" -- \
    bash scripts/docs-tables.sh "$bin" --check
cat "$tmp/err"
for name in $("$bin" list --markdown | sed -n 's/^| `\([a-z0-9_]*\)`.*/\1/p'); do
    count=$((count + 1))
    grep -q "^<!-- generated: descent list --markdown $name -->" docs/optimizers.md ||
        { fails=$((fails + 1)); echo "FAILED: docs/optimizers.md has no keys table for $name"; }
    count=$((count + 1))
    grep -q "^### .*\\b$name\\b" docs/optimizers.md ||
        { fails=$((fails + 1)); echo "FAILED: docs/optimizers.md has no section for $name"; }
done
# Documents that once lived outside the repository must not be cited.
if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1; then
    count=$((count + 1))
    if git grep -n -I -e 'elementwise\.md' -e '[^/]matrix\.md section' -e 'spec matrix\.md' \
           -e 'theory-notes\.md' -e 'DATA\.md' -e 'PROVENANCE\.md' -e '\.\./shared' \
           -- . ':!tests/cli_docs.sh' ':!CHANGELOG.md' >"$tmp/cites"; then
        fails=$((fails + 1)); echo "FAILED: citations of documents outside the repository:"
        head -20 "$tmp/cites"
    fi
fi
for doc in optimizers matrix data provenance; do
    count=$((count + 1))
    [ -s "docs/$doc.md" ] || { fails=$((fails + 1)); echo "FAILED: docs/$doc.md is missing"; }
done
cli_report cli_docs
