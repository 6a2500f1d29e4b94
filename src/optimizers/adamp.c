/* adamp.c - AdamP and SGDP (clovaai/AdamP): Adam and SGD whose update is
 * projected off the weight direction when the weights look scale-invariant.
 *
 * adamp (spec elementwise.md section 9), with t the per-parameter counter:
 *   t <- t + 1;  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g*g
 *   denom = sqrt(v)/sqrt(1-b2^t) + eps;  step = lr/(1-b1^t)
 *   d = (b1*m + (1-b1)*g)/denom  (nesterov: g enters twice)  or  d = m/denom
 *   (d, r) <- project(p, g, d)           only for ndim > 1, else r = 1
 *   p <- p*(1 - lr*wd*r)                 if wd > 0 (decoupled, first)
 *   p <- p - step*d
 * sgdp (section 10):
 *   b <- mu*b + (1-damp)*g               (b starts at 0: damping from step 1)
 *   d = g + mu*b (nesterov)  or  d = b   (the same storage)
 *   (d, r) <- project(p, g, d);  without nesterov the projected d replaces b
 *   p <- p*(1 - lr*wd*r/(1-mu))          if wd > 0
 *   p <- p - lr*d
 * project (section 9 step 4), with the pre-step p and the raw g; views:
 *   "channel" = (shape[0], numel/shape[0]), "layer" = (1, numel); channel first:
 *   cos_k = |<g_k,p_k>| / (max(|g_k|,eps) * max(|p_k|,eps))  (torch 1.13 clamps
 *           each norm separately)
 *   if max_k cos_k < delta/sqrt(row length): d_k <- d_k - u_k<u_k,d_k>, with
 *           u_k = p_k/(|p_k| + eps), for every row, and r = wd_ratio; stop.
 *   if neither view triggers: d unchanged, r = 1.
 * Golden files: adamp_channel_8x3, adamp_layer_nesterov_4x6, adamp_noproj_3x5,
 * sgdp_channel_momentum_8x3, sgdp_layer_nesterov_4x6.
 *
 * Reductions. Every row is cut into blocks of DSC_RED_BLOCK elements, each
 * block summed in double, block sums added in order (as dsc_vec_dot does); the
 * layer sums are the row sums added in row order. Threads only decide who
 * computes which block, so the projection decision and its coefficients have
 * the same bits for any thread count. <u_k,d_k>u_k is applied as
 * p_k * (<p_k,d_k> / (|p_k| + eps)^2), the same value in exact arithmetic.
 *
 * Memory: d is never stored; the passes that need it recompute it from the
 * state (same float operations, same bits). Per-parameter scratch holds the
 * block partials and one coefficient per row. */
#include "../core/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ keys */

enum { A_LR, A_BETA1, A_BETA2, A_EPS, A_WEIGHT_DECAY, A_DELTA, A_WD_RATIO, A_NESTEROV,
       A_NKEYS };

