/* muon.c - Muon and two relatives: momentum whose update is orthogonalized
 * by the Newton-Schulz iteration ns5 (src/kernels/newton_schulz.h).
 *
 * muon (docs/optimizers.md; KellerJordan/Muon muon.py @857d1ad, muon_update):
 *   M <- lerp(M, G, 1 - momentum)
 *   U <- lerp(G, M, momentum)  (nesterov)   or   U <- M
 *   O <- ns5(U, ns_steps) * shape_scale(G)
 *        4-D filters O x I x kH x kW as O x (I kH kW); 3-D tensors slice by
 *        slice over the last two dims; shape_scale from the last two dims of
 *        the tensor as given (a 3x1 kernel gets sqrt(3))
 *   W <- W (1 - lr wd);  W <- W - lr O
 *   Golden: muon_nesterov_4x6, muon_plain_wd_6x4, muon_multi_16x5_8x8,
 *   muon_ns3_5x16, muon_zerograd_8x8, muon_conv_4x2x3x3.
 *
 * muon_moonlight, alias muonlight (MoonshotAI/Moonlight
 * examples/toy_train.py @c2ad5b2, class Muon):
 *   2-D: M <- momentum M + G;  U <- G + momentum M (nesterov) or M
 *        W <- W (1 - lr wd);  W <- W - lr 0.2 sqrt(max(A, B)) ns5(U)
 *   1-D (built-in AdamW backup, sharing lr and weight_decay):
 *        t <- t + 1; m1 <- lerp(m1, g, 1 - b1); m2 <- lerp(m2, g^2, 1 - b2)
 *        W <- W (1 - lr wd);  W <- W - lr sqrt(1 - b2^t) / (1 - b1^t) m1 / (eps + sqrt(m2))
 *   Tensors of 3 or more dims are rejected (the official class asserts 2-D).
 *   Golden: muon_moonlight_8x8_6x4_b, muon_moonlight_plain_4x6.
 *
 * normuon ( zichongli5/NorMuon normuon.py @d45c9a4, normuon_update):
 *   M, U as muon; O <- ns5(U) (4-D flattened, then back to 4-D);
 *   n0 = ||O|| per slice of the last two dims; r = mean(O^2) over the last dim;
 *   v <- lerp(v, r, 1 - beta2); O <- O / (sqrt(v) + 1e-10) (per row);
 *   O <- O n0 / (||O|| + 1e-10) per slice; O <- O shape_scale(G);
 *   W <- W (1 - lr wd) if wd != 0; W <- W - lr O.
 *   For a 4-D filter the statistics are taken on the 4-D tensor (v per
 *   (o, i, kh), norms per (o, i) kernel slice), as the official code does.
 *   Golden: normuon_4x6_16x5_b, normuon_wd_6x4, normuon_conv_4x2x3x3.
 *
 * Vectors (1-D) are rejected by muon and normuon with DSC_SHAPE: route them
 * to a fallback group. The official code casts X to bfloat16 inside ns5;
 * descent stays in float32 by default (the golden files were made without
 * the cast); ns_bf16=1 rounds the inputs of ns5's products to bf16 with
 * float32 sums (newton_schulz.h), the official code's precision.
 *
 * State: slots per parameter. Workspace: the group's scratch holds the
 * update U / O of the largest parameter and the ns5 workspace. */
#include "matrix_common.h"

#include <string.h>

/* ------------------------------------------------------------------ muon */

enum { LR, MOMENTUM, WEIGHT_DECAY, NESTEROV, NS_STEPS, NS_BF16, NKEYS };

static const dsc_key_info muon_keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 0.02, 0, 1e6, 0, 0, "learning rate"},
    [MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "momentum (EMA factor of M)"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled weight decay: W <- W (1 - lr wd)"},
    [NESTEROV] = {"nesterov", DSC_KEY_BOOL, 1, 0, 1, 0, 0, "Nesterov blend U = lerp(G, M, momentum)"},
    [NS_STEPS] = {"ns_steps", DSC_KEY_INT, 5, 0, 100, 0, 0, "Newton-Schulz iterations"},
    [NS_BF16] = {"ns_bf16", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                 "Newton-Schulz products on bf16-rounded inputs, float32 sums (as the official Muon)"},
};

enum { SLOT_M, SLOT_V };

/* How ns5 sees a parameter of muon and normuon: 4-D flattened to O x rest,
 * otherwise slices over the last two dims (one slice for 2-D). */
