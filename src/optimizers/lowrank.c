/* lowrank.c - GaLore and Fira: Adam moments in a rank-k subspace of the
 * gradient, found by SVD and refreshed every update_proj_gap steps.
 *
 * galore (docs/optimizers.md and docs/matrix.md; jiaweizzhao/GaLore galore_torch/adamw.py
 * and galore_projector.py @2cc66f8, projection type "std"). For a 2-D W
 * (m x n) with gradient G, k = min(rank, m, n):
 *   refresh, when P is unset or t % update_proj_gap == 0 (t before the
 *   increment): thin SVD G = U S V^T with the sign convention of docs/matrix.md;
 *     m >= n ("right"): P = first k rows of V^T (k x n), R = G P^T (m x k),
 *                       back(X) = scale X P
 *     m <  n ("left"):  P = first k columns of U (m x k), R = P^T G (k x n),
 *                       back(X) = scale P X
 *   M <- b1 M + (1-b1) R;  V <- b2 V + (1-b2) R^2;  t <- t + 1
 *   N = M / (sqrt(V) + eps)                        (eps on the raw root)
 *   step = lr sqrt(1 - b2^t) / (1 - b1^t)  (correct_bias), else lr
 *   W <- W - step back(N);   then W <- W - lr wd W  (unscaled lr, after)
 * Moments are kept, not re-projected, when P changes (official behavior).
 * Tensors that are not 2-D take the plain path: the same Adam on the full
 * tensor with R = G and back = identity (no scale), same keys.
 *
 * fira ( xichen-fy/Fira optimizer_torch/fira_adamw.py and
 * gradient_projection.py @5c28b13): GaLore with `alpha` in place of `scale`,
 * plus the part of G outside the subspace, scaled like the low-rank step:
 *   phi = ||N||/(||R|| + 1e-8) per row ("right") or per column ("left")
 *   S = (G - back(R)) * phi      (back includes alpha: with alpha != 1 the
 *                                 residual keeps (1-alpha) of the projection)
 *   at t = 1: prev = ||S||_F;  later: nu = ||S||_F,
 *   lam = max(nu / (prev + 1e-8), 1.01) / 1.01, S <- S / lam, prev <- nu / lam
 *   W <- W - step (back(N) + S);  weight decay as GaLore.
 *
 * Golden files: galore_std_8x8_r2_b, galore_wide_4x6_r2_wd,
 * galore_refresh_16x5_r3, fira_8x8_r2_alpha025_b, fira_wide_4x6_r2_wd,
 * fira_refresh_16x5_r3 (references in float64 with a float64 SVD).
 *
 * SVD routes (src/kernels/svd.h). The reference path runs one-sided Jacobi
 * on G itself (accurate for every singular triple). The fast path takes the
 * eigenvectors of the smaller Gram matrix (G^T G when right, G G^T when
 * left) in double, by tridiagonal QL: they are exactly the singular vectors
 * P needs, so no U = G V / s division is formed. Squaring the matrix costs
 * accuracy only where it does not matter here: the error of the i-th
 * eigenvector is about eps s_1^2 / (s_i^2 - s_{i+1}^2), i.e. the Jacobi
 * error eps s_1 / (s_i - s_{i+1}) times s_1 / (s_i + s_{i+1}); for the top-k
 * vectors of a gradient that factor is modest, and in double the result is
 * still some 1e-12 from the Jacobi one, far below the float32 projector.
 * Singular vectors of (near) zero singular values are arbitrary on both
 * routes, but those directions carry no gradient. Above 64 the eigensolver
 * computes only the top k vectors (inverse iteration on the tridiagonal
 * form); Jacobi on the Gram matrix would be as accurate but 10x slower.
 *
 * What is left out: the official proj_types other than "std" (reverse_std,
 * left, right, full), and the official float32 SVD (we use float64, as the
 * golden files do). `rank` is read when a parameter is added (it sizes the
 * state); changing it later does not resize existing parameters. */
