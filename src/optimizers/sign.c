/* sign.c - sign descent: signSGD and Signum (sign of momentum).
 *
 * signsgd (docs/optimizers.md; MXNet SignSGDKernel):
 *   p <- (1 - lr * wd) * p - lr * sign(g)          (decoupled decay)
 * signum ( MXNet SignumKernel, jiaweizzhao/Signum_pytorch):
 *   m <- momentum * m + (1 - momentum) * (g + wd * p)   (L2 into the momentum)
 *   p <- (1 - lr * wd_lh) * p - lr * sign(m)            (both terms on the old p)
 * sign(0) = 0 (the ICML 2018 code), so a coordinate whose argument is exactly
 * zero only decays. signum's momentum starts at zero, so its first step is
 * the sign of g (+ wd * p).
 * Golden files: signsgd_plain_3x5, signsgd_wd_4x6, signum_default_3x5,
 * signum_wd_4x6.
 *
 * signum's bf16 states (group key bf16_state): m is stored in bf16, read
 * widened and rounded when stored; the sign is taken of the float32 m. */
#include "../core/internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- signsgd */

enum { S_LR, S_WEIGHT_DECAY, S_NKEYS };

static const dsc_key_info signsgd_keys[S_NKEYS] = {
    [S_LR] = {"lr", DSC_KEY_FLOAT, 0.01, 0, 1e6, 0, 0, "learning rate"},
    [S_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "decoupled decay: p <- (1 - lr * weight_decay) * p"},
};

static dsc_status signsgd_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                               char *err, size_t n)
{
    (void)g; (void)p; (void)plan; (void)err; (void)n; /* stateless */
    return DSC_OK;
}

/* Reference: one element at a time. */
static void signsgd_step_ref(float *p, const float *g, size_t n, float lr, float decay)
{
    for (size_t i = 0; i < n; i++) p[i] = decay * p[i] - lr * dsc_signf(g[i]);
}

/* Fast: the same expression over per-thread ranges (a plain range function,
 * so GCC keeps `restrict` and vectorizes; see parallel.h). */
typedef struct {
    float *p;
    const float *g;
    float lr, decay;
} signsgd_job;

DSC_WIDE static void signsgd_range(const void *ctx, size_t lo, size_t hi)
{
    const signsgd_job *job = ctx;
    float *restrict p = job->p;
    const float *restrict g = job->g;
    const float lr = job->lr, decay = job->decay;
    for (size_t i = lo; i < hi; i++) p[i] = decay * p[i] - lr * dsc_signf(g[i]);
}

/* The step measuring itself (dsc_parallel_ranges_diff). */
DSC_WIDE static void signsgd_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    const signsgd_job *job = ctx;
    float *restrict p = job->p;
    const float *restrict g = job->g;
    const float lr = job->lr, decay = job->decay;
#define SIGNSGD_NEW(e, old) (decay * (old) - lr * dsc_signf(g[e]))
    DSC_DIFF_GROUPS(lo, hi, p, lane, SIGNSGD_NEW)
#undef SIGNSGD_NEW
}

/* Returns the sum of (new p - old p)^2 when `track`
 * (dsc_step_ctx.track_update), else 0. */
static double signsgd_step_fast(float *p, const float *g, size_t n, float lr, float decay,
                                int track)
{
    signsgd_job job = {p, g, lr, decay};
    if (track) return dsc_parallel_ranges_diff(n, signsgd_range, signsgd_range_diff, &job, p);
    dsc_parallel_ranges(n, signsgd_range, &job);
    return 0.0;
}

static dsc_status signsgd_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        double lr = p->hp[S_LR];
        float decay = (float)(1.0 - lr * p->hp[S_WEIGHT_DECAY]);
        if (ctx->reference) signsgd_step_ref(p->data, p->grad, p->numel, (float)lr, decay);
        else p->update_sumsq = signsgd_step_fast(p->data, p->grad, p->numel, (float)lr, decay,
                                                 ctx->track_update);
    }
    return DSC_OK;
}

const dsc_family dsc_family_signsgd = {
    .info = {
        .name = "signsgd",
        .summary = "sign descent p <- p - lr*sign(g), decoupled weight decay",
        .paper = "Bernstein, Wang, Azizzadenesheli & Anandkumar, signSGD: Compressed "
                 "Optimisation for Non-Convex Problems, ICML 2018",
        .source = "apache/mxnet src/operator/optimizer_op-inl.h (SignSGDKernel); "
                  "jiaweizzhao/Signum_pytorch signum.py (momentum=0) @f7ceb6a8",
        .nkeys = S_NKEYS, .keys = signsgd_keys, .matrix = 0,
    },
    .plan_param = signsgd_plan, .step = signsgd_step, .tracks_update = 1,
};

/* ----------------------------------------------------------------- signum */

enum { M_LR, M_MOMENTUM, M_WEIGHT_DECAY, M_WD_LH, M_NKEYS };

static const dsc_key_info signum_keys[M_NKEYS] = {
    [M_LR] = {"lr", DSC_KEY_FLOAT, 0.01, 0, 1e6, 0, 0, "learning rate"},
    [M_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1,
                    "momentum factor (EMA with weight 1 - momentum on the gradient)"},
    [M_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "L2 penalty added to the gradient before the momentum"},
    [M_WD_LH] = {"wd_lh", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                 "decoupled decay (MXNet): p <- (1 - lr * wd_lh) * p"},
};

enum { SLOT_BUF };

static dsc_status signum_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                              char *err, size_t n)
{
    (void)err; (void)n;
    dsc_plan_slot(plan, "momentum_buffer", dsc_state_dtype(g), p->numel);
    return DSC_OK;
}

