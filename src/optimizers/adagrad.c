/* adagrad.c - AdaGrad (torch.optim.Adagrad) and AdaGrad-Norm (AdAdaGrad's
 * `adagradnorm`, global scalar or row-wise accumulators).
 *
 * adagrad (docs/optimizers.md; torch 1.13.1 single-tensor path):
 *   t <- t + 1;  g <- -g if maximize;  g <- g + wd * p   (L2)
 *   clr = lr / (1 + (t - 1) * lr_decay)
 *   s <- s + g * g;  p <- p - clr * g / (sqrt(s) + eps)
 * s starts at initial_accumulator_value; it is filled when the parameter
 * takes its first step (t == 0), so per-parameter overrides apply.
 *
 * adagradnorm (docs/optimizers.md; timlautk/AdAdaGrad adagradnorm.py), per parameter
 * the update with a denominator `den`:
 *   buf <- momentum * buf + (1 - momentum) * g;  p <- p - clr * buf / den
 *                                            (p <- p - clr * g / den if momentum == 0)
 *   p <- p - clr * weight_decay * g          (the official class's quirk: the
 *                                             deprecated add_(scalar, tensor)
 *                                             makes "weight decay" a gradient step)
 * rowwise 0 (paper form): one scalar S and one step counter t per group (in
 *   group slots, so checkpoints keep them); S starts at
 *   initial_accumulator_value, S <- S + sum over every parameter of |g|^2
 *   before any update, den = sqrt(S) + eps.
 * rowwise 1 (the official class), parameters in group order, each with its t:
 *   2-D and 4-D: one accumulator per row (output channel), A_i += |g_i|^2,
 *   den = sqrt(A_i) + eps; the row sums r are remembered as the step's
 *   "last row norms".
 *   1-D of length L: per-coordinate A; if an earlier 2-D/4-D parameter of
 *   this group took its step in this same step with R rows and R % L == 0,
 *   first A_i += mean_k r[i*(R/L) + k]; then A_i += g_i^2.
 *   3-D tensors are rejected in row-wise mode (meaningless in the official
 *   code); if rowwise is switched on later they run per coordinate.
 * Sums of squares are in double with the fixed blocking of vec.c (rows
 * too), so the result does not depend on the thread count. Loops run as
 * range functions (dsc_parallel_ranges) and rows as items
 * (dsc_parallel_items), src/kernels/parallel.h.
 * Also here: dsc_adadagrad_next_batch, AdAdaGrad's adaptive batch-size
 * tests (AdAdaGrad main.py and tests.py; the micro-batch merge of the law of total variance
 * is left to the caller's data loader and not provided).
 * Golden files: adagrad_default_3x5, adagrad_lrdecay_wd_4x6,
 * adagradnorm_global_4x6, adagradnorm_rowwise_4x6,
 * adagradnorm_rowwise_momentum_3x5.
 *
 * adagrad's bf16 states (group key bf16_state): the sum s is stored in
 * bf16 (its initial value rounded to nearest when it is filled), read
 * widened and rounded when stored; the update divides by the float32 s. */
#include "../core/internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sum of squares in the order of dsc_vec_sumsq (fixed blocks and lanes,
 * see vec.c), serial: what the reference path and per-row sums use. */
static double sumsq_fixed(const float *x, size_t n) { return dsc_vec_dot_serial(x, x, n); }

typedef struct {
    float *x;
    uint16_t *x16;
    float value;
} fill_job;

DSC_WIDE static void fill_range(const void *ctx, size_t lo, size_t hi)
{
    const fill_job *job = ctx;
    float *restrict x = job->x;
    const float value = job->value;
    for (size_t i = lo; i < hi; i++) x[i] = value;
}

DSC_WIDE static void fill16_range(const void *ctx, size_t lo, size_t hi)
{
    const fill_job *job = ctx;
    uint16_t *restrict x = job->x16;
    const uint16_t value = dsc_bf16_round(job->value);
    for (size_t i = lo; i < hi; i++) x[i] = value;
}