#include "../core/internal.h"
#include "../kernels/gemm.h"
#include "../kernels/svd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CORRECT_BIAS, RANK, UPDATE_PROJ_GAP, SCALE, NKEYS };

#define COMMON_KEYS                                                                             \
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},                          \
    [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "first-moment decay"},                  \
    [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "second-moment decay"},               \
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-6, 0, 1, 1, 0, "added to sqrt(v), not bias-corrected"},   \
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,                           \
                      "decoupled decay lr*wd, applied after the update"},                       \
    [CORRECT_BIAS] = {"correct_bias", DSC_KEY_BOOL, 1, 0, 1, 0, 0, "Adam bias correction"},     \
    [RANK] = {"rank", DSC_KEY_INT, NAN, 1, 1e9, 0, 0,                                           \
              "projection rank k = min(rank, m, n) (required; fixed when a parameter is "      \
              "added)"},                                                                        \
    [UPDATE_PROJ_GAP] = {"update_proj_gap", DSC_KEY_INT, 200, 1, 1e9, 0, 0,                     \
                         "steps between projector refreshes (SVD of the gradient)"}

static const dsc_key_info galore_keys[NKEYS] = {
    COMMON_KEYS,
    [SCALE] = {"scale", DSC_KEY_FLOAT, 1.0, 0, 1e6, 0, 0, "factor on the back-projected step"},
};

static const dsc_key_info fira_keys[NKEYS] = {
    COMMON_KEYS,
    [SCALE] = {"alpha", DSC_KEY_FLOAT, 1.0, 0, 1e6, 0, 0,
               "factor on the back-projected step (GaLore's scale)"},
};

/* Slots. Projected (2-D): exp_avg and exp_avg_sq in the low-rank shape,
 * step, the projector, a flag "projector set", and (Fira) prev = the
 * limiter's last ||S||. Plain: exp_avg, exp_avg_sq (full shape), step. */
enum { SLOT_M, SLOT_V, SLOT_T, SLOT_P, SLOT_SET, SLOT_PREV };

#define FIRA_GAMMA 1.01  /* limiter ratio, a constant of the official code */
#define FIRA_TINY 1e-8   /* the official code's guards in phi and the limiter */

typedef struct {
    size_t m, n, k;
    size_t r, len;  /* min(m, n), max(m, n) */
    int right;      /* m >= n: P is k x n, R and N are m x k; else P m x k, R k x n */
} lr_shape;

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static lr_shape shape_with_rank(size_t m, size_t n, size_t k)
{
    lr_shape s = {m, n, k, min_sz(m, n), m < n ? n : m, m >= n};
    return s;
}

/* The shape of a projected parameter, k read from its projector slot. */
static lr_shape param_shape(const dsc_param *p)
{
    const dsc_slot *ps = &p->slots[SLOT_P];
    size_t m = p->rows, n = p->cols;
    size_t k = (size_t)(m >= n ? ps->shape[0] : ps->shape[1]);
    return shape_with_rank(m, n, k);
}

/* Scratch: refresh phase and step phase use the same bytes in turn. */
typedef struct {
    size_t x, c, w, ework, vecs;    /* refresh, fast: X (r x len) C (r x r) w (r) eig work,
                                       top-k vectors (k x r) */
    size_t gd, jwork, jout, js;     /* refresh, ref: G (m x n), Jacobi work, U or V, s */
    size_t rr, nn, buf, phi, gwork; /* step: R, N (k x len), S (m x n), phi (len), gemm */
    size_t total;
} lr_layout;

