/* lion.c - Lion, EvoLved Sign Momentum (google/automl lion_pytorch.py).
 *
 * Update (docs/optimizers.md):
 *   wd = weight_decay / lr0   if decoupled_weight_decay (lucidrains option;
 *                             lr0 = the group's lr when it was created)
 *   wd = weight_decay         otherwise
 *   p <- p * (1 - lr * wd)                   (decoupled decay on the old p)
 *   c = beta1 * m + (1 - beta1) * g;  p <- p - lr * sign(c)
 *   m <- beta2 * m + (1 - beta2) * g         (after the update, same g)
 * sign(0) = 0: a coordinate with c == 0 only decays. Only this family reads
 * the creation-time lr (g->init[LR]); the step's lr is the scheduled one.
 * Golden files: lion_default_3x5, lion_wd_betas_4x6.
 *
 * bf16 states (group key bf16_state): m is stored in bf16, read widened and
 * rounded when stored. */
#include "../core/internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { LR, BETA1, BETA2, WEIGHT_DECAY, DECOUPLED, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-4, 0, 1e6, 0, 0, "learning rate"},
    [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1,
               "interpolation between momentum and gradient for the sign"},
    [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.99, 0, 1, 0, 1, "decay of the momentum"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled decay: p <- p * (1 - lr * weight_decay)"},
    [DECOUPLED] = {"decoupled_weight_decay", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                   "divide weight_decay by the group's initial lr (lucidrains)"},
};

enum { SLOT_M };

/* lucidrains asserts lr > 0; with the decoupled option lr0 is a divisor. */
static dsc_status check(const double *hp, char *err, size_t n)
{
    if (hp[DECOUPLED] != 0 && !(hp[LR] > 0)) {
        snprintf(err, n, "lion: decoupled_weight_decay needs lr > 0 (weight_decay is divided "
                 "by the initial lr)");
        return DSC_INVALID_ARGUMENT;
    }
    return DSC_OK;
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)err; (void)n;
    dsc_plan_slot(plan, "exp_avg", dsc_state_dtype(g), p->numel);
    return DSC_OK;
}

typedef struct {
    float lr, decay, beta1, one_minus_beta1, beta2, one_minus_beta2;
} lion_scalars;

/* Reference: one element at a time, in the order of the spec. */
static void lion_step_ref(float *p, const float *g, dsc_state_buf m, size_t n, lion_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float mi = dsc_state_load(m.mode, m.f, m.h, i);
        p[i] = p[i] * s.decay;                                      /* 2. decay */
        float c = s.beta1 * mi + s.one_minus_beta1 * g[i];          /* 3. */
        p[i] = p[i] - s.lr * dsc_signf(c);
        mi = s.beta2 * mi + s.one_minus_beta2 * g[i];               /* 4. */
        dsc_state_store(m.mode, m.f, m.h, i, mi, dsc_state_bits(m.mode, m.key, i, 0), 0);
    }
}

/* Fast: one fused loop over per-thread ranges (a plain range function, so
 * GCC keeps `restrict` and vectorizes; see parallel.h). */
typedef struct {
    float *p, *m;
    const float *g;
    lion_scalars s;
} lion_job;

/* Element i: the momentum updated in place, the new parameter returned
 * (one copy for the plain and the self-measuring loop). */
DSC_BODY float lion_elem(const lion_scalars s, float *restrict m, const float *restrict g,
                         float p, size_t i)
{
    float gi = g[i], mi = m[i];
    float c = s.beta1 * mi + s.one_minus_beta1 * gi;
    m[i] = s.beta2 * mi + s.one_minus_beta2 * gi;
    return p * s.decay - s.lr * dsc_signf(c);
}

DSC_WIDE static void lion_range(const void *ctx, size_t lo, size_t hi)
{
    const lion_job *job = ctx;
    float *restrict p = job->p, *restrict m = job->m;
    const float *restrict g = job->g;
    const lion_scalars s = job->s;
    for (size_t i = lo; i < hi; i++) p[i] = lion_elem(s, m, g, p[i], i);
}