static void fill(float *x, size_t n, float value)
{
    fill_job job = {.x = x, .value = value};
    dsc_parallel_ranges(n, fill_range, &job);
}

static void fill16(uint16_t *x, size_t n, float value)
{
    fill_job job = {.x16 = x, .value = value};
    dsc_parallel_ranges(n, fill16_range, &job);
}

/* ---------------------------------------------------------------- adagrad */

enum { LR, LR_DECAY, WEIGHT_DECAY, INITIAL_ACC, EPS, MAXIMIZE, NKEYS };

static const dsc_key_info adagrad_keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-2, 0, 1e6, 0, 0, "learning rate"},
    [LR_DECAY] = {"lr_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                  "lr / (1 + (t - 1) * lr_decay)"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "L2 penalty added to the gradient"},
    [INITIAL_ACC] = {"initial_accumulator_value", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                     "initial value of the sum of squares"},
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-10, 0, 1, 1, 0, "added to the root of the sum"},
    [MAXIMIZE] = {"maximize", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "maximize the objective"},
};

enum { SLOT_SUM, SLOT_T };

static dsc_status adagrad_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                               char *err, size_t n)
{
    (void)err; (void)n;
    dsc_plan_slot(plan, "sum", dsc_state_dtype(g), p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    return DSC_OK;
}

typedef struct {
    float sign, wd, clr, eps;
} adagrad_scalars;

/* Reference: one element at a time, in the order of the spec. */
static void adagrad_step_ref(float *p, const float *g, dsc_state_buf s, size_t n,
                             adagrad_scalars c)
{
    for (size_t i = 0; i < n; i++) {
        float gi = c.sign * g[i];                                   /* 1. maximize */
        if (c.wd != 0.0f) gi = gi + c.wd * p[i];                    /* 2. L2 */
        float si = dsc_state_load(s.mode, s.f, s.h, i) + gi * gi;   /* 4. */
        dsc_state_store(s.mode, s.f, s.h, i, si, dsc_state_bits(s.mode, s.key, i, 0), 0);
        p[i] = p[i] - c.clr * (gi / (sqrtf(si) + c.eps));           /* 5. */
    }
}

/* Fast: per-thread ranges; the L2 flag is inlined as two loops so both
 * vectorize (a run-time flag inside an OpenMP loop can leave it scalar). */
typedef struct {
    float *p, *s;
    const float *g;
    adagrad_scalars c;
} adagrad_job;

/* Element i: the sum of squares updated in place, the new parameter
 * returned (one copy for the plain and the self-measuring loop). */
DSC_BODY float adagrad_elem(const adagrad_scalars c, float *restrict s, const float *restrict g,
                            float p, size_t i, const int l2)
{
    float gi = c.sign * g[i];
    if (l2) gi = gi + c.wd * p;
    float si = s[i] + gi * gi;
    s[i] = si;
    return p - c.clr * (gi / (sqrtf(si) + c.eps));
}

/* lane NULL: the plain step; else the step measuring itself. */
DSC_BODY void adagrad_body(const adagrad_job *job, size_t lo, size_t hi, const int l2,
                           double *restrict lane)
{
    float *restrict p = job->p, *restrict s = job->s;
    const float *restrict g = job->g;
    const adagrad_scalars c = job->c;
    if (!lane) {
        for (size_t i = lo; i < hi; i++) p[i] = adagrad_elem(c, s, g, p[i], i, l2);
        return;
    }
#define ADAGRAD_NEW(e, old) adagrad_elem(c, s, g, old, e, l2)
    DSC_DIFF_GROUPS(lo, hi, p, lane, ADAGRAD_NEW)
#undef ADAGRAD_NEW
}

/* The L2 flag as a constant; lane NULL for the plain step. */
DSC_BODY void adagrad_flags(const adagrad_job *job, size_t lo, size_t hi, double *lane)
{
    if (job->c.wd != 0.0f) adagrad_body(job, lo, hi, 1, lane);
    else adagrad_body(job, lo, hi, 0, lane);
}

DSC_WIDE static void adagrad_range(const void *ctx, size_t lo, size_t hi)
{
    adagrad_flags(ctx, lo, hi, NULL);
}

DSC_WIDE static void adagrad_range_diff(const void *ctx, size_t lo, size_t hi, double *lane)
{
    adagrad_flags(ctx, lo, hi, lane);
}

/* bf16 state: the float32 range on chunks (dsc_state_run_chunked). */
static void adagrad_rebase(void *sub, const void *whole, size_t c, float *const *bufs)
{
    adagrad_job *j = sub;
    *j = *(const adagrad_job *)whole;
    j->p += c;
    j->g += c;
    j->s = bufs[0];
}

/* Returns the sum of (new p - old p)^2 when `track` (float32 state only:
 * dsc_step_ctx.track_update), else 0. */
static double adagrad_step_fast(float *p, const float *g, dsc_state_buf s, size_t n,
                                adagrad_scalars c, int track)
{
    adagrad_job job = {.p = p, .s = s.f, .g = g, .c = c};
    if (s.mode == DSC_STATE_F32) {
        if (track) return dsc_parallel_ranges_diff(n, adagrad_range, adagrad_range_diff, &job, p);
        dsc_parallel_ranges(n, adagrad_range, &job);
        return 0.0;
    }
    _Static_assert(sizeof job <= DSC_STATE_JOB_MAX, "adagrad_job fits the chunk driver");
    dsc_state_chunks sc = {.range = adagrad_range, .job = &job, .rebase = adagrad_rebase, .nstates = 1,
                           .h = {s.h}, .mode = s.mode, .key = s.key};
    dsc_state_run_chunked(n, &sc);
    return 0.0;
}

static dsc_status adagrad_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        int64_t *t = p->slots[SLOT_T].data;
        dsc_state_buf s = dsc_state_slot(grp, p, SLOT_SUM, ctx);
        if (*t == 0 && s.mode == DSC_STATE_F32) fill(s.f, p->numel, (float)hp[INITIAL_ACC]);
        if (*t == 0 && s.mode != DSC_STATE_F32) fill16(s.h, p->numel, (float)hp[INITIAL_ACC]);
        *t += 1;
        adagrad_scalars c = {
            .sign = hp[MAXIMIZE] != 0 ? -1.0f : 1.0f, .wd = (float)hp[WEIGHT_DECAY],
            .clr = (float)(hp[LR] / (1.0 + (double)(*t - 1) * hp[LR_DECAY])),
            .eps = (float)hp[EPS],
        };
        if (ctx->reference) adagrad_step_ref(p->data, p->grad, s, p->numel, c);
        else p->update_sumsq = adagrad_step_fast(p->data, p->grad, s, p->numel, c,
                                                 ctx->track_update);
    }
    return DSC_OK;
}

