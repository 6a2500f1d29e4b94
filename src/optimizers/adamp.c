/* adamp.c - AdamP and SGDP (clovaai/AdamP): Adam and SGD whose update is
 * projected off the weight direction when the weights look scale-invariant.
 *
 * adamp (docs/optimizers.md), with t the per-parameter counter:
 *   t <- t + 1;  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g*g
 *   denom = sqrt(v)/sqrt(1-b2^t) + eps;  step = lr/(1-b1^t)
 *   d = (b1*m + (1-b1)*g)/denom  (nesterov: g enters twice)  or  d = m/denom
 *   (d, r) <- project(p, g, d)           only for ndim > 1, else r = 1
 *   p <- p*(1 - lr*wd*r)                 if wd > 0 (decoupled, first)
 *   p <- p - step*d
 * sgdp:
 *   b <- mu*b + (1-damp)*g               (b starts at 0: damping from step 1)
 *   d = g + mu*b (nesterov)  or  d = b   (the same storage)
 *   (d, r) <- project(p, g, d);  without nesterov the projected d replaces b
 *   p <- p*(1 - lr*wd*r/(1-mu))          if wd > 0
 *   p <- p - lr*d
 * project, with the pre-step p and the raw g; views:
 *   "channel" = (shape[0], numel/shape[0]), "layer" = (1, numel); channel first:
 *   cos_k = |<g_k,p_k>| / (max(|g_k|,eps) * max(|p_k|,eps))  (torch 1.13 clamps
 *           each norm separately)
 *   if max_k cos_k < delta/sqrt(row length): d_k <- d_k - u_k<u_k,d_k>, with
 *           u_k = p_k/(|p_k| + eps), for every row, and r = wd_ratio; stop.
 *   if neither view triggers: d unchanged, r = 1.
 * Golden files: adamp_channel_8x3, adamp_layer_nesterov_4x6, adamp_noproj_3x5,
 * sgdp_channel_momentum_8x3, sgdp_layer_nesterov_4x6.
 *
 * Reductions. Every row is cut into blocks of DSC_RED_BLOCK elements. A block
 * is summed in double by LANES interleaved accumulators (lane j takes the
 * elements j, j + LANES, ...), the lanes added in lane order, then the tail in
 * order; a row's block sums are added in block order; the layer sums are the
 * row sums added in row order. block_sums3 (block_pp: its pp alone) and
 * block_pd are that definition and both paths call them, so fast and
 * reference agree bit for bit, and threads only decide who computes which
 * block: the projection decision and its coefficients have the same bits for
 * any thread count. (One accumulator per block would wait on the add
 * latency, about 1 ns per element; eight lanes vectorize.) <u_k,d_k>u_k is
 * applied as p_k * (<p_k,d_k>/(|p_k| + eps)^2), the same value in exact
 * arithmetic.
 *
 * Memory. The fast path makes as few sweeps as the data flow allows. The
 * decision is global and needs the pre-step p and g, so sweep 1 only reads p
 * and g; it computes the row sums in float with error bounds (the decision
 * filter, above decide_sure), and the exact double sums are computed only
 * when those bounds cannot settle the decision. Then, when no view projects,
 * one fused sweep does the moments and the update. When the channel view
 * projects and a row fits in L2, each row takes its moments, |p_k|^2 and
 * <p_k,d_k>, then its update while it is still in cache: still one sweep over
 * memory. Only the layer view (its coefficient needs every row) and very long
 * rows take a third sweep. d is never stored; it is recomputed from the state
 * (same float operations, same bits). Per-parameter scratch holds the block
 * partials and one coefficient per row.
 *
 * The fast kernels are plain functions over element ranges run by
 * dsc_parallel_ranges (see internal.h: inside an OpenMP-outlined loop GCC
 * drops restrict and unswitches run-time flags into scalar code), each body
 * written once and inlined per flag combination. Block and row passes take
 * the blocks (rows) that START in their range, so each is done by exactly one
 * thread. */
#include "../core/internal.h"

#include <math.h>
#include <stdio.h>

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

/* Accumulators of one block sum (see "Reductions" above). */
#define LANES 8

