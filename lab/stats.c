/* stats.c - medians, bootstrap intervals and verdicts (see stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ quantiles */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place (NAN already replaced by +INF) and interpolates. */
static double sorted_quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i < 0) return v[0];
    if (i >= n - 1) return v[n - 1];
    double f = pos - i;
    if (f == 0.0) return v[i];
    if (isinf(v[i + 1]) || isinf(v[i])) return f < 0.5 ? v[i] : v[i + 1];
    return v[i] + f * (v[i + 1] - v[i]);
}

static double quantile_copy(const double *v, int n, double q, double *tmp)
{
    for (int i = 0; i < n; i++) tmp[i] = isnan(v[i]) ? INFINITY : v[i];
    return sorted_quantile(tmp, n, q);
}

double lab_quantile(const double *v, int n, double q)
{
    if (!v || n <= 0 || !(q >= 0 && q <= 1)) return NAN;
    double *tmp = malloc(sizeof(double) * (size_t)n);
    if (!tmp) return NAN;
    double r = quantile_copy(v, n, q, tmp);
    free(tmp);
    return r;
}

double lab_median(const double *v, int n) { return lab_quantile(v, n, 0.5); }

double lab_loglog_slope(const double *x, const double *y, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!(x[i] > 0) || !(y[i] > 0) || !isfinite(x[i]) || !isfinite(y[i])) continue;
        double a = log(x[i]), b = log(y[i]);
        sx += a, sy += b, sxx += a * a, sxy += a * b;
        m++;
    }
    if (m < 2) return NAN;
    double den = m * sxx - sx * sx;
    return den > 1e-12 * m * sxx ? (m * sxy - sx * sy) / den : NAN;
}

/* ------------------------------------------------------------ bootstrap */

/* Percentile interval from the replicates (sorted in place); NAN count as
 * +INF, which the slope variant treats more strictly. */
static void percentile(double *rep, int reps, double level, lab_ci *out)
{
    for (int i = 0; i < reps; i++)
        if (isnan(rep[i])) rep[i] = INFINITY;
    out->lo = sorted_quantile(rep, reps, (1 - level) / 2);
    out->hi = sorted_quantile(rep, reps, (1 + level) / 2);
}