static const dsc_key_info adamp_keys[A_NKEYS] = {
    [A_LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [A_BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [A_BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [A_EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 1, 0,
               "added to the bias-corrected root of v; also clamps the norms of the "
               "projection"},
    [A_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "decoupled decay p <- p*(1 - lr*wd*r) before the step"},
    [A_DELTA] = {"delta", DSC_KEY_FLOAT, 0.1, 0, 1e6, 0, 0,
                 "cosine threshold, divided by sqrt(row length)"},
    [A_WD_RATIO] = {"wd_ratio", DSC_KEY_FLOAT, 0.1, 0, 1e6, 0, 0,
                    "weight decay factor r when the projection is applied"},
    [A_NESTEROV] = {"nesterov", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "Nesterov-style direction"},
};

enum { S_LR, S_MOMENTUM, S_DAMPENING, S_WEIGHT_DECAY, S_NESTEROV, S_EPS, S_DELTA,
       S_WD_RATIO, S_NKEYS };

static const dsc_key_info sgdp_keys[S_NKEYS] = {
    [S_LR] = {"lr", DSC_KEY_FLOAT, NAN, 0, 1e6, 0, 0, "learning rate (required)"},
    [S_MOMENTUM] = {"momentum", DSC_KEY_FLOAT, 0, 0, 1, 0, 0, "momentum factor"},
    [S_DAMPENING] = {"dampening", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                     "dampening of the gradient in the buffer (applied from step 1)"},
    [S_WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                        "decoupled decay p <- p*(1 - lr*wd*r/(1-momentum)) before the step"},
    [S_NESTEROV] = {"nesterov", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "Nesterov momentum"},
    [S_EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 1, 0, "clamps the norms of the projection"},
    [S_DELTA] = {"delta", DSC_KEY_FLOAT, 0.1, 0, 1e6, 0, 0,
                 "cosine threshold, divided by sqrt(row length)"},
    [S_WD_RATIO] = {"wd_ratio", DSC_KEY_FLOAT, 0.1, 0, 1e6, 0, 0,
                    "weight decay factor r when the projection is applied"},
};

/* Slots: adamp exp_avg, exp_avg_sq, step (the AdamP names); sgdp momentum. */
enum { SLOT_M, SLOT_V, SLOT_T };
enum { SLOT_BUF };

static dsc_status sgdp_check(const double *hp, char *err, size_t n)
{
    if (hp[S_WEIGHT_DECAY] > 0 && hp[S_MOMENTUM] >= 1) {
        snprintf(err, n, "sgdp: weight_decay > 0 divides by 1 - momentum; momentum must "
                 "be < 1");
        return DSC_INVALID_ARGUMENT;
    }
    return DSC_OK;
}

/* ----------------------------------------------------- projection machinery */

/* The channel view cut into blocks: row k holds blocks [k*bpr, (k+1)*bpr). */
typedef struct {
    size_t rows, cols, bpr, nb;
} pview;

static pview view_of(const dsc_param *p)
{
    pview v = {p->rows, p->cols, (p->cols + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK, 0};
    v.nb = v.rows * v.bpr;
    return v;
}

/* Scratch: 3 partials per block; per row 3 sums, <p,d> and a coefficient. */
static size_t proj_scratch_bytes(const dsc_param *p)
{
    if (p->ndim <= 1) return 0;
    pview v = view_of(p);
    return (3 * v.nb + 5 * v.rows) * sizeof(double);
}

/* The search direction d at element i, recomputed on demand:
 * (a*m + c*g) / (sqrt(v)/sbc2 + eps), or a*m + c*g without v (sgdp). */
typedef struct {
    const float *m, *v, *g;
    float a, c, sbc2, eps;
} dir_src;

static inline float dir_at(const dir_src *s, size_t i)
{
    float d = s->a * s->m[i] + s->c * s->g[i];
    if (s->v) d = d / (sqrtf(s->v[i]) / s->sbc2 + s->eps);
    return d;
}

/* gg, pp, gp over elements [i0, i0 + n) in one serial block. */
static void block_sums3(const float *p, const float *g, size_t i0, size_t n, double *out)
{
    double gg = 0.0, pp = 0.0, gp = 0.0;
    for (size_t i = i0; i < i0 + n; i++) {
        double gi = (double)g[i], pi = (double)p[i];
        gg += gi * gi;
        pp += pi * pi;
        gp += gi * pi;
    }
    out[0] = gg;
    out[1] = pp;
    out[2] = gp;
}

/* <p, d> over [i0, i0 + n), serial. */
static double block_pd(const float *p, const dir_src *d, size_t i0, size_t n)
{
    double s = 0.0;
    for (size_t i = i0; i < i0 + n; i++) s += (double)p[i] * (double)dir_at(d, i);
    return s;
}

/* Element range of block j. */
static void block_range(const pview *v, size_t j, size_t *i0, size_t *n)
{
    size_t row = j / v->bpr, blk = j % v->bpr;
    size_t off = blk * DSC_RED_BLOCK;
    *i0 = row * v->cols + off;
    *n = v->cols - off < DSC_RED_BLOCK ? v->cols - off : DSC_RED_BLOCK;
}

/* Row sums from block partials (k partials per block), in block order. */
static void rows_from_blocks(const pview *v, const double *part, int k, double *rowsum)
{
    for (size_t r = 0; r < v->rows; r++) {
        for (int q = 0; q < k; q++) {
            double s = 0.0;
            for (size_t b = 0; b < v->bpr; b++) s += part[(r * v->bpr + b) * (size_t)k + q];
            rowsum[r * (size_t)k + q] = s;
        }
    }
}

enum { VIEW_NONE, VIEW_CHANNEL, VIEW_LAYER };

/* Which view projects, from the row sums (gg, pp, gp) of the channel view. */
static int proj_decide(const pview *v, const double *rowsum, double eps, double delta)
{
    double cmax = 0.0, GG = 0.0, PP = 0.0, GP = 0.0;
    for (size_t r = 0; r < v->rows; r++) {
        const double *s = rowsum + 3 * r;
        double c = fabs(s[2]) / (fmax(sqrt(s[0]), eps) * fmax(sqrt(s[1]), eps));
        if (c > cmax) cmax = c;
        GG += s[0];
        PP += s[1];
        GP += s[2];
    }
    if (cmax < delta / sqrt((double)v->cols)) return VIEW_CHANNEL;
    double c = fabs(GP) / (fmax(sqrt(GG), eps) * fmax(sqrt(PP), eps));
    if (c < delta / sqrt((double)(v->rows * v->cols))) return VIEW_LAYER;
    return VIEW_NONE;
}

/* coef[r] = <p_r,d_r> / (|p_r| + eps)^2 (channel) or the layer value for every
 * row, from the row sums pp (stride 3 in rowsum) and pd. */
static void proj_coefs(const pview *v, int view, const double *rowsum, const double *pd,
                       double eps, float *coef)
{
    if (view == VIEW_CHANNEL) {
        for (size_t r = 0; r < v->rows; r++) {
            double nrm = sqrt(rowsum[3 * r + 1]) + eps;
            coef[r] = (float)(pd[r] / (nrm * nrm));
        }
        return;
    }
    double PP = 0.0, PD = 0.0;
    for (size_t r = 0; r < v->rows; r++) {
        PP += rowsum[3 * r + 1];
        PD += pd[r];
    }
    double nrm = sqrt(PP) + eps;
    float c = view == VIEW_LAYER ? (float)(PD / (nrm * nrm)) : 0.0f;
    for (size_t r = 0; r < v->rows; r++) coef[r] = c;
}

/* Scratch layout. */
typedef struct {
    double *part;   /* 3 * nb */
    double *rowsum; /* 3 * rows */
    double *pd;     /* rows */
    float *coef;    /* rows (stored in a double-sized area) */
} proj_work;

static proj_work work_of(const dsc_param *p, const pview *v)
{
    double *s = p->scratch;
    proj_work w = {s, s + 3 * v->nb, s + 3 * v->nb + 3 * v->rows, NULL};
    w.coef = (float *)(w.pd + v->rows);
    return w;
}

/* One step of either family for a tensor of ndim > 1, after the state update
 * (m, v for adamp; b for sgdp) was done by `update` inside the first pass.
 * Everything the families differ in is in these fields. */
typedef struct {
    float lr_step;   /* adamp: lr/(1-b1^t); sgdp: lr */
    float decay;     /* p multiplier without projection: 1 - lr*wd*factor */
    float decay_proj;/* the same with r = wd_ratio */
    double eps, delta;
    int store_dir;   /* sgdp without nesterov: projected d replaces b (m) */
} proj_step;

/* ------------------------------------------------------------------ adamp */

typedef struct {
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float sbc2, eps, a, c;
} adamp_moments;

static dir_src adamp_dir(const float *m, const float *v, const float *g, adamp_moments s)
{
    dir_src d = {m, v, g, s.a, s.c, s.sbc2, s.eps};
    return d;
}

/* Reference projection (adamp step 4, sgdp step 3), shared by both: the
 * row sums of g.g, p.p and g.p, the channel-then-layer decision, and the
 * per-row coefficients of p to subtract from d. Only for ndim > 1 (else
 * nothing is projected). Returns the decay factor to use (decay_proj when
 * a view projected) and sets *coef (NULL when ndim <= 1) and *cols. */
static float projection_ref(dsc_param *p, const dir_src *d, proj_step ps, const float **coef,
                            size_t *cols)
{
    if (p->ndim <= 1) return ps.decay;
    const float *x = p->data, *g = p->grad;
    pview pv = view_of(p);
    proj_work w = work_of(p, &pv);
    for (size_t r = 0; r < pv.rows; r++) {
        const float *gr = g + r * pv.cols, *xr = x + r * pv.cols;
        w.rowsum[3 * r] = dsc_vec_dot(gr, gr, pv.cols);
        w.rowsum[3 * r + 1] = dsc_vec_dot(xr, xr, pv.cols);
        w.rowsum[3 * r + 2] = dsc_vec_dot(gr, xr, pv.cols);
    }
    int view = proj_decide(&pv, w.rowsum, ps.eps, ps.delta);
    for (size_t r = 0; r < pv.rows; r++) {
        double s2 = 0.0;
        for (size_t b = 0; b < pv.bpr; b++) {
            size_t i0, len;
            block_range(&pv, r * pv.bpr + b, &i0, &len);
            s2 += block_pd(x, d, i0, len);
        }
        w.pd[r] = s2;
    }
    proj_coefs(&pv, view, w.rowsum, w.pd, ps.eps, w.coef);
    *coef = w.coef;
    *cols = pv.cols;
    return view != VIEW_NONE ? ps.decay_proj : ps.decay;
}

/* Reference: the spec's steps in order, one plain loop each. */
static void adamp_step_ref(dsc_param *p, float *m, float *v, adamp_moments s, proj_step ps)
{
    float *x = p->data;
    const float *g = p->grad;
    size_t n = p->numel;
    for (size_t i = 0; i < n; i++) {                                      /* 1. moments */
        m[i] = s.beta1 * m[i] + s.one_minus_beta1 * g[i];
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * g[i] * g[i];
    }
    dir_src d = adamp_dir(m, v, g, s);                                    /* 2-3. d */
    const float *coef = NULL;
    size_t cols = 1;
    float decay = projection_ref(p, &d, ps, &coef, &cols);                /* 4. project */
    for (size_t i = 0; i < n; i++) {                                      /* 5-6. update */
        float di = dir_at(&d, i);
        if (coef) di = di - x[i] * coef[i / cols];
        x[i] = x[i] * decay;
        x[i] = x[i] - ps.lr_step * di;
    }
}

/* Fast: the moments and the projection sums in one pass over blocks, the
 * update in a second (a third only when a projection triggers). */
static void adamp_step_fast(dsc_param *p, float *restrict m, float *restrict v,
                            adamp_moments s, proj_step ps)
{
    float *restrict x = p->data;
    const float *restrict g = p->grad;
    const size_t n = p->numel;
    const float b1 = s.beta1, c1 = s.one_minus_beta1, b2 = s.beta2, c2 = s.one_minus_beta2;
    const float a = s.a, c = s.c, sbc2 = s.sbc2, eps = s.eps, lr = ps.lr_step;
    if (p->ndim <= 1) {
        const float decay = ps.decay;
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i];
            float mi = b1 * m[i] + c1 * gi;
            float vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float di = (a * mi + c * gi) / (sqrtf(vi) / sbc2 + eps);
            float xi = x[i] * decay;
            x[i] = xi - lr * di;
        }
        return;
    }
    pview pv = view_of(p);
    proj_work w = work_of(p, &pv);
    const long nb = (long)pv.nb;
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (long j = 0; j < nb; j++) {
        size_t i0, len;
        block_range(&pv, (size_t)j, &i0, &len);
        for (size_t i = i0; i < i0 + len; i++) {
            float gi = g[i];
            m[i] = b1 * m[i] + c1 * gi;
            v[i] = b2 * v[i] + c2 * gi * gi;
        }
        block_sums3(x, g, i0, len, w.part + 3 * (size_t)j);
    }
    rows_from_blocks(&pv, w.part, 3, w.rowsum);
    int view = proj_decide(&pv, w.rowsum, ps.eps, ps.delta);
    dir_src d = adamp_dir(m, v, g, s);
    if (view != VIEW_NONE) {
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        for (long j = 0; j < nb; j++) {
            size_t i0, len;
            block_range(&pv, (size_t)j, &i0, &len);
            w.part[j] = block_pd(x, &d, i0, len);
        }
        rows_from_blocks(&pv, w.part, 1, w.pd);
    } else {
        memset(w.pd, 0, pv.rows * sizeof(double));
    }
    proj_coefs(&pv, view, w.rowsum, w.pd, ps.eps, w.coef);
    const float decay = view != VIEW_NONE ? ps.decay_proj : ps.decay;
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (long j = 0; j < nb; j++) {
        size_t i0, len;
        block_range(&pv, (size_t)j, &i0, &len);
        const float k = w.coef[(size_t)j / pv.bpr];
        for (size_t i = i0; i < i0 + len; i++) {
            float xi = x[i];
            float di = (a * m[i] + c * g[i]) / (sqrtf(v[i]) / sbc2 + eps) - xi * k;
            xi = xi * decay;
            x[i] = xi - lr * di;
        }
    }
}

static dsc_status adamp_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot(plan, "exp_avg", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "exp_avg_sq", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    plan->scratch_bytes = proj_scratch_bytes(p);
    return DSC_OK;
}

static dsc_status adamp_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        int64_t *t = p->slots[SLOT_T].data;
        *t += 1;
        double b1 = hp[A_BETA1], b2 = hp[A_BETA2], lr = hp[A_LR], wd = hp[A_WEIGHT_DECAY];
        double bc1 = 1.0 - pow(b1, (double)*t), bc2 = 1.0 - pow(b2, (double)*t);
        int nest = hp[A_NESTEROV] != 0;
        adamp_moments s = {
            .beta1 = (float)b1, .one_minus_beta1 = (float)(1.0 - b1),
            .beta2 = (float)b2, .one_minus_beta2 = (float)(1.0 - b2),
            .sbc2 = (float)sqrt(bc2), .eps = (float)hp[A_EPS],
            .a = nest ? (float)b1 : 1.0f, .c = nest ? (float)(1.0 - b1) : 0.0f,
        };
        proj_step ps = {
            .lr_step = (float)(lr / bc1),
            .decay = wd > 0 ? (float)(1.0 - lr * wd) : 1.0f,
            .decay_proj = wd > 0 ? (float)(1.0 - lr * wd * hp[A_WD_RATIO]) : 1.0f,
            .eps = hp[A_EPS], .delta = hp[A_DELTA], .store_dir = 0,
        };
        float *m = p->slots[SLOT_M].data, *v = p->slots[SLOT_V].data;
        if (ctx->reference) adamp_step_ref(p, m, v, s, ps);
        else adamp_step_fast(p, m, v, s, ps);
    }
    return DSC_OK;
}