/* The three sums of k lanes each, added in lane order from 0: into out[0..3)
 * as (gg, pp, gp). */
DSC_BODY void lane_totals(const double *gg, const double *pp, const double *gp, int k,
                          double *out)
{
    out[0] = out[1] = out[2] = 0.0;
    for (int j = 0; j < k; j++) {
        out[0] += gg[j];
        out[1] += pp[j];
        out[2] += gp[j];
    }
}

/* gg, pp, gp of the n elements at p and g, in the fixed order; with_g 0
 * computes pp alone (its lanes are the same operations, so the same bits). */
DSC_BODY void sums_body(const float *restrict p, const float *restrict g, size_t n,
                        double *out, const int with_g)
{
    double gg[LANES] = {0}, pp[LANES] = {0}, gp[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int j = 0; j < LANES; j++) {
            double pi = (double)p[i + (size_t)j];
            pp[j] += pi * pi;
            if (with_g) {
                double gi = (double)g[i + (size_t)j];
                gg[j] += gi * gi;
                gp[j] += gi * pi;
            }
        }
    }
    double tot[3];
    lane_totals(gg, pp, gp, LANES, tot);
    double sgg = tot[0], spp = tot[1], sgp = tot[2];
    for (; i < n; i++) {
        double pi = (double)p[i];
        spp += pi * pi;
        if (with_g) {
            double gi = (double)g[i];
            sgg += gi * gi;
            sgp += gi * pi;
        }
    }
    out[0] = sgg;
    out[1] = spp;
    out[2] = sgp;
}

/* gg, pp, gp of one block. Both paths use it: it defines the bits of the
 * row sums. */
DSC_BODY void block_sums3(const float *p, const float *g, size_t n, double *out)
{
    sums_body(p, g, n, out, 1);
}

/* pp alone, bit for bit block_sums3's out[1]. */
DSC_BODY double block_pp(const float *p, size_t n)
{
    double out[3];
    sums_body(p, NULL, n, out, 0);
    return out[1];
}

/* <p, d> over [i0, i0 + n) in the same order, d computed as dir_at does
 * (has_v: the adamp denominator). */
DSC_BODY double pd_body(const float *restrict p, const dir_src *s, size_t i0, size_t n,
                        const int has_v)
{
    const float *restrict m = s->m + i0, *restrict g = s->g + i0;
    const float *restrict v = has_v ? s->v + i0 : NULL;
    const float *restrict x = p + i0;
    const float a = s->a, c = s->c, sbc2 = s->sbc2, eps = s->eps;
    double lane[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int j = 0; j < LANES; j++) {
            size_t e = i + (size_t)j;
            float d = a * m[e] + c * g[e];
            if (has_v) d = d / (sqrtf(v[e]) / sbc2 + eps);
            lane[j] += (double)x[e] * (double)d;
        }
    }
    double sum = 0.0;
    for (int j = 0; j < LANES; j++) sum += lane[j];
    for (; i < n; i++) {
        float d = a * m[i] + c * g[i];
        if (has_v) d = d / (sqrtf(v[i]) / sbc2 + eps);
        sum += (double)x[i] * (double)d;
    }
    return sum;
}

/* <p, d> of one block; both paths use it. */
DSC_BODY double block_pd(const float *p, const dir_src *d, size_t i0, size_t n)
{
    return d->v ? pd_body(p, d, i0, n, 1) : pd_body(p, d, i0, n, 0);
}

/* Element range of block j. */
static void block_range(const pview *v, size_t j, size_t *i0, size_t *n)
{
    size_t row = j / v->bpr, blk = j % v->bpr;
    size_t off = blk * DSC_RED_BLOCK;
    *i0 = row * v->cols + off;
    *n = v->cols - off < DSC_RED_BLOCK ? v->cols - off : DSC_RED_BLOCK;
}

/* The first block that starts at or after element e (blocks never straddle
 * rows); e = numel gives nb. */
