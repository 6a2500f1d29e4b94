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

/* Sum of cosh(s x)^2 over x: double, blocks of DSC_RED_BLOCK added in order. */
#define PARTIALS 256
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
    size_t nblocks = (n + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK;
    double part[PARTIALS], total = 0.0;
    for (size_t b0 = 0; b0 < nblocks; b0 += PARTIALS) {
        long nb = (long)(nblocks - b0 < PARTIALS ? nblocks - b0 : PARTIALS);
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        for (long b = 0; b < nb; b++) {
            size_t start = (b0 + (size_t)b) * DSC_RED_BLOCK;
            size_t len = n - start < DSC_RED_BLOCK ? n - start : DSC_RED_BLOCK;
            double t = 0.0;
            for (size_t i = 0; i < len; i++) {
                double c = cosh((double)x[start + i] * s);
                t += c * c;
            }
            part[b] = t;
        }
        for (long b = 0; b < nb; b++) total += part[b];
    }
    return total;
}

static double sumsq(const float *x, size_t n, int reference)
{
    if (!reference) return dsc_vec_sumsq(x, n);
    double t = 0.0;
    for (size_t i = 0; i < n; i++) t += (double)x[i] * (double)x[i];
    return t;
}

static void decay_weights(float *W, size_t n, float decay, int reference)
{
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (!reference && n >= DSC_PAR_MIN)
    for (size_t i = 0; i < n; i++) W[i] = W[i] * decay;
}

/* Step 5: W <- W + (-lr) (U / d). */
static void apply(float *restrict W, const float *restrict U, size_t n, float lr, float d,
                  int reference)
{
    const float neg = -lr;
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (!reference && n >= DSC_PAR_MIN)
    for (size_t i = 0; i < n; i++) W[i] = W[i] + neg * (U[i] / d);
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
            dsc_ns5(U, U, v.batch, v.m, v.n, (int)p->hp[NS_STEPS], ref,
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
