/* transform.c - the gradient-transform stage of a step: everything that
 * turns the caller's gradient into the one the families read.
 *
 * Configuration (all of it checkpointed, checkpoint.c):
 *   optimizer-wide  dsc_optimizer_set_nonfinite (skip | zero | fail) and
 *                   dsc_optimizer_set_clip (by global l2 norm or by value),
 *                   over every parameter of every group at once;
 *   per group       the keys every family accepts (wrap.c's table, set by
 *                   a spec or dsc_optimizer_set_hyper): coordinate_clip,
 *                   coordinate_clip_scale and maximize.
 * The global settings are not spec keys: a spec configures one group, and
 * a global norm spans all groups (torch keeps clip_grad_norm_ outside the
 * optimizer; optax chains clip_by_global_norm before it, once).
 *
 * The stage has the two phases of the step (step.c):
 *   dsc_transform_decide (validate: may fail, writes only the handle's
 *     stats and error, and the prescans' scratch) scans every gradient
 *     once (non-finite count; the l2, l1 and l-inf norms when stats or
 *     norm clipping need them), then
 *     decides: fail (DSC_NONFINITE), skip the update (plan->skip), or go on
 *     with zeroing, a norm-clipping factor and a value bound in the plan.
 *     It fills the step stats (norms, nonfinite, clip_scale and the
 *     skipped / zeroed / clipped counters). When the gradients will reach
 *     the families unchanged and no norms are needed, a family that reads
 *     each gradient before it writes anyway (dsc_family.prescan: adamp,
 *     sgdp, adagradnorm, stable_spam, and sgd_clip and adam_clip with the
 *     first pass of their threshold) makes that read here, and where its
 *     result proves the gradient finite the count is not made: one pass
 *     over the gradient less. A prescan writes only scratch (its
 *     parameter's or its group's) and p->prescan, which a skipped or failed
 *     step leaves unused (every decision clears p->prescanned first).
 *   dsc_transform_apply (write: cannot fail, allocates nothing) carries
 *     the plan out in this order, each into p->work (p->grad then points
 *     there; the caller's gradient is only read):
 *       1. non-finite entries to 0, the norm factor, the value bound (one
 *          element-wise pass, so the same bits at any thread count);
 *       2. coordinate-wise clipping per group;
 *       3. maximize per group (wrap.c).
 * Norms are those of the finite entries, as zeroing keeps them. Norm
 * clipping follows torch.nn.utils.clip_grad_norm_: when the norm N exceeds
 * max_norm, g <- g * max_norm / (N + 1e-6).
 *
 * Coordinate-wise clipping (Pan and Li, arXiv 2306.00204), over all tensors
 * X of a group and a fraction c = coordinate_clip:
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
 * adam_clip (src/optimizers/coordclip.c) call dsc_coordclip_tau themselves
 * and define coordinate_clip (with their own threshold_scale) as a key of
 * their own: for them the group keys coordinate_clip and
 * coordinate_clip_scale do not exist. */
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

#define RADIX_BINS DSC_COORDCLIP_BINS

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
        /* The test as one vector reduction (`omp simd`: GCC otherwise
         * unrolls the 16 lanes into scalar shifts and compares, which cost
         * as much as the counting); the few groups with a match are
         * counted one entry at a time. */
        uint32_t any = 0;
#ifdef _OPENMP
#pragma omp simd reduction(| : any)
#endif
        for (int k = 0; k < HIST_GROUP; k++) {
            float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
            any |= (uint32_t)((abs_bits(v) >> pshift) == prefix);
        }
        if (!any) continue;
        for (int k = 0; k < HIST_GROUP; k++) {
            float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
            uint32_t u = abs_bits(v);
            if ((u >> pshift) == prefix) local[0][(u >> shift) & dmask]++;
        }
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

