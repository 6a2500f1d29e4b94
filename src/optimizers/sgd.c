/* sgd.c - stochastic gradient descent with momentum (torch.optim.SGD).
 *
 * Update (docs/optimizers.md; torch 1.13.1 single-tensor path):
 *   g <- -g                            if maximize
 *   g <- g + wd * p                    (L2, coupled)
 *   or, with decoupled_weight_decay = 1 (SGDW, Loshchilov & Hutter 2019, as
 *   torch's AdamW does it): p <- p * (1 - lr * wd) before the update, g unchanged
 *   b <- g                             at the first step (no dampening)
 *   b <- mu * b + (1 - dampening) * g  later
 *   d <- g + mu * b  (nesterov)  or  d <- b;   d <- g without momentum
 *   p <- p - lr * d
 * Golden files: sgd_plain_3x5, sgd_momentum_dampening_wd_4x6,
 * sgd_nesterov_wd_8x3.
 *
 * bf16 states (group key bf16_state): the buffer b is stored in bf16, read
 * widened, and rounded when stored; d uses the float32 b of this step (as
 * torch's float32 SGD whose buffer is rounded after each step). */
#include "../core/internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { LR, MOMENTUM, DAMPENING, WEIGHT_DECAY, NESTEROV, MAXIMIZE, DECOUPLED, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, NAN, 0, 1e6, 0, 0, "learning rate (required)"},
    [MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0, 0, 1, 0, 0, "momentum factor"},
    [DAMPENING] = {"dampening", DSC_KEY_FLOAT, 0, 0, 1, 0, 0, "dampening of the gradient in the buffer"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0, "L2 penalty added to the gradient"},
    [NESTEROV] = {"nesterov", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "Nesterov momentum"},
    [MAXIMIZE] = {"maximize", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "maximize the objective"},
    [DECOUPLED] = {"decoupled_weight_decay", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                   "SGDW: p <- p (1 - lr wd) instead of the L2 gradient term"},
};

/* Slots: the momentum buffer and the per-parameter step counter (torch
 * creates the buffer at the first step; t == 0 marks "not yet"). */
enum { SLOT_BUF, SLOT_T };

static dsc_status check(const double *hp, char *err, size_t n)
{
    if (hp[NESTEROV] != 0 && (hp[MOMENTUM] <= 0 || hp[DAMPENING] != 0)) {
        snprintf(err, n, "sgd: nesterov needs momentum > 0 and dampening = 0");
        return DSC_INVALID_ARGUMENT;
    }
    return DSC_OK;
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)err; (void)n;
    dsc_plan_slot(plan, "momentum_buffer", dsc_state_dtype(g), p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    return DSC_OK;
}

typedef struct {
    float lr, mu, damp, wd, sign, keep_p; /* keep_p = 1 - lr * wd (decoupled) */
    int nesterov, first, momentum, decoupled;
} sgd_scalars;

/* Reference: one element at a time, in the order of the spec. */
static void sgd_step_ref(float *p, const float *g, dsc_state_buf b, size_t n, sgd_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = s.sign * g[i];                  /* 1. maximize */
        if (s.decoupled) p[i] = p[i] * s.keep_p;   /* 2. decoupled decay, or */
        else if (s.wd != 0.0f) gi = gi + s.wd * p[i]; /*  L2 */
        float d = gi;
        if (s.momentum) {                          /* 3. momentum */
            float bi;
            if (s.first) bi = gi;
            else bi = s.mu * dsc_state_load(b.mode, b.f, b.h, i) + (1.0f - s.damp) * gi;
            dsc_state_store(b.mode, b.f, b.h, i, bi, dsc_state_bits(b.mode, b.key, i, 0), 0);
            d = s.nesterov ? gi + s.mu * bi : bi;
        }
        p[i] = p[i] - s.lr * d;                    /* 4. update */
    }
}

/* Fast: the same arithmetic over per-thread ranges. The L2 flag and the
 * momentum form are inlined as constants, one loop per combination (a flag
 * tested inside an OpenMP loop can leave GCC's loop scalar). As in the
 * reference, wd * p is added only when wd != 0: -g + 0 * p would turn a
 * -0.0 into +0.0 and the momentum buffer's bits would differ. */
typedef struct {
    float *p, *b;
    const float *g;
    sgd_scalars s;
} sgd_job;

enum { PLAIN, FIRST, HEAVY_BALL, NESTEROV_FIRST, NESTEROV_FORM };

/* Element i: the buffer updated in place, the new parameter returned (the
 * plain and the self-measuring loops below inline this one copy). */
DSC_BODY float sgd_elem(const sgd_scalars s, float *restrict b, const float *restrict g,
                        float p, size_t i, const int l2, const int form)
{
    const float keep = 1.0f - s.damp;
    float gi = s.sign * g[i];
    if (l2 == 2) p = p * s.keep_p; /* decoupled */
    if (l2 == 1) gi = gi + s.wd * p;
    float d = gi;
    if (form == FIRST || form == NESTEROV_FIRST) { /* the buffer starts as g */
        b[i] = gi;
        d = form == NESTEROV_FIRST ? gi + s.mu * gi : gi;
    } else if (form != PLAIN) {
        float bi = s.mu * b[i] + keep * gi;
        b[i] = bi;
        d = form == NESTEROV_FORM ? gi + s.mu * bi : bi; /* no 0 * bi: bi may be inf */
    }
    return p - s.lr * d;
}