const dsc_family dsc_family_adagrad = {
    .info = {
        .name = "adagrad",
        .summary = "AdaGrad with per-coordinate sums of squares, lr decay, L2, maximize",
        .paper = "Duchi, Hazan & Singer, Adaptive Subgradient Methods for Online Learning "
                 "and Stochastic Optimization, JMLR 2011",
        .source = "pytorch/pytorch torch/optim/adagrad.py (v1.13.1)",
        .nkeys = NKEYS, .keys = adagrad_keys, .matrix = 0,
    },
    .plan_param = adagrad_plan, .step = adagrad_step, .bf16_states = 1,
    .tracks_update = 1,
};

/* ------------------------------------------------------------ adagradnorm */

enum { N_LR, N_INITIAL_ACC, N_EPS, N_LR_DECAY, N_MOMENTUM, N_WEIGHT_DECAY, N_ROWWISE,
       N_NKEYS };

static const dsc_key_info adagradnorm_keys[N_NKEYS] = {
    [N_LR] = {"lr", DSC_KEY_FLOAT, 1.0, 0, 1e6, 0, 0, "learning rate (eta)"},
    [N_INITIAL_ACC] = {"initial_accumulator_value", DSC_KEY_FLOAT, 1e-2, 0, 1e6, 0, 0,
                       "initial value b0^2 of the accumulators"},
    [N_EPS] = {"eps", DSC_KEY_FLOAT, 1e-10, 0, 1, 1, 0, "added to the root (hard-coded "
               "1e-10 in the official class)"},
    [N_LR_DECAY] = {"lr_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                    "lr / (1 + (t - 1) * lr_decay)"},
    [N_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0, 0, 1, 0, 1,
                    "EMA of the gradient with weight 1 - momentum (0: none)"},
    [N_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "official quirk: an extra step p <- p - lr * weight_decay * g"},
    [N_ROWWISE] = {"rowwise", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                   "0: one scalar accumulator per group (paper); 1: per row (official "
                   "class)"},
};

/* Per-parameter slots (all modes, so rowwise may change), group slots. */
enum { NSLOT_SUM, NSLOT_BUF, NSLOT_T };
enum { GSLOT_SUM, GSLOT_T };

static int is_matrix(const dsc_param *p) { return p->ndim == 2 || p->ndim == 4; }

static dsc_status adagradnorm_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                   char *err, size_t n)
{
    if (p->ndim == 3 && g->base[N_ROWWISE] != 0) {
        snprintf(err, n, "adagradnorm: rowwise mode takes 1-D, 2-D or 4-D tensors, not 3-D");
        return DSC_SHAPE;
    }
    if (is_matrix(p)) {
        int64_t rows = p->shape[0];
        dsc_plan_slot_shaped(plan, "sum", DSC_DT_F32, 1, &rows);
        plan->scratch_bytes = p->rows * sizeof(double); /* this step's row sums */
    } else {
        dsc_plan_slot(plan, "sum", DSC_DT_F32, p->numel);
    }
    dsc_plan_slot(plan, "momentum_buffer", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    return DSC_OK;
}

static void adagradnorm_plan_group(const dsc_group *g, dsc_plan *plan)
{
    (void)g;
    dsc_plan_slot(plan, "sum", DSC_DT_F64, 1);  /* S of rowwise 0 */
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1); /* t of rowwise 0 */
}

