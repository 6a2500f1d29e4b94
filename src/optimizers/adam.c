/* adam.c - Adam with L2 decay (torch.optim.Adam) and AdamW with decoupled
 * decay (torch.optim.AdamW): two families, one kernel.
 *
 * Update (docs/optimizers.md, adam and adamw; torch 1.13.1 single-tensor
 * path), with t the per-parameter step counter:
 *   t <- t + 1;  g <- -g                        if maximize
 *   adam:   g <- g + wd * p                     (L2, enters both moments)
 *   adamw:  p <- p * (1 - lr * wd)              (decoupled, before the moments)
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g * g
 *   vmax <- max(vmax, v), u = vmax  (amsgrad, on the raw v, kept across steps)
 *   u = v                           (otherwise)
 *   denom = sqrt(u) / sqrt(1 - beta2^t) + eps   (eps after the bias correction)
 *   p <- p - (lr / (1 - beta1^t)) * m / denom
 * The bias corrections are computed once per parameter in double, as torch
 * does with Python floats; the element loop runs in float32.
 *
 * `amsgrad` sizes the state: max_exp_avg_sq exists only for parameters
 * added while the group's amsgrad was on (as torch creates it at the first
 * step). Switching amsgrad on later is reported by the step as DSC_STATE.
 * Golden files: adam_default_3x5, adam_amsgrad_l2_4x6, adamw_default_4x6,
 * adamw_amsgrad_wd_8x3.
 *
 * bf16 states (group key bf16_state): m, v and vmax are stored in bf16 and
 * widened when read; the step computes in float32 exactly as above, uses
 * the float32 m and u for the update, and rounds the new states when it
 * stores them (to nearest, or stochastically: m and v with the two halves
 * of the element's first 32 random bits, vmax with its second stream). Equal, bit for bit, to torch's float32 Adam whose
 * state tensors are rounded to bf16 after every step (tests/python). */
#include "../core/internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { LR, BETA1, BETA2, EPS, WEIGHT_DECAY, AMSGRAD, MAXIMIZE, NKEYS };

#define ADAM_KEYS(wd_default, wd_help)                                                      \
    {                                                                                       \
        [LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},                  \
        [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},   \
        [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1,                               \
                   "decay of the second moment"},                                           \
        [EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 1, 0,                                    \
                 "added to the bias-corrected root of the second moment"},                  \
        [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, wd_default, 0, 1e6, 0, 0, wd_help}, \
        [AMSGRAD] = {"amsgrad", DSC_KEY_BOOL, 0, 0, 1, 0, 0,                                \
                     "use the running max of the second moment (state sized when a "        \
                     "parameter is added)"},                                                \
        [MAXIMIZE] = {"maximize", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "maximize the objective"},   \
    }

static const dsc_key_info adam_keys[NKEYS] =
    ADAM_KEYS(0.0, "L2 penalty added to the gradient (coupled)");
static const dsc_key_info adamw_keys[NKEYS] =
    ADAM_KEYS(1e-2, "decoupled decay: p <- p * (1 - lr * weight_decay) before the step");

/* Slots, in plan order; max_exp_avg_sq only with amsgrad. */
enum { SLOT_M, SLOT_V, SLOT_T, SLOT_VMAX };

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)err; (void)n;
    dsc_dtype dt = dsc_state_dtype(g);
    dsc_plan_slot(plan, "exp_avg", dt, p->numel);
    dsc_plan_slot(plan, "exp_avg_sq", dt, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    if (g->base[AMSGRAD] != 0) dsc_plan_slot(plan, "max_exp_avg_sq", dt, p->numel);
    return DSC_OK;
}

/* Per-parameter scalars of one step, computed once. */
typedef struct {
    float sign;       /* -1 with maximize */
    float l2;         /* adam: weight_decay; adamw: 0 */
    float decay;      /* adamw: 1 - lr * weight_decay; adam: 1 */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bc2_sqrt;   /* sqrt(1 - beta2^t) */
    float step_size;  /* lr / (1 - beta1^t) */
    float eps;
    int decoupled, amsgrad;
} adam_scalars;

/* The state buffers of one parameter: float32 (m, v, vmax) or bf16 (m16,
 * v16, vmax16) as `mode` says, with the key of its rounding stream. */
typedef struct {
    float *m, *v, *vmax;
    uint16_t *m16, *v16, *vmax16;
    int mode;
    uint64_t key;
} adam_state;

/* Reference: one element at a time, in the order of the spec; the states
 * are read into float32 locals and stored at the end. */