int lab_bootstrap(int n, lab_stat_fn stat, void *user, int reps, double level, uint64_t seed,
                  lab_ci *out)
{
    if (!stat || !out || n < 2 || reps < 10 || !(level > 0 && level < 1)) return -1;
    int *idx = malloc(sizeof(int) * (size_t)n);
    double *rep = malloc(sizeof(double) * (size_t)reps);
    if (!idx || !rep) {
        free(idx), free(rep);
        return -1;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    out->est = stat(idx, n, user);
    lab_rng r;
    lab_rng_seed(&r, seed);
    for (int b = 0; b < reps; b++) {
        for (int i = 0; i < n; i++) idx[i] = lab_rng_below(&r, n);
        rep[b] = stat(idx, n, user);
    }
    percentile(rep, reps, level, out);
    free(idx), free(rep);
    return 0;
}

typedef struct {
    const double *v;
    double *tmp;
} median_data;

static double median_stat(const int *idx, int n, void *user)
{
    median_data *m = user;
    for (int i = 0; i < n; i++) m->tmp[i] = isnan(m->v[idx[i]]) ? INFINITY : m->v[idx[i]];
    return sorted_quantile(m->tmp, n, 0.5);
}

int lab_bootstrap_median(const double *v, int n, int reps, double level, uint64_t seed,
                         lab_ci *out)
{
    if (!v || n < 2) return -1;
    median_data m = {v, malloc(sizeof(double) * (size_t)n)};
    if (!m.tmp) return -1;
    int rc = lab_bootstrap(n, median_stat, &m, reps, level, seed, out);
    free(m.tmp);
    return rc;
}

int lab_bootstrap_loglog_slope(const double *x, int nx, const double *y, int ny, int reps,
                               double level, uint64_t seed, lab_ci *out)
{
    if (!x || !y || !out || nx < 2 || ny < 1 || reps < 10 || !(level > 0 && level < 1))
        return -1;
    double *med = malloc(sizeof(double) * (size_t)nx);
    double *tmp = malloc(sizeof(double) * (size_t)ny);
    double *rep = malloc(sizeof(double) * (size_t)reps);
    if (!med || !tmp || !rep) {
        free(med), free(tmp), free(rep);
        return -1;
    }
    for (int i = 0; i < nx; i++) med[i] = quantile_copy(y + (size_t)i * (size_t)ny, ny, 0.5, tmp);
    out->est = lab_loglog_slope(x, med, nx);
    lab_rng r;
    lab_rng_seed(&r, seed);
    int nan_reps = 0;
    for (int b = 0; b < reps; b++) {
        for (int i = 0; i < nx; i++) {
            const double *yi = y + (size_t)i * (size_t)ny;
            for (int j = 0; j < ny; j++) {
                double v = yi[lab_rng_below(&r, ny)];
                tmp[j] = isnan(v) ? INFINITY : v;
            }
            med[i] = sorted_quantile(tmp, ny, 0.5);
        }
        rep[b] = lab_loglog_slope(x, med, nx);
        nan_reps += isnan(rep[b]);
    }
    if (nan_reps > (1 - level) / 2 * reps) {
        out->lo = out->hi = NAN;
    } else {
        /* The few NAN replicates go to whichever end is further from the
         * estimate: the interval widens rather than narrows. */
        int k = 0;
        for (int b = 0; b < reps; b++)
            if (!isnan(rep[b])) rep[k++] = rep[b];
        qsort(rep, (size_t)k, sizeof *rep, cmp_double);
        int lo_pad = 0;
        if (k > 0 && isfinite(out->est) && fabs(rep[0] - out->est) > fabs(rep[k - 1] - out->est))
            lo_pad = 1;
        for (int b = k; b < reps; b++) rep[b] = lo_pad ? -INFINITY : INFINITY;
        out->lo = sorted_quantile(rep, reps, (1 - level) / 2);
        out->hi = sorted_quantile(rep, reps, (1 + level) / 2);
    }
    free(med), free(tmp), free(rep);
    return 0;
}

/* ------------------------------------------------------------- verdicts */

lab_verdict lab_verdict_of(lab_claim_kind kind, double a, double b, lab_ci ci)
{
    if (isnan(ci.lo) || isnan(ci.hi) || ci.lo > ci.hi) return LAB_INCONCLUSIVE;
    switch (kind) {
    case LAB_CLAIM_ABOVE:
        if (isnan(a)) return LAB_INCONCLUSIVE;
        if (ci.lo > a) return LAB_SUPPORTED;
        if (ci.hi <= a) return LAB_CONTRADICTED;
        return LAB_INCONCLUSIVE;
    case LAB_CLAIM_BELOW:
        if (isnan(b)) return LAB_INCONCLUSIVE;
        if (ci.hi < b) return LAB_SUPPORTED;
        if (ci.lo >= b) return LAB_CONTRADICTED;
        return LAB_INCONCLUSIVE;
    case LAB_CLAIM_WITHIN:
        if (isnan(a) || isnan(b) || a > b) return LAB_INCONCLUSIVE;
        if (ci.lo >= a && ci.hi <= b) return LAB_SUPPORTED;
        if (ci.hi < a || ci.lo > b) return LAB_CONTRADICTED;
        return LAB_INCONCLUSIVE;
    }
    return LAB_INCONCLUSIVE;
}

const char *lab_verdict_name(lab_verdict v)
{
    switch (v) {
    case LAB_SUPPORTED: return "supported";
    case LAB_CONTRADICTED: return "contradicted";
    default: return "inconclusive";
    }
}