/* ------------------------------------------------------------------- sgdp */

typedef struct {
    float mu, keep; /* momentum, 1 - dampening */
    float a, c;     /* d = a*b + c*g */
} sgdp_scalars;

static void sgdp_step_ref(dsc_param *p, float *b, sgdp_scalars s, proj_step ps)
{
    float *x = p->data;
    const float *g = p->grad;
    size_t n = p->numel;
    for (size_t i = 0; i < n; i++) b[i] = s.mu * b[i] + s.keep * g[i];   /* 1. buffer */
    dir_src d = {b, NULL, g, s.a, s.c, 1.0f, 0.0f};                      /* 2. d */
    const float *coef = NULL;
    size_t cols = 1;
    float decay = projection_ref(p, &d, ps, &coef, &cols);              /* 3. project */
    for (size_t i = 0; i < n; i++) {
        float di = dir_at(&d, i);
        if (coef) di = di - x[i] * coef[i / cols];
        if (ps.store_dir) b[i] = di;                                     /* in place */
        x[i] = x[i] * decay;                                             /* 4. decay */
        x[i] = x[i] - ps.lr_step * di;                                   /* 5. update */
    }
}

static void sgdp_step_fast(dsc_param *p, float *restrict b, sgdp_scalars s, proj_step ps)
{
    float *restrict x = p->data;
    const float *restrict g = p->grad;
    const size_t n = p->numel;
    const float mu = s.mu, keep = s.keep, a = s.a, c = s.c, lr = ps.lr_step;
    const int store = ps.store_dir;
    if (p->ndim <= 1) {
        const float decay = ps.decay;
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i];
            float bi = mu * b[i] + keep * gi;
            b[i] = bi;
            float di = a * bi + c * gi;
            float xi = x[i] * decay;
            x[i] = xi - lr * di;
        }
        return;
    }
    pview pv = view_of(p);
    proj_work w = work_of(p, &pv);
    const long nb = (long)pv.nb;
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (long j = 0; j < nb; j++) {
        size_t i0, len;
        block_range(&pv, (size_t)j, &i0, &len);
        for (size_t i = i0; i < i0 + len; i++) b[i] = mu * b[i] + keep * g[i];
        block_sums3(x, g, i0, len, w.part + 3 * (size_t)j);
    }
    rows_from_blocks(&pv, w.part, 3, w.rowsum);
    int view = proj_decide(&pv, w.rowsum, ps.eps, ps.delta);
    dir_src d = {b, NULL, g, a, c, 1.0f, 0.0f};
    if (view != VIEW_NONE) {
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
        for (long j = 0; j < nb; j++) {
            size_t i0, len;
            block_range(&pv, (size_t)j, &i0, &len);
            w.part[j] = block_pd(x, &d, i0, len);
        }
        rows_from_blocks(&pv, w.part, 1, w.pd);
    } else {
        memset(w.pd, 0, pv.rows * sizeof(double));
    }
    proj_coefs(&pv, view, w.rowsum, w.pd, ps.eps, w.coef);
    const float decay = view != VIEW_NONE ? ps.decay_proj : ps.decay;
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (long j = 0; j < nb; j++) {
        size_t i0, len;
        block_range(&pv, (size_t)j, &i0, &len);
        const float k = w.coef[(size_t)j / pv.bpr];
        for (size_t i = i0; i < i0 + len; i++) {
            float xi = x[i];
            float di = (a * b[i] + c * g[i]) - xi * k;
            if (store) b[i] = di;
            xi = xi * decay;
            x[i] = xi - lr * di;
        }
    }
}

