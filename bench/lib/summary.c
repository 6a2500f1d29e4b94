/* summary.c - the machine-readable rows behind `make bench`'s summary table
 * (bench.h). Each benchmark prints its own rows next to its figures; the
 * table itself is made by scripts/bench-summary.sh from the lines of every
 * benchmark's output, so a benchmark run by hand shows the same rows. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

void bench_summary(const char *target, const char *measure, double value, const char *op,
                   double limit)
{
    /* Tabs separate the fields: a measure must not hold one. */
    char m[200];
    snprintf(m, sizeof m, "%s", measure);
    for (char *c = m; *c; c++)
        if (*c == '\t' || *c == '\n') *c = ' ';
    printf("SUMMARY\t%s\t%s\t%.4f\t%s\t%.4f\n", target, m, value, op, limit);
    fflush(stdout);
}
