/* stable_spam.c - Stable-SPAM (TianjinYellow/StableSPAM, galore_torch/stablespam.py,
 * class StableSPAM): Adam on a gradient clipped by a running max and rescaled
 * by running norm statistics, with periodic moment resets.
 *
 * Update (docs/optimizers.md). Group state: T, incremented at the
 * start of every step. Per parameter: m, v, vmax, counter t, scalars mn, vn, mx.
 *   T <- T + 1
 *   scale = eta_min + (1-eta_min)*(1 + cos(pi*T/(total_t+1)))/2 if total_t > 0
 *           (no clamping after total_t), else 1
 *   per parameter:
 *     p <- p*(1 - lr*wd)                      (decoupled, first)
 *     gmax = max|g|;  t <- t + 1
 *     mx <- g3*mx + (1-g3)*gmax;  mxh = mx/(1-g3^t)
 *     g <- g/gmax*mxh where |g| > mxh         (the largest becomes +-mxh)
 *     n = |g|_2;  a = g1*scale                (g1 = beta1 when gamma1 == -1)
 *     mn <- a*mn + (1-a)*n;  vn <- g2*vn + (1-g2)*n^2
 *     cn = (mn/(1-a^t)) / (sqrt(vn/(1-g2^t)) + eps);  g <- g/n*cn if n > 0
 *     reset = update_proj_gap != 0 and T % update_proj_gap == 0; then t <- 1
 *     b1 = beta1*scale;  bc1 = 1-b1^t;  bc2 = 1-beta2^t   (t after the reset)
 *     m' = b1*m + (1-b1)*g;  v' = beta2*v + (1-beta2)*g*g
 *     stored m, v <- m', v'  (a reset step stores zeros instead)
 *     vmax <- max(vmax, v') and u = vmax (amsgrad, never reset); else u = v'
 *     p <- p - (lr/bc1) * m'/(sqrt(u)/sqrt(bc2) + eps)
 * Kept on purpose: at a reset step the official code has
 * already fetched m and v into locals, so that step still updates and uses
 * the OLD moments (with the bias correction of t = 1); the zeros take effect
 * at the next step, which runs with t = 2. The statistics mx, mn, vn share t,
 * so after a reset their corrections 1/(1-gamma^t) are large. The official
 * code writes the clipped gradient into p.grad; here it stays in registers.
 * Golden files: stable_spam_reset_spike_4x6, stable_spam_totalT_amsgrad_wd_3x5.
 *
 * Per-parameter scalars are computed in double (the official code's tensors
 * are 0-dim float64 in the golden runs); the element loop is float32; the
 * norm n is a fixed-order block sum, so it has the same bits for any thread
 * count. max_exp_avg_sq is always allocated, so amsgrad may be switched on
 * at any time (it then starts from the current v). */
#include "../core/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

enum { LR, BETA1, BETA2, EPS, WEIGHT_DECAY, AMSGRAD, GAMMA1, GAMMA2, GAMMA3, TOTAL_T, ETA_MIN,
       UPDATE_PROJ_GAP, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [BETA1] = {"beta1", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1, "decay of the first moment"},
    [BETA2] = {"beta2", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "decay of the second moment"},
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 1, 0,
             "added to the bias-corrected root of v and of the norm statistic"},
    [WEIGHT_DECAY] = {"weight_decay", DSC_KEY_FLOAT, 0, 0, 1e6, 0, 0,
                      "decoupled decay p <- p*(1 - lr*wd) before the step"},
    [AMSGRAD] = {"amsgrad", DSC_KEY_BOOL, 0, 0, 1, 0, 0, "use the running max of v"},
    [GAMMA1] = {"gamma1", DSC_KEY_FLOAT, 0.7, -1, 1, 0, 1,
                "decay of the gradient-norm mean (times the schedule scale); -1: beta1"},
    [GAMMA2] = {"gamma2", DSC_KEY_FLOAT, 0.9, 0, 1, 0, 1,
                "decay of the squared gradient-norm mean"},
    [GAMMA3] = {"gamma3", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1,
                "decay of the running max |g| (official theta)"},
    [TOTAL_T] = {"total_t", DSC_KEY_INT, 0, 0, 1e12, 0, 0,
                 "length of the cosine scale on beta1 and gamma1 (0: no schedule)"},
    [ETA_MIN] = {"eta_min", DSC_KEY_FLOAT, 0.5, 0, 1, 0, 0, "final value of that scale"},
    [UPDATE_PROJ_GAP] = {"update_proj_gap", DSC_KEY_INT, 1000, 0, 1e12, 0, 0,
                         "moment reset interval in steps (0: never)"},
};

