/* coordclip.c - coordinate-wise gradient clipping (Pan and Li, "Toward
 * Understanding Why Adam Converges Faster Than SGD for Transformers",
 * arXiv 2306.00204; official code panyan7/adam-vs-sgd): the transform, the
 * group-level option any optimizer accepts, and the families sgd_clip and
 * adam_clip.
 *
 * Threshold (docs/optimizers.md, sgd_clip and adam_clip), over all tensors X of a group
 * and a fraction c = coordinate_clip:
 *   c == 0: no clipping;  c == 1: tau = 0;
 *   else tau = the floor(N*c)-th largest |x| (0-based, N*c in double) of the
 *        N values of X, recomputed every step;
 *   tau <- tau*threshold_scale;  x <- x if |x| < tau, else sign(x)*tau.
 * tau is found without sorting and without memory: the fast path is a radix
 * select on the bits of |x| (a non-negative float orders like its bit
 * pattern): three passes of 11, 10 and 10 bits, each a histogram of the
 * entries that share the digits found so far. Integer counts are exact, so
 * any thread count gives the same tau. The reference bisects on the bit
 * pattern (31 counting passes). Both give exactly the value a full sort
 * puts at index floor(N*c), ties included.
 *
 * sgd_clip (torch SGD keys + coordinate_clip, threshold_scale, normalize):
 *   g <- clip(g) over the group (raw gradients, before weight decay)
 *   g <- g*sqrt(numel)/|g|_2 per tensor   (normalize; skipped when |g| = 0)
 *   g <- g + wd*p;  momentum, nesterov and update as sgd (first buffer = g)
 * adam_clip (adam keys + coordinate_clip, threshold_scale):
 *   t <- t + 1;  g <- g + wd*p (L2, BEFORE clipping);  gc = clip(g) over the group
 *   m <- b1*m + (1-b1)*gc (clipped);  v <- b2*v + (1-b2)*g*g (UNclipped)
 *   p <- p - (lr/(1-b1^t)) * m/(sqrt(v)/sqrt(1-b2^t) + eps)
 * These follow the official foreach=True path (the single-tensor path of the
 * official classes does not clip at all); amsgrad is not offered (the foreach
 * path drops its running max). Golden files: sgd_clip_momentum_4x6,
 * sgd_clip_normalize_nesterov_3x5, adam_clip_default_4x6, adam_clip_wd_8x3.
 *
 * The group-level option: a spec such as "adamw:lr=1e-3,coordinate_clip=0.1,
 * coordinate_clip_scale=1" clips the gradients of that group in the step
 * driver, before the family runs, into each parameter's work buffer (the
 * caller's gradient is only read). Every family but sgd_clip and adam_clip
 * (which define coordinate_clip and threshold_scale themselves) accepts the
 * two keys; they are fixed when the group is created (set_hyper does not
 * know them, and checkpoints do not store them: the spec given at set-up
 * restores them). */
#include "../core/internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

static inline float clip_tau(float x, float tau)
{
    return fabsf(x) < tau ? x : dsc_signf(x) * tau;
}

static float param_wd(const dsc_param *p, int wd_key)
{
    return wd_key >= 0 ? (float)p->hp[wd_key] : 0.0f;
}

#define RADIX_BINS 2048

/* hist[digit] += count of entries whose bits above `shift + width` equal
 * `prefix`, digit = the `width` bits from `shift`. */
static void radix_hist(dsc_group *grp, int wd_key, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    const int pshift = shift + width;
    const uint32_t dmask = (1u << width) - 1u;
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        const float *g = p->grad, *x = p->data;
        const float wd = param_wd(p, wd_key);
        const size_t n = p->numel;
#pragma omp parallel num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        {
            size_t local[RADIX_BINS];
            memset(local, 0, sizeof local);
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < n; i++) {
                uint32_t u = abs_bits(src_at(g, x, wd, i));
                if ((pshift >= 32 ? 0u : u >> pshift) == prefix) local[(u >> shift) & dmask]++;
            }
#pragma omp critical(dsc_coordclip_hist)
            for (uint32_t b = 0; b <= dmask; b++) hist[b] += local[b];
        }
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
    if (job->out == job->in) { /* in place: its own loop (see step.c's transform) */
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = clip_tau(x[i], tau);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = clip_tau(in[i], tau);
    }
}