typedef struct {
    float clr;           /* lr / (1 + (t - 1) * lr_decay) */
    float mu, one_minus_mu;
    float cw;            /* clr * weight_decay */
    float eps;
    int momentum, decay; /* momentum > 0, weight_decay != 0 */
} agn_scalars;

/* One coordinate given its denominator: the update of steps 4-5. The flags
 * come as separate arguments so that the fast loops can pass constants
 * (one loop per combination, each vectorized). */
DSC_BODY float agn_update_f(float p, float g, float *buf, float den, agn_scalars s,
                            const int momentum, const int decay)
{
    float d = g;
    if (momentum) {
        *buf = s.mu * *buf + s.one_minus_mu * g;
        d = *buf;
    }
    p = p - s.clr * (d / den);
    if (decay) p = p - s.cw * g;
    return p;
}

static inline float agn_update(float p, float g, float *buf, float den, agn_scalars s)
{
    return agn_update_f(p, g, buf, den, s, s.momentum, s.decay);
}

/* A span under one scalar denominator (global mode, or one row). */
DSC_BODY void agn_span_body(float *restrict p, const float *restrict g, float *restrict buf,
                            size_t lo, size_t hi, float den, agn_scalars s, const int momentum,
                            const int decay)
{
    for (size_t i = lo; i < hi; i++)
        p[i] = agn_update_f(p[i], g[i], &buf[i], den, s, momentum, decay);
}