static dsc_matview muon_view(const dsc_param *p)
{
    return p->ndim == 4 ? dsc_matview_flat(p) : dsc_matview_last2(p);
}

/* Scratch floats for one parameter: U (aligned) + ns5 workspace. */
static size_t muon_need(const dsc_param *p)
{
    if (p->ndim < 2) return 0;
    dsc_matview v = muon_view(p);
    return dsc_align16(p->numel) + dsc_ns5_work_floats(v.m, v.n);
}

static void plan_group_ns(const dsc_group *g, dsc_plan *plan)
{
    dsc_plan_scratch_max(g, plan, muon_need);
}

static dsc_status muon_plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                  char *err, size_t n)
{
    (void)g;
    if (p->ndim < 2) return dsc_reject_vector("muon", p, err, n);
    dsc_plan_slot_shaped(plan, "momentum_buffer", DSC_DT_F32, p->ndim, p->shape);
    return DSC_OK;
}

/* Steps 1-2 of muon and normuon (and auon, always Nesterov), declared in
 * matrix_common.h: M <- lerp(M, G, 1 - mu); U <- lerp(G, M, mu) or M.
 * Element-wise, so any split of the range gives the same bits; the
 * reference runs the same body over the whole range on one thread. */
typedef struct {
    float *M, *U;
    const float *G;
    float mu, w; /* w = 1 - mu, rounded from double as torch does */
} muon_momentum_job;

DSC_BODY void muon_momentum_body(const muon_momentum_job *job, size_t lo, size_t hi,
                                 const int nesterov)
{
    float *restrict M = job->M, *restrict U = job->U;
    const float *restrict G = job->G;
    const float mu = job->mu, w = job->w;
    for (size_t i = lo; i < hi; i++) {
        float m = dsc_lerpf(M[i], G[i], w);
        M[i] = m;
        U[i] = nesterov ? dsc_lerpf(G[i], m, mu) : m;
    }
}

DSC_WIDE static void muon_momentum_nesterov_range(const void *ctx, size_t lo, size_t hi)
{
    muon_momentum_body(ctx, lo, hi, 1);
}

DSC_WIDE static void muon_momentum_plain_range(const void *ctx, size_t lo, size_t hi)
{
    muon_momentum_body(ctx, lo, hi, 0);
}

void dsc_muon_momentum(float *M, const float *G, float *U, size_t n, float mu, int nesterov,
                       int reference)
{
    muon_momentum_job job = {.M = M, .U = U, .G = G, .mu = mu, .w = (float)(1.0 - (double)mu)};
    dsc_range_fn fn = nesterov ? muon_momentum_nesterov_range : muon_momentum_plain_range;
    if (reference) fn(&job, 0, n);
    else dsc_parallel_ranges(n, fn, &job);
}

/* The other element-wise steps run as range functions (dsc_parallel_ranges);
 * their references keep their own loops, in the order of the rules. */
typedef struct {
    float *M, *U, *W;
    const float *G, *O;
    float mu, decay, neg, scale;
    int nesterov;
} muon_job;

/* W <- W * decay; W <- W + (-lr) * (O * scale), with torch's rounding points. */
DSC_WIDE static void update_range(const void *ctx, size_t lo, size_t hi)
{
    const muon_job *J = ctx;
    float *restrict W = J->W;
    const float *restrict O = J->O;
    const float decay = J->decay, neg = J->neg, scale = J->scale;
    for (size_t i = lo; i < hi; i++) W[i] = W[i] * decay + neg * (O[i] * scale);
}

static void apply_update(float *W, const float *O, size_t n, float decay, float lr, float scale,
                         int reference)
{
    const float neg = -lr;
    if (reference) {
        for (size_t i = 0; i < n; i++) {
            float u = O[i] * scale;
            W[i] = W[i] * decay;
            W[i] = W[i] + neg * u;
        }
        return;
    }
    muon_job job = {.W = W, .O = O, .decay = decay, .neg = neg, .scale = scale};
    dsc_parallel_ranges(n, update_range, &job);
}

static void run_ns5(const dsc_param *p, float *U, float *work, int steps, int bf16,
                    int reference)
{
    dsc_matview v = muon_view(p);
    dsc_ns5(U, U, v.batch, v.m, v.n, steps, reference, bf16, work);
}