static lr_layout layout_of(lr_shape s)
{
    lr_layout L;
    size_t o = 0;
    L.x = o; o = align64(o + s.r * s.len * sizeof(double));
    L.c = o; o = align64(o + s.r * s.r * sizeof(double));
    L.w = o; o = align64(o + s.r * sizeof(double));
    size_t ew = dsc_sym_eig_work_bytes(s.r), et = dsc_sym_eig_top_work_bytes(s.r);
    L.ework = o; o = align64(o + (ew > et ? ew : et));
    L.vecs = o; o = align64(o + s.k * s.r * sizeof(double));
    size_t fast = o;
    o = 0;
    L.gd = o; o = align64(o + s.m * s.n * sizeof(double));
    L.jwork = o; o = align64(o + dsc_svd_jacobi_work_bytes(s.m, s.n));
    L.jout = o; o = align64(o + s.r * s.r * sizeof(double));
    L.js = o; o = align64(o + s.r * sizeof(double));
    size_t ref = o;
    o = 0;
    L.rr = o; o = align64(o + s.k * s.len * sizeof(float));
    L.nn = o; o = align64(o + s.k * s.len * sizeof(float));
    L.buf = o; o = align64(o + s.m * s.n * sizeof(float));
    L.phi = o; o = align64(o + s.len * sizeof(double));
    L.gwork = o; o = align64(o + dsc_gemm_work_floats() * sizeof(float));
    L.total = o;
    if (fast > L.total) L.total = fast;
    if (ref > L.total) L.total = ref;
    return L;
}

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t errlen)
{
    (void)err; (void)errlen;
    if (p->ndim != 2) { /* plain path */
        dsc_plan_slot_shaped(plan, "exp_avg", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot_shaped(plan, "exp_avg_sq", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
        return DSC_OK;
    }
    double rank = (p->override_mask & (1ull << RANK)) ? p->override_value[RANK] : g->base[RANK];
    size_t m = p->rows, n = p->cols;
    size_t k = min_sz((size_t)rank, min_sz(m, n));
    int64_t low[2], proj[2];
    if (m >= n) {
        low[0] = (int64_t)m; low[1] = (int64_t)k;
        proj[0] = (int64_t)k; proj[1] = (int64_t)n;
    } else {
        low[0] = (int64_t)k; low[1] = (int64_t)n;
        proj[0] = (int64_t)m; proj[1] = (int64_t)k;
    }
    dsc_plan_slot_shaped(plan, "exp_avg", DSC_DT_F32, 2, low);
    dsc_plan_slot_shaped(plan, "exp_avg_sq", DSC_DT_F32, 2, low);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    dsc_plan_slot_shaped(plan, "projector", DSC_DT_F32, 2, proj);
    dsc_plan_slot(plan, "projector_set", DSC_DT_U8, 1);
    if (g->family->info.keys == fira_keys) dsc_plan_slot(plan, "prev", DSC_DT_F64, 1);
    return DSC_OK;
}

/* Group workspace: the largest any projected parameter needs. */
static void plan_group(const dsc_group *g, dsc_plan *plan)
{
    size_t need = 0;
    for (int i = 0; i < g->nparams; i++) {
        const dsc_param *p = dsc_group_param((dsc_group *)g, i);
        if (p->ndim != 2) continue;
        lr_layout L = layout_of(param_shape(p));
        if (L.total > need) need = L.total;
    }
    plan->scratch_bytes = need;
}

/* ------------------------------------------------------------- refresh */

/* P (float) from the top k right (V side) or left (U side) singular vectors:
 * vec(j, i) is entry i of vector j. */
static void store_projector(lr_shape s, float *pj, const double *rows, size_t ld)
{
    if (s.right) { /* P (k x n): row j = v_j */
        for (size_t j = 0; j < s.k; j++)
            for (size_t i = 0; i < s.n; i++) pj[j * s.n + i] = (float)rows[j * ld + i];
    } else { /* P (m x k): column j = u_j */
        for (size_t i = 0; i < s.m; i++)
            for (size_t j = 0; j < s.k; j++) pj[i * s.k + j] = (float)rows[j * ld + i];
    }
}

/* Reference: one-sided Jacobi on G in double. */
static void refresh_ref(lr_shape s, const float *g, float *pj, void *scratch)
{
    lr_layout L = layout_of(s);
    double *gd = AT(scratch, L.gd, double), *out = AT(scratch, L.jout, double);
    double *sv = AT(scratch, L.js, double);
    for (size_t i = 0; i < s.m * s.n; i++) gd[i] = g[i];
    if (s.right) {
        dsc_svd_jacobi(s.m, s.n, gd, sv, NULL, out, DSC_SVD_SIGN_V, AT(scratch, L.jwork, void));
    } else {
        dsc_svd_jacobi(s.m, s.n, gd, sv, out, NULL, DSC_SVD_SIGN_U, AT(scratch, L.jwork, void));
    }
    /* out is (len x r) with vector j in column j; P wants vector j as a row
     * of r entries at stride 1, so transpose through the store loop. */
    if (s.right) {
        for (size_t j = 0; j < s.k; j++)
            for (size_t i = 0; i < s.n; i++) pj[j * s.n + i] = (float)out[i * s.r + j];
    } else {
        for (size_t i = 0; i < s.m; i++)
            for (size_t j = 0; j < s.k; j++) pj[i * s.k + j] = (float)out[i * s.r + j];
    }
}

/* Gram matrices up to this order get all eigenvectors by QL; larger ones
 * only the top k, by inverse iteration (svd.h), several times faster at 768. */
#define FULL_EIG_MAX 64

/* X in double: G^T (right: column j of G is row j of X, items are columns)
 * or G (left: element-wise). */
typedef struct {
    double *x;
    const float *g;
    size_t m, n;
} widen_job;

static void widen_cols(const void *ctx, size_t lo, size_t hi)
{
    const widen_job *J = ctx;
    for (size_t j = lo; j < hi; j++)
        for (size_t i = 0; i < J->m; i++) J->x[j * J->m + i] = J->g[i * J->n + j];
}

static void widen_range(const void *ctx, size_t lo, size_t hi)
{
    const widen_job *J = ctx;
    double *restrict x = J->x;
    const float *restrict g = J->g;
    for (size_t i = lo; i < hi; i++) x[i] = g[i];
}

/* Fast: eigenvectors of the smaller Gram matrix X X^T, X = G^T (right) or G. */
static void refresh_fast(lr_shape s, const float *g, float *pj, void *scratch)
{
    lr_layout L = layout_of(s);
    double *x = AT(scratch, L.x, double), *c = AT(scratch, L.c, double);
    double *w = AT(scratch, L.w, double);
    const size_t m = s.m, n = s.n;
    widen_job wj = {x, g, m, n};
    if (s.right) dsc_parallel_items(n, m * n >= DSC_PAR_MIN, widen_cols, &wj);
    else dsc_parallel_ranges(m * n, widen_range, &wj);
    dsc_gram_f64(s.r, s.len, x, c);
    if (s.r <= FULL_EIG_MAX) {
        dsc_sym_eig(s.r, c, w, AT(scratch, L.ework, void));
        store_projector(s, pj, c, s.r);
    } else {
        double *vecs = AT(scratch, L.vecs, double);
        dsc_sym_eig_top(s.r, s.k, c, w, vecs, AT(scratch, L.ework, void));
        store_projector(s, pj, vecs, s.r);
    }
}

/* ---------------------------------------------------------------- steps */

typedef struct {
    float b1, c1, b2, c2, eps; /* c1 = 1 - b1, c2 = 1 - b2 (from double, as torch) */
    float neg_step;            /* -step (bias correction folded in) */
    float neg_lrwd;            /* -lr wd */
    double step, scale;
    int wd;
} lr_scalars;

static lr_scalars scalars_of(const dsc_param *p, int64_t t)
{
    lr_scalars c;
    double b1 = p->hp[BETA1], b2 = p->hp[BETA2], lr = p->hp[LR];
    c.b1 = (float)b1;
    c.c1 = (float)(1.0 - b1);
    c.b2 = (float)b2;
    c.c2 = (float)(1.0 - b2);
    c.eps = (float)p->hp[EPS];
    c.step = lr;
    if (p->hp[CORRECT_BIAS] != 0)
        c.step = lr * sqrt(1.0 - pow(b2, (double)t)) / (1.0 - pow(b1, (double)t));
    c.neg_step = (float)-c.step;
    c.neg_lrwd = (float)(-lr * p->hp[WEIGHT_DECAY]);
    c.wd = p->hp[WEIGHT_DECAY] > 0;
    c.scale = p->hp[SCALE];
    return c;
}

/* Plain path: Adam on the full tensor (the galore rule with R = G). */
static void plain_ref(float *w, const float *g, float *m, float *v, size_t n, lr_scalars c)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = c.b1 * m[i] + c.c1 * g[i];             /* 2 */
        v[i] = c.b2 * v[i] + c.c2 * g[i] * g[i];
        float nn = m[i] / (sqrtf(v[i]) + c.eps);      /* 3 */
        w[i] = w[i] + c.neg_step * nn;                /* 5 */
        if (c.wd) w[i] = w[i] + c.neg_lrwd * w[i];    /* 6 */
    }
}