DSC_BODY void agn_span_serial(float *p, const float *g, float *buf, size_t lo, size_t hi,
                             float den, agn_scalars s)
{
    if (s.momentum) {
        if (s.decay) agn_span_body(p, g, buf, lo, hi, den, s, 1, 1);
        else agn_span_body(p, g, buf, lo, hi, den, s, 1, 0);
    } else {
        if (s.decay) agn_span_body(p, g, buf, lo, hi, den, s, 0, 1);
        else agn_span_body(p, g, buf, lo, hi, den, s, 0, 0);
    }
}

typedef struct {
    float *p, *buf;
    const float *g;
    float den;
    agn_scalars s;
} agn_span_job;

DSC_WIDE static void agn_span_range(const void *ctx, size_t lo, size_t hi)
{
    const agn_span_job *job = ctx;
    agn_span_serial(job->p, job->g, job->buf, lo, hi, job->den, job->s);
}

static void agn_span_fast(float *p, const float *g, float *buf, size_t n, float den,
                          agn_scalars s)
{
    agn_span_job job = {.p = p, .buf = buf, .g = g, .den = den, .s = s};
    dsc_parallel_ranges(n, agn_span_range, &job);
}

/* Row-wise, one 2-D/4-D parameter: row sums into r, accumulators A. */
static void agn_rows_ref(dsc_param *p, float *A, float *buf, double *r, agn_scalars s)
{
    size_t C = p->cols;
    for (size_t i = 0; i < p->rows; i++) {
        const float *g = p->grad + i * C;
        float *x = p->data + i * C;
        r[i] = sumsq_fixed(g, C);
        A[i] = A[i] + (float)r[i];
        float den = sqrtf(A[i]) + s.eps;
        for (size_t j = 0; j < C; j++) x[j] = agn_update(x[j], g[j], &buf[i * C + j], den, s);
    }
}

/* Rows [lo, hi) of one parameter, each whole on one thread: its fixed-order
 * sum, its accumulator, then its update (a plain call, so the loops
 * vectorize). */
typedef struct {
    dsc_param *p;
    float *A, *buf;
    double *r;
    agn_scalars s;
} agn_rows_job;

DSC_WIDE static void agn_rows_items(const void *ctx, size_t lo, size_t hi)
{
    const agn_rows_job *job = ctx;
    const size_t C = job->p->cols;
    const float *grad = job->p->grad;
    float *data = job->p->data;
    for (size_t i = lo; i < hi; i++) {
        job->r[i] = sumsq_fixed(grad + i * C, C);
        float a = job->A[i] + (float)job->r[i];
        job->A[i] = a;
        agn_span_serial(data + i * C, grad + i * C, job->buf + i * C, 0, C,
                        sqrtf(a) + job->s.eps, job->s);
    }
}

static void agn_rows_fast(dsc_param *p, float *A, float *buf, double *r, agn_scalars s)
{
    const size_t R = p->rows, C = p->cols;
    if (R == 1) { /* one long row: the fixed-order reduction may use threads */
        r[0] = dsc_vec_sumsq(p->grad, C);
        A[0] = A[0] + (float)r[0];
        agn_span_fast(p->data, p->grad, buf, C, sqrtf(A[0]) + s.eps, s);
        return;
    }
    agn_rows_job job = {p, A, buf, r, s};
    dsc_parallel_items(R, R * C >= DSC_PAR_MIN, agn_rows_items, &job);
}

/* Row-wise, a 1-D parameter: per-coordinate A; r (R row sums, R % L == 0)
 * or NULL is the coupling to the last matrix of this step. */
static inline float agn_coupled(const double *r, size_t K, size_t i)
{
    double sum = 0.0;
    for (size_t k = 0; k < K; k++) sum += r[i * K + k];
    return (float)(sum / (double)K);
}

