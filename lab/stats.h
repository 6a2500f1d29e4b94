/* stats.h - the lab's uncertainty and verdicts: medians, seeded bootstrap
 * percentile intervals (for a median, for any statistic through a callback,
 * and for a log-log slope fitted through per-level medians), and the rule
 * that turns an interval and a claim into `supported`, `contradicted` or
 * `inconclusive`. Shared by the theory lab and `descent gpt2 compare`.
 *
 * Missing values: NAN counts as +INF ("did not reach", "diverged"), so a
 * median over runs where most never reached the target is +INF, and an
 * interval whose upper end is +INF says "at least lo". Nothing is dropped
 * silently.
 *
 * Bootstrap (Efron's percentile method): draw n indices with replacement,
 * compute the statistic, repeat `reps` times; the interval at `level`
 * (e.g. 0.9) is the (1 - level)/2 and (1 + level)/2 quantiles of the
 * replicates. The resampling RNG is seeded by the caller, so an interval is
 * a deterministic function of (data, reps, level, seed). With n = 10 draws
 * a 90% percentile interval of the median covers the true median about 89%
 * of the time (the test checks coverage on a known distribution). */
#ifndef DESCENT_LAB_STATS_H
#define DESCENT_LAB_STATS_H

#include <stdint.h>

#include "rng.h"

/* A point estimate and its interval. */
typedef struct {
    double est, lo, hi;
} lab_ci;

/* lab_rng, the resampling RNG (xoshiro256**), is in rng.h. */

/* q-quantile (0 <= q <= 1, linear interpolation between order statistics)
 * and median of v[0..n-1]; v is not modified. NAN counts as +INF. NAN if
 * n <= 0 or out of memory. */
double lab_quantile(const double *v, int n, double q);
double lab_median(const double *v, int n);

/* Least-squares slope of log(y) on log(x) over the points where both are
 * finite and > 0; NAN if fewer than two such points or all x equal. */
double lab_loglog_slope(const double *x, const double *y, int n);

/* A statistic of the resample v[idx[0]], ..., v[idx[n-1]] (the caller's
 * data lives in `user`). */
typedef double (*lab_stat_fn)(const int *idx, int n, void *user);

/* Percentile bootstrap of any statistic over n observations: out->est is
 * stat of the sample itself. 0, or -1 on bad arguments (n < 2, reps < 10,
 * level outside (0, 1)) or out of memory. Replicates that come out NAN
 * (e.g. a slope through too few finite points) count as +INF. */
int lab_bootstrap(int n, lab_stat_fn stat, void *user, int reps, double level, uint64_t seed,
                  lab_ci *out);

/* Median of v with its percentile-bootstrap interval. */
int lab_bootstrap_median(const double *v, int n, int reps, double level, uint64_t seed,
                         lab_ci *out);

/* Slope in log-log of the per-level medians: y[i * ny + j] is draw j at
 * level x[i] (i < nx, j < ny; every level has ny independent draws). The
 * estimate is the slope through (x[i], median_j y[i][j]); each replicate
 * resamples the draws within every level (a stratified bootstrap), so the
 * interval reflects the draw-to-draw spread at each level. A level whose
 * median is +INF (most draws never reached) drops out of that fit; a fit
 * left with < 2 levels is NAN. If more than (1 - level)/2 of the replicates
 * are NAN the interval is [NAN, NAN]: the data cannot bound the slope;
 * fewer NAN replicates go to the end further from the estimate, which
 * widens the interval rather than narrowing it. */
int lab_bootstrap_loglog_slope(const double *x, int nx, const double *y, int ny, int reps,
                               double level, uint64_t seed, lab_ci *out);

/* ------------------------------------------------------------- verdicts */

typedef enum {
    LAB_INCONCLUSIVE = 0,
    LAB_SUPPORTED = 1,
    LAB_CONTRADICTED = 2,
} lab_verdict;

/* What a claim says about a measured quantity q:
 *   LAB_CLAIM_ABOVE   q > a        supported if ci.lo > a, contradicted if ci.hi <= a
 *   LAB_CLAIM_BELOW   q < b        supported if ci.hi < b, contradicted if ci.lo >= b
 *   LAB_CLAIM_WITHIN  a <= q <= b  supported if [ci.lo, ci.hi] lies inside [a, b],
 *                                  contradicted if it lies wholly outside (ci.hi < a or
 *                                  ci.lo > b)
 * and inconclusive in every other case, including a NAN anywhere. The
 * interval must exclude the other side to decide: an interval that
 * straddles the threshold never gives a verdict. */
typedef enum { LAB_CLAIM_ABOVE, LAB_CLAIM_BELOW, LAB_CLAIM_WITHIN } lab_claim_kind;

lab_verdict lab_verdict_of(lab_claim_kind kind, double a, double b, lab_ci ci);

/* "supported", "contradicted", "inconclusive". */
const char *lab_verdict_name(lab_verdict v);

#endif