typedef struct {
    float *w, *m, *v;
    const float *g;
    lr_scalars c;
} plain_job;

DSC_WIDE static void plain_range(const void *ctx, size_t lo, size_t hi)
{
    const plain_job *J = ctx;
    float *restrict w = J->w, *restrict m = J->m, *restrict v = J->v;
    const float *restrict g = J->g;
    const lr_scalars c = J->c;
    const float b1 = c.b1, c1 = c.c1, b2 = c.b2, c2 = c.c2, eps = c.eps, ns = c.neg_step;
    const float nwd = c.wd ? c.neg_lrwd : 0.0f;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float wi = w[i] + ns * (mi / (sqrtf(vi) + eps));
        w[i] = wi + nwd * wi;
    }
}

static void plain_fast(float *w, const float *g, float *m, float *v, size_t n, lr_scalars c)
{
    plain_job job = {w, m, v, g, c};
    dsc_parallel_ranges(n, plain_range, &job);
}

/* The projected step's buffers. */
typedef struct {
    lr_shape s;
    float *w;
    const float *g;
    const float *pj;
    float *m, *v;
    float *r, *nn, *buf; /* R, N (k x len as laid out), S (m x n) */
    double *phi;
    float *gwork;
    double *prev;        /* NULL for galore */
    int has_prev;        /* a previous step set *prev */
} lr_bufs;