static void adam_step_ref(float *p, const float *g, adam_state st, size_t n, adam_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float m = dsc_state_load(st.mode, st.m, st.m16, i);
        float v = dsc_state_load(st.mode, st.v, st.v16, i);
        float gi = s.sign * g[i];                                   /* 1. maximize */
        if (s.decoupled) p[i] = p[i] * s.decay;                     /* AdamW decay */
        else if (s.l2 != 0.0f) gi = gi + s.l2 * p[i];               /* 2. L2 */
        m = s.beta1 * m + s.one_minus_beta1 * gi;                   /* 3. moments */
        v = s.beta2 * v + s.one_minus_beta2 * gi * gi;
        float u = v;
        if (s.amsgrad) {                                            /* 5. amsgrad */
            float vmax = dsc_state_load(st.mode, st.vmax, st.vmax16, i);
            if (!(vmax > v)) vmax = v;
            u = vmax;
        }
        float denom = sqrtf(u) / s.bc2_sqrt + s.eps;                /* 6. */
        p[i] = p[i] - s.step_size * (m / denom);                    /* 7. */
        uint32_t bits = dsc_state_bits(st.mode, st.key, i, 0);
        dsc_state_store(st.mode, st.m, st.m16, i, m, bits, 0);
        dsc_state_store(st.mode, st.v, st.v16, i, v, bits, 1);
        if (s.amsgrad)
            dsc_state_store(st.mode, st.vmax, st.vmax16, i, u,
                            dsc_state_bits(st.mode, st.key, i, 1), 0);
    }
}

/* Fast: the same float operations in the same order, fused into one pass
 * and cut into per-thread ranges. The body is written once; each flag
 * combination (L2 term, amsgrad) is inlined as its own loop, so every
 * variant vectorizes (sqrtps and divps give the bits of sqrtf and /; the
 * build's -fno-math-errno lets sqrtf vectorize). AdamW's decay is a
 * multiply by `decay`, exactly 1 for Adam (x * 1 == x bit for bit). */
typedef struct {
    float *p, *m, *v, *vmax;
    const float *g;
    adam_scalars s;
} adam_job;

/* The loop constants of a step. */
typedef struct {
    float sign, l2, decay, b1, c1, b2, c2, bc2, step, eps;
} adam_consts;

static adam_consts adam_consts_of(const adam_scalars *s)
{
    adam_consts k = {s->sign, s->l2, s->decoupled ? s->decay : 1.0f, s->beta1,
                     s->one_minus_beta1, s->beta2, s->one_minus_beta2, s->bc2_sqrt,
                     s->step_size, s->eps};
    return k;
}

/* Element i: the states updated in place, the new parameter returned (both
 * loops below inline this one copy of the arithmetic). */
DSC_BODY float adam_elem(const adam_consts k, float *restrict m, float *restrict v,
                         float *restrict vmax, const float *restrict g, float p, size_t i,
                         const int use_l2, const int amsgrad)
{
    float pi = p * k.decay, gi = k.sign * g[i];
    if (use_l2) gi = gi + k.l2 * pi;
    float mi = k.b1 * m[i] + k.c1 * gi;
    float vi = k.b2 * v[i] + k.c2 * gi * gi;
    float ui = vi;
    if (amsgrad) {
        ui = vmax[i] > vi ? vmax[i] : vi;
        vmax[i] = ui;
    }
    m[i] = mi;
    v[i] = vi;
    return pi - k.step * (mi / (sqrtf(ui) / k.bc2 + k.eps));
}

/* lane NULL: the plain step; else the step measuring itself
 * (dsc_parallel_ranges_diff). */
DSC_BODY void adam_body(const adam_job *job, size_t lo, size_t hi, const int use_l2,
                        const int amsgrad, double *restrict lane)
{
    float *restrict p = job->p, *restrict m = job->m, *restrict v = job->v,
          *restrict vmax = job->vmax;
    const float *restrict g = job->g;
    const adam_consts k = adam_consts_of(&job->s);
    if (!lane) {
        for (size_t i = lo; i < hi; i++)
            p[i] = adam_elem(k, m, v, vmax, g, p[i], i, use_l2, amsgrad);
        return;
    }
#define ADAM_NEW(e, old) adam_elem(k, m, v, vmax, g, old, e, use_l2, amsgrad)
    DSC_DIFF_GROUPS(lo, hi, p, lane, ADAM_NEW)
#undef ADAM_NEW
}

/* The flags (L2 term, amsgrad) as constants, each combination its own loop. */
DSC_BODY void adam_flags(const adam_job *job, size_t lo, size_t hi, double *lane)
{
    int use_l2 = !job->s.decoupled && job->s.l2 != 0.0f;
    if (job->s.amsgrad) {
        if (use_l2) adam_body(job, lo, hi, 1, 1, lane);
        else adam_body(job, lo, hi, 0, 1, lane);
    } else {
        if (use_l2) adam_body(job, lo, hi, 1, 0, lane);
        else adam_body(job, lo, hi, 0, 0, lane);
    }
}

DSC_WIDE static void adam_range(const void *ctx, size_t lo, size_t hi)
{
    adam_flags(ctx, lo, hi, NULL);
}

DSC_WIDE static void adam_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    adam_flags(ctx, lo, hi, lane);
}

/* bf16 states: the float32 range on chunks (dsc_state_run_chunked). */
static void adam_rebase(void *sub, const void *whole, size_t c, float *const *bufs)
{
    adam_job *j = sub;
    *j = *(const adam_job *)whole;
    j->p += c;
    j->g += c;
    j->m = bufs[0];
    j->v = bufs[1];
    j->vmax = j->s.amsgrad ? bufs[2] : NULL;
}