static void param_hist(const dsc_param *p, float wd, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    hist_job job = {p->grad, p->data, wd, shift, shift + width, (1u << width) - 1u, prefix, hist};
    dsc_parallel_ranges(p->numel, hist_range, &job);
}

static void radix_hist(dsc_group *grp, int wd_key, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        param_hist(p, param_wd(p, wd_key), shift, width, prefix, hist);
    }
}

/* The radix select's three passes: the top 11 bits, then 10 and 10. */
static const int radix_shift[3] = {20, 10, 0}, radix_width[3] = {11, 10, 10};

size_t dsc_coordclip_first_pass(const dsc_param *p, float wd, size_t *hist)
{
    size_t before = 0, after = 0;
    for (uint32_t b = DSC_COORDCLIP_NONFINITE_BIN; b < DSC_COORDCLIP_BINS; b++) before += hist[b];
    param_hist(p, wd, radix_shift[0], radix_width[0], 0, hist);
    for (uint32_t b = DSC_COORDCLIP_NONFINITE_BIN; b < DSC_COORDCLIP_BINS; b++) after += hist[b];
    return after - before;
}

/* Bit pattern of the entry of descending rank `rank` (0-based); `first`,
 * when not NULL, is the first pass's histogram, already counted. */
static uint32_t select_radix(dsc_group *grp, int wd_key, size_t rank, const size_t *first)
{
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t hist[RADIX_BINS];
        if (pass == 0 && first) {
            memcpy(hist, first, sizeof hist);
        } else {
            memset(hist, 0, sizeof hist);
            radix_hist(grp, wd_key, radix_shift[pass], radix_width[pass], prefix, hist);
        }
        uint32_t b = (1u << radix_width[pass]) - 1u;
        for (;; b--) { /* the largest digits first */
            if (rank < hist[b] || b == 0) break;
            rank -= hist[b];
        }
        prefix = (prefix << radix_width[pass]) | b;
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

float dsc_coordclip_tau(dsc_group *grp, double c, double scale, int wd_key, int reference,
                        const size_t *first)
{
    if (c >= 1.0) return 0.0f;
    size_t N = 0;
    for (int k = 0; k < grp->nparams; k++) N += dsc_group_param(grp, k)->numel;
    if (N == 0) return 0.0f;
    size_t rank = (size_t)floor((double)N * c); /* 0-based index in descending order */
    if (rank > N - 1) rank = N - 1;
    uint32_t u = reference ? select_bisect(grp, wd_key, rank)
                           : select_radix(grp, wd_key, rank, first);
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

DSC_WIDE static void clip_range(const void *ctx, size_t lo, size_t hi)
{
    const clip_job *job = ctx;
    const float tau = job->tau;
    if (job->out == job->in) { /* in place: its own loop (see transform_range below) */
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

/* The group keys coordinate_clip / coordinate_clip_scale: every gradient
 * of the group clipped at one tau into p->work. */
static void coordclip_apply(dsc_group *grp, int reference)
{
    double c = grp->wrap.coord_clip;
    if (!(c > 0.0) || grp->nparams == 0) return;
    float tau = dsc_coordclip_tau(grp, c, grp->wrap.coord_clip_scale, -1, reference, NULL);
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        clip_into(p->work, p->grad, p->numel, tau, reference);
        p->grad = p->work;
    }
}


/* ------------------------------------------------ the optimizer-wide settings */

dsc_status dsc_optimizer_set_clip(dsc_optimizer *opt, dsc_clip_kind kind, double limit)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_transform_check_clip((int)kind, limit, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "set_clip: %s", err);
    dsc_clip_kind old_kind = opt->clip_kind;
    opt->clip_kind = kind;
    st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) {
        opt->clip_kind = old_kind;
        return st;
    }
    opt->clip_limit = limit;
    return DSC_OK;
}

dsc_status dsc_optimizer_set_nonfinite(dsc_optimizer *opt, dsc_nonfinite_policy policy)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_transform_check_nonfinite((int)policy, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "set_nonfinite: %s", err);
    dsc_nonfinite_policy old = opt->nonfinite;
    opt->nonfinite = policy;
    st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) opt->nonfinite = old;
    return st;
}