/* back(X)[i][c] without the scale, in double: right X (m x k): sum_j X[i][j] P[j][c];
 * left X (k x n): sum_j P[i][j] X[j][c]. */
static double back_ref(lr_shape s, const float *pj, const float *x, size_t i, size_t c)
{
    double acc = 0.0;
    if (s.right)
        for (size_t j = 0; j < s.k; j++) acc += (double)x[i * s.k + j] * pj[j * s.n + c];
    else
        for (size_t j = 0; j < s.k; j++) acc += (double)pj[i * s.k + j] * x[j * s.n + c];
    return acc;
}

static void projected_ref(const lr_bufs *b, lr_scalars c)
{
    const lr_shape s = b->s;
    const size_t nlow = s.k * s.len;
    /* 1. R = G P^T (right) or P^T G (left) */
    if (s.right) {
        for (size_t i = 0; i < s.m; i++)
            for (size_t j = 0; j < s.k; j++) {
                double acc = 0.0;
                for (size_t t = 0; t < s.n; t++) acc += (double)b->g[i * s.n + t] * b->pj[j * s.n + t];
                b->r[i * s.k + j] = (float)acc;
            }
    } else {
        for (size_t j = 0; j < s.k; j++)
            for (size_t t = 0; t < s.n; t++) {
                double acc = 0.0;
                for (size_t i = 0; i < s.m; i++) acc += (double)b->pj[i * s.k + j] * b->g[i * s.n + t];
                b->r[j * s.n + t] = (float)acc;
            }
    }
    /* 2-3. moments and N */
    for (size_t e = 0; e < nlow; e++) {
        float re = b->r[e];
        b->m[e] = c.b1 * b->m[e] + c.c1 * re;
        b->v[e] = c.b2 * b->v[e] + c.c2 * re * re;
        b->nn[e] = b->m[e] / (sqrtf(b->v[e]) + c.eps);
    }
    const float scale = (float)c.scale;
    if (b->prev) {
        /* Fira 5. phi per row of the m x k (right) or per column of the k x n (left) */
        size_t nphi = s.right ? s.m : s.n;
        for (size_t a = 0; a < nphi; a++) {
            double sn = 0.0, sr = 0.0;
            for (size_t j = 0; j < s.k; j++) {
                size_t e = s.right ? a * s.k + j : j * s.n + a;
                sn += (double)b->nn[e] * b->nn[e];
                sr += (double)b->r[e] * b->r[e];
            }
            b->phi[a] = sqrt(sn) / (sqrt(sr) + FIRA_TINY);
        }
        /* 6. S = (G - back(R)) * phi */
        double ss = 0.0;
        for (size_t i = 0; i < s.m; i++)
            for (size_t t = 0; t < s.n; t++) {
                float br = scale * (float)back_ref(s, b->pj, b->r, i, t);
                float sv = (b->g[i * s.n + t] - br) * (float)b->phi[s.right ? i : t];
                b->buf[i * s.n + t] = sv;
                ss += (double)sv * sv;
            }
        /* 7. limiter */
        double nu = sqrt(ss);
        if (b->has_prev) {
            double lam = fmax(nu / (*b->prev + FIRA_TINY), FIRA_GAMMA) / FIRA_GAMMA;
            for (size_t e = 0; e < s.m * s.n; e++) b->buf[e] = b->buf[e] / (float)lam;
            *b->prev = nu / lam;
        } else {
            *b->prev = nu;
        }
    }
    /* 5 (galore) / 8 (fira): W <- W - step (back(N) [+ S]); then weight decay */
    for (size_t i = 0; i < s.m; i++)
        for (size_t t = 0; t < s.n; t++) {
            float d = scale * (float)back_ref(s, b->pj, b->nn, i, t);
            if (b->prev) d = d + b->buf[i * s.n + t];
            float *wi = &b->w[i * s.n + t];
            *wi = *wi + c.neg_step * d;
            if (c.wd) *wi = *wi + c.neg_lrwd * *wi;
        }
}