static dsc_status muon_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        float *U = grp->scratch, *work = U + dsc_align16(p->numel);
        float *M = p->slots[SLOT_M].data;
        const double lr = p->hp[LR], wd = p->hp[WEIGHT_DECAY];
        dsc_muon_momentum(M, p->grad, U, p->numel, (float)p->hp[MOMENTUM], p->hp[NESTEROV] != 0,
                          ctx->reference);
        run_ns5(p, U, work, (int)p->hp[NS_STEPS], p->hp[NS_BF16] != 0, ctx->reference);
        double scale = dsc_shape_scale((size_t)p->shape[p->ndim - 2], (size_t)p->shape[p->ndim - 1]);
        apply_update(p->data, U, p->numel, (float)(1.0 - lr * wd), (float)lr, (float)scale,
                     ctx->reference);
    }
    return DSC_OK;
}

const dsc_family dsc_family_muon = {
    .info = {
        .name = "muon",
        .summary = "momentum orthogonalized by Newton-Schulz (hidden matrices; 1-D to a fallback)",
        .paper = "Jordan et al., Muon: an optimizer for hidden layers in neural networks, 2024",
        .source = "KellerJordan/Muon muon.py (857d1ad)",
        .nkeys = NKEYS, .keys = muon_keys, .matrix = 1,
    },
    .plan_param = muon_plan_param, .plan_group = plan_group_ns, .step = muon_step,
};

/* --------------------------------------------------------------- normuon */

enum { N_LR, N_MOMENTUM, N_BETA2, N_WEIGHT_DECAY, N_NESTEROV, N_NS_STEPS, N_NS_BF16, N_NKEYS };

static const dsc_key_info normuon_keys[N_NKEYS] = {
    [N_LR] = {"lr", DSC_KEY_FLOAT, 0.02, 0, 1e6, 0, 0, "learning rate"},
    [N_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "momentum (EMA factor of M)"},
    [N_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "EMA factor of the per-row second moment"},
    [N_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "decoupled weight decay: W <- W (1 - lr wd)"},
    [N_NESTEROV] = {"nesterov", DSC_KEY_BOOL, 1, 0, 1, 0, 0, "Nesterov blend U = lerp(G, M, momentum)"},
    [N_NS_STEPS] = {"ns_steps", DSC_KEY_INT, 5, 0, 100, 0, 0, "Newton-Schulz iterations"},
    [N_NS_BF16] = {"ns_bf16", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                 "Newton-Schulz products on bf16-rounded inputs, float32 sums (as the official Muon)"},
};

/* Rows of the last dim and slices of the last two dims of a tensor. */
typedef struct {
    size_t len;       /* last dim */
    size_t rows;      /* numel / len */
    size_t per_slice; /* rows in one slice of the last two dims */
    size_t slices;
} row_layout;

static row_layout normuon_layout(const dsc_param *p)
{
    row_layout l;
    l.len = (size_t)p->shape[p->ndim - 1];
    l.rows = p->numel / l.len;
    l.per_slice = (size_t)p->shape[p->ndim - 2];
    l.slices = l.rows / l.per_slice;
    return l;
}

/* Scratch: U, ns5 workspace, then rows + slices doubles of statistics. */
static size_t normuon_need(const dsc_param *p)
{
    if (p->ndim < 2) return 0;
    row_layout l = normuon_layout(p);
    return dsc_align16(muon_need(p)) + 2 * (l.rows + l.slices);
}

static void normuon_plan_group(const dsc_group *g, dsc_plan *plan)
{
    dsc_plan_scratch_max(g, plan, normuon_need);
}

static dsc_status normuon_plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                     char *err, size_t n)
{
    (void)g;
    if (p->ndim < 2) return dsc_reject_vector("normuon", p, err, n);
    dsc_plan_slot_shaped(plan, "momentum_buffer", DSC_DT_F32, p->ndim, p->shape);
    int64_t vshape[DSC_MAX_NDIM];
    for (int d = 0; d < p->ndim; d++) vshape[d] = p->shape[d];
    vshape[p->ndim - 1] = 1;
    dsc_plan_slot_shaped(plan, "second_momentum_buffer", DSC_DT_F32, p->ndim, vshape);
    return DSC_OK;
}

typedef struct {
    float w2;     /* 1 - beta2 */
    float scale;  /* shape_scale(G) */
} normuon_scalars;

