/* sinkgd.c - SinkGD: SR-Sinkhorn multi-normalization of the gradient, then SGD.
 *
 * docs/optimizers.md and docs/matrix.md; Scetbon et al., Gradient Multi-Normalization for
 * Stateless and Scalable LLM Training, arXiv 2502.06742 (no official code;
 * the rule and golden files follow the paper's SR-Sinkhorn and SinkGD).
 * Stateless. For a matrix X = G (m x n; ndim > 2 viewed as d0 x rest):
 *   repeat iters times:
 *     each row:    X[i,:] <- sqrt(n) X[i,:] / (||X[i,:]||_2 + eps)
 *     each column: X[:,j] <- sqrt(m) X[:,j] / (||X[:,j]||_2 + eps)
 *   W <- W - lr X
 * The last operation is the column normalization; a zero gradient gives a
 * zero update. Vectors are rejected (DSC_SHAPE): the paper trains them, the
 * embedding and the head with Adam, so route them to a fallback group.
 * Golden: sinkgd_4x6, sinkgd_16x5_8x8_b.
 *
 * Norms are sums in double, row by row or column by column in index order
 * (the fast path splits rows, or columns, over threads). */
#include "matrix_common.h"

#include <string.h>

enum { LR, ITERS, EPS, NKEYS };

static const dsc_key_info keys[NKEYS] = {
    [LR] = {"lr", DSC_KEY_FLOAT, 1e-3, 0, 1e6, 0, 0, "learning rate"},
    [ITERS] = {"iters", DSC_KEY_INT, 5, 0, 1000, 0, 0, "row/column normalization rounds (L)"},
    [EPS] = {"eps", DSC_KEY_FLOAT, 1e-8, 0, 1, 0, 0, "added to each norm (zero rows/columns)"},
};

/* Scratch: X (m n floats) then the column sums (n doubles). */
static size_t need(const dsc_param *p)
{
    if (p->ndim < 2) return 0;
    return dsc_align16(p->numel) + 2 * p->cols;
}

static void plan_group(const dsc_group *g, dsc_plan *plan)
{
    dsc_plan_scratch_max(g, plan, need);
}

static dsc_status plan_param(const dsc_group *g, const dsc_param *p, dsc_plan *plan, char *err,
                             size_t n)
{
    (void)g; (void)plan;
    if (p->ndim < 2) return dsc_reject_vector("sinkgd", p, err, n);
    return DSC_OK;
}

/* Reference: one row, then one column at a time, sums in double. */
static void sinkhorn_ref(float *X, size_t m, size_t n, int iters, double eps)
{
    const double sn = sqrt((double)n), sm = sqrt((double)m);
    for (int it = 0; it < iters; it++) {
        for (size_t i = 0; i < m; i++) {
            double q = 0.0;
            for (size_t j = 0; j < n; j++) q += (double)X[i * n + j] * (double)X[i * n + j];
            float f = (float)(sn / (sqrt(q) + eps));
            for (size_t j = 0; j < n; j++) X[i * n + j] *= f;
        }
        for (size_t j = 0; j < n; j++) {
            double q = 0.0;
            for (size_t i = 0; i < m; i++) q += (double)X[i * n + j] * (double)X[i * n + j];
            float f = (float)(sm / (sqrt(q) + eps));
            for (size_t i = 0; i < m; i++) X[i * n + j] *= f;
        }
    }
}

/* Fast: rows split over threads; column sums accumulated row by row into a
 * vector (contiguous, vectorizable), columns split over threads in chunks of
 * 64. Each sum keeps the reference's order and is computed whole by one
 * thread (dsc_parallel_items), so both paths give the same bits. */
typedef struct {
    float *X;
    size_t m, n;
    double eps, sn, sm;
    double *col;
} sinkhorn_job;

static void sinkhorn_rows(const void *ctx, size_t lo, size_t hi)
{
    const sinkhorn_job *J = ctx;
    const size_t n = J->n;
    for (size_t i = lo; i < hi; i++) {
        float *x = J->X + i * n;
        double q = 0.0;
        for (size_t j = 0; j < n; j++) q += (double)x[j] * (double)x[j];
        float f = (float)(J->sn / (sqrt(q) + J->eps));
        for (size_t j = 0; j < n; j++) x[j] *= f;
    }
}

static void sinkhorn_cols(const void *ctx, size_t lo, size_t hi)
{
    const sinkhorn_job *J = ctx;
    const size_t m = J->m, n = J->n;
    double *col = J->col;
    for (size_t c = lo; c < hi; c++) {
        size_t j0 = c * 64, j1 = j0 + 64 < n ? j0 + 64 : n;
        for (size_t j = j0; j < j1; j++) col[j] = 0.0;
        for (size_t i = 0; i < m; i++) {
            const float *x = J->X + i * n;
            for (size_t j = j0; j < j1; j++) col[j] += (double)x[j] * (double)x[j];
        }
        for (size_t j = j0; j < j1; j++) col[j] = (double)(float)(J->sm / (sqrt(col[j]) + J->eps));
        for (size_t i = 0; i < m; i++) {
            float *x = J->X + i * n;
            for (size_t j = j0; j < j1; j++) x[j] *= (float)col[j];
        }
    }
}

static void sinkhorn_fast(float *X, size_t m, size_t n, int iters, double eps, double *col)
{
    sinkhorn_job job = {X, m, n, eps, sqrt((double)n), sqrt((double)m), col};
    const int par = m * n >= DSC_PAR_MIN;
    for (int it = 0; it < iters; it++) {
        dsc_parallel_items(m, par, sinkhorn_rows, &job);
        dsc_parallel_items((n + 63) / 64, par, sinkhorn_cols, &job);
    }
}

/* W <- W + (-lr) * X over a range (both paths: one float operation). */
typedef struct {
    float *W;
    const float *X;
    float neg;
} apply_job;

static void apply_range(const void *ctx, size_t lo, size_t hi)
{
    const apply_job *job = ctx;
    float *restrict W = job->W;
    const float *restrict X = job->X;
    const float neg = job->neg;
    for (size_t i = lo; i < hi; i++) W[i] = W[i] + neg * X[i];
}

static dsc_status step(dsc_group *grp, const dsc_step_ctx *ctx)
{
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        float *X = grp->scratch;
        double *col = (double *)(X + dsc_align16(p->numel));
        const size_t m = p->rows, n = p->cols, len = p->numel;
        const int iters = (int)p->hp[ITERS];
        const double eps = p->hp[EPS];
        memcpy(X, p->grad, len * sizeof(float));
        if (ctx->reference) sinkhorn_ref(X, m, n, iters, eps);
        else sinkhorn_fast(X, m, n, iters, eps, col);
        apply_job job = {p->data, X, -(float)p->hp[LR]};
        if (ctx->reference) apply_range(&job, 0, len);
        else dsc_parallel_ranges(len, apply_range, &job);
    }
    return DSC_OK;
}

const dsc_family dsc_family_sinkgd = {
    .info = {
        .name = "sinkgd",
        .summary = "stateless SGD on the gradient alternately row- and column-normalized (SR-Sinkhorn)",
        .paper = "Scetbon et al., Gradient Multi-Normalization for Stateless and Scalable LLM "
                 "Training, arXiv 2502.06742",
        .source = "paper algorithms (no official code); docs/matrix.md (SinkGD)",
        .nkeys = NKEYS, .keys = keys, .matrix = 1,
    },
    .plan_param = plan_param, .plan_group = plan_group, .step = step,
};