typedef struct {
    float lr, mu, one_minus_mu, wd, decay;
} signum_scalars;

/* Reference: one element at a time, in the order of the spec. */
static void signum_step_ref(float *p, const float *g, dsc_state_buf m, size_t n,
                            signum_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (s.wd != 0.0f) gi = gi + s.wd * p[i];                     /* L2 */
        float mi = s.mu * dsc_state_load(m.mode, m.f, m.h, i) + s.one_minus_mu * gi; /* 1. */
        dsc_state_store(m.mode, m.f, m.h, i, mi, dsc_state_bits(m.mode, m.key, i, 0), 0);
        p[i] = s.decay * p[i] - s.lr * dsc_signf(mi);                /* 2. */
    }
}

/* Fast: per-thread ranges of one fused loop, the L2 flag inlined as two
 * loops (a flag tested inside an OpenMP loop left it scalar). */
typedef struct {
    float *p, *m;
    const float *g;
    signum_scalars s;
} signum_job;

/* Element i: the momentum updated in place, the new parameter returned
 * (one copy for the plain and the self-measuring loop). */
DSC_BODY float signum_elem(const signum_scalars s, float *restrict m, const float *restrict g,
                           float p, size_t i, const int l2)
{
    float gi = g[i];
    if (l2) gi = gi + s.wd * p;
    float mi = s.mu * m[i] + s.one_minus_mu * gi;
    m[i] = mi;
    return s.decay * p - s.lr * dsc_signf(mi);
}

/* lane NULL: the plain step; else the step measuring itself. */
DSC_BODY void signum_body(const signum_job *job, size_t lo, size_t hi, const int l2,
                          double *restrict lane)
{
    float *restrict p = job->p, *restrict m = job->m;
    const float *restrict g = job->g;
    const signum_scalars s = job->s;
    if (!lane) {
        for (size_t i = lo; i < hi; i++) p[i] = signum_elem(s, m, g, p[i], i, l2);
        return;
    }
#define SIGNUM_NEW(e, old) signum_elem(s, m, g, old, e, l2)
    DSC_DIFF_GROUPS(lo, hi, p, lane, SIGNUM_NEW)
#undef SIGNUM_NEW
}

/* The L2 flag as a constant; lane NULL for the plain step. */
DSC_BODY void signum_flags(const signum_job *job, size_t lo, size_t hi, double *lane)
{
    if (job->s.wd != 0.0f) signum_body(job, lo, hi, 1, lane);
    else signum_body(job, lo, hi, 0, lane);
}

DSC_WIDE static void signum_range(const void *ctx, size_t lo, size_t hi)
{
    signum_flags(ctx, lo, hi, NULL);
}

DSC_WIDE static void signum_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    signum_flags(ctx, lo, hi, lane);
}

/* bf16 state: the float32 range on chunks (dsc_state_run_chunked). */
static void signum_rebase(void *sub, const void *whole, size_t c, float *const *bufs)
{
    signum_job *j = sub;
    *j = *(const signum_job *)whole;
    j->p += c;
    j->g += c;
    j->m = bufs[0];
}

/* Returns the sum of (new p - old p)^2 when `track` (float32 state only:
 * dsc_step_ctx.track_update), else 0. */
static double signum_step_fast(float *p, const float *g, dsc_state_buf m, size_t n,
                               signum_scalars s, int track)
{
    signum_job job = {.p = p, .m = m.f, .g = g, .s = s};
    if (m.mode == DSC_STATE_F32) {
        if (track) return dsc_parallel_ranges_diff(n, signum_range, signum_range_diff, &job, p);
        dsc_parallel_ranges(n, signum_range, &job);
        return 0.0;
    }
    _Static_assert(sizeof job <= DSC_STATE_JOB_MAX, "signum_job fits the chunk driver");
    dsc_state_chunks sc = {.range = signum_range, .job = &job, .rebase = signum_rebase, .nstates = 1,
                           .h = {m.h}, .mode = m.mode, .key = m.key};
    dsc_state_run_chunked(n, &sc);
    return 0.0;
}

static dsc_status signum_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        double lr = p->hp[M_LR], mu = p->hp[M_MOMENTUM];
        signum_scalars s = {
            .lr = (float)lr, .mu = (float)mu, .one_minus_mu = (float)(1.0 - mu),
            .wd = (float)p->hp[M_WEIGHT_DECAY],
            .decay = (float)(1.0 - lr * p->hp[M_WD_LH]),
        };
        dsc_state_buf m = dsc_state_slot(grp, p, SLOT_BUF, ctx);
        if (ctx->reference) signum_step_ref(p->data, p->grad, m, p->numel, s);
        else p->update_sumsq = signum_step_fast(p->data, p->grad, m, p->numel, s,
                                                ctx->track_update);
    }
    return DSC_OK;
}

const dsc_family dsc_family_signum = {
    .info = {
        .name = "signum",
        .summary = "sign of momentum, L2 decay into the momentum, decoupled wd_lh",
        .paper = "Bernstein, Wang, Azizzadenesheli & Anandkumar, signSGD: Compressed "
                 "Optimisation for Non-Convex Problems, ICML 2018",
        .source = "jiaweizzhao/Signum_pytorch signum.py @f7ceb6a8; apache/mxnet "
                  "src/operator/optimizer_op-inl.h (SignumKernel)",
        .nkeys = M_NKEYS, .keys = signum_keys, .matrix = 0,
    },
    .plan_param = signum_plan, .step = signum_step, .bf16_states = 1, .tracks_update = 1,
};