static size_t first_block(const pview *v, size_t e)
{
    size_t r = e / v->cols, off = e - r * v->cols;
    size_t b = (off + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK;
    return b >= v->bpr ? (r + 1) * v->bpr : r * v->bpr + b;
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

/* The decision filter (fast path only). The exact sums cost per element a
 * float -> double conversion of p and of g and three multiplies and three
 * adds in double (on the baseline ISA two per instruction: about 0.45 ns per
 * element on one core, twice what reading p and g from memory takes). The
 * decision needs only where each cosine lies relative to its threshold, so
 * the fast path first computes the sums in float (twice the lanes of double,
 * no conversion) and keeps bounds on
 * how far they can be from the reference's double sums. When the bounds put
 * every cosine on a known side of its threshold, that IS the reference's
 * decision; otherwise (a cosine too near its threshold, non-finite or
 * overflowing sums) the exact sums decide. The filter never feeds a value
 * into the update, so it changes no bits, only how soon they are known.
 *
 * Bounds, for a set of N elements (a row, or the whole tensor) with exact
 * G = sum g^2, P = sum p^2, X = sum g*p and S = sum |g*p| <= sqrt(G*P):
 * a float chunk of k <= FCHUNK products, summed in any order, is within
 * gamma_k*S' + k*2^-126 of exact (S' = G, P or S; 2^-126 bounds what a
 * product loses to underflow, even flushed to zero), gamma_k = k*2^-24/(1 -
 * k*2^-24); the double sums of the chunks (filter) and of the exact products
 * (reference) each add at most about N*2^-53 relative. So with
 * e = 2*(1.01*FCHUNK*2^-24 + 2.02*N*2^-53) and A = N*2^-125, G_ref lies in
 * [(G~ - A)/(1 + e), (G~ + A)/(1 - e)] (P_ref likewise) and
 * |X~ - X_ref| <= e*sqrt(G_hi*P_hi) + A. The cosine is
 * monotone in each sum, which gives [lo, hi]; a relative 2^-40 more covers
 * the roundings of both cosine computations. */

/* Elements per float chunk: small enough that gamma_k (about 4e-6) leaves
 * the layer threshold (delta/sqrt(numel)) decidable for real tensors. */
#define FCHUNK 64

/* Float lanes of the filter: lane j sums the elements j, j + FLANES, ...
 * of a group of at most FLANES*FCHUNK, so each lane's float sum has at most
 * FCHUNK products (the chunk of the bound above) and the lanes are
 * independent: the loop vectorizes at any width without reassociating
 * anything (16 floats: one AVX-512 register, two AVX2, four SSE2). The
 * lane sums go into double per group. (A reduction of one float per chunk
 * of 64, left to `omp simd`, spent more on the horizontal sum of 16 lanes
 * every 64 elements than on the products: 0.89 -> 1.05 ns per parameter for
 * the whole adamp step in cache once it ran 16-wide.) */
#define FLANES 16

/* GCC unrolls a plain 16-trip lane loop completely and then vectorizes the
 * group loop with in-order (fold-left) sums, slower than the exact sums;
 * `omp simd` on the lane loop keeps it one vector loop. Builds without
 * OpenMP skip the filter and decide exactly every time. */
#ifdef _OPENMP
#define FILTER_ON 1
#else
#define FILTER_ON 0
#endif

/* Filter sums of one block: gg, pp, gp, each lane's group summed in float,
 * the group sums and the last n % FLANES products added in double. */
DSC_BODY void approx_sums3(const float *restrict p, const float *restrict g, size_t n,
                           double *out)
{
    double dgg[FLANES] = {0}, dpp[FLANES] = {0}, dgp[FLANES] = {0};
    size_t i0 = 0;
    while (n - i0 >= FLANES) {
        size_t rows = (n - i0) / FLANES < FCHUNK ? (n - i0) / FLANES : FCHUNK;
        float gg[FLANES] = {0}, pp[FLANES] = {0}, gp[FLANES] = {0};
        for (size_t k = 0; k < rows; k++) {
            const float *restrict gk = g + i0 + k * FLANES, *restrict pk = p + i0 + k * FLANES;
#ifdef _OPENMP
#pragma omp simd
#endif
            for (int j = 0; j < FLANES; j++) {
                gg[j] += gk[j] * gk[j];
                pp[j] += pk[j] * pk[j];
                gp[j] += gk[j] * pk[j];
            }
        }
        for (int j = 0; j < FLANES; j++) {
            dgg[j] += (double)gg[j];
            dpp[j] += (double)pp[j];
            dgp[j] += (double)gp[j];
        }
        i0 += rows * FLANES;
    }
    double tot[3];
    lane_totals(dgg, dpp, dgp, FLANES, tot);
    double sgg = tot[0], spp = tot[1], sgp = tot[2];
    for (; i0 < n; i0++) {
        float gi = g[i0], pi = p[i0];
        sgg += (double)(gi * gi);
        spp += (double)(pi * pi);
        sgp += (double)(gi * pi);
    }
    out[0] = sgg;
    out[1] = spp;
    out[2] = sgp;
}

/* Bounds [lo, hi] on the reference's cosine |X|/(max(sqrt G,eps)*max(sqrt P,eps))
 * over n elements, from the filter sums (see above). 0 when unusable. */
static int cos_bounds(double G, double P, double X, double n, double eps, double *lo,
                      double *hi)
{
    if (!(isfinite(G) && isfinite(P) && isfinite(X))) return 0;
    double e = 2.0 * (1.01 * FCHUNK * 0x1p-24 + 2.02 * n * 0x1p-53);
    if (!(e < 0.25)) return 0;
    double A = n * 0x1p-125;
    double Ghi = (G + A) / (1.0 - e), Phi = (P + A) / (1.0 - e);
    double Glo = fmax(0.0, (G - A) / (1.0 + e)), Plo = fmax(0.0, (P - A) / (1.0 + e));
    double dX = e * sqrt(Ghi * Phi) + A;
    double Xlo = fmax(0.0, fabs(X) - dX), Xhi = fabs(X) + dX;
    *lo = Xlo / (fmax(sqrt(Ghi), eps) * fmax(sqrt(Phi), eps)) * (1.0 - 0x1p-40);
    *hi = Xhi / (fmax(sqrt(Glo), eps) * fmax(sqrt(Plo), eps)) * (1.0 + 0x1p-40);
    return 1;
}

/* The view proj_decide picks from the exact sums, when the filter row sums
 * (gg, pp, gp per row) prove it; -1 when they cannot. Every comparison is
 * written so that a NaN bound proves nothing. */
static int decide_sure(const pview *v, const double *rowsum, double eps, double delta)
{
    const double thr = delta / sqrt((double)v->cols);
    int all_below = 1, some_above = 0;
    double GG = 0.0, PP = 0.0, GP = 0.0, lo, hi;
    for (size_t r = 0; r < v->rows; r++) {
        const double *s = rowsum + 3 * r;
        if (!cos_bounds(s[0], s[1], s[2], (double)v->cols, eps, &lo, &hi)) return -1;
        if (!(hi < thr)) all_below = 0;
        if (lo >= thr) some_above = 1;
        GG += s[0];
        PP += s[1];
        GP += s[2];
    }
    if (all_below) return VIEW_CHANNEL; /* every cosine below: cmax < thr */
    if (!some_above) return -1;         /* cmax may be on either side */
    const double n = (double)(v->rows * v->cols);
    if (!cos_bounds(GG, PP, GP, n, eps, &lo, &hi)) return -1;
    if (hi < delta / sqrt(n)) return VIEW_LAYER;
    if (lo >= delta / sqrt(n)) return VIEW_NONE;
    return -1;
}

/* The channel coefficient of one row: <p,d> / (|p| + eps)^2 as a float. */
static float chan_coef(double pp, double pd, double eps)
{
    double nrm = sqrt(pp) + eps;
    return (float)(pd / (nrm * nrm));
}

/* coef[r] = <p_r,d_r> / (|p_r| + eps)^2 (channel) or the layer value for every
 * row, from the row sums pp[r * sp] and pd[r * sd]. */
static void proj_coefs(const pview *v, int view, const double *pp, size_t sp, const double *pd,
                       size_t sd, double eps, float *coef)
{
    if (view == VIEW_CHANNEL) {
        for (size_t r = 0; r < v->rows; r++) coef[r] = chan_coef(pp[r * sp], pd[r * sd], eps);
        return;
    }
    double PP = 0.0, PD = 0.0;
    for (size_t r = 0; r < v->rows; r++) {
        PP += pp[r * sp];
        PD += pd[r * sd];
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

/* What the families differ in for the projection and the update. */
typedef struct {
    float lr_step;   /* adamp: lr/(1-b1^t); sgdp: lr */
    float decay;     /* p multiplier without projection: 1 - lr*wd*factor */
    float decay_proj;/* the same with r = wd_ratio */
    double eps, delta;
    int store_dir;   /* sgdp without nesterov: projected d replaces b (m) */
} proj_step;

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
        double *s = w.rowsum + 3 * r;
        s[0] = s[1] = s[2] = 0.0;
        for (size_t b = 0; b < pv.bpr; b++) {
            size_t i0, len;
            double blk[3];
            block_range(&pv, r * pv.bpr + b, &i0, &len);
            block_sums3(x + i0, g + i0, len, blk);
            for (int q = 0; q < 3; q++) s[q] += blk[q];
        }
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
    proj_coefs(&pv, view, w.rowsum + 1, 3, w.pd, 1, ps.eps, w.coef);
    *coef = w.coef;
    *cols = pv.cols;
    return view != VIEW_NONE ? ps.decay_proj : ps.decay;
}

/* ------------------------------------------------------ fast kernels (both) */

/* One fast step of either family. adamp: m, v the moments, (b1, c1, b2, c2)
 * = (beta1, 1-beta1, beta2, 1-beta2). sgdp: m the buffer b, v NULL,
 * (b1, c1) = (mu, 1-dampening); store: the (projected) d replaces b. */
typedef struct {
    float *x, *m, *v;
    const float *g;
    float b1, c1, b2, c2;
    dir_src d;          /* the direction, read from the updated state */
    float lr, decay;
    int adam, store;
    pview pv;
    proj_work w;
    double eps;
    int view;
} step_job;

/* The update of [lo, hi): moments first when `moments` (else they are done),
 * d, minus p*k when `proj`, then p <- p*decay - lr*d: the reference's float
 * operations in its order. k = 0 still subtracts (x*0 is what the reference
 * subtracts when no view projects: it keeps -0 and NaN bits identical). */
DSC_BODY void update_body(const step_job *J, size_t lo, size_t hi, const float k,
                          const int adam, const int store, const int moments, const int proj)
{
    float *restrict x = J->x, *restrict m = J->m, *restrict v = J->v;
    const float *restrict g = J->g;
    const float b1 = J->b1, c1 = J->c1, b2 = J->b2, c2 = J->c2, a = J->d.a, c = J->d.c,
                sbc2 = J->d.sbc2, eps = J->d.eps, lr = J->lr, decay = J->decay;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i], mi = m[i];
        if (moments) {
            mi = b1 * mi + c1 * gi;
            if (!store) m[i] = mi;
        }
        float di = a * mi + c * gi;
        if (adam) {
            float vi = v[i];
            if (moments) {
                vi = b2 * vi + c2 * gi * gi;
                v[i] = vi;
            }
            di = di / (sqrtf(vi) / sbc2 + eps);
        }
        float xi = x[i];
        if (proj) di = di - xi * k;
        if (store) m[i] = di;
        xi = xi * decay;
        x[i] = xi - lr * di;
    }
}

/* One variant per family and storage mode; moments and proj are constants
 * at every call site. */
DSC_BODY void update_any(const step_job *J, size_t lo, size_t hi, float k, const int moments,
                         const int proj)
{
    if (J->adam) update_body(J, lo, hi, k, 1, 0, moments, proj);
    else if (J->store) update_body(J, lo, hi, k, 0, 1, moments, proj);
    else update_body(J, lo, hi, k, 0, 0, moments, proj);
}

/* The moments alone (the passes that need <p,d> before the update). */
DSC_BODY void moments_body(const step_job *J, size_t lo, size_t hi, const int adam)
{
    float *restrict m = J->m, *restrict v = J->v;
    const float *restrict g = J->g;
    const float b1 = J->b1, c1 = J->c1, b2 = J->b2, c2 = J->c2;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + c1 * gi;
        if (adam) v[i] = b2 * v[i] + c2 * gi * gi;
    }
}

