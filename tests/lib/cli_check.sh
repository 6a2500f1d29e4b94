# cli_check.sh - sourced by tests/cli_*.sh: a scratch folder, and two checks
# that count what ran and what failed. Each script ends with cli_report NAME.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0; count=0
expect() { # expect CODE DESCRIPTION -- command...  (stdout in $tmp/out, stderr in $tmp/err)
    local want=$1 what=$2; shift 3
    count=$((count + 1))
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" != "$want" ]; then
        fails=$((fails + 1))
        echo "FAILED: $what: exit $got, expected $want"; cat "$tmp/err"
    fi
}
contains() { # contains FILE TEXT DESCRIPTION
    count=$((count + 1))
    if ! grep -q -- "$2" "$1"; then fails=$((fails + 1)); echo "FAILED: $3 (no \"$2\")"; fi
}
cli_report() { # cli_report NAME: the plain closing line, and the exit status
    echo "$1: $((count - fails)) passed, $fails failed"
    [ "$fails" = 0 ]
}