/* Returns the sum of (new p - old p)^2 when `track` (float32 states only:
 * dsc_step_ctx.track_update), else 0. */
static double adam_step_fast(float *p, const float *g, adam_state st, size_t n, adam_scalars s,
                             int track)
{
    adam_job job = {.p = p, .m = st.m, .v = st.v, .vmax = st.vmax, .g = g, .s = s};
    if (st.mode == DSC_STATE_F32) {
        if (track) return dsc_parallel_ranges_diff(n, adam_range, adam_range_diff, &job, p);
        dsc_parallel_ranges(n, adam_range, &job);
        return 0.0;
    }
    _Static_assert(sizeof job <= DSC_STATE_JOB_MAX, "adam_job fits the chunk driver");
    dsc_state_chunks sc = {.range = adam_range, .job = &job, .rebase = adam_rebase,
                           .nstates = s.amsgrad ? 3 : 2, .h = {st.m16, st.v16, st.vmax16},
                           .mode = st.mode, .key = st.key};
    dsc_state_run_chunked(n, &sc);
    return 0.0;
}

/* amsgrad needs its slot, planned only when the option was on at add time. */
static dsc_status validate(const dsc_group *grp)
{
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = grp->opt->params[grp->params[k]];
        if (p->hp[AMSGRAD] != 0 && p->nslots <= SLOT_VMAX)
            return dsc_fail(grp->opt, DSC_STATE,
                            "%s: amsgrad was switched on after parameter \"%s\" was added; "
                            "its state has no max_exp_avg_sq", grp->family->info.name,
                            p->name);
    }
    return DSC_OK;
}

static dsc_status step_common(dsc_group *grp, const dsc_step_ctx *ctx, int decoupled)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[SLOT_T].data;
        *t += 1;
        const double *hp = p->hp;
        double lr = hp[LR], b1 = hp[BETA1], b2 = hp[BETA2], wd = hp[WEIGHT_DECAY];
        double bc1 = 1.0 - pow(b1, (double)*t), bc2 = 1.0 - pow(b2, (double)*t);
        adam_scalars s = {
            .sign = hp[MAXIMIZE] != 0 ? -1.0f : 1.0f,
            .l2 = decoupled ? 0.0f : (float)wd,
            .decay = decoupled ? (float)(1.0 - lr * wd) : 1.0f,
            .beta1 = (float)b1, .one_minus_beta1 = (float)(1.0 - b1),
            .beta2 = (float)b2, .one_minus_beta2 = (float)(1.0 - b2),
            .bc2_sqrt = (float)sqrt(bc2), .step_size = (float)(lr / bc1),
            .eps = (float)hp[EPS], .decoupled = decoupled, .amsgrad = hp[AMSGRAD] != 0,
        };
        adam_state st = {.mode = grp->wrap.bf16_state};
        if (st.mode == DSC_STATE_F32) {
            st.m = p->slots[SLOT_M].data, st.v = p->slots[SLOT_V].data;
            st.vmax = s.amsgrad ? p->slots[SLOT_VMAX].data : NULL;
        } else {
            st.m16 = p->slots[SLOT_M].data, st.v16 = p->slots[SLOT_V].data;
            st.vmax16 = s.amsgrad ? p->slots[SLOT_VMAX].data : NULL;
            if (st.mode == DSC_STATE_BF16_SR) st.key = dsc_state_key(p, ctx);
        }
        if (ctx->reference) adam_step_ref(p->data, p->grad, st, p->numel, s);
        else p->update_sumsq = adam_step_fast(p->data, p->grad, st, p->numel, s,
                                              ctx->track_update);
    }
    return DSC_OK;
}

static dsc_status adam_step(dsc_group *g, const dsc_step_ctx *ctx)
{
    return step_common(g, ctx, 0);
}

static dsc_status adamw_step(dsc_group *g, const dsc_step_ctx *ctx)
{
    return step_common(g, ctx, 1);
}

const dsc_family dsc_family_adam = {
    .info = {
        .name = "adam",
        .summary = "Adam with bias correction, L2 weight decay, AMSGrad, maximize",
        .paper = "Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015; "
                 "Reddi et al., On the Convergence of Adam and Beyond, ICLR 2018 (AMSGrad)",
        .source = "pytorch/pytorch torch/optim/adam.py (v1.13.1)",
        .nkeys = NKEYS, .keys = adam_keys, .matrix = 0,
    },
    .plan_param = plan_param, .validate = validate, .step = adam_step, .bf16_states = 1,
    .tracks_update = 1,
};

const dsc_family dsc_family_adamw = {
    .info = {
        .name = "adamw",
        .summary = "Adam with decoupled weight decay (applied before the moments), AMSGrad",
        .paper = "Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019",
        .source = "pytorch/pytorch torch/optim/adamw.py (v1.13.1)",
        .nkeys = NKEYS, .keys = adamw_keys, .matrix = 0,
    },
    .plan_param = plan_param, .validate = validate, .step = adamw_step, .bf16_states = 1,
    .tracks_update = 1,
};