DSC_BODY void moments_any(const step_job *J, size_t lo, size_t hi)
{
    if (J->adam) moments_body(J, lo, hi, 1);
    else moments_body(J, lo, hi, 0);
}

/* ndim <= 1: no projection, one sweep. */
DSC_WIDE static void range_plain(const void *ctx, size_t lo, size_t hi)
{
    update_any(ctx, lo, hi, 0.0f, 1, 0);
}

/* No view projects: one sweep, coefficient 0. */
DSC_WIDE static void range_noproj(const void *ctx, size_t lo, size_t hi)
{
    update_any(ctx, lo, hi, 0.0f, 1, 1);
}

/* Sweep 1: the filter partials (gg, pp, gp) of the blocks starting in
 * [lo, hi). */
DSC_WIDE static void range_filter(const void *ctx, size_t lo, size_t hi)
{
    const step_job *J = ctx;
    for (size_t j = first_block(&J->pv, lo), je = first_block(&J->pv, hi); j < je; j++) {
        size_t i0, len;
        block_range(&J->pv, j, &i0, &len);
        approx_sums3(J->x + i0, J->g + i0, len, J->w.part + 3 * j);
    }
}

/* When the filter cannot decide: the exact partials, as the reference. */
DSC_WIDE static void range_sums(const void *ctx, size_t lo, size_t hi)
{
    const step_job *J = ctx;
    for (size_t j = first_block(&J->pv, lo), je = first_block(&J->pv, hi); j < je; j++) {
        size_t i0, len;
        block_range(&J->pv, j, &i0, &len);
        block_sums3(J->x + i0, J->g + i0, len, J->w.part + 3 * j);
    }
}

