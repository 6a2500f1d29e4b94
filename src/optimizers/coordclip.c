/* coordclip.c - the families sgd_clip and adam_clip of Pan and Li, "Toward
 * Understanding Why Adam Converges Faster Than SGD for Transformers"
 * (arXiv 2306.00204; official code panyan7/adam-vs-sgd). The clipping
 * itself (the threshold tau and x <- clip(x, tau)) is the core's gradient
 * transform (src/core/transform.c), which any optimizer can also run as a
 * group-level stage; these two families call it on their own terms:
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
 */
#include "../core/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The value clipped: the gradient, plus wd*p for adam_clip's L2. */
static inline float src_at(const float *g, const float *p, float wd, size_t i)
{
    return wd != 0.0f ? g[i] + wd * p[i] : g[i];
}

/* ------------------------------------------------------------ the prescan */

/* The threshold's pass over x (dsc_coordclip_tau: a sample brackets tau,
 * one pass counts the values above the bracket and gathers those in it) as
 * the families' prescan (dsc_family.prescan): made in the validate phase,
 * in the place of the driver's non-finite count, into the group scratch.
 * An Inf or NaN entry of g makes x = g (+ wd*p) Inf or NaN, which the pass
 * counts: none proves the parameter's gradient finite (an x that overflows
 * from finite g and p only sends the driver to count). The group's first
 * prescan of a step takes the sample, and the step uses the pass only when
 * every parameter of the group was prescanned in this step
 * (p->prescanned). */
static void clip_plan_group(const dsc_group *g, dsc_plan *plan)
{
    size_t n = 0;
    for (int k = 0; k < g->nparams; k++) n += dsc_group_param(g, k)->numel;
    plan->scratch_bytes = dsc_coordclip_ws_bytes(n);
}

static int clip_prescan(const dsc_group *grp, dsc_param *p, double c, int wd_key)
{
    if (!(c > 0.0 && c < 1.0)) return 0; /* no select this step */
    /* The group's first prescan of this step takes the sample (the driver
     * clears every p->prescanned first): whichever parameter it is, so
     * nothing rests on the driver's order matching the group's (it does:
     * move_param keeps each group's list in the optimizer's order). */
    int started = 0;
    for (int k = 0; k < grp->nparams && !started; k++)
        started = dsc_group_param(grp, k)->prescanned;
    if (!started) dsc_coordclip_begin(grp, c, wd_key, grp->scratch, grp->scratch_bytes);
    const float wd = wd_key >= 0 ? (float)p->hp[wd_key] : 0.0f;
    size_t bad = dsc_coordclip_count(grp, p, wd, grp->scratch, grp->scratch_bytes);
    p->prescanned = 1;
    return bad == 0;
}

static int all_prescanned(const dsc_group *grp)
{
    for (int k = 0; k < grp->nparams; k++)
        if (!dsc_group_param(grp, k)->prescanned) return 0;
    return 1;
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
    for (size_t i = 0; i < len; i++) clipped[i] = dsc_clip_tau(g[i], tau);
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
        float gi = dsc_clip_tau(g[i], s.tau);                         /* 1. clip */
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
        float gi = dsc_clip_tau(g[i], tau);
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

DSC_WIDE static void sgd_clip_range(const void *ctx, size_t lo, size_t hi)
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

static int sgd_clip_prescan(const dsc_group *grp, dsc_param *p)
{
    return clip_prescan(grp, p, grp->cur[SC_COORDINATE_CLIP], -1);
}

static dsc_status sgd_clip_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    /* The threshold is a group property: every parameter shares the group's c. */
    double c = grp->cur[SC_COORDINATE_CLIP];
    float tau = INFINITY;
    if (c > 0) tau = dsc_coordclip_tau(grp, c, grp->cur[SC_THRESHOLD_SCALE], -1,
                                       ctx->reference, grp->scratch, grp->scratch_bytes,
                                       all_prescanned(grp));
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
        float gc = dsc_clip_tau(gi, s.tau);                            /* 2. clip */
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
        float mi = b1 * m[i] + c1 * dsc_clip_tau(gi, tau);
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

static int adam_clip_prescan(const dsc_group *grp, dsc_param *p)
{
    return clip_prescan(grp, p, grp->cur[AC_COORDINATE_CLIP], AC_WEIGHT_DECAY);
}

static dsc_status adam_clip_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    /* tau over g + wd*p of every parameter, before any of them moves. */
    double c = grp->cur[AC_COORDINATE_CLIP];
    float tau = INFINITY;
    if (c > 0) tau = dsc_coordclip_tau(grp, c, grp->cur[AC_THRESHOLD_SCALE], AC_WEIGHT_DECAY,
                                       ctx->reference, grp->scratch, grp->scratch_bytes,
                                       all_prescanned(grp));
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
    .check = sgd_clip_check, .plan_param = sgd_clip_plan, .plan_group = clip_plan_group,
    .step = sgd_clip_step, .prescan = sgd_clip_prescan,
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
    .plan_param = adam_clip_plan, .plan_group = clip_plan_group, .step = adam_clip_step,
    .prescan = adam_clip_prescan,
};