static void clip_into(float *out, const float *in, size_t n, float tau, int reference)
{
    if (reference) {
        for (size_t i = 0; i < n; i++) out[i] = clip_tau(in[i], tau);
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

/* --------------------------------------------------------- fixed-order sums */

/* Sum of clip(g)^2 in double with the fixed blocking of dsc_reduce_blocks
 * (the same bits for any thread count). */
typedef struct {
    const float *g;
    float tau;
} clipped_ctx;

/* One block: the clipped values into a block-sized stack buffer (L1),
 * then the fixed-order block sum every reduction uses (dsc_dot_serial), so
 * the lanes are written once, and the reference, which runs the same
 * blocks serially, gets the same bits. */
DSC_WIDE static double clipped_block(const void *ctx, size_t start, size_t len)
{
    const clipped_ctx *c = ctx;
    const float *restrict g = c->g + start;
    const float tau = c->tau;
    float clipped[DSC_RED_BLOCK];
    for (size_t i = 0; i < len; i++) clipped[i] = clip_tau(g[i], tau);
    return dsc_dot_serial(clipped, clipped, len);
}

static double clipped_sumsq(const float *g, size_t n, float tau, int par)
{
    clipped_ctx c = {g, tau};
    return dsc_reduce_blocks(n, par, clipped_block, &c);
}

/* --------------------------------------------------------------- sgd_clip */

enum { SC_LR, SC_MOMENTUM, SC_DAMPENING, SC_WEIGHT_DECAY, SC_NESTEROV, SC_COORDINATE_CLIP,
       SC_THRESHOLD_SCALE, SC_NORMALIZE, SC_NKEYS };

static const dsc_key_info sgd_clip_keys[SC_NKEYS] = {
    [SC_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [SC_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0, 0, 1, 0, 0, "momentum factor"},
    [SC_DAMPENING] = {"dampening", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                      "dampening of the gradient in the buffer"},
    [SC_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                         "L2 penalty added to the clipped gradient"},
    [SC_NESTEROV] = {"nesterov", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "Nesterov momentum"},
    [SC_COORDINATE_CLIP] = {"coordinate_clip", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                            "fraction of the largest |g| of the group clipped (0: off)"},
    [SC_THRESHOLD_SCALE] = {"threshold_scale", DSC_KEY_FLOAT, 1, 0, 1e30, 0, 0,
                            "multiplier on the clipping threshold"},
    [SC_NORMALIZE] = {"normalize", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                      "rescale each clipped gradient to norm sqrt(numel)"},
};

static dsc_status sgd_clip_check(const double *hp, char *err, size_t n)
{
    if (hp[SC_NESTEROV] != 0 && (hp[SC_MOMENTUM] <= 0 || hp[SC_DAMPENING] != 0)) {
        snprintf(err, n, "sgd_clip: nesterov needs momentum > 0 and dampening = 0");
        return DSC_INVALID_ARGUMENT;
    }
    return DSC_OK;
}

enum { SC_SLOT_BUF, SC_SLOT_T };

static dsc_status sgd_clip_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot(plan, "momentum_buffer", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    return DSC_OK;
}

typedef struct {
    float tau;       /* INFINITY: no clipping */
    float factor;    /* normalize: sqrt(numel)/|clip(g)|, else 1 */
    int normalize;
    float lr, mu, keep, wd;
    int momentum, first, nesterov;
} sgd_clip_scalars;

static void sgd_clip_step_ref(float *p, const float *g, float *b, size_t n,
                              sgd_clip_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = clip_tau(g[i], s.tau);                         /* 1. clip */
        if (s.normalize) gi = gi * s.factor;                      /* 2. normalize */
        if (s.wd != 0.0f) gi = gi + s.wd * p[i];                  /* 3. L2 */
        float d = gi;
        if (s.momentum) {                                         /* 4. as sgd */
            if (s.first) b[i] = gi;
            else b[i] = s.mu * b[i] + s.keep * gi;
            d = s.nesterov ? gi + s.mu * b[i] : b[i];
        }
        p[i] = p[i] - s.lr * d;
    }
}

/* Fast: per-thread ranges; L2 and the momentum form are inlined as
 * constants (one loop each), normalization and the first step are selects. */
typedef struct {
    float *p, *b;
    const float *g;
    sgd_clip_scalars s;
} sgd_clip_job;

enum { SC_PLAIN, SC_HEAVY_BALL, SC_NESTEROV_FORM };

DSC_BODY void sgd_clip_body(const sgd_clip_job *job, size_t lo, size_t hi, const int l2,
                            const int form)
{
    float *restrict p = job->p, *restrict b = job->b;
    const float *restrict g = job->g;
    const sgd_clip_scalars s = job->s;
    const float tau = s.tau, f = s.factor, lr = s.lr, mu = s.mu, keep = s.keep, wd = s.wd;
    const int normalize = s.normalize, first = s.first;
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i];
        float gi = clip_tau(g[i], tau);
        gi = normalize ? gi * f : gi;
        if (l2) gi = gi + wd * pi;
        float d = gi;
        if (form != SC_PLAIN) {
            float bi = first ? gi : mu * b[i] + keep * gi;
            b[i] = bi;
            d = form == SC_NESTEROV_FORM ? gi + mu * bi : bi;
        }
        p[i] = pi - lr * d;
    }
}

