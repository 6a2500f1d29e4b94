#!/usr/bin/env bash
# bench-summary.sh [LOG...] - the table `make bench` ends with: every
#     SUMMARY<TAB>target<TAB>measure<TAB>value<TAB>op<TAB>limit[<TAB>reading]
# line of the benchmarks' output (bench_summary() in bench/lib/summary.c),
# from the files named or from stdin, as one Markdown table sorted by target,
# with "met" or "NOT met" computed from value op limit (op is >= or <=). A
# row that is not met shows the benchmark's reading, computed in the same
# run; readings "arithmetic" and "pattern" are measured bounds (the step's
# work in cache, or its memory traffic alone, already misses the goal) and
# are counted apart from the rows whose bound was not found, and "serial"
# (the step's arithmetic alone and its traffic alone, each measured, add up
# to its time: the two ran one after the other) on its own. A row that
# appears more than once (make bench runs bench_elementwise three times, as
# its rows move by a tenth from one minute to the next on a shared machine)
# is one row of the table: the median of its values (for an even count,
# the one of the two middle values further from the goal), judged as
# above, with the reading of the run that gave it and the range of all of
# them. Exit status 0 even when a
# target is not met: a benchmark reports, it does not gate. Rows with a
# malformed value or operator are shown as "bad row".
set -euo pipefail
cat "$@" | awk -F '\t' '
$1 == "SUMMARY" && NF >= 6 {
    key = $2 SUBSEP $3
    if (!(key in row)) {
        n++; row[key] = n; runs[n] = 0
        tgt[n] = $2; what[n] = $3; op[n] = $5; lim[n] = $6
    }
    k = row[key]; r = ++runs[k]
    rval[k, r] = $4; rwhy[k, r] = NF >= 7 ? $7 : ""
}
END {
    # each row: the median run (by value, insertion sort of its runs)
    for (k = 1; k <= n; k++) {
        m = runs[k]
        for (i = 1; i <= m; i++) idx[i] = i
        for (i = 2; i <= m; i++) {
            t = idx[i]; j = i - 1
            while (j >= 1 && rval[k, idx[j]] + 0 > rval[k, t] + 0) { idx[j + 1] = idx[j]; j-- }
            idx[j + 1] = t
        }
        mid = idx[op[k] == "<=" ? int(m / 2) + 1 : int((m + 1) / 2)]
        val[k] = rval[k, mid]; why[k] = rwhy[k, mid]
        note[k] = m > 1 ? sprintf(" (median of %d runs, range %.3f-%.3f)", m, rval[k, idx[1]], rval[k, idx[m]]) : ""
    }
    if (!n) { print "(no SUMMARY rows: the benchmarks printed none)"; exit 0 }
    # stable sort by target (insertion sort keeps the benchmarks order within one)
    for (i = 1; i <= n; i++) order[i] = i
    for (i = 2; i <= n; i++) {
        k = order[i]; j = i - 1
        while (j >= 1 && tgt[order[j]] > tgt[k]) { order[j + 1] = order[j]; j-- }
        order[j + 1] = k
    }
    print "| target | measure | value | goal | |"
    print "| --- | --- | ---: | --- | --- |"
    met = 0; bound = 0; serial = 0; open = 0
    for (i = 1; i <= n; i++) {
        k = order[i]
        v = val[k] + 0; l = lim[k] + 0
        if (val[k] !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ || (op[k] != ">=" && op[k] != "<=")) {
            verdict = "bad row"
        } else if ((op[k] == ">=" && v >= l) || (op[k] == "<=" && v <= l)) {
            verdict = "met" note[k]; met++
        } else {
            verdict = "NOT met"
            if (why[k] ~ /^(arithmetic|pattern)([: ]|$)/) bound++
            else if (why[k] ~ /^serial([: ]|$)/) serial++
            else open++
            if (why[k] != "") verdict = verdict "; " why[k]
            verdict = verdict note[k]
        }
        printf "| %s | %s | %.3f | %s %.3g | %s |\n", tgt[k], what[k], v, op[k], l, verdict
    }
    printf "\n%d of %d rows met", met, n
    if (bound + serial + open)
        printf "; of the rest, %d with a measured bound (arithmetic or pattern), %d serial (arithmetic and traffic, each measured, add up to the time), %d without", bound, serial, open
    printf ".\n"
}'