static dsc_status check(const double *hp, char *err, size_t n)
{
    if (hp[GAMMA1] < 0 && hp[GAMMA1] != -1) {
        snprintf(err, n, "stable_spam: gamma1 = %g; expected -1 (= beta1) or [0, 1)",
                 hp[GAMMA1]);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

enum { SLOT_M, SLOT_V, SLOT_VMAX, SLOT_T, SLOT_MN, SLOT_VN, SLOT_MX };
enum { GSLOT_T };

/* Blocks of the fixed-order sums (the prescan keeps one maximum per block). */
static size_t prescan_blocks(const dsc_param *p)
{
    return (p->numel + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK;
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t n)
{
    (void)g; (void)err; (void)n;
    dsc_plan_slot(plan, "exp_avg", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "exp_avg_sq", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "max_exp_avg_sq", DSC_DT_F32, p->numel);
    dsc_plan_slot(plan, "step", DSC_DT_I64, 1);
    dsc_plan_slot(plan, "m_norm_t", DSC_DT_F64, 1);
    dsc_plan_slot(plan, "v_norm_t", DSC_DT_F64, 1);
    dsc_plan_slot(plan, "m_max_t", DSC_DT_F64, 1);
    plan->scratch_bytes = prescan_blocks(p) * sizeof(uint32_t); /* the prescan's maxima */
    return DSC_OK;
}

static void plan_group(const dsc_group *g, dsc_plan *plan)
{
    (void)g;
    dsc_plan_slot(plan, "total_steps", DSC_DT_I64, 1);
}

/* ------------------------------------------------------------- reductions */

/* The clipping rule of step 4, shared by the norm and the update so both see
 * the same float value. */
static inline float clip_max(float g, float mxh, float gmax)
{
    return fabsf(g) > mxh ? g / gmax * mxh : g;
}

/* Sum of clip_max(g)^2 in double with the fixed blocking of
 * dsc_reduce_blocks (the same bits for any thread count). */
typedef struct {
    const float *g;
    float mxh, gmax;
} clipped_ctx;

/* One block: the clipped values into a block-sized stack buffer (L1),
 * then the fixed-order block sum every reduction uses (dsc_dot_serial), so
 * the lanes are written once, and the reference, which runs the same
 * blocks serially, gets the same bits. */
DSC_WIDE static double clipped_block(const void *ctx, size_t start, size_t len)
{
    const clipped_ctx *c = ctx;
    const float *restrict g = c->g + start;
    const float mxh = c->mxh, gmax = c->gmax;
    /* Spikes are rare: a block without any is summed as it is (the same
     * values, so the same bits), without the divides of the clipping. */
    int spikes = 0;
    for (size_t i = 0; i < len; i++) spikes |= fabsf(g[i]) > mxh;
    if (!spikes) return dsc_dot_serial(g, g, len);
    float clipped[DSC_RED_BLOCK];
    for (size_t i = 0; i < len; i++) clipped[i] = clip_max(g[i], mxh, gmax);
    return dsc_dot_serial(clipped, clipped, len);
}

static double clipped_sumsq(const float *g, size_t n, float mxh, float gmax, int par)
{
    clipped_ctx c = {g, mxh, gmax};
    return dsc_reduce_blocks(n, par, clipped_block, &c);
}

/* max |g|: the same value in any order (serial for the reference). */
static float absmax(const float *g, size_t n, int par)
{
    if (par) return dsc_vec_absmax(g, n);
    float mx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(g[i]);
        if (a > mx) mx = a;
    }
    return mx;
}

/* The prescan (dsc_family.prescan): one pass over g in the driver's place,
 * for both of the step's reads of it before the update. Per block of the
 * fixed-order sum: the block's sum of g^2, which is what clipped_block
 * returns for a block without spikes, and the block's largest |g| bit
 * pattern (p->scratch, one per block; a non-negative float orders like its
 * bits). The step then takes max |g| from it and, when max |g| <= mxh (no
 * spike anywhere: the common case), the sum from it too, with the same
 * bits as clipped_sumsq; with a spike it makes its own clipped pass. A
 * largest pattern below Inf's proves every entry finite. */
typedef struct {
    const float *g;
    uint32_t *block_max;
} plain_ctx;

DSC_WIDE static double plain_block(const void *ctx, size_t start, size_t len)
{
    const plain_ctx *c = ctx;
    const float *restrict g = c->g + start;
    uint32_t m = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t u;
        memcpy(&u, &g[i], sizeof u);
        u &= 0x7FFFFFFFu;
        m = u > m ? u : m;
    }
    c->block_max[start / DSC_RED_BLOCK] = m;
    return dsc_dot_serial(g, g, len);
}

static int prescan(const dsc_group *grp, dsc_param *p)
{
    (void)grp;
    plain_ctx c = {p->grad, p->scratch};
    p->prescan[1] = dsc_reduce_blocks(p->numel, 1, plain_block, &c);
    uint32_t m = 0;
    for (size_t j = 0, nb = prescan_blocks(p); j < nb; j++)
        m = c.block_max[j] > m ? c.block_max[j] : m;
    float gmax;
    memcpy(&gmax, &m, sizeof gmax);
    p->prescan[0] = gmax;
    p->prescanned = 1;
    return m < 0x7F800000u;
}

/* ------------------------------------------------------------------ kernels */

typedef struct {
    float decay;              /* 1 - lr*wd */
    float mxh, gmax;          /* clipping */
    float norm, cn;           /* g <- g/norm*cn when norm > 0 */
    int normalize;
    float b1, one_minus_b1, beta2, one_minus_beta2;
    float sbc2, step, eps;    /* sqrt(bc2), lr/bc1 */
    int reset, amsgrad;
} sspam_scalars;

/* Reference: one element at a time, in the order of the spec. */
static void sspam_step_ref(float *p, const float *g, float *m, float *v, float *vmax,
                           size_t n, sspam_scalars s)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = p[i] * s.decay;                                    /* 2.1 decay */
        float gi = clip_max(g[i], s.mxh, s.gmax);                 /* 2.4 clip */
        if (s.normalize) gi = gi / s.norm * s.cn;                 /* 2.5 rescale */
        float mo = m[i], vo = v[i];                               /* 12.1: old moments */
        float mi = s.b1 * mo + s.one_minus_b1 * gi;               /* 2.8 */
        float vi = s.beta2 * vo + s.one_minus_beta2 * gi * gi;
        m[i] = s.reset ? 0.0f : mi;                               /* 2.6 reset */
        v[i] = s.reset ? 0.0f : vi;
        float u = vi;
        if (s.amsgrad) {                                          /* 2.9 */
            if (!(vmax[i] > vi)) vmax[i] = vi;
            u = vmax[i];
        }
        float denom = sqrtf(u) / s.sbc2 + s.eps;                  /* 2.10 */
        p[i] = p[i] - s.step * (mi / denom);
    }
}