static void agn_vec_ref(dsc_param *p, float *A, float *buf, const double *r, size_t K,
                        agn_scalars s)
{
    for (size_t i = 0; i < p->numel; i++) {
        float g = p->grad[i];
        if (r) A[i] = A[i] + agn_coupled(r, K, i);
        A[i] = A[i] + g * g;
        float den = sqrtf(A[i]) + s.eps;
        p->data[i] = agn_update(p->data[i], g, &buf[i], den, s);
    }
}

/* Fast: per-thread ranges, one inlined loop per flag combination. */
typedef struct {
    float *p, *A, *buf;
    const float *g;
    const double *r;
    size_t K;
    agn_scalars s;
} agn_vec_job;

DSC_BODY void agn_vec_body(const agn_vec_job *job, size_t lo, size_t hi, const int coupled,
                           const int momentum, const int decay)
{
    float *restrict data = job->p, *restrict A = job->A, *restrict buf = job->buf;
    const float *restrict grad = job->g;
    const double *restrict r = job->r;
    const size_t K = job->K;
    const agn_scalars s = job->s;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i], a = A[i];
        if (coupled) a = a + agn_coupled(r, K, i);
        a = a + g * g;
        A[i] = a;
        data[i] = agn_update_f(data[i], g, &buf[i], sqrtf(a) + s.eps, s, momentum, decay);
    }
}

DSC_WIDE static void agn_vec_range(const void *ctx, size_t lo, size_t hi)
{
    const agn_vec_job *job = ctx;
    const int m = job->s.momentum, d = job->s.decay;
    if (job->r) {
        agn_vec_body(job, lo, hi, 1, m, d); /* small vectors (biases): no variants */
    } else if (m) {
        if (d) agn_vec_body(job, lo, hi, 0, 1, 1);
        else agn_vec_body(job, lo, hi, 0, 1, 0);
    } else {
        if (d) agn_vec_body(job, lo, hi, 0, 0, 1);
        else agn_vec_body(job, lo, hi, 0, 0, 0);
    }
}

static void agn_vec_fast(dsc_param *p, float *A, float *buf, const double *r, size_t K,
                         agn_scalars s)
{
    agn_vec_job job = {.p = p->data, .A = A, .buf = buf, .g = p->grad, .r = r, .K = K, .s = s};
    dsc_parallel_ranges(p->numel, agn_vec_range, &job);
}

static agn_scalars agn_make(const double *hp, int64_t t)
{
    double clr = hp[N_LR] / (1.0 + (double)(t - 1) * hp[N_LR_DECAY]);
    agn_scalars s = {
        .clr = (float)clr, .mu = (float)hp[N_MOMENTUM],
        .one_minus_mu = (float)(1.0 - hp[N_MOMENTUM]),
        .cw = (float)(clr * hp[N_WEIGHT_DECAY]), .eps = (float)hp[N_EPS],
        .momentum = hp[N_MOMENTUM] > 0, .decay = hp[N_WEIGHT_DECAY] != 0,
    };
    return s;
}

static void agn_step_global(dsc_group *grp, const dsc_step_ctx *ctx)
{
    double *S = grp->slots[GSLOT_SUM].data;
    int64_t *t = grp->slots[GSLOT_T].data;
    if (*t == 0) *S = grp->cur[N_INITIAL_ACC];
    *t += 1;
    double add = 0.0; /* 2. every current gradient enters before any update */
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        add += ctx->reference ? sumsq_fixed(p->grad, p->numel)
               : p->prescanned ? p->prescan[0]
                               : dsc_vec_sumsq(p->grad, p->numel);
    }
    *S += add;
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        agn_scalars s = agn_make(p->hp, *t);
        float den = (float)sqrt(*S) + s.eps; /* 3. one scalar */
        float *buf = p->slots[NSLOT_BUF].data;
        if (ctx->reference) {
            for (size_t i = 0; i < p->numel; i++)
                p->data[i] = agn_update(p->data[i], p->grad[i], &buf[i], den, s);
        } else {
            agn_span_fast(p->data, p->grad, buf, p->numel, den, s);
        }
    }
}