typedef struct {
    float *O, *v;
    row_layout l;
    normuon_scalars s;
    double *rowsq, *fac;
} normuon_job;

static void rowsq_items(const void *ctx, size_t lo, size_t hi)
{
    const normuon_job *J = ctx;
    const size_t L = J->l.len;
    for (size_t r = lo; r < hi; r++) {
        double q = 0.0;
        const float *o = J->O + r * L;
        for (size_t j = 0; j < L; j++) q += (double)o[j] * (double)o[j];
        J->rowsq[r] = q;
    }
}

static void normalize_items(const void *ctx, size_t lo, size_t hi)
{
    const normuon_job *J = ctx;
    const size_t L = J->l.len;
    for (size_t r = lo; r < hi; r++) {
        float *o = J->O + r * L;
        float mean = (float)(J->rowsq[r] / (double)L);            /* 4. */
        J->v[r] = dsc_lerpf(J->v[r], mean, J->s.w2);              /* 5. */
        float step = 1.0f / (sqrtf(J->v[r]) + 1e-10f);            /* 6. */
        double q = 0.0;
        for (size_t j = 0; j < L; j++) {
            o[j] = o[j] * step;
            q += (double)o[j] * (double)o[j];
        }
        J->rowsq[r] = q;
    }
}

static void rescale_items(const void *ctx, size_t lo, size_t hi)
{
    const normuon_job *J = ctx;
    const size_t L = J->l.len;
    for (size_t r = lo; r < hi; r++) {
        float *o = J->O + r * L;
        float f = (float)J->fac[r / J->l.per_slice];
        for (size_t j = 0; j < L; j++) o[j] = (o[j] * f) * J->s.scale; /* 7., 8. */
    }
}

/* Steps 3-8 on O (the ns5 output, in the tensor's shape), v per row.
 * rowsq (rows doubles) and fac (slices doubles) are workspace. Every sum is
 * taken in a fixed order (row by row, rows in index order), and each row is
 * computed whole by one thread (dsc_parallel_items), so threads only decide
 * who computes which row. */
static void normuon_post(float *O, float *v, row_layout l, normuon_scalars s, double *rowsq,
                         double *fac, int reference)
{
    const int par = !reference && l.rows * l.len >= DSC_PAR_MIN;
    normuon_job job = {O, v, l, s, rowsq, fac};
    dsc_parallel_items(l.rows, par, rowsq_items, &job);
    for (size_t sl = 0; sl < l.slices; sl++) { /* 3. n0 per slice */
        double q = 0.0;
        for (size_t r = 0; r < l.per_slice; r++) q += rowsq[sl * l.per_slice + r];
        fac[sl] = sqrt(q);
    }
    dsc_parallel_items(l.rows, par, normalize_items, &job);
    for (size_t sl = 0; sl < l.slices; sl++) { /* 7. n0 / (n1 + 1e-10) */
        double q = 0.0;
        for (size_t r = 0; r < l.per_slice; r++) q += rowsq[sl * l.per_slice + r];
        float n0 = (float)fac[sl], n1 = (float)sqrt(q);
        fac[sl] = (double)(n0 / (n1 + 1e-10f));
    }
    dsc_parallel_items(l.rows, par, rescale_items, &job);
}

static dsc_status normuon_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        row_layout l = normuon_layout(p);
        float *U = grp->scratch, *work = U + dsc_align16(p->numel);
        double *rowsq = (double *)(U + dsc_align16(muon_need(p)));
        double *fac = rowsq + l.rows;
        const double lr = p->hp[N_LR], wd = p->hp[N_WEIGHT_DECAY];
        dsc_muon_momentum(p->slots[SLOT_M].data, p->grad, U, p->numel,
                          (float)p->hp[N_MOMENTUM], p->hp[N_NESTEROV] != 0, ctx->reference);
        run_ns5(p, U, work, (int)p->hp[N_NS_STEPS], p->hp[N_NS_BF16] != 0, ctx->reference);
        normuon_scalars s = {
            (float)(1.0 - p->hp[N_BETA2]),
            (float)dsc_shape_scale((size_t)p->shape[p->ndim - 2], (size_t)p->shape[p->ndim - 1]),
        };
        normuon_post(U, p->slots[SLOT_V].data, l, s, rowsq, fac, ctx->reference);
        /* 9-10: decay only when wd != 0 (the official code tests it) */
        float decay = wd != 0.0 ? (float)(1.0 - lr * wd) : 1.0f;
        apply_update(p->data, U, p->numel, decay, (float)lr, 1.0f, ctx->reference);
    }
    return DSC_OK;
}