/* Fast: the same float operations fused in one pass over per-thread
 * ranges; normalization and amsgrad are inlined as constants (one loop per
 * combination), the reset is a select. */
typedef struct {
    float *p, *m, *v, *vmax;
    const float *g;
    sspam_scalars s;
} sspam_job;

DSC_BODY void sspam_body(const sspam_job *job, size_t lo, size_t hi, const int clip,
                         const int normalize, const int amsgrad)
{
    float *restrict p = job->p, *restrict m = job->m, *restrict v = job->v,
          *restrict vmax = job->vmax;
    const float *restrict g = job->g;
    const sspam_scalars s = job->s;
    const float decay = s.decay, mxh = s.mxh, gmax = s.gmax, norm = s.norm, cn = s.cn,
                b1 = s.b1, c1 = s.one_minus_b1, b2 = s.beta2, c2 = s.one_minus_beta2,
                sbc2 = s.sbc2, step = s.step, eps = s.eps;
    const int reset = s.reset;
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i] * decay;
        float gi = clip ? clip_max(g[i], mxh, gmax) : g[i];
        if (normalize) gi = gi / norm * cn;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = reset ? 0.0f : mi;
        v[i] = reset ? 0.0f : vi;
        float u = vi;
        if (amsgrad) {
            u = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = u;
        }
        p[i] = pi - step * (mi / (sqrtf(u) / sbc2 + eps));
    }
}

/* Elements tested together for spikes before they are updated. */
#define SPIKE_GROUP 64

/* The clipping divides only where a spike is: a group of SPIKE_GROUP
 * elements without one (almost all of them) runs the loop without the
 * clipping, whose value there is g itself, so the bits are the same. */
DSC_BODY void sspam_groups(const sspam_job *job, size_t lo, size_t hi, const int normalize,
                           const int amsgrad)
{
    const float *restrict g = job->g;
    const float mxh = job->s.mxh;
    for (size_t i0 = lo; i0 < hi; i0 += SPIKE_GROUP) {
        size_t i1 = hi - i0 < SPIKE_GROUP ? hi : i0 + SPIKE_GROUP;
        int spikes = 0;
        for (size_t i = i0; i < i1; i++) spikes |= fabsf(g[i]) > mxh;
        if (spikes) sspam_body(job, i0, i1, 1, normalize, amsgrad);
        else sspam_body(job, i0, i1, 0, normalize, amsgrad);
    }
}

DSC_WIDE static void sspam_range(const void *ctx, size_t lo, size_t hi)
{
    const sspam_job *job = ctx;
    if (job->s.amsgrad) {
        if (job->s.normalize) sspam_groups(job, lo, hi, 1, 1);
        else sspam_groups(job, lo, hi, 0, 1);
    } else {
        if (job->s.normalize) sspam_groups(job, lo, hi, 1, 0);
        else sspam_groups(job, lo, hi, 0, 0);
    }
}

