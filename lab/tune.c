/* tune.c - the learning-rate tuner (see tune.h for the contract).
 *
 * The grid lives on integer indices k with lr = 10^(k / per_decade); the cap,
 * when it falls between two grid points, is one extra point above every
 * grid point below it. The tuner keeps its evaluations sorted by lr and
 * repeats: find the best; if fewer than `margin` points lie below it, add
 * the next grid point below; else if fewer than `margin` lie above it (and
 * it is not the cap), add the next one above; else stop. Each new point can
 * move the best, so the loop checks again until the best is interior or a
 * hard limit (floor, cap, max_evals) stops it. */
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

lab_tune_opts lab_tune_defaults(void)
{
    lab_tune_opts o;
    memset(&o, 0, sizeof o);
    o.lr_lo = 1e-4;
    o.lr_hi = 1e-1;
    o.per_decade = 4;
    o.margin = 1;
    o.max_evals = LAB_TUNE_MAX;
    return o;
}

int lab_tune_better(double a, double b)
{
    int fa = isfinite(a), fb = isfinite(b);
    if (fa != fb) return fa;
    return fa && a < b;
}

typedef struct {
    const lab_tune_opts *o;
    lab_tune_fn fn;
    void *user;
    lab_tune_result *r;
    int k[LAB_TUNE_MAX]; /* grid index of each point; the cap point has no index */
    int is_cap[LAB_TUNE_MAX];
} tuner;

static double grid_lr(int k, int per_decade) { return pow(10.0, (double)k / per_decade); }

/* Same lr up to rounding (the cap may equal a grid point). */
static int same_lr(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(a, b); }

/* Index of the best point (ties: the larger lr), or -1 if none. */
static int find_best(const lab_tune_result *r)
{
    int best = -1;
    for (int i = 0; i < r->n; i++) /* ascending lr: a tie moves to the larger lr */
        if (best < 0 || !lab_tune_better(r->score[best], r->score[i])) best = i;
    if (best >= 0 && !isfinite(r->score[best])) return -1;
    return best;
}

/* Evaluates lr and inserts it in order. 0, or -1 if the callback failed. */
static int eval(tuner *t, double lr, int k, int is_cap)
{
    lab_tune_result *r = t->r;
    int b = find_best(r);
    double bound = b >= 0 ? r->score[b] : INFINITY;
    double s = NAN;
    if (t->fn(lr, bound, t->user, &s) != 0) return -1;
    if (!isfinite(s)) s = INFINITY; /* NaN and -Inf rank as +Inf */
    int pos = 0;
    while (pos < r->n && r->lr[pos] < lr) pos++;
    memmove(r->lr + pos + 1, r->lr + pos, sizeof(double) * (size_t)(r->n - pos));
    memmove(r->score + pos + 1, r->score + pos, sizeof(double) * (size_t)(r->n - pos));
    memmove(t->k + pos + 1, t->k + pos, sizeof(int) * (size_t)(r->n - pos));
    memmove(t->is_cap + pos + 1, t->is_cap + pos, sizeof(int) * (size_t)(r->n - pos));
    r->lr[pos] = lr;
    r->score[pos] = s;
    t->k[pos] = k;
    t->is_cap[pos] = is_cap;
    r->n++;
    return 0;
}

/* The next point below the smallest one tried: 1 and its lr/k, or 0 if the
 * floor forbids it. */
static int next_below(const tuner *t, double *lr, int *k)
{
    const lab_tune_opts *o = t->o;
    const lab_tune_result *r = t->r;
    int kk;
    if (t->is_cap[0]) /* only the cap so far: the grid point just below it */
        kk = (int)floor(log10(r->lr[0]) * o->per_decade - 1e-9);
    else
        kk = t->k[0] - 1;
    double v = grid_lr(kk, o->per_decade);
    if (o->lr_floor > 0 && v < o->lr_floor * (1 - 1e-12)) return 0;
    *lr = v, *k = kk;
    return 1;
}

/* The next point above the largest one tried: 1 and its lr/k/is_cap, or 0
 * if the cap has been tried already. */
static int next_above(const tuner *t, double *lr, int *k, int *is_cap)
{
    const lab_tune_opts *o = t->o;
    const lab_tune_result *r = t->r;
    int top = r->n - 1;
    if (t->is_cap[top]) return 0;
    int kk = t->k[top] + 1;
    double v = grid_lr(kk, o->per_decade);
    if (o->lr_cap > 0 && (v > o->lr_cap || same_lr(v, o->lr_cap))) {
        *lr = o->lr_cap, *k = kk, *is_cap = 1;
        return 1;
    }
    *lr = v, *k = kk, *is_cap = 0;
    return 1;
}

