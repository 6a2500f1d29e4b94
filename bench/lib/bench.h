/* bench.h - benchmarks that the `descent bench` command and the bench/
 * programs share. Each prints its figures with the machine's own limits
 * measured in the same run, and returns a process exit code. */
#ifndef DESCENT_BENCH_H
#define DESCENT_BENCH_H

#include <stddef.h>

/* The elements the memory limits (update stream, traffic patterns) run on:
 * out of every cache, and the same for every benchmark. */
#define BENCH_LIMIT_ELEMENTS 50000000u

/* Seconds on a monotonic clock. */
double bench_now(void);
/* Best of `reps` STREAM triads a = b + s*c over n floats at `threads`
 * threads, in GB/s (3 arrays counted, as STREAM does); 0 if out of memory. */
double bench_triad_gbs(size_t n, int threads, int reps);
/* In-place a <- a + s*b, GB/s: the limit for steps that update in place. */
double bench_update_gbs(size_t n, int threads, int reps);
/* The same kept allocated, one timed pass at a time (seconds; its counted
 * bytes: 12 per element), to pair each step of a benchmark with a pass of
 * the limit in the same second of a shared machine; new returns NULL when
 * out of memory. */
typedef struct bench_update bench_update;
bench_update *bench_update_new(size_t n, int threads);
double bench_update_pass(bench_update *u);
double bench_update_pass_bytes(const bench_update *u);
void bench_update_free(bench_update *u);
/* The memory traffic of an element-wise optimizer step with `nstates`
 * states of `width` bytes each and next to no arithmetic: a read pass over
 * the gradient (the driver's finite scan), `extra_reads` more read passes
 * over an array of that size (a step's whole-tensor sums before its
 * update), then p and every state updated in place from g. Widths: 4
 * (float32, 0..3 states), 2 (bf16, 1 or 2 states) and 1 (8-bit codes with
 * one float32 scale per block of 256, 1 or 2 states). GB/s of the bytes
 * bench_shape_bytes counts (p read and written 8, g read twice 8, each
 * state read and written), as elementwise.c counts a step's (the extra
 * passes take time but are not counted); best of `reps`, 0 if out of
 * memory or the counts are out of range. */
double bench_shape_gbs(size_t n, int nstates, int width, int extra_reads, int threads, int reps);
/* The same pattern kept allocated, to time one pass at a time beside a
 * longer benchmark's steps (gpt2 bench pairs each optimizer phase with the
 * pass after it): new (NULL when out of memory or the counts are out of
 * range), the seconds of one pass, its counted bytes, free. */
typedef struct bench_shape bench_shape;
bench_shape *bench_shape_new(size_t n, int nstates, int width, int extra_reads, int threads);
double bench_shape_pass(bench_shape *s);
double bench_shape_bytes(size_t n, int nstates, int width);
void bench_shape_free(bench_shape *s);

/* Whether a step that misses its goal takes about the sum of its
 * arithmetic alone (the step with its data in cache) and its memory traffic
 * alone (its pattern, no arithmetic): within 10% of the sum, either way.
 * Then the core ran the two one after the other rather than overlapped, and
 * the sum is what the step costs as the code stands (reading "serial");
 * under 90% of it they overlap in part, over 110% something else costs
 * too. Times per parameter (or ratios to one time), all three in one unit. */
int bench_serial(double step, double arithmetic, double traffic);
/* The reading of a row that misses its goal while its in-cache time does
 * not, its three times as ratios to the step it is compared with: "serial"
 * (bench_serial) or "open", then "in cache the <step> alone is <x> the
 * <base>, its memory traffic alone <y>; the two added <x + y>", into why. */
void bench_why_split(char *why, size_t n, double ratio, double in_cache, double traffic,
                     const char *step, const char *base);

/* One row of the summary that `make bench` ends with (scripts/bench-summary.sh
 * collects them into a table): a line on stdout
 *   SUMMARY<TAB>target<TAB>measure<TAB>value<TAB>op<TAB>limit[<TAB>reading]
 * where `target` names the goal (e.g. "4 gpt2"), `measure` says what was
 * measured and how (shape, threads), `value` is a same-run ratio and the
 * goal is met when value op limit holds, op being ">=" or "<=". */
void bench_summary(const char *target, const char *measure, double value, const char *op,
                   double limit);
/* The same with the benchmark's reading of a row that misses its goal,
 * computed from the same run's numbers: a word, a colon and the figures.
 * "arithmetic" (the step's work with its data in cache already exceeds the
 * goal) and "pattern" (its memory traffic alone, run without arithmetic,
 * exceeds it) are measured bounds, which the table counts apart; "serial"
 * (bench_serial: the two measured times add up to the step's) is counted on
 * its own, an explanation of the time and not a bound; any other word
 * ("code", "open") says the bound was not found. NULL or "" for none. */
void bench_summary_why(const char *target, const char *measure, double value, const char *op,
                       double limit, const char *reading);

/* Element-wise optimizer steps against a STREAM-style triad. */
int bench_elementwise_main(int argc, char **argv);
/* bf16 parameters (master copy, stochastic rounding) against float32. */
int bench_bf16_main(int argc, char **argv);

#endif
