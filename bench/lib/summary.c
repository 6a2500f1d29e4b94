/* summary.c - the machine-readable rows behind `make bench`'s summary table
 * (bench.h). Each benchmark prints its own rows next to its figures; the
 * table itself is made by scripts/bench-summary.sh from the lines of every
 * benchmark's output, so a benchmark run by hand shows the same rows. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

/* Tabs separate the fields: a field must not hold one (nor a newline). */
static void one_line(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
    for (char *c = dst; *c; c++)
        if (*c == '\t' || *c == '\n') *c = ' ';
}

void bench_summary_why(const char *target, const char *measure, double value, const char *op,
                       double limit, const char *reading)
{
    char m[200], r[320];
    one_line(m, sizeof m, measure);
    one_line(r, sizeof r, reading);
    printf("SUMMARY\t%s\t%s\t%.4f\t%s\t%.4f", target, m, value, op, limit);
    if (r[0]) printf("\t%s", r);
    printf("\n");
    fflush(stdout);
}

void bench_summary(const char *target, const char *measure, double value, const char *op,
                   double limit)
{
    bench_summary_why(target, measure, value, op, limit, NULL);
}