/* back(X) through the GEMM: C = alpha back(X)/scale + beta C. */
static void back_gemm(lr_shape s, const float *pj, const float *x, float alpha, float beta,
                      float *out, float *gwork)
{
    if (s.right)
        dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, s.m, s.n, s.k, alpha, x, s.k, pj, s.n, beta, out,
                 s.n, gwork);
    else
        dsc_gemm(DSC_NO_TRANS, DSC_NO_TRANS, s.m, s.n, s.k, alpha, pj, s.k, x, s.n, beta, out,
                 s.n, gwork);
}

/* The loops of the fast projected step: element ranges (dsc_parallel_ranges)
 * and rows or columns of phi and S, each computed whole by one thread
 * (dsc_parallel_items), so every sum keeps the reference's order. */
typedef struct {
    const lr_bufs *b;
    lr_scalars c;
    float nwd, ns, fl;
} proj_job;

DSC_WIDE static void moments_range(const void *ctx, size_t lo, size_t hi)
{
    const proj_job *J = ctx;
    float *restrict m = J->b->m, *restrict v = J->b->v, *restrict nn = J->b->nn;
    const float *restrict r = J->b->r;
    const float b1 = J->c.b1, c1 = J->c.c1, b2 = J->c.b2, c2 = J->c.c2, eps = J->c.eps;
    for (size_t e = lo; e < hi; e++) {
        float re = r[e];
        float mi = b1 * m[e] + c1 * re;
        float vi = b2 * v[e] + c2 * re * re;
        m[e] = mi;
        v[e] = vi;
        nn[e] = mi / (sqrtf(vi) + eps);
    }
}

DSC_WIDE static void decay_range(const void *ctx, size_t lo, size_t hi)
{
    const proj_job *J = ctx;
    float *restrict w = J->b->w;
    const float nwd = J->nwd;
    for (size_t e = lo; e < hi; e++) w[e] = w[e] + nwd * w[e];
}