static void agn_step_rowwise(dsc_group *grp, const dsc_step_ctx *ctx)
{
    const dsc_param *last = NULL; /* the last 2-D/4-D parameter of this step */
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        int64_t *t = p->slots[NSLOT_T].data;
        float *A = p->slots[NSLOT_SUM].data, *buf = p->slots[NSLOT_BUF].data;
        if (*t == 0) fill(A, p->slots[NSLOT_SUM].count, (float)p->hp[N_INITIAL_ACC]);
        *t += 1;
        agn_scalars s = agn_make(p->hp, *t);
        if (is_matrix(p)) {
            if (ctx->reference) agn_rows_ref(p, A, buf, p->scratch, s);
            else agn_rows_fast(p, A, buf, p->scratch, s);
            last = p;
        } else {
            const double *r = NULL;
            size_t K = 0;
            if (p->ndim == 1 && last && last->rows % p->numel == 0) {
                r = last->scratch;
                K = last->rows / p->numel;
            }
            if (ctx->reference) agn_vec_ref(p, A, buf, r, K, s);
            else agn_vec_fast(p, A, buf, r, K, s);
        }
    }
}

/* The prescan (dsc_family.prescan): the global sum's term of this
 * parameter, its sum of g^2 in double, read before the driver's count. A
 * finite sum of squares proves every entry finite (a square of a finite
 * float cannot overflow a double). Row-wise groups sum each row while it is
 * in cache and have no such pass. */
static int adagradnorm_prescan(const dsc_group *grp, dsc_param *p)
{
    if (grp->cur[N_ROWWISE] != 0) return 0;
    p->prescan[0] = dsc_vec_sumsq(p->grad, p->numel);
    p->prescanned = 1;
    return isfinite(p->prescan[0]);
}

static dsc_status adagradnorm_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    if (grp->cur[N_ROWWISE] != 0) agn_step_rowwise(grp, ctx);
    else agn_step_global(grp, ctx);
    return DSC_OK;
}

const dsc_family dsc_family_adagradnorm = {
    .info = {
        .name = "adagradnorm",
        .summary = "AdaGrad-Norm: one scalar step size per group (rowwise 0) or per row "
                   "(rowwise 1, official class), momentum",
        .paper = "Ward, Wu & Bottou, AdaGrad stepsizes, ICML 2019; Lau, Liu & Kolar, "
                 "AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods, "
                 "arXiv 2402.11215",
        .source = "timlautk/AdAdaGrad adagradnorm.py @cc126fba",
        .nkeys = N_NKEYS, .keys = adagradnorm_keys, .matrix = 0,
    },
    .plan_param = adagradnorm_plan, .plan_group = adagradnorm_plan_group,
    .step = adagradnorm_step, .prescan = adagradnorm_prescan,
};

/* ------------------------------------------ AdAdaGrad adaptive batch size */

/* Statistics of one tensor (the AdAdaGrad batch-size tests), all in double:
 * n2 = |gbar|^2, vnorm = sum_j var_i(g_ij), vip = var_i(q_i) with
 * q_i = <g_i, gbar>, vorth = sum_j var_i(o_ij) with o_i = g_i - c_i gbar,
 * c_i = q_i / n2. gbar (numel) and q (b) are scratch. */
typedef struct {
    double n2, vnorm, vip, vorth;
} batch_stats;

