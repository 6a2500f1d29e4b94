/* transform.c - coordinate-wise clipping of a group's gradients (Pan and
 * Li, arXiv 2306.00204), a core stage between the caller's gradient and the
 * families. It writes into the parameter's work buffer and points p->grad at
 * it; the caller's gradient is only read. (The other gradient transforms,
 * the non-finite policy and clipping by global norm or by value, are still
 * in step.c; they belong here too.)
 *
 * Coordinate-wise clipping, over all tensors X of a group and a fraction
 * c = coordinate_clip:
 *   c == 0: no clipping;  c == 1: tau = 0;
 *   else tau = the floor(N*c)-th largest |x| (0-based, N*c in double) of the
 *        N values of X, recomputed every step;
 *   tau <- tau*scale;  x <- x if |x| < tau, else sign(x)*tau.
 * tau is found without sorting and without memory: the fast path is a radix
 * select on the bits of |x| (a non-negative float orders like its bit
 * pattern): three passes of 11, 10 and 10 bits, each a histogram of the
 * entries that share the digits found so far. Integer counts are exact, so
 * any thread count gives the same tau. The reference bisects on the bit
 * pattern (31 counting passes). Both give exactly the value a full sort
 * puts at index floor(N*c), ties included. The families sgd_clip and
 * adam_clip (src/optimizers/coordclip.c) call dsc_coordclip_tau themselves.
 *
 * The group-level option: a spec such as "adamw:lr=1e-3,coordinate_clip=0.1,
 * coordinate_clip_scale=1" clips the gradients of that group before the
 * family runs. Every family but sgd_clip and adam_clip (which define
 * coordinate_clip and threshold_scale themselves) accepts the two keys. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ the transform */

/* The value clipped: the gradient, plus wd*p for adam_clip's L2. */
static inline float src_at(const float *g, const float *p, float wd, size_t i)
{
    return wd != 0.0f ? g[i] + wd * p[i] : g[i];
}

static inline uint32_t abs_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

static float param_wd(const dsc_param *p, int wd_key)
{
    return wd_key >= 0 ? (float)p->hp[wd_key] : 0.0f;
}

#define RADIX_BINS 2048

/* hist[digit] += count of entries whose bits above `shift + width` equal
 * `prefix`, digit = the `width` bits from `shift`. Each thread counts its
 * range into local histograms and adds them to the shared one with atomic
 * adds: integer counts, so the order of the adds does not matter. */
typedef struct {
    const float *g, *x;
    float wd;
    int shift, pshift;
    uint32_t dmask, prefix;
    size_t *hist;
} hist_job;

/* Elements counted into the 32-bit local histograms before they are added
 * into the shared size_t one (no local count can wrap). */
#define HIST_CHUNK ((size_t)1 << 30)
/* Elements whose prefixes are tested together before any is counted. */
#define HIST_GROUP 16

/* The first pass counts every entry. Neighbouring gradients often share a
 * digit, and one histogram would then make each increment wait for the
 * previous one's store; four interleaved histograms (32 KiB in all) let
 * four increments run at once. Later passes count only the entries that
 * share the digits found so far, usually few: a group of HIST_GROUP entries
 * is tested with vector compares and counted one by one only when one of
 * them matches. `l2` (adam_clip's wd*p) is a constant at each call, so each
 * variant is its own loop. */
DSC_BODY void hist_body(const hist_job *j, size_t lo, size_t hi, uint32_t (*local)[RADIX_BINS],
                        const int l2, const int all)
{
    const float *restrict g = j->g, *restrict x = j->x;
    const float wd = j->wd;
    const int shift = j->shift, pshift = j->pshift;
    const uint32_t dmask = j->dmask, prefix = j->prefix;
    size_t i = lo;
    if (all) {
        for (; i + 4 <= hi; i += 4) {
            for (int k = 0; k < 4; k++) {
                float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
                local[k][(abs_bits(v) >> shift) & dmask]++;
            }
        }
        for (; i < hi; i++) {
            float v = l2 ? g[i] + wd * x[i] : g[i];
            local[0][(abs_bits(v) >> shift) & dmask]++;
        }
        return;
    }
    for (; i + HIST_GROUP <= hi; i += HIST_GROUP) {
        uint32_t u[HIST_GROUP];
        int any = 0;
        for (int k = 0; k < HIST_GROUP; k++) {
            float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
            u[k] = abs_bits(v);
            any |= (u[k] >> pshift) == prefix;
        }
        if (!any) continue;
        for (int k = 0; k < HIST_GROUP; k++)
            if ((u[k] >> pshift) == prefix) local[0][(u[k] >> shift) & dmask]++;
    }
    for (; i < hi; i++) {
        uint32_t u = abs_bits(l2 ? g[i] + wd * x[i] : g[i]);
        if ((u >> pshift) == prefix) local[0][(u >> shift) & dmask]++;
    }
}

DSC_WIDE static void hist_range(const void *ctx, size_t lo, size_t hi)
{
    const hist_job *j = ctx;
    const int all = j->pshift >= 31; /* the first pass: every |x| has bit 31 clear */
    uint32_t local[4][RADIX_BINS];
    size_t *hist = j->hist;
    for (size_t c0 = lo; c0 < hi; c0 += HIST_CHUNK) {
        size_t c1 = hi - c0 < HIST_CHUNK ? hi : c0 + HIST_CHUNK;
        memset(local, 0, sizeof local);
        if (j->wd != 0.0f) {
            if (all) hist_body(j, c0, c1, local, 1, 1);
            else hist_body(j, c0, c1, local, 1, 0);
        } else {
            if (all) hist_body(j, c0, c1, local, 0, 1);
            else hist_body(j, c0, c1, local, 0, 0);
        }
        for (uint32_t b = 0; b <= j->dmask; b++) {
            size_t count = (size_t)local[0][b] + local[1][b] + local[2][b] + local[3][b];
            if (!count) continue;
            /* An integer add: the order of the threads' adds does not matter.
             * (A raw OpenMP construct, but no region: it only makes the add
             * safe inside the region dsc_parallel_ranges opened.) */
#pragma omp atomic
            hist[b] += count;
        }
    }
}

