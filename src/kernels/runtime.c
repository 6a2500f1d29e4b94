/* runtime.c - the library's run-time settings in one place: the thread
 * count every parallel loop reads, the DESCENT_KERNELS switch, the build
 * description, and the two ways a loop is cut into per-thread ranges
 * (parallel.h). The bottom of the layering: everything above reads these,
 * nothing here calls up. */
#include "parallel.h"
#include "blockquant.h"
#include "bf16gemm.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int thread_setting = 0;

void dsc_set_num_threads(int n) { thread_setting = n > 0 ? n : 0; }
int dsc_get_num_threads(void) { return dsc_threads(); }

int dsc_threads(void)
{
#ifdef _OPENMP
    return thread_setting > 0 ? thread_setting : omp_get_max_threads();
#else
    return 1;
#endif
}

void dsc_parallel_ranges(size_t n, dsc_range_fn fn, const void *ctx)
{
    int nt = dsc_threads();
    if (n < DSC_PAR_MIN || nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        /* The team may be smaller than asked (nesting, thread limits): cut by
         * the threads that really run. */
        size_t t = 0, team = 1;
#ifdef _OPENMP
        t = (size_t)omp_get_thread_num();
        team = (size_t)omp_get_num_threads();
#endif
        /* Per-thread share rounded up to 16 floats (one cache line). */
        size_t share = (n + team - 1) / team;
        share = (share + 15) & ~(size_t)15;
        size_t lo = t * share < n ? t * share : n, hi = lo + share < n ? lo + share : n;
        if (lo < hi) fn(ctx, lo, hi);
    }
}

int dsc_env_reference(void)
{
    const char *k = getenv("DESCENT_KERNELS");
    return k && strcmp(k, "ref") == 0;
}

dsc_build_info_t dsc_build_info(void)
{
    dsc_build_info_t b;
    b.version = DSC_VERSION_STRING;
#ifdef DSC_HAVE_CBLAS
    b.blas = "openblas";
#else
    b.blas = "portable";
#endif
#ifdef _OPENMP
    b.openmp = 1;
#else
    b.openmp = 0;
#endif
    b.max_threads = dsc_threads();
    /* the run-time choices: AVX-512 for the 8-bit states, AVX512-BF16 for
     * the products of the bf16 Newton-Schulz (`descent polar --bf16` says
     * which one ran from this string) */
    static const char *const names[2][2] = {
        {"portable", "portable, avx512-bf16 for bf16 Newton-Schulz"},
        {"portable, avx512 for 8-bit states",
         "portable, avx512 for 8-bit states, avx512-bf16 for bf16 Newton-Schulz"}};
    b.kernels = dsc_env_reference()
                    ? "ref"
                    : names[dsc_bq_avx512() != 0][dsc_bf16gemm_available() != 0];
    return b;
}

void dsc_parallel_items(size_t n, int parallel, dsc_range_fn fn, const void *ctx)
{
    int nt = dsc_threads();
    if (!parallel || n < 2 || nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        size_t t = 0, team = 1;
#ifdef _OPENMP
        t = (size_t)omp_get_thread_num();
        team = (size_t)omp_get_num_threads();
#endif
        /* The static schedule of `omp for`: the first n % team threads take
         * one item more. */
        size_t q = n / team, r = n % team;
        size_t lo = t * q + (t < r ? t : r), hi = lo + q + (t < r);
        if (lo < hi) fn(ctx, lo, hi);
    }
}