static void sgd_clip_range(const void *ctx, size_t lo, size_t hi)
{
    const sgd_clip_job *job = ctx;
    int form = !job->s.momentum ? SC_PLAIN : job->s.nesterov ? SC_NESTEROV_FORM : SC_HEAVY_BALL;
    if (job->s.wd != 0.0f) {
        if (form == SC_PLAIN) sgd_clip_body(job, lo, hi, 1, SC_PLAIN);
        else if (form == SC_HEAVY_BALL) sgd_clip_body(job, lo, hi, 1, SC_HEAVY_BALL);
        else sgd_clip_body(job, lo, hi, 1, SC_NESTEROV_FORM);
    } else {
        if (form == SC_PLAIN) sgd_clip_body(job, lo, hi, 0, SC_PLAIN);
        else if (form == SC_HEAVY_BALL) sgd_clip_body(job, lo, hi, 0, SC_HEAVY_BALL);
        else sgd_clip_body(job, lo, hi, 0, SC_NESTEROV_FORM);
    }
}

static void sgd_clip_step_fast(float *p, const float *g, float *b, size_t n,
                               sgd_clip_scalars s)
{
    sgd_clip_job job = {.p = p, .b = b, .g = g, .s = s};
    dsc_parallel_ranges(n, sgd_clip_range, &job);
}

static dsc_status sgd_clip_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    /* The threshold is a group property: every parameter shares the group's c. */
    double c = grp->cur[SC_COORDINATE_CLIP];
    float tau = INFINITY;
    if (c > 0) tau = dsc_coordclip_tau(grp, c, grp->cur[SC_THRESHOLD_SCALE], -1,
                                       ctx->reference);
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        int64_t *t = p->slots[SC_SLOT_T].data;
        sgd_clip_scalars s = {
            .tau = tau, .factor = 1.0f, .normalize = hp[SC_NORMALIZE] != 0,
            .lr = (float)hp[SC_LR], .mu = (float)hp[SC_MOMENTUM],
            .keep = (float)(1.0 - hp[SC_DAMPENING]), .wd = (float)hp[SC_WEIGHT_DECAY],
            .momentum = hp[SC_MOMENTUM] != 0, .first = *t == 0,
            .nesterov = hp[SC_NESTEROV] != 0,
        };
        if (s.normalize) {
            double nrm = sqrt(clipped_sumsq(p->grad, p->numel, tau, !ctx->reference));
            if (nrm > 0) s.factor = (float)(sqrt((double)p->numel) / nrm);
            else s.normalize = 0; /* a zero gradient stays zero (the official code divides by 0) */
        }
        float *b = p->slots[SC_SLOT_BUF].data;
        if (ctx->reference) sgd_clip_step_ref(p->data, p->grad, b, p->numel, s);
        else sgd_clip_step_fast(p->data, p->grad, b, p->numel, s);
        if (s.momentum) *t += 1;
    }
    return DSC_OK;
}

/* -------------------------------------------------------------- adam_clip */

enum { AC_LR, AC_BETA1, AC_BETA2, AC_EPS, AC_WEIGHT_DECAY, AC_COORDINATE_CLIP,
       AC_THRESHOLD_SCALE, AC_NKEYS };

static const dsc_key_info adam_clip_keys[AC_NKEYS] = {
    [AC_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [AC_BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [AC_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [AC_EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 1, 0,
                "added to the bias-corrected root of the second moment"},
    [AC_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                         "L2 penalty added to the gradient before clipping"},
    [AC_COORDINATE_CLIP] = {"coordinate_clip", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                            "fraction of the largest |g| of the group clipped (0: off)"},
    [AC_THRESHOLD_SCALE] = {"threshold_scale", DSC_KEY_FLOAT, 1, 0, 1e30, 0, 0,
                            "multiplier on the clipping threshold"},
};

enum { AC_SLOT_M, AC_SLOT_V, AC_SLOT_T };

static dsc_status adam_clip_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                 char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot(plan, "exp_avg", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "exp_avg_sq", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    return DSC_OK;
}

typedef struct {
    float tau, wd;
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float sbc2, step, eps;
} adam_clip_scalars;

static void adam_clip_step_ref(float *p, const float *g, float *m, float *v, size_t n,
                               adam_clip_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = src_at(g, p, s.wd, i);                          /* 1. L2 */
        float gc = clip_tau(gi, s.tau);                            /* 2. clip */
        m[i] = s.beta1 * m[i] + s.one_minus_beta1 * gc;            /* 3. clipped */
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;       /*    unclipped */
        float denom = sqrtf(v[i]) / s.sbc2 + s.eps;                /* 4. */
        p[i] = p[i] - s.step * (m[i] / denom);
    }
}

/* Fast: per-thread ranges, the L2 term inlined as a constant. */
typedef struct {
    float *p, *m, *v;
    const float *g;
    adam_clip_scalars s;
} adam_clip_job;

DSC_BODY void adam_clip_body(const adam_clip_job *job, size_t lo, size_t hi, const int l2)
{
    float *restrict p = job->p, *restrict m = job->m, *restrict v = job->v;
    const float *restrict g = job->g;
    const adam_clip_scalars s = job->s;
    const float tau = s.tau, wd = s.wd, b1 = s.beta1, c1 = s.one_minus_beta1, b2 = s.beta2,
                c2 = s.one_minus_beta2, sbc2 = s.sbc2, step = s.step, eps = s.eps;
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i];
        float gi = l2 ? g[i] + wd * pi : g[i];
        float mi = b1 * m[i] + c1 * clip_tau(gi, tau);
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step * (mi / (sqrtf(vi) / sbc2 + eps));
    }
}

