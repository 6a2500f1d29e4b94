/* lanton.c - LANTON, noise-adaptive layer-wise learning rates on Muon's LMO.
 * PROVISIONAL (docs/matrix.md, LANTON).
 *
 * Paper: Hao, Gong, Xu, Wang, Liu, "Noise-Adaptive Layerwise Learning Rates:
 * Accelerating Geometry-Aware Optimization for Deep Neural Network
 * Training", arXiv 2510.14009. No official code exists and the text of its
 * Algorithm 1 could not be read, so this file implements the project's
 * provisional definition (the golden file tests that definition, not the
 * paper). Its two open points live in two functions that can be corrected
 * alone: the noise estimator (lanton_noise_update) and the per-layer rate
 * rule (lanton_layer_rate).
 *
 * All matrix parameters of the group form one LMO group. Per step:
 *   1. each layer: B <- beta1 B + (1 - beta1) G;  D = G - B (ndim > 2 viewed
 *      as d0 x rest);  Hn <- beta2 Hn + (1 - beta2) ||D||_*^2 (nuclear norm)
 *   2. Hmin = min of Hn over the group
 *   3. eta = lr sqrt((Hmin + eps) / (Hn + eps))   (the least noisy layer gets lr)
 *   4. O = ns5(B, ns_steps) * shape_scale(B as a matrix)   (no Nesterov)
 *   5. W <- W (1 - eta wd);  W <- W - eta O
 * Vectors are rejected (DSC_SHAPE); route them to a fallback group.
 * Golden: lanton_provisional_4x6_6x4_b.
 *
 * The nuclear norm comes from the eigenvalues of the smaller Gram matrix in
 * double (src/kernels/nuclear.h): exact enough, but O(r^3) per layer. */
#include "matrix_common.h"

#include "../kernels/nuclear.h"

#include <string.h>

enum { LR, BETA1, BETA2, EPS, NS_STEPS, WEIGHT_DECAY, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 0.02, 0, 1e6, 0, 0, "learning rate of the least noisy layer"},
    [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "momentum: B <- beta1 B + (1 - beta1) G"},
    [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.99, 0, 1, 0, 0, "EMA factor of the noise estimate Hn"},
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 0, 0, "added to Hn and Hmin in the rate ratio"},
    [NS_STEPS] = {"ns_steps", DSC_KEY_INT, 5, 0, 100, 0, 0, "Newton-Schulz iterations"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled weight decay: W <- W (1 - eta wd)"},
};

enum { SLOT_B, SLOT_H };

/* Scratch: a tensor-sized buffer (D, then O), then the larger of the ns5
 * and nuclear-norm workspaces. */
static size_t need(const dsc_param *p)
{
    if (p->ndim < 2) return 0;
    dsc_matview v = dsc_matview_flat(p);
    size_t ns = dsc_ns5_work_floats(v.m, v.n);
    size_t nuc = (dsc_nuclear_work_bytes(v.m, v.n) + sizeof(float) - 1) / sizeof(float);
    return dsc_align16(p->numel) + (ns > nuc ? ns : nuc);
}

static void plan_group(const dsc_group *g, dsc_plan *plan)
{
    dsc_plan_scratch_max(g, plan, need);
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan, char *err,
                             size_t n)
{
    (void)g;
    if (p->ndim < 2) return dsc_reject_vector("lanton", p, err, n);
    dsc_plan_slot_shaped(plan, "momentum_buffer", DSC_DT_F32, p->ndim, p->shape);
    dsc_plan_slot(plan, "noise", DSC_DT_F64, 1);
    return DSC_OK;
}

/* The element-wise loops: one range function each, the same float
 * operations on both paths; the reference runs it as one serial range. */
typedef struct {
    float *B, *d, *W;
    const float *G, *O;
    float b1, w1;           /* noise estimator */
    float decay, neg, scale; /* update */
} lanton_job;

static void run_ranges(size_t n, int reference, dsc_range_fn fn, const lanton_job *job)
{
    if (reference) fn(job, 0, n);
    else dsc_parallel_ranges(n, fn, job);
}