dsc_status dsc_transform_check_clip(int kind, double limit, char *err, size_t errlen)
{
    if (kind < DSC_CLIP_NONE || kind > DSC_CLIP_VALUE) {
        snprintf(err, errlen, "kind %d is not a dsc_clip_kind", kind);
        return DSC_OUT_OF_RANGE;
    }
    if (kind != DSC_CLIP_NONE && !(limit > 0.0 && isfinite(limit))) {
        snprintf(err, errlen, "limit must be finite and > 0, got %g", limit);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

dsc_status dsc_transform_check_nonfinite(int policy, char *err, size_t errlen)
{
    if (policy < DSC_NONFINITE_SKIP || policy > DSC_NONFINITE_FAIL) {
        snprintf(err, errlen, "%d is not a policy", policy);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

static const char *const clip_names[] = {"none", "norm", "value"};
static const char *const nonfinite_names[] = {"skip", "zero", "fail"};

const char *dsc_clip_kind_name(dsc_clip_kind k)
{
    return (int)k >= DSC_CLIP_NONE && k <= DSC_CLIP_VALUE ? clip_names[k] : "?";
}

const char *dsc_nonfinite_name(dsc_nonfinite_policy p)
{
    return (int)p >= DSC_NONFINITE_SKIP && p <= DSC_NONFINITE_FAIL ? nonfinite_names[p] : "?";
}

int dsc_clip_kind_from_name(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, clip_names[i])) return i;
    return -1;
}

int dsc_nonfinite_from_name(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, nonfinite_names[i])) return i;
    return -1;
}

int dsc_transform_needs_work(const dsc_optimizer *opt)
{
    for (int i = 0; i < opt->ngroups; i++)
        if (opt->groups[i]->wrap.coord_clip > 0 || opt->groups[i]->wrap.maximize) return 1;
    return opt->clip_kind != DSC_CLIP_NONE || opt->nonfinite == DSC_NONFINITE_ZERO;
}

/* ------------------------------------------- phase 1: scan and decide */