static batch_stats tensor_batch_stats(const float *g, size_t n, int64_t b, double *gbar,
                                      double *q)
{
    batch_stats st = {0, 0, 0, 0};
    const size_t nb = (size_t)b;
    for (size_t j = 0; j < n; j++) gbar[j] = 0.0;
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < n; j++) gbar[j] += (double)g[i * n + j];
    for (size_t j = 0; j < n; j++) {
        gbar[j] /= (double)b;
        st.n2 += gbar[j] * gbar[j];
    }
    double qmean = 0.0;
    for (size_t i = 0; i < nb; i++) {
        double dev = 0.0, dot = 0.0;
        for (size_t j = 0; j < n; j++) {
            double d = (double)g[i * n + j] - gbar[j];
            dev += d * d;
            dot += (double)g[i * n + j] * gbar[j];
        }
        st.vnorm += dev;
        q[i] = dot;
        qmean += dot;
    }
    qmean /= (double)b;
    /* o_ij - mean_i o_ij = (g_ij - gbar_j) - (c_i - cbar) gbar_j */
    for (size_t i = 0; i < nb; i++) {
        double dq = q[i] - qmean, dc = st.n2 > 0 ? dq / st.n2 : 0.0, dev = 0.0;
        st.vip += dq * dq;
        for (size_t j = 0; j < n; j++) {
            double d = (double)g[i * n + j] - gbar[j] - dc * gbar[j];
            dev += d * d;
        }
        st.vorth += dev;
    }
    st.vnorm /= (double)(b - 1);
    st.vip /= (double)(b - 1);
    st.vorth /= (double)(b - 1);
    return st;
}

static double ratio(double v, double denom)
{
    if (denom > 0) return v / denom;
    return v > 0 ? INFINITY : 0.0;
}

dsc_status dsc_adadagrad_next_batch(dsc_batch_test test, double param, double param2,
                                    int64_t b, int ntensors, const float *const *grads,
                                    const size_t *numel, int64_t max_batch, int64_t *next,
                                    double *candidate)
{
    if (!grads || !numel || !next) return DSC_NULL_POINTER;
    if ((int)test < DSC_BATCH_TEST_NORM || test > DSC_BATCH_TEST_IP_ORTH || b < 2 ||
        ntensors < 1 || !(param > 0) || !isfinite(param) || max_batch < 1 ||
        (test == DSC_BATCH_TEST_IP_ORTH && !(param2 > 0 && isfinite(param2))))
        return DSC_INVALID_ARGUMENT;
    size_t most = 0;
    for (int t = 0; t < ntensors; t++) {
        if (!grads[t]) return DSC_NULL_POINTER;
        if (numel[t] == 0) return DSC_INVALID_ARGUMENT;
        if (dsc_vec_scan(grads[t], numel[t] * (size_t)b).nonfinite) return DSC_NONFINITE;
        if (numel[t] > most) most = numel[t];
    }
    double *gbar = dsc_calloc(most + (size_t)b, sizeof(double));
    if (!gbar) return DSC_NO_MEMORY;
    double n2 = 0, vnorm = 0, vip = 0, vorth = 0;
    for (int t = 0; t < ntensors; t++) {
        batch_stats st = tensor_batch_stats(grads[t], numel[t], b, gbar, gbar + most);
        n2 += st.n2;
        vnorm += st.vnorm;
        vip += st.vip;
        vorth += st.vorth;
    }
    dsc_free(gbar);
    double c = 0.0;
    switch (test) {
    case DSC_BATCH_TEST_NORM: c = ratio(vnorm, param * param * n2); break;
    case DSC_BATCH_TEST_IP: c = ratio(vip, param * param * n2 * n2); break;
    case DSC_BATCH_TEST_ORTH: c = ratio(vorth, param * param * n2); break;
    case DSC_BATCH_TEST_IP_ORTH: {
        double ip = ratio(vip, param * param * n2 * n2);
        double orth = ratio(vorth, param2 * param2 * n2);
        c = ip > orth ? ip : orth;
        break;
    }
    }
    if (candidate) *candidate = c;
    double grown = ceil(c > (double)b ? c : (double)b);
    *next = grown >= (double)max_batch ? max_batch : (int64_t)grown;
    return DSC_OK;
}