int lab_tune(const lab_tune_opts *o, lab_tune_fn fn, void *user, lab_tune_result *r,
             char *err, int errlen)
{
    char dummy[8];
    if (!err || errlen <= 0) err = dummy, errlen = (int)sizeof dummy;
    err[0] = 0;
    if (!o || !fn || !r) {
        snprintf(err, (size_t)errlen, "lab_tune: NULL argument");
        return -1;
    }
    memset(r, 0, sizeof *r);
    r->best = -1;
    r->best_lr = NAN;
    r->best_score = INFINITY;
    int max_evals = o->max_evals > 0 ? o->max_evals : LAB_TUNE_MAX;
    if (!(o->lr_lo > 0) || !(o->lr_hi >= o->lr_lo) || !isfinite(o->lr_hi)) {
        snprintf(err, (size_t)errlen, "lab_tune: need 0 < lr_lo <= lr_hi (got %g, %g)", o->lr_lo,
                 o->lr_hi);
        return -1;
    }
    if (o->per_decade < 3 || o->per_decade > 100) {
        snprintf(err, (size_t)errlen, "lab_tune: per_decade must be 3..100 (got %d)",
                 o->per_decade);
        return -1;
    }
    if (o->margin < 1 || o->margin > 8 || max_evals > LAB_TUNE_MAX || max_evals < 2 * o->margin + 1) {
        snprintf(err, (size_t)errlen, "lab_tune: margin 1..8 and max_evals %d..%d required",
                 2 * o->margin + 1, LAB_TUNE_MAX);
        return -1;
    }
    if (o->lr_cap < 0 || o->lr_floor < 0 || !isfinite(o->lr_cap) || !isfinite(o->lr_floor) ||
        (o->lr_cap > 0 && o->lr_floor > o->lr_cap)) {
        snprintf(err, (size_t)errlen, "lab_tune: need 0 <= lr_floor <= lr_cap");
        return -1;
    }
    tuner t = {o, fn, user, r, {0}, {0}};
    int pd = o->per_decade;

    /* The first grid, evaluated from the largest lr down (large lrs that
     * diverge fail fast; a good large lr gives the later runs a bound). */
    int k_lo = (int)ceil(log10(o->lr_lo) * pd - 1e-9);
    int k_hi = (int)floor(log10(o->lr_hi) * pd + 1e-9);
    if (k_lo > k_hi) k_lo = k_hi = (int)lround(log10(o->lr_lo) * pd);
    if (o->lr_floor > 0)
        while (k_lo <= k_hi && grid_lr(k_lo, pd) < o->lr_floor * (1 - 1e-12)) k_lo++;
    int cap_point = 0;
    if (o->lr_cap > 0)
        while (k_hi >= k_lo && (grid_lr(k_hi, pd) > o->lr_cap || same_lr(grid_lr(k_hi, pd), o->lr_cap)))
            k_hi--, cap_point = 1;
    if (o->lr_cap > 0 && k_hi < k_lo) cap_point = 1; /* the whole range lies above the cap */
    if (cap_point && eval(&t, o->lr_cap, k_hi + 1, 1) != 0) goto failed;
    for (int k = k_hi; k >= k_lo && r->n < max_evals; k--)
        if (eval(&t, grid_lr(k, pd), k, 0) != 0) goto failed;
    if (r->n == 0) {
        snprintf(err, (size_t)errlen, "lab_tune: the floor excludes the whole grid");
        return -1;
    }

    /* Extend until the best is interior. */
    int alt = 0;
    while (r->n < max_evals) {
        int b = find_best(r);
        double lr = 0;
        int k = 0, cap = 0;
        if (b < 0) {
            /* Nothing reached: the lrs may be too small (too slow) or too large
             * (diverged). Try both sides in turn. */
            int up = next_above(&t, &lr, &k, &cap), down = 0;
            double lr2 = 0;
            int k2 = 0;
            down = next_below(&t, &lr2, &k2);
            if (!up && !down) break;
            if (up && (!down || alt == 0)) {
                if (eval(&t, lr, k, cap) != 0) goto failed;
            } else {
                if (eval(&t, lr2, k2, 0) != 0) goto failed;
            }
            alt ^= 1;
            continue;
        }
        if (b < o->margin && next_below(&t, &lr, &k)) {
            if (eval(&t, lr, k, 0) != 0) goto failed;
            continue;
        }
        if (!t.is_cap[b] && r->n - 1 - b < o->margin && next_above(&t, &lr, &k, &cap)) {
            if (eval(&t, lr, k, cap) != 0) goto failed;
            continue;
        }
        break;
    }
    int b = find_best(r);
    r->best = b;
    if (b >= 0) {
        r->best_lr = r->lr[b];
        r->best_score = r->score[b];
        r->at_cap = t.is_cap[b];
        if (b < o->margin) r->edge |= LAB_TUNE_EDGE_LOW;
        if (!r->at_cap && r->n - 1 - b < o->margin) r->edge |= LAB_TUNE_EDGE_HIGH;
    }
    return 0;
failed:
    snprintf(err, (size_t)errlen, "lab_tune: the training callback failed at evaluation %d",
             r->n + 1);
    r->best = find_best(r);
    if (r->best >= 0) r->best_lr = r->lr[r->best], r->best_score = r->score[r->best];
    return -1;
}

const char *lab_tune_edge_name(const lab_tune_result *r)
{
    if (!r || r->best < 0) return "none reached";
    if (r->edge == (LAB_TUNE_EDGE_LOW | LAB_TUNE_EDGE_HIGH)) return "both edges";
    if (r->edge & LAB_TUNE_EDGE_LOW) return "low edge";
    if (r->edge & LAB_TUNE_EDGE_HIGH) return "high edge";
    if (r->at_cap) return "at cap";
    return "interior";
}