static dsc_status sgdp_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                            char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot(plan, "momentum", DSC_DT_F32, p->numel);
    plan->scratch_bytes = proj_scratch_bytes(p);
    return DSC_OK;
}

static dsc_status sgdp_step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        const double *hp = p->hp;
        double mu = hp[S_MOMENTUM], lr = hp[S_LR], wd = hp[S_WEIGHT_DECAY];
        int nest = hp[S_NESTEROV] != 0;
        sgdp_scalars s = {
            .mu = (float)mu, .keep = (float)(1.0 - hp[S_DAMPENING]),
            .a = nest ? (float)mu : 1.0f, .c = nest ? 1.0f : 0.0f,
        };
        /* wd > 0 implies mu < 1 (checked when the keys are set). */
        proj_step ps = {
            .lr_step = (float)lr,
            .decay = wd > 0 ? (float)(1.0 - lr * wd / (1.0 - mu)) : 1.0f,
            .decay_proj = wd > 0 ? (float)(1.0 - lr * wd * hp[S_WD_RATIO] / (1.0 - mu)) : 1.0f,
            .eps = hp[S_EPS], .delta = hp[S_DELTA], .store_dir = !nest,
        };
        float *b = p->slots[SLOT_BUF].data;
        if (ctx->reference) sgdp_step_ref(p, b, s, ps);
        else sgdp_step_fast(p, b, s, ps);
    }
    return DSC_OK;
}