/* Channel view, rows that fit in cache: for each row starting in [lo, hi),
 * block by block its moments, <p_k,d_k> and |p_k|^2 (p is still the pre-step
 * p), then its coefficient and its update while the row is in cache. The
 * same block sums added in the same order as the reference's, so the same
 * coefficient. */
DSC_WIDE static void range_rows(const void *ctx, size_t lo, size_t hi)
{
    const step_job *J = ctx;
    const size_t cols = J->pv.cols, bpr = J->pv.bpr;
    for (size_t r = (lo + cols - 1) / cols, r1 = (hi + cols - 1) / cols; r < r1; r++) {
        double pp = 0.0, pd = 0.0;
        for (size_t b = 0; b < bpr; b++) {
            size_t i0, len;
            block_range(&J->pv, r * bpr + b, &i0, &len);
            moments_any(J, i0, i0 + len);
            pp += block_pp(J->x + i0, len);
            pd += block_pd(J->x, &J->d, i0, len);
        }
        float k = chan_coef(pp, pd, J->eps);
        update_any(J, r * cols, (r + 1) * cols, k, 0, 1);
    }
}

/* Layer view or long rows: the moments, then the partials |p|^2 and <p,d>
 * of every block starting in [lo, hi). */
DSC_WIDE static void range_moments_pd(const void *ctx, size_t lo, size_t hi)
{
    const step_job *J = ctx;
    for (size_t j = first_block(&J->pv, lo), je = first_block(&J->pv, hi); j < je; j++) {
        size_t i0, len;
        block_range(&J->pv, j, &i0, &len);
        moments_any(J, i0, i0 + len);
        J->w.part[2 * j] = block_pp(J->x + i0, len);
        J->w.part[2 * j + 1] = block_pd(J->x, &J->d, i0, len);
    }
}