/* The step measuring itself (dsc_parallel_ranges_diff). */
DSC_WIDE static void lion_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    const lion_job *job = ctx;
    float *restrict p = job->p, *restrict m = job->m;
    const float *restrict g = job->g;
    const lion_scalars s = job->s;
#define LION_NEW(e, old) lion_elem(s, m, g, old, e)
    DSC_DIFF_GROUPS(lo, hi, p, lane, LION_NEW)
#undef LION_NEW
}

/* bf16 state: the float32 range on chunks (dsc_state_run_chunked). */
static void lion_rebase(void *sub, const void *whole, size_t c, float *const *bufs)
{
    lion_job *j = sub;
    *j = *(const lion_job *)whole;
    j->p += c;
    j->g += c;
    j->m = bufs[0];
}

/* Returns the sum of (new p - old p)^2 when `track` (float32 state only:
 * dsc_step_ctx.track_update), else 0. */
static double lion_step_fast(float *p, const float *g, dsc_state_buf m, size_t n,
                             lion_scalars s, int track)
{
    lion_job job = {.p = p, .m = m.f, .g = g, .s = s};
    if (m.mode == DSC_STATE_F32) {
        if (track) return dsc_parallel_ranges_diff(n, lion_range, lion_range_diff, &job, p);
        dsc_parallel_ranges(n, lion_range, &job);
        return 0.0;
    }
    _Static_assert(sizeof job <= DSC_STATE_JOB_MAX, "lion_job fits the chunk driver");
    dsc_state_chunks sc = {.range = lion_range, .job = &job, .rebase = lion_rebase, .nstates = 1,
                           .h = {m.h}, .mode = m.mode, .key = m.key};
    dsc_state_run_chunked(n, &sc);
    return 0.0;
}

/* The option may have been switched on after a group created with lr 0. */
static dsc_status validate(const dsc_group *grp)
{
    for (int k = 0; k < grp->nparams; k++)
        if (grp->opt->params[grp->params[k]]->hp[DECOUPLED] != 0 && !(grp->init[LR] > 0))
            return dsc_fail(grp->opt, DSC_STATE, "lion: decoupled_weight_decay needs an "
                            "initial lr > 0 (group \"%s\" was created with lr %g)",
                            grp->name, grp->init[LR]);
    return DSC_OK;
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        double lr = hp[LR], wd = hp[WEIGHT_DECAY];
        if (hp[DECOUPLED] != 0) wd = wd / grp->init[LR];
        lion_scalars s = {
            .lr = (float)lr, .decay = (float)(1.0 - lr * wd),
            .beta1 = (float)hp[BETA1], .one_minus_beta1 = (float)(1.0 - hp[BETA1]),
            .beta2 = (float)hp[BETA2], .one_minus_beta2 = (float)(1.0 - hp[BETA2]),
        };
        dsc_state_buf m = dsc_state_slot(grp, p, SLOT_M, ctx);
        if (ctx->reference) lion_step_ref(p->data, p->grad, m, p->numel, s);
        else p->update_sumsq = lion_step_fast(p->data, p->grad, m, p->numel, s,
                                              ctx->track_update);
    }
    return DSC_OK;
}

const dsc_family dsc_family_lion = {
    .info = {
        .name = "lion",
        .summary = "sign of interpolated momentum with decoupled weight decay",
        .paper = "Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023",
        .source = "google/automl lion/lion_pytorch.py @6a54c874; lucidrains/lion-pytorch "
                  "lion_pytorch/lion_pytorch.py @6a74fdc0 (decoupled_weight_decay)",
        .nkeys = NKEYS, .keys = keys, .matrix = 0,
    },
    .check = check, .plan_param = plan_param, .validate = validate, .step = step,
    .bf16_states = 1, .tracks_update = 1,
};