DSC_WIDE static void adam_clip_range(const void *ctx, size_t lo, size_t hi)
{
    const adam_clip_job *job = ctx;
    if (job->s.wd != 0.0f) adam_clip_body(job, lo, hi, 1);
    else adam_clip_body(job, lo, hi, 0);
}

static void adam_clip_step_fast(float *p, const float *g, float *m, float *v, size_t n,
                                adam_clip_scalars s)
{
    adam_clip_job job = {.p = p, .m = m, .v = v, .g = g, .s = s};
    dsc_parallel_ranges(n, adam_clip_range, &job);
}

static dsc_status adam_clip_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    /* tau over g + wd*p of every parameter, before any of them moves. */
    double c = grp->cur[AC_COORDINATE_CLIP];
    float tau = INFINITY;
    if (c > 0) tau = dsc_coordclip_tau(grp, c, grp->cur[AC_THRESHOLD_SCALE], AC_WEIGHT_DECAY,
                                       ctx->reference);
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        int64_t *t = p->slots[AC_SLOT_T].data;
        *t += 1;
        double b1 = hp[AC_BETA1], b2 = hp[AC_BETA2];
        double bc1 = 1.0 - pow(b1, (double)*t), bc2 = 1.0 - pow(b2, (double)*t);
        adam_clip_scalars s = {
            .tau = tau, .wd = (float)hp[AC_WEIGHT_DECAY],
            .beta1 = (float)b1, .one_minus_beta1 = (float)(1.0 - b1),
            .beta2 = (float)b2, .one_minus_beta2 = (float)(1.0 - b2),
            .sbc2 = (float)sqrt(bc2), .step = (float)(hp[AC_LR] / bc1),
            .eps = (float)hp[AC_EPS],
        };
        float *m = p->slots[AC_SLOT_M].data, *v = p->slots[AC_SLOT_V].data;
        if (ctx->reference) adam_clip_step_ref(p->data, p->grad, m, v, p->numel, s);
        else adam_clip_step_fast(p->data, p->grad, m, v, p->numel, s);
    }
    return DSC_OK;
}

/* --------------------------------------------------------------- families */

const dsc_family dsc_family_sgd_clip = {
    .info = {
        .name = "sgd_clip",
        .summary = "SGD with momentum on coordinate-wise clipped gradients",
        .paper = "Pan & Li, Toward Understanding Why Adam Converges Faster Than SGD for "
                 "Transformers, arXiv 2306.00204 (2023)",
        .source = "panyan7/adam-vs-sgd torch_optimizer/sgd_clip.py (foreach path) "
                  "@d85d3a1fc8a7a328bde899f69fc5443406d2767b",
        .nkeys = SC_NKEYS, .keys = sgd_clip_keys, .matrix = 0,
    },
    .check = sgd_clip_check, .plan_param = sgd_clip_plan, .step = sgd_clip_step,
};

const dsc_family dsc_family_adam_clip = {
    .info = {
        .name = "adam_clip",
        .summary = "Adam whose first moment takes coordinate-wise clipped gradients",
        .paper = "Pan & Li, Toward Understanding Why Adam Converges Faster Than SGD for "
                 "Transformers, arXiv 2306.00204 (2023)",
        .source = "panyan7/adam-vs-sgd torch_optimizer/adam_clip.py (foreach path) "
                  "@d85d3a1fc8a7a328bde899f69fc5443406d2767b",
        .nkeys = AC_NKEYS, .keys = adam_clip_keys, .matrix = 0,
    },
    .plan_param = adam_clip_plan, .step = adam_clip_step,
};