/* ... then the update with the coefficients: one for the layer, one per row
 * segment for the channel view. */
DSC_WIDE static void range_apply(const void *ctx, size_t lo, size_t hi)
{
    const step_job *J = ctx;
    if (J->view != VIEW_CHANNEL) {
        update_any(J, lo, hi, J->w.coef[0], 0, 1);
        return;
    }
    const size_t cols = J->pv.cols;
    while (lo < hi) {
        size_t r = lo / cols, end = (r + 1) * cols < hi ? (r + 1) * cols : hi;
        update_any(J, lo, end, J->w.coef[r], 0, 1);
        lo = end;
    }
}

/* Rows up to this many elements are projected row by row in cache (a row of
 * adamp's four arrays is then at most 256 KiB, well inside L2). */
#define FUSE_COLS 16384

static void step_fast(const dsc_param *p, step_job *J, proj_step ps)
{
    const size_t n = p->numel;
    if (p->ndim <= 1) {
        J->decay = ps.decay;
        dsc_parallel_ranges(n, range_plain, J);
        return;
    }
    J->pv = view_of(p);
    J->w = work_of(p, &J->pv);
    J->eps = ps.eps;
    /* The decision: from the filter when it proves one, else exactly. The
     * filter sweep may have run already, as the driver's prescan. */
    int view = -1;
    if (FILTER_ON) {
        if (!p->prescanned) dsc_parallel_ranges(n, range_filter, J);
        rows_from_blocks(&J->pv, J->w.part, 3, J->w.rowsum);
        view = decide_sure(&J->pv, J->w.rowsum, ps.eps, ps.delta);
    }
    if (view < 0) {
        dsc_parallel_ranges(n, range_sums, J);
        rows_from_blocks(&J->pv, J->w.part, 3, J->w.rowsum);
        view = proj_decide(&J->pv, J->w.rowsum, ps.eps, ps.delta);
    }
    J->view = view;
    J->decay = view != VIEW_NONE ? ps.decay_proj : ps.decay;
    /* The rest computes the exact |p_k|^2 it needs itself. */
    if (view == VIEW_NONE) {
        dsc_parallel_ranges(n, range_noproj, J);
    } else if (view == VIEW_CHANNEL && J->pv.cols <= FUSE_COLS) {
        dsc_parallel_ranges(n, range_rows, J);
    } else {
        dsc_parallel_ranges(n, range_moments_pd, J);
        rows_from_blocks(&J->pv, J->w.part, 2, J->w.rowsum); /* (pp, pd) per row */
        proj_coefs(&J->pv, view, J->w.rowsum, 2, J->w.rowsum + 1, 2, ps.eps, J->w.coef);
        dsc_parallel_ranges(n, range_apply, J);
    }
}