dsc_status dsc_transform_decide(dsc_optimizer *opt, dsc_grad_plan *plan)
{
    dsc_step_stats *st = &opt->stats;
    plan->skip = 0;
    plan->zero_bad = 0;
    plan->scale = 1.0f;
    plan->clamp = INFINITY;
    for (int i = 0; i < opt->nparams; i++) opt->params[i]->prescanned = 0;

    /* The scan: non-finite entries always (cheap); norms when asked for or
     * needed by norm clipping. */
    size_t bad = 0;
    const char *first_bad = NULL;
    int norms = opt->want_stats || opt->clip_kind == DSC_CLIP_NORM;
    double sumsq = 0, sumabs = 0, absmax = 0;
    if (opt->shard) { /* each rank scans its share; the sums are all-reduced (shard.c) */
        dsc_status s = dsc_shard_scan(opt, norms, &bad, &first_bad, &sumsq, &sumabs, &absmax);
        if (s != DSC_OK) return s;
    } else if (norms) { /* one pass: the norm scan counts the non-finite entries too */
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            dsc_grad_scan s = dsc_vec_scan(p->grad, p->numel);
            if (s.nonfinite && !first_bad) first_bad = p->name;
            bad += s.nonfinite;
            sumsq += s.sumsq;
            sumabs += s.sumabs;
            if (s.absmax > absmax) absmax = s.absmax;
        }
    } else {
        /* A family's prescan that proves its gradient finite replaces the
         * count (see dsc_family.prescan): only where the family then reads
         * the gradient as it is now, on the fast path. */
        const int fold = !opt->reference && !dsc_transform_needs_work(opt);
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            const dsc_group *g = opt->groups[p->group];
            if (fold && !p->bf16 && g->family->prescan && g->family->prescan(g, p)) continue;
            size_t b = dsc_vec_count_nonfinite(p->grad, p->numel);
            if (b && !first_bad) first_bad = p->name;
            bad += b;
        }
    }
    st->grad_l2 = st->grad_l1 = st->grad_linf = NAN;
    if (norms) {
        st->grad_l2 = sqrt(sumsq);
        if (opt->want_stats) {
            st->grad_l1 = sumabs;
            st->grad_linf = absmax;
        }
    }
    st->nonfinite = bad;
    st->clip_scale = 1.0;
    st->step = opt->step;

    /* The non-finite policy. */
    if (bad) {
        if (opt->nonfinite == DSC_NONFINITE_FAIL)
            return dsc_fail(opt, DSC_NONFINITE,
                            "step %lld: %zu non-finite gradient entries (first in \"%s\"); "
                            "nothing was changed", (long long)opt->step, bad, first_bad);
        if (opt->nonfinite == DSC_NONFINITE_SKIP) {
            plan->skip = 1;
            st->skipped = 1;
            st->skipped_total++;
            st->update_l2 = opt->want_stats ? 0.0 : NAN;
            return DSC_OK;
        }
        plan->zero_bad = 1;
        st->zeroed_total += (int64_t)bad;
    }

    /* Clipping. From here on the step cannot fail (the families validated
     * in step.c before this), so the counter counts applied clips. */
    if (opt->clip_kind == DSC_CLIP_NORM && st->grad_l2 > opt->clip_limit) {
        /* torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6) */
        st->clip_scale = opt->clip_limit / (st->grad_l2 + 1e-6);
        plan->scale = (float)st->clip_scale;
        st->clipped_total++;
    }
    if (opt->clip_kind == DSC_CLIP_VALUE) plan->clamp = (float)opt->clip_limit;
    return DSC_OK;
}

/* ------------------------------------------------------ phase 2: apply */

/* out = f(in) for zeroing, the norm factor and the value bound (in may
 * equal out). Per-thread ranges of a plain loop; in place and out of place
 * are separate loops, because a compiler that cannot rule out a partial
 * overlap keeps a scalar fallback that equal pointers would select. */
typedef struct {
    float *out;
    const float *in;
    float scale, clamp;
    int zero_bad;
} transform_job;

DSC_BODY float transform_one(float v, int zero_bad, float scale, float clamp)
{
    if (zero_bad) v = isfinite(v) ? v : 0.0f;
    v *= scale;
    v = v > clamp ? clamp : v;
    v = v < -clamp ? -clamp : v;
    return v;
}

DSC_WIDE static void transform_range(const void *ctx, size_t lo, size_t hi)
{
    const transform_job *job = ctx;
    const float scale = job->scale, clamp = job->clamp;
    const int zero_bad = job->zero_bad;
    if (job->out == job->in) {
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = transform_one(x[i], zero_bad, scale, clamp);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = transform_one(in[i], zero_bad, scale, clamp);
    }
}

void dsc_transform_apply(dsc_optimizer *opt, const dsc_grad_plan *plan)
{
    /* 1. Zeroing, norm factor, value bound: element-wise, one pass. */
    if (plan->zero_bad || plan->scale != 1.0f || plan->clamp != INFINITY) {
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            transform_job job = {p->work, p->grad, plan->scale, plan->clamp, plan->zero_bad};
            dsc_parallel_ranges(p->numel, transform_range, &job);
            p->grad = p->work;
        }
    }
    /* 2. Coordinate-wise clipping, per group. */
    for (int gi = 0; gi < opt->ngroups; gi++) coordclip_apply(opt->groups[gi], opt->reference);
    /* 3. maximize for the families without their own key (wrap.c). */
    for (int gi = 0; gi < opt->ngroups; gi++) dsc_wrap_pre(opt->groups[gi]);
}