static void noise_range(const void *ctx, size_t lo, size_t hi)
{
    const lanton_job *J = ctx;
    float *restrict B = J->B, *restrict d = J->d;
    const float *restrict G = J->G;
    const float b1 = J->b1, w1 = J->w1;
    for (size_t i = lo; i < hi; i++) {
        float b = b1 * B[i] + w1 * G[i];
        B[i] = b;
        d[i] = G[i] - b;
    }
}

DSC_WIDE static void update_range(const void *ctx, size_t lo, size_t hi)
{
    const lanton_job *J = ctx;
    float *restrict W = J->W;
    const float *restrict O = J->O;
    const float decay = J->decay, neg = J->neg, scale = J->scale;
    for (size_t i = lo; i < hi; i++) W[i] = W[i] * decay + neg * (O[i] * scale);
}

/* Step 1, the noise estimator (open point (a) in docs/matrix.md): updates the
 * momentum B in place and returns the new Hn. D = G - B_new goes to `d`. */
static double lanton_noise_update(float *B, const float *G, float *d, size_t rows, size_t cols,
                                  double beta1, double beta2, double hn, int reference,
                                  void *work)
{
    const size_t n = rows * cols;
    lanton_job job = {.B = B, .d = d, .G = G, .b1 = (float)beta1, .w1 = (float)(1.0 - beta1)};
    run_ranges(n, reference, noise_range, &job);
    double nuc = dsc_nuclear_norm(d, rows, cols, reference, work);
    return beta2 * hn + (1.0 - beta2) * nuc * nuc;
}

/* Step 3, the per-layer rate rule (open point (b) in docs/matrix.md). */
static double lanton_layer_rate(double lr, double hn, double hmin, double eps)
{
    return lr * sqrt((hmin + eps) / (hn + eps));
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    const int ref = ctx->reference;
    double hmin = INFINITY;
    for (int k = 0; k < grp->nparams; k++) { /* 1-2 */
        dsc_param *p = dsc_group_param(grp, k);
        dsc_matview v = dsc_matview_flat(p);
        float *D = grp->scratch;
        double *hn = p->slots[SLOT_H].data;
        *hn = lanton_noise_update(p->slots[SLOT_B].data, p->grad, D, v.m, v.n, p->hp[BETA1],
                                  p->hp[BETA2], *hn, ref, D + dsc_align16(p->numel));
        if (*hn < hmin) hmin = *hn;
    }
    for (int k = 0; k < grp->nparams; k++) { /* 3-5 */
        dsc_param *p = dsc_group_param(grp, k);
        dsc_matview v = dsc_matview_flat(p);
        float *O = grp->scratch;
        const double hn = *(double *)p->slots[SLOT_H].data;
        const double eta = lanton_layer_rate(p->hp[LR], hn, hmin, p->hp[EPS]);
        dsc_ns5(p->slots[SLOT_B].data, O, 1, v.m, v.n, (int)p->hp[NS_STEPS], ref, 0,
                O + dsc_align16(p->numel));
        const float scale = (float)dsc_shape_scale(v.m, v.n);
        const float decay = (float)(1.0 - eta * p->hp[WEIGHT_DECAY]), neg = -(float)eta;
        lanton_job job = {.W = p->data, .O = O, .decay = decay, .neg = neg, .scale = scale};
        run_ranges(p->numel, ref, update_range, &job);
    }
    return DSC_OK;
}

const dsc_family dsc_family_lanton = {
    .info = {
        .name = "lanton",
        .summary = "PROVISIONAL: Muon LMO with layer rates from a nuclear-norm noise estimate",
        .paper = "Hao et al., Noise-Adaptive Layerwise Learning Rates, arXiv 2510.14009",
        .source = "none found; project's provisional rule, docs/matrix.md (LANTON)",
        .nkeys = NKEYS, .keys = keys, .matrix = 1,
    },
    .plan_param = plan_param, .plan_group = plan_group, .step = step,
};