/* The prescan (dsc_family.prescan), for adamp and sgdp: the filter sweep of
 * step_fast made in the validate phase, its partials left in the scratch
 * for the step. Every g_i^2 enters one block's gg partial (a float lane
 * sum, then double), and a sum of non-negative terms stays finite only
 * when every term is: finite gg partials prove the gradient finite. (A
 * finite g above 2^64 overflows its float square: the driver then counts,
 * and finds none.) */
static int proj_prescan(const dsc_group *grp, dsc_param *p)
{
    (void)grp;
    if (p->ndim <= 1 || !FILTER_ON) return 0;
    step_job J = {.x = p->data, .g = p->grad};
    J.pv = view_of(p);
    J.w = work_of(p, &J.pv);
    dsc_parallel_ranges(p->numel, range_filter, &J);
    p->prescanned = 1;
    for (size_t j = 0; j < J.pv.nb; j++)
        if (!isfinite(J.w.part[3 * j])) return 0;
    return 1;
}

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

/* Reference: the rule's steps in order, one plain loop each. */
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

static void adamp_step_fast(dsc_param *p, float *m, float *v, adamp_moments s, proj_step ps)
{
    step_job job = {
        .x = p->data, .m = m, .v = v, .g = p->grad,
        .b1 = s.beta1, .c1 = s.one_minus_beta1, .b2 = s.beta2, .c2 = s.one_minus_beta2,
        .d = adamp_dir(m, v, p->grad, s), .lr = ps.lr_step, .adam = 1, .store = 0,
    };
    step_fast(p, &job, ps);
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

static void sgdp_step_fast(dsc_param *p, float *b, sgdp_scalars s, proj_step ps)
{
    step_job job = {
        .x = p->data, .m = b, .v = NULL, .g = p->grad, .b1 = s.mu, .c1 = s.keep,
        .d = {b, NULL, p->grad, s.a, s.c, 1.0f, 0.0f}, .lr = ps.lr_step, .adam = 0,
        .store = ps.store_dir,
    };
    step_fast(p, &job, ps);
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
    .plan_param = adamp_plan, .step = adamp_step, .prescan = proj_prescan,
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
    .prescan = proj_prescan,
};
