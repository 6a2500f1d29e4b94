/* auon.c - AuON (cosh-based normalization) and HybridAuON (with ns5).
 *
 * auon (docs/optimizers.md; ryyzn9/AuON auon/optimizer.py @bba2e82, class AuON),
 * any shape, the whole tensor at once:
 *   1. W <- W (1 - lr wd)                   if wd != 0 (kept when 3. stops)
 *   2. M <- lerp(M, G, 1 - momentum);  U <- lerp(G, M, momentum)  (always Nesterov)
 *   3. n = ||U||_F; n == 0: stop (no update)
 *   4. Z = gamma U / (n + 1e-7);  r = sqrt(mean(cosh(Z)^2))
 *   5. W <- W - lr U / (r + 1e-8)
 * The update is the raw Nesterov momentum divided by r in [1, cosh(gamma)],
 * not a unit-norm matrix (the packaged optimizer, which descent follows;
 * the paper normalizes first).
 * Golden: auon_4x6_b (a 1-D param inside AuON), auon_zerograd_8x8.
 *
 * auon_hybrid ( class HybridAuON): as auon, with U <- ns5(U, ns_steps)
 * between 2 and 3 when ndim >= 2, batched over the last two dims (a 4-D
 * filter is orthogonalized per (o, i) kH x kW slice; no shape scale). 1-D
 * tensors get only the cosh normalization.
 * Golden: auon_hybrid_6x4_b, auon_hybrid_ns1_16x5.
 *
 * Sums (norm, mean of cosh^2) are in double over fixed blocks, so the result
 * does not depend on the thread count. */
#include "matrix_common.h"

#include <string.h>

enum { LR, MOMENTUM, WEIGHT_DECAY, GAMMA, NS_STEPS, NKEYS };

static const dsc_key_info auon_keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 0.24, 0, 1e6, 0, 0, "learning rate"},
    [MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "momentum (EMA factor of M)"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled weight decay: W <- W (1 - lr wd)"},
    [GAMMA] = {"gamma", DSC_KEY_FLOAT, 1.5, 0, 100, 0, 0, "scale of the normalized momentum inside cosh"},
    [NS_STEPS] = {"ns_steps", DSC_KEY_INT, 5, 0, 100, 0, 0, "Newton-Schulz iterations (auon_hybrid)"},
};

enum { SLOT_M };

static int uses_ns(const dsc_group *g, const dsc_param *p)
{
    return g->family->info.nkeys > NS_STEPS && p->ndim >= 2;
}

static size_t auon_need(const dsc_group *g, const dsc_param *p)
{
    size_t need = dsc_align16(p->numel);
    if (uses_ns(g, p)) {
        dsc_matview v = dsc_matview_last2(p);
        need += dsc_ns5_work_floats(v.m, v.n);
    }
    return need;
}

static void auon_plan_group(const dsc_group *g, dsc_plan *plan)
{
    size_t most = 0;
    for (int i = 0; i < g->nparams; i++) {
        size_t need = auon_need(g, dsc_group_param_const(g, i));
        if (need > most) most = need;
    }
    plan->scratch_bytes = most * sizeof(float);
}

static dsc_status auon_plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                  char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot_shaped(plan, "momentum_buffer", DSC_DT_F32, p->ndim, p->shape);
    return DSC_OK;
}

/* Sum of cosh(s x)^2 over x: double, blocks of DSC_RED_BLOCK added in order
 * (dsc_reduce_blocks, so the same bits at any thread count). */
typedef struct {
    const float *x;
    double s;
} cosh2_ctx;

static double cosh2_block(const void *ctx, size_t start, size_t len)
{
    const cosh2_ctx *c = ctx;
    double t = 0.0;
    for (size_t i = 0; i < len; i++) {
        double v = cosh((double)c->x[start + i] * c->s);
        t += v * v;
    }
    return t;
}

static double cosh2_sum(const float *x, size_t n, double s, int reference)
{
    if (reference) {
        double t = 0.0;
        for (size_t i = 0; i < n; i++) {
            double c = cosh((double)x[i] * s);
            t += c * c;
        }
        return t;
    }
    cosh2_ctx c = {x, s};
    return dsc_reduce_blocks(n, 1, cosh2_block, &c);
}