/* phi[a] for the rows of R, N (right, k per row) or their columns (left). */
static void phi_items(const void *ctx, size_t lo, size_t hi)
{
    const lr_bufs *b = ((const proj_job *)ctx)->b;
    const lr_shape s = b->s;
    for (size_t a = lo; a < hi; a++) {
        double sn = 0.0, sr = 0.0;
        for (size_t j = 0; j < s.k; j++) {
            size_t e = s.right ? a * s.k + j : j * s.n + a;
            sn += (double)b->nn[e] * b->nn[e];
            sr += (double)b->r[e] * b->r[e];
        }
        b->phi[a] = sqrt(sn) / (sqrt(sr) + FIRA_TINY);
    }
}

/* S <- S * phi, by rows of S. */
static void scale_rows(const void *ctx, size_t lo, size_t hi)
{
    const lr_bufs *b = ((const proj_job *)ctx)->b;
    const lr_shape s = b->s;
    for (size_t i = lo; i < hi; i++) {
        float *row = b->buf + i * s.n;
        if (s.right) {
            float f = (float)b->phi[i];
            for (size_t t = 0; t < s.n; t++) row[t] *= f;
        } else {
            for (size_t t = 0; t < s.n; t++) row[t] *= (float)b->phi[t];
        }
    }
}

DSC_WIDE static void limit_range(const void *ctx, size_t lo, size_t hi)
{
    const proj_job *J = ctx;
    float *restrict buf = J->b->buf;
    const float fl = J->fl;
    for (size_t e = lo; e < hi; e++) buf[e] = buf[e] / fl;
}

DSC_WIDE static void update_range(const void *ctx, size_t lo, size_t hi)
{
    const proj_job *J = ctx;
    float *restrict w = J->b->w;
    const float *restrict buf = J->b->buf;
    const float ns = J->ns, nwd = J->nwd;
    for (size_t e = lo; e < hi; e++) {
        float wi = w[e] + ns * buf[e];
        w[e] = wi + nwd * wi;
    }
}

static void projected_fast(const lr_bufs *b, lr_scalars c)
{
    const lr_shape s = b->s;
    const size_t nlow = s.k * s.len, mn = s.m * s.n;
    if (s.right)
        dsc_gemm(DSC_NO_TRANS, DSC_TRANS, s.m, s.k, s.n, 1.0f, b->g, s.n, b->pj, s.n, 0.0f, b->r,
                 s.k, b->gwork);
    else
        dsc_gemm(DSC_TRANS, DSC_NO_TRANS, s.k, s.n, s.m, 1.0f, b->pj, s.k, b->g, s.n, 0.0f, b->r,
                 s.n, b->gwork);
    proj_job job = {b, c, c.wd ? c.neg_lrwd : 0.0f, c.neg_step, 1.0f};
    dsc_parallel_ranges(nlow, moments_range, &job);
    const float scale = (float)c.scale;
    if (!b->prev) { /* galore: W += -step scale N P (one GEMM), then decay */
        back_gemm(s, b->pj, b->nn, job.ns * scale, 1.0f, b->w, b->gwork);
        if (c.wd) dsc_parallel_ranges(mn, decay_range, &job);
        return;
    }
    /* fira: phi, each entry summed by one thread in a fixed order */
    dsc_parallel_items(s.right ? s.m : s.n, nlow >= DSC_PAR_MIN, phi_items, &job);
    /* S = (G - scale back(R)) * phi */
    memcpy(b->buf, b->g, mn * sizeof(float));
    back_gemm(s, b->pj, b->r, -scale, 1.0f, b->buf, b->gwork);
    dsc_parallel_items(s.m, mn >= DSC_PAR_MIN, scale_rows, &job);
    double nu = sqrt(dsc_vec_sumsq(b->buf, mn)); /* fixed-block sum: thread-count invariant */
    if (b->has_prev) {
        double lam = fmax(nu / (*b->prev + FIRA_TINY), FIRA_GAMMA) / FIRA_GAMMA;
        job.fl = (float)lam;
        dsc_parallel_ranges(mn, limit_range, &job);
        *b->prev = nu / lam;
    } else {
        *b->prev = nu;
    }
    back_gemm(s, b->pj, b->nn, scale, 1.0f, b->buf, b->gwork); /* buf = back(N) + S */
    dsc_parallel_ranges(mn, update_range, &job);
}