static void radix_hist(dsc_group *grp, int wd_key, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        hist_job job = {p->grad, p->data, param_wd(p, wd_key), shift, shift + width,
                        (1u << width) - 1u, prefix, hist};
        dsc_parallel_ranges(p->numel, hist_range, &job);
    }
}

/* Bit pattern of the entry of descending rank `rank` (0-based). */
static uint32_t select_radix(dsc_group *grp, int wd_key, size_t rank)
{
    static const int shifts[3] = {20, 10, 0}, widths[3] = {11, 10, 10};
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t hist[RADIX_BINS];
        memset(hist, 0, sizeof hist);
        radix_hist(grp, wd_key, shifts[pass], widths[pass], prefix, hist);
        uint32_t b = (1u << widths[pass]) - 1u;
        for (;; b--) { /* the largest digits first */
            if (rank < hist[b] || b == 0) break;
            rank -= hist[b];
        }
        prefix = (prefix << widths[pass]) | b;
    }
    return prefix;
}

/* Reference: the largest bit pattern u with count(|x| >= u) >= rank + 1. */
static uint32_t select_bisect(dsc_group *grp, int wd_key, size_t rank)
{
    uint32_t lo = 0, hi = 0x80000000u; /* count(>= lo) > rank, count(>= hi) = 0 */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        size_t count = 0;
        for (int k = 0; k < grp->nparams; k++) {
            const dsc_param *p = dsc_group_param(grp, k);
            const float wd = param_wd(p, wd_key);
            for (size_t i = 0; i < p->numel; i++)
                count += abs_bits(src_at(p->grad, p->data, wd, i)) >= mid;
        }
        if (count > rank) lo = mid;
        else hi = mid;
    }
    return lo;
}

float dsc_coordclip_tau(dsc_group *grp, double c, double scale, int wd_key, int reference)
{
    if (c >= 1.0) return 0.0f;
    size_t N = 0;
    for (int k = 0; k < grp->nparams; k++) N += dsc_group_param(grp, k)->numel;
    if (N == 0) return 0.0f;
    size_t rank = (size_t)floor((double)N * c); /* 0-based index in descending order */
    if (rank > N - 1) rank = N - 1;
    uint32_t u = reference ? select_bisect(grp, wd_key, rank) : select_radix(grp, wd_key, rank);
    float tau;
    memcpy(&tau, &u, sizeof tau);
    return (float)((double)tau * scale);
}

/* out = clip(in) elementwise (in may equal out, so no restrict here). */
typedef struct {
    float *out;
    const float *in;
    float tau;
} clip_job;

static void clip_range(const void *ctx, size_t lo, size_t hi)
{
    const clip_job *job = ctx;
    const float tau = job->tau;
    if (job->out == job->in) { /* in place: its own loop (see transform_range above) */
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = dsc_clip_tau(x[i], tau);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = dsc_clip_tau(in[i], tau);
    }
}

static void clip_into(float *out, const float *in, size_t n, float tau, int reference)
{
    if (reference) {
        for (size_t i = 0; i < n; i++) out[i] = dsc_clip_tau(in[i], tau);
        return;
    }
    clip_job job = {out, in, tau};
    dsc_parallel_ranges(n, clip_range, &job);
}

void dsc_coordclip_apply(dsc_group *grp, int reference)
{
    double c = grp->coord_clip;
    if (!(c > 0.0) || grp->nparams == 0) return;
    float tau = dsc_coordclip_tau(grp, c, grp->coord_clip_scale, -1, reference);
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        clip_into(p->work, p->grad, p->numel, tau, reference);
        p->grad = p->work;
    }
}

/* --------------------------------------------- keys of the group-level option */

static const struct {
    const char *name;
    double min, max, def;
} core_keys[2] = {
    {"coordinate_clip", 0.0, 1.0, 0.0},
    {"coordinate_clip_scale", 0.0, 1e30, 1.0},
};

dsc_status dsc_coordclip_take_keys(dsc_spec_tokens *t, double *c, double *scale,
                                   char *err, size_t errlen)
{
    *c = core_keys[0].def;
    *scale = core_keys[1].def;
    const dsc_family *f = dsc_family_find(t->name);
    /* sgd_clip and adam_clip define coordinate_clip themselves (with their own
     * threshold_scale): for them the option does not exist. Unknown names
     * are reported by the spec parser. */
    if (!f || dsc_family_key(f, core_keys[0].name) >= 0) return DSC_OK;
    double val[2] = {core_keys[0].def, core_keys[1].def};
    for (int j = 0; j < t->nitems; j++) {
        dsc_spec_item *it = &t->item[j];
        for (int q = 0; q < 2; q++) {
            if (strcmp(it->key, core_keys[q].name)) continue;
            double x = it->value;
            if (!(x >= core_keys[q].min && x <= core_keys[q].max)) {
                snprintf(err, errlen, "%s: %s = %g is out of range [%g, %g] (at character %zu)",
                         f->info.name, core_keys[q].name, x, core_keys[q].min,
                         core_keys[q].max, it->value_at + 1);
                return DSC_OUT_OF_RANGE;
            }
            val[q] = x;
            it->key[0] = '\0'; /* taken: the family's parser skips it */
        }
    }
    *c = val[0];
    *scale = val[1];
    return DSC_OK;
}
