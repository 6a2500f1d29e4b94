/* bench.c - the benchmark hooks of descent.h: internal kernels and one
 * group's update rule, reachable through the public header so that bench/
 * measures them without including src/ (the layering test forbids that).
 * Each is a thin wrapper: what is timed is the kernel itself, not a copy. */
#include "internal.h"
#include "../kernels/gemm.h"
#include "../kernels/svd.h"

#include <stdlib.h>

size_t dsc_bench_gemm_work_floats(void) { return dsc_gemm_work_floats(); }

void dsc_bench_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                    size_t ldc, float *work)
{
    dsc_gemm(trans_a ? DSC_TRANS : DSC_NO_TRANS, trans_b ? DSC_TRANS : DSC_NO_TRANS, m, n, k,
             alpha, a, lda, b, ldb, beta, c, ldc, work);
}

void dsc_bench_gram_f64(size_t r, size_t len, const double *x, double *c)
{
    dsc_gram_f64(r, len, x, c);
}

size_t dsc_bench_sym_eig_work_bytes(size_t n, size_t k)
{
    return k ? dsc_sym_eig_top_work_bytes(n) : dsc_sym_eig_work_bytes(n);
}

int dsc_bench_sym_eig(size_t n, size_t k, double *a, double *w, double *vecs, void *work)
{
    return k ? dsc_sym_eig_top(n, k, a, w, vecs, work) : dsc_sym_eig(n, a, w, work);
}

/* Not timed by anyone (it is the check before the timings), so it may
 * allocate its own workspace and keep the public signature short. */
dsc_status dsc_bench_svd_jacobi(size_t m, size_t n, const double *a, double *s, double *u)
{
    void *work = malloc(dsc_svd_jacobi_work_bytes(m, n));
    if (!work) return DSC_NO_MEMORY;
    dsc_svd_jacobi(m, n, a, s, u, NULL, DSC_SVD_SIGN_U, work);
    free(work);
    return DSC_OK;
}

/* The family's step callback on the state the last dsc_optimizer_step
 * left: p->grad and p->hp still hold that step's gradient and values, so
 * the callback sees exactly what it saw then. Refused where that state is
 * not self-contained: before any step, with a communicator (the family runs
 * on shard pieces, then a gather), inside an accumulation window, with
 * averaged weights swapped in, or for bf16 parameters (their rounding back
 * happens in the driver). */
dsc_status dsc_bench_group_update(dsc_optimizer *opt, int group)
{
    if (!opt) return DSC_NULL_POINTER;
    if (group < 0 || group >= opt->ngroups)
        return dsc_fail(opt, DSC_INVALID_ARGUMENT, "bench_group_update: no group %d", group);
    if (opt->step == 0 || opt->shard || opt->micro || opt->swapped)
        return dsc_fail(opt, DSC_STATE,
                        "bench_group_update: needs a plain handle after at least one step");
    dsc_group *g = opt->groups[group];
    for (int i = 0; i < opt->nparams; i++)
        if (opt->params[i]->group == group && opt->params[i]->bf16)
            return dsc_fail(opt, DSC_STATE, "bench_group_update: group \"%s\" has bf16 parameters",
                            g->name);
    if (g->nparams == 0) return DSC_OK;
    dsc_step_ctx ctx = {.reference = opt->reference, .step = opt->step, .seed = opt->seed};
    return g->family->step(g, &ctx);
}