static double sumsq(const float *x, size_t n, int reference)
{
    if (!reference) return dsc_vec_sumsq(x, n);
    double t = 0.0;
    for (size_t i = 0; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

/* The element-wise steps: one range function each, the same float
 * operations on both paths; the reference runs it as one serial range. */
typedef struct {
    float *W;
    const float *V; /* the update read by apply */
    float a, b;     /* decay; (-lr, d) */
} auon_job;

static void run_ranges(size_t n, int reference, dsc_range_fn fn, const auon_job *job)
{
    if (reference) fn(job, 0, n);
    else dsc_parallel_ranges(n, fn, job);
}

DSC_WIDE static void decay_range(const void *ctx, size_t lo, size_t hi)
{
    const auon_job *J = ctx;
    float *restrict W = J->W;
    const float decay = J->a;
    for (size_t i = lo; i < hi; i++) W[i] = W[i] * decay;
}

static void decay_weights(float *W, size_t n, float decay, int reference)
{
    auon_job job = {.W = W, .a = decay};
    run_ranges(n, reference, decay_range, &job);
}

/* Step 5: W <- W + (-lr) (U / d). */
DSC_WIDE static void apply_range(const void *ctx, size_t lo, size_t hi)
{
    const auon_job *J = ctx;
    float *restrict W = J->W;
    const float *restrict U = J->V;
    const float neg = J->a, d = J->b;
    for (size_t i = lo; i < hi; i++) W[i] = W[i] + neg * (U[i] / d);
}

static void apply(float *W, const float *U, size_t n, float lr, float d, int reference)
{
    auon_job job = {.W = W, .V = U, .a = -lr, .b = d};
    run_ranges(n, reference, apply_range, &job);
}

static dsc_status auon_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    const int ref = ctx->reference;
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double lr = p->hp[LR], wd = p->hp[WEIGHT_DECAY], gamma = p->hp[GAMMA];
        float *U = grp->scratch;
        if (wd != 0.0) decay_weights(p->data, p->numel, (float)(1.0 - lr * wd), ref); /* 1. */
        dsc_muon_momentum(p->slots[SLOT_M].data, p->grad, U, p->numel,
                          (float)p->hp[MOMENTUM], 1, ref);                           /* 2. */
        if (uses_ns(grp, p)) {                                                       /* hybrid */
            dsc_matview v = dsc_matview_last2(p);
            dsc_ns5(U, U, v.batch, v.m, v.n, (int)p->hp[NS_STEPS], ref, 0,
                    U + dsc_align16(p->numel));
        }
        double nrm = sqrt(sumsq(U, p->numel, ref));                                  /* 3. */
        if (nrm == 0.0) continue;
        double s = gamma / (nrm + 1e-7);                                             /* 4. */
        double r = sqrt(cosh2_sum(U, p->numel, s, ref) / (double)p->numel);
        apply(p->data, U, p->numel, (float)lr, (float)(r + 1e-8), ref);              /* 5. */
    }
    return DSC_OK;
}

const dsc_family dsc_family_auon = {
    .info = {
        .name = "auon",
        .summary = "Nesterov momentum divided by sqrt(mean(cosh(gamma U/||U||)^2)); any shape",
        .paper = "AuON: Alternative Unit-norm momentum-updates by Normalized nonlinear scaling, "
                 "arXiv 2509.24320",
        .source = "ryyzn9/AuON auon/optimizer.py (bba2e82), class AuON",
        .nkeys = GAMMA + 1, .keys = auon_keys, .matrix = 1,
    },
    .plan_param = auon_plan_param, .plan_group = auon_plan_group, .step = auon_step,
};

const dsc_family dsc_family_auon_hybrid = {
    .info = {
        .name = "auon_hybrid",
        .summary = "AuON with Newton-Schulz on matrices (per slice of the last two dims)",
        .paper = "AuON: Alternative Unit-norm momentum-updates by Normalized nonlinear scaling, "
                 "arXiv 2509.24320",
        .source = "ryyzn9/AuON auon/optimizer.py (bba2e82), class HybridAuON",
        .nkeys = NKEYS, .keys = auon_keys, .matrix = 1,
    },
    .plan_param = auon_plan_param, .plan_group = auon_plan_group, .step = auon_step,
};