/* --------------------------------------------------------------- families */

const dsc_family dsc_family_adamp = {
    .info = {
        .name = "adamp",
        .summary = "Adam whose update is projected off scale-invariant weights (AdamP)",
        .paper = "Heo et al., AdamP: Slowing Down the Slowdown for Momentum Optimizers on "
                 "Scale-invariant Weights, ICLR 2021",
        .source = "clovaai/AdamP adamp/adamp.py @7f6f0383ff6ad3839d5c7f79f1db0a44c5a12fdb",
        .nkeys = A_NKEYS, .keys = adamp_keys, .matrix = 0,
    },
    .plan_param = adamp_plan, .step = adamp_step,
};

const dsc_family dsc_family_sgdp = {
    .info = {
        .name = "sgdp",
        .summary = "SGD with momentum, projected off scale-invariant weights (SGDP)",
        .paper = "Heo et al., AdamP: Slowing Down the Slowdown for Momentum Optimizers on "
                 "Scale-invariant Weights, ICLR 2021",
        .source = "clovaai/AdamP adamp/sgdp.py @7f6f0383ff6ad3839d5c7f79f1db0a44c5a12fdb",
        .nkeys = S_NKEYS, .keys = sgdp_keys, .matrix = 0,
    },
    .check = sgdp_check, .plan_param = sgdp_plan, .step = sgdp_step,
};