static void sspam_step_fast(float *p, const float *g, float *m, float *v, float *vmax,
                            size_t n, sspam_scalars s)
{
    sspam_job job = {.p = p, .m = m, .v = v, .vmax = vmax, .g = g, .s = s};
    dsc_parallel_ranges(n, sspam_range, &job);
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    int64_t *T = grp->slots[GSLOT_T].data;
    *T += 1;
    const double *gh = grp->cur;
    double scale = 1.0;
    if (gh[TOTAL_T] > 0) {
        double eta = gh[ETA_MIN];
        scale = eta + (1.0 - eta) * (1.0 + cos(PI * (double)*T / (gh[TOTAL_T] + 1.0))) / 2.0;
    }
    int64_t gap = (int64_t)gh[UPDATE_PROJ_GAP];
    const int reset = gap != 0 && *T % gap == 0;
    for (int j = 0; j < grp->nparams; j++) {
        dsc_param *p = dsc_group_param(grp, j);
        const double *hp = p->hp;
        const int par = !ctx->reference;
        int64_t *t = p->slots[SLOT_T].data;
        double *mn = p->slots[SLOT_MN].data, *vn = p->slots[SLOT_VN].data,
               *mx = p->slots[SLOT_MX].data;
        double lr = hp[LR], beta1 = hp[BETA1], beta2 = hp[BETA2], eps = hp[EPS];
        double g1 = hp[GAMMA1] == -1 ? beta1 : hp[GAMMA1], g2 = hp[GAMMA2], g3 = hp[GAMMA3];

        float gmax = p->prescanned ? (float)p->prescan[0]             /* 2.2 */
                                   : absmax(p->grad, p->numel, par);
        *t += 1;
        *mx = g3 * *mx + (1.0 - g3) * (double)gmax;                   /* 2.3 */
        double mxh = *mx / (1.0 - pow(g3, (double)*t));
        /* No spike (max |g| <= mxh): the prescan's sum is the clipped one. */
        double norm = sqrt(p->prescanned && gmax <= (float)mxh
                               ? p->prescan[1]
                               : clipped_sumsq(p->grad, p->numel, (float)mxh, gmax, par));
        double a = g1 * scale;                                        /* 2.5 */
        *mn = a * *mn + (1.0 - a) * norm;
        *vn = g2 * *vn + (1.0 - g2) * norm * norm;
        double mnh = *mn / (1.0 - pow(a, (double)*t));
        double vnh = *vn / (1.0 - pow(g2, (double)*t));
        double cn = mnh / (sqrt(vnh) + eps);
        if (reset) *t = 1;                                            /* 2.6 */
        double b1 = beta1 * scale;                                    /* 2.7 */
        double bc1 = 1.0 - pow(b1, (double)*t), bc2 = 1.0 - pow(beta2, (double)*t);
        sspam_scalars s = {
            .decay = (float)(1.0 - lr * hp[WEIGHT_DECAY]),
            .mxh = (float)mxh, .gmax = gmax,
            .norm = (float)norm, .cn = (float)cn, .normalize = norm > 0,
            .b1 = (float)b1, .one_minus_b1 = (float)(1.0 - b1),
            .beta2 = (float)beta2, .one_minus_beta2 = (float)(1.0 - beta2),
            .sbc2 = (float)sqrt(bc2), .step = (float)(lr / bc1), .eps = (float)eps,
            .reset = reset, .amsgrad = hp[AMSGRAD] != 0,
        };
        float *m = p->slots[SLOT_M].data, *v = p->slots[SLOT_V].data,
              *vmax = p->slots[SLOT_VMAX].data;
        if (ctx->reference) sspam_step_ref(p->data, p->grad, m, v, vmax, p->numel, s);
        else sspam_step_fast(p->data, p->grad, m, v, vmax, p->numel, s);
    }
    return DSC_OK;
}

const dsc_family dsc_family_stable_spam = {
    .info = {
        .name = "stable_spam",
        .summary = "Adam with adaptive spike clipping, gradient-norm rescaling and moment "
                   "resets (Stable-SPAM)",
        .paper = "Huang et al., Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit "
                 "Adam, arXiv 2502.17055 (2025)",
        .source = "TianjinYellow/StableSPAM galore_torch/stablespam.py "
                  "@6a66da1ea7005f7fe7bc570b7968144b42163bed",
        .nkeys = NKEYS, .keys = keys, .matrix = 0,
    },
    .check = check, .plan_param = plan_param, .plan_group = plan_group, .step = step,
    .prescan = prescan,
};