static void step_projected(dsc_param *p, void *scratch, int fira, int reference)
{
    lr_shape s = param_shape(p);
    lr_layout L = layout_of(s);
    int64_t *t = p->slots[SLOT_T].data;
    uint8_t *set = p->slots[SLOT_SET].data;
    float *pj = p->slots[SLOT_P].data;
    int64_t gap = (int64_t)p->hp[UPDATE_PROJ_GAP];
    int64_t t0 = *t;
    if (!*set || t0 % gap == 0) {
        if (reference) refresh_ref(s, p->grad, pj, scratch);
        else refresh_fast(s, p->grad, pj, scratch);
        *set = 1;
    }
    *t = t0 + 1;
    lr_bufs b = {
        .s = s, .w = p->data, .g = p->grad, .pj = pj,
        .m = p->slots[SLOT_M].data, .v = p->slots[SLOT_V].data,
        .r = AT(scratch, L.rr, float), .nn = AT(scratch, L.nn, float),
        .buf = AT(scratch, L.buf, float), .phi = AT(scratch, L.phi, double),
        .gwork = AT(scratch, L.gwork, float),
        .prev = fira ? p->slots[SLOT_PREV].data : NULL, .has_prev = t0 > 0,
    };
    lr_scalars c = scalars_of(p, t0 + 1);
    if (reference) projected_ref(&b, c);
    else projected_fast(&b, c);
}

static dsc_status run(dsc_group *g, const dsc_step_ctx *ctx, int fira)
{
    for (int i = 0; i < g->nparams; i++) {
        dsc_param *p = dsc_group_param(g, i);
        if (p->ndim == 2) {
            step_projected(p, g->scratch, fira, ctx->reference);
            continue;
        }
        int64_t *t = p->slots[SLOT_T].data;
        *t += 1;
        lr_scalars c = scalars_of(p, *t);
        float *m = p->slots[SLOT_M].data, *v = p->slots[SLOT_V].data;
        if (ctx->reference) plain_ref(p->data, p->grad, m, v, p->numel, c);
        else plain_fast(p->data, p->grad, m, v, p->numel, c);
    }
    return DSC_OK;
}

static dsc_status galore_step(dsc_group *g, const dsc_step_ctx *ctx) { return run(g, ctx, 0); }
static dsc_status fira_step(dsc_group *g, const dsc_step_ctx *ctx) { return run(g, ctx, 1); }

const dsc_family dsc_family_galore = {
    .info = {
        .name = "galore",
        .summary = "Adam in a rank-k gradient subspace refreshed by SVD (GaLore AdamW)",
        .paper = "Zhao et al., GaLore: Memory-Efficient LLM Training by Gradient Low-Rank "
                 "Projection, ICML 2024 (arXiv 2403.03507)",
        .source = "jiaweizzhao/GaLore galore_torch/adamw.py, galore_projector.py (2cc66f8)",
        .nkeys = NKEYS, .keys = galore_keys, .matrix = 1,
    },
    .plan_param = plan_param, .plan_group = plan_group, .step = galore_step,
};

const dsc_family dsc_family_fira = {
    .info = {
        .name = "fira",
        .summary = "GaLore plus the scaled, norm-limited residual outside the subspace",
        .paper = "Chen et al., Fira: Can We Achieve Full-rank Training of LLMs Under "
                 "Low-rank Constraint? (arXiv 2410.01623)",
        .source = "xichen-fy/Fira optimizer_torch/fira_adamw.py, gradient_projection.py "
                  "(5c28b13)",
        .nkeys = NKEYS, .keys = fira_keys, .matrix = 1,
    },
    .plan_param = plan_param, .plan_group = plan_group, .step = fira_step,
};