const dsc_family dsc_family_normuon = {
    .info = {
        .name = "normuon",
        .summary = "Muon with per-row second-moment normalization that keeps the update norm",
        .paper = "Li et al., NorMuon: Making Muon more efficient and scalable, arXiv 2510.05491",
        .source = "zichongli5/NorMuon normuon.py (d45c9a4)",
        .nkeys = N_NKEYS, .keys = normuon_keys, .matrix = 1,
    },
    .plan_param = normuon_plan_param, .plan_group = normuon_plan_group, .step = normuon_step,
};

/* -------------------------------------------------------- muon_moonlight */

enum { L_LR, L_WEIGHT_DECAY, L_MOMENTUM, L_NESTEROV, L_NS_STEPS, L_BETA1, L_BETA2, L_EPS,
       L_NS_BF16, L_NKEYS };

static const dsc_key_info moonlight_keys[L_NKEYS] = {
    [L_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate (both paths)"},
    [L_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0.1, 0, 1e6, 0, 0,
                        "decoupled weight decay W <- W (1 - lr wd), both paths (official: wd)"},
    [L_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 0, "momentum: M <- momentum M + G"},
    [L_NESTEROV] = {"nesterov", DSC_KEY_BOOL, 1, 0, 1, 0, 0, "Nesterov: U = G + momentum M"},
    [L_NS_STEPS] = {"ns_steps", DSC_KEY_INT, 5, 0, 100, 0, 0, "Newton-Schulz iterations"},
    [L_BETA1] = {"adamw_beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "AdamW backup (1-D): beta1"},
    [L_BETA2] = {"adamw_beta2", DSC_KEY_FLOAT, 0.95, 0, 1, 0, 1, "AdamW backup (1-D): beta2"},
    [L_EPS] = {"adamw_eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 0, 0, "AdamW backup (1-D): eps"},
    [L_NS_BF16] = {"ns_bf16", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                   "Newton-Schulz products on bf16-rounded inputs, float32 sums (as the official Muon)"},
};

enum { SLOT_M1, SLOT_M2, SLOT_T };

static size_t moonlight_need(const dsc_param *p) { return p->ndim == 2 ? muon_need(p) : 0; }

static void moonlight_plan_group(const dsc_group *g, dsc_plan *plan)
{
    dsc_plan_scratch_max(g, plan, moonlight_need);
}

static dsc_status moonlight_plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                                       char *err, size_t n)
{
    (void)g;
    if (p->ndim == 2) {
        dsc_plan_slot_shaped(plan, "momentum_buffer", DSC_DT_F32, p->ndim, p->shape);
        return DSC_OK;
    }
    if (p->ndim == 1) { /* the built-in AdamW backup */
        dsc_plan_slot_shaped(plan, "moment1", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot_shaped(plan, "moment2", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
        return DSC_OK;
    }
    snprintf(err, n,
             "muon_moonlight handles 2-D matrices (Muon path) and 1-D vectors (AdamW backup), "
             "got a %d-D tensor; flatten it or use muon", p->ndim);
    return DSC_SHAPE;
}

/* Muon path steps 1-2: M <- mu M + G; U <- G + mu M or M. */
DSC_BODY void moonlight_body(const muon_job *J, size_t lo, size_t hi, const int nesterov)
{
    float *restrict M = J->M, *restrict U = J->U;
    const float *restrict G = J->G;
    const float mu = J->mu;
    for (size_t i = lo; i < hi; i++) {
        float m = M[i] * mu + G[i];
        M[i] = m;
        U[i] = nesterov ? G[i] + mu * m : m;
    }
}

DSC_WIDE static void moonlight_range(const void *ctx, size_t lo, size_t hi)
{
    const muon_job *J = ctx;
    if (J->nesterov) moonlight_body(J, lo, hi, 1);
    else moonlight_body(J, lo, hi, 0);
}

static void moonlight_momentum(float *M, const float *G, float *U, size_t n, float mu,
                               int nesterov, int reference)
{
    if (reference) {
        for (size_t i = 0; i < n; i++) {
            M[i] = M[i] * mu + G[i];
            U[i] = nesterov ? G[i] + mu * M[i] : M[i];
        }
        return;
    }
    muon_job job = {.M = M, .U = U, .G = G, .mu = mu, .nesterov = nesterov};
    dsc_parallel_ranges(n, moonlight_range, &job);
}

typedef struct {
    float w1, w2, eps, decay, neg_step; /* neg_step = -lr / (bc1 / sqrt(bc2)) */
} backup_scalars;

typedef struct {
    float *W, *m1, *m2;
    const float *G;
    backup_scalars s;
} backup_job;

DSC_WIDE static void backup_range(const void *ctx, size_t lo, size_t hi)
{
    const backup_job *J = ctx;
    float *restrict W = J->W, *restrict m1 = J->m1, *restrict m2 = J->m2;
    const float *restrict G = J->G;
    const backup_scalars s = J->s;
    for (size_t i = lo; i < hi; i++) {
        float a = dsc_lerpf(m1[i], G[i], s.w1);
        float b = dsc_lerpf(m2[i], G[i] * G[i], s.w2);
        m1[i] = a;
        m2[i] = b;
        W[i] = W[i] * s.decay + s.neg_step * (a / (s.eps + sqrtf(b)));
    }
}

static void moonlight_backup(float *W, const float *G, float *m1, float *m2, size_t n,
                             backup_scalars s, int reference)
{
    if (reference) {
        for (size_t i = 0; i < n; i++) {
            m1[i] = dsc_lerpf(m1[i], G[i], s.w1);                /* 1. */
            m2[i] = dsc_lerpf(m2[i], G[i] * G[i], s.w2);
            float u = m1[i] / (s.eps + sqrtf(m2[i]));            /* 2. */
            W[i] = W[i] * s.decay;                               /* 3. */
            W[i] = W[i] + s.neg_step * u;
        }
        return;
    }
    backup_job job = {W, m1, m2, G, s};
    dsc_parallel_ranges(n, backup_range, &job);
}

static dsc_status moonlight_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double lr = p->hp[L_LR], wd = p->hp[L_WEIGHT_DECAY];
        const float decay = (float)(1.0 - lr * wd);
        if (p->ndim == 2) {
            float *U = grp->scratch, *work = U + dsc_align16(p->numel);
            moonlight_momentum(p->slots[SLOT_M].data, p->grad, U, p->numel,
                               (float)p->hp[L_MOMENTUM], p->hp[L_NESTEROV] != 0, ctx->reference);
            dsc_ns5(U, U, 1, p->rows, p->cols, (int)p->hp[L_NS_STEPS], ctx->reference,
                    p->hp[L_NS_BF16] != 0, work);
            /* adjust_lr_for_muon: lr * 0.2 * sqrt(max(A, B)) */
            double big = (double)(p->rows > p->cols ? p->rows : p->cols);
            float adjusted = (float)(lr * 0.2 * sqrt(big));
            apply_update(p->data, U, p->numel, decay, adjusted, 1.0f, ctx->reference);
        } else {
            int64_t *t = p->slots[SLOT_T].data;
            *t += 1;
            const double b1 = p->hp[L_BETA1], b2 = p->hp[L_BETA2];
            double bc1 = 1.0 - pow(b1, (double)*t), bc2 = 1.0 - pow(b2, (double)*t);
            backup_scalars s = {
                (float)(1.0 - b1), (float)(1.0 - b2), (float)p->hp[L_EPS], decay,
                (float)(-lr / (bc1 / sqrt(bc2))),
            };
            moonlight_backup(p->data, p->grad, p->slots[SLOT_M1].data, p->slots[SLOT_M2].data,
                             p->numel, s, ctx->reference);
        }
    }
    return DSC_OK;
}

static const char *const moonlight_aliases[] = {"muonlight", NULL};

const dsc_family dsc_family_muon_moonlight = {
    .info = {
        .name = "muon_moonlight",
        .summary = "Moonlight Muon: RMS-matched update 0.2 sqrt(max(A,B)), decoupled wd, AdamW "
                   "backup for 1-D",
        .paper = "Liu et al., Muon is Scalable for LLM Training, arXiv 2502.16982",
        .source = "MoonshotAI/Moonlight examples/toy_train.py (c2ad5b2)",
        .nkeys = L_NKEYS, .keys = moonlight_keys, .matrix = 1,
    },
    .aliases = moonlight_aliases,
    .plan_param = moonlight_plan_param, .plan_group = moonlight_plan_group,
    .step = moonlight_step,
};