/* lane NULL: the plain step; else the step measuring itself
 * (dsc_parallel_ranges_diff). */
DSC_BODY void sgd_body(const sgd_job *job, size_t lo, size_t hi, const int l2, const int form,
                       double *restrict lane)
{
    float *restrict p = job->p, *restrict b = job->b;
    const float *restrict g = job->g;
    const sgd_scalars s = job->s;
    if (!lane) {
        for (size_t i = lo; i < hi; i++) p[i] = sgd_elem(s, b, g, p[i], i, l2, form);
        return;
    }
#define SGD_NEW(e, old) sgd_elem(s, b, g, old, e, l2, form)
    DSC_DIFF_GROUPS(lo, hi, p, lane, SGD_NEW)
#undef SGD_NEW
}

/* One loop per flag combination: the momentum form and the decay (0: none,
 * 1: L2, 2: decoupled) as constants. */
DSC_BODY void sgd_forms(const sgd_job *job, size_t lo, size_t hi, double *lane)
{
    const sgd_scalars s = job->s;
    int form = !s.momentum ? PLAIN
               : s.first   ? (s.nesterov ? NESTEROV_FIRST : FIRST)
                           : (s.nesterov ? NESTEROV_FORM : HEAVY_BALL);
    const int l2 = s.decoupled ? 2 : s.wd != 0.0f;
#define SGD_FORMS(f)                                                                    \
    (l2 == 2 ? sgd_body(job, lo, hi, 2, f, lane) : l2 ? sgd_body(job, lo, hi, 1, f, lane) \
                                                      : sgd_body(job, lo, hi, 0, f, lane))
    switch (form) {
    case PLAIN: SGD_FORMS(PLAIN); break;
    case FIRST: SGD_FORMS(FIRST); break;
    case NESTEROV_FIRST: SGD_FORMS(NESTEROV_FIRST); break;
    case HEAVY_BALL: SGD_FORMS(HEAVY_BALL); break;
    default: SGD_FORMS(NESTEROV_FORM); break;
    }
#undef SGD_FORMS
}

DSC_WIDE static void sgd_range(const void *ctx, size_t lo, size_t hi)
{
    sgd_forms(ctx, lo, hi, NULL);
}

DSC_WIDE static void sgd_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    sgd_forms(ctx, lo, hi, lane);
}

/* bf16 state: the float32 range on chunks (dsc_state_run_chunked). */
static void sgd_rebase(void *sub, const void *whole, size_t c, float *const *bufs)
{
    sgd_job *j = sub;
    *j = *(const sgd_job *)whole;
    j->p += c;
    j->g += c;
    j->b = bufs[0];
}

/* Returns the sum of (new p - old p)^2 when `track` (float32 state only:
 * dsc_step_ctx.track_update), else 0. */
static double sgd_step_fast(float *p, const float *g, dsc_state_buf b, size_t n, sgd_scalars s,
                            int track)
{
    sgd_job job = {.p = p, .b = b.f, .g = g, .s = s};
    if (b.mode == DSC_STATE_F32) {
        if (track) return dsc_parallel_ranges_diff(n, sgd_range, sgd_range_diff, &job, p);
        dsc_parallel_ranges(n, sgd_range, &job);
        return 0.0;
    }
    _Static_assert(sizeof job <= DSC_STATE_JOB_MAX, "sgd_job fits the chunk driver");
    dsc_state_chunks sc = {.range = sgd_range, .job = &job, .rebase = sgd_rebase, .nstates = 1,
                           .h = {b.h}, .mode = b.mode, .key = b.key};
    dsc_state_run_chunked(n, &sc);
    return 0.0;
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_T].data;
        sgd_scalars s = {
            .lr = (float)p->hp[LR], .mu = (float)p->hp[MOMENTUM],
            .damp = (float)p->hp[DAMPENING], .wd = (float)p->hp[WEIGHT_DECAY],
            .sign = p->hp[MAXIMIZE] != 0 ? -1.0f : 1.0f,
            .nesterov = p->hp[NESTEROV] != 0, .first = *t == 0,
            .momentum = p->hp[MOMENTUM] != 0,
            .decoupled = p->hp[DECOUPLED] != 0 && p->hp[WEIGHT_DECAY] != 0,
            .keep_p = (float)(1.0 - p->hp[LR] * p->hp[WEIGHT_DECAY]),
        };
        dsc_state_buf b = dsc_state_slot(grp, p, SLOT_BUF, ctx);
        if (ctx->reference) sgd_step_ref(p->data, p->grad, b, p->numel, s);
        else p->update_sumsq = sgd_step_fast(p->data, p->grad, b, p->numel, s,
                                             ctx->track_update);
        if (s.momentum) *t += 1; /* the buffer exists from now on */
    }
    return DSC_OK;
}

const dsc_family dsc_family_sgd = {
    .info = {
        .name = "sgd",
        .summary = "stochastic gradient descent with momentum, dampening, Nesterov, L2 or decoupled decay",
        .paper = "Robbins & Monro 1951; Sutskever et al., ICML 2013 (momentum, Nesterov)",
        .source = "pytorch/pytorch torch/optim/sgd.py (v1.13.1)",
        .nkeys = NKEYS, .keys = keys, .matrix = 0,
    },
    .check = check, .plan_param = plan_param, .step = step, .bf16_states = 1,
    .tracks_update = 1,
};
