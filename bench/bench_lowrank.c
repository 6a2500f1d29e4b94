/* bench_lowrank.c - cost of GaLore's projector refresh and of one GaLore /
 * Fira step on GPT-2-small shapes, at rank 128.
 *
 * For a 768 x 3072 matrix (c_proj: wide, left projection) and its
 * transpose (c_fc: tall, right projection):
 *   - the refresh kernels alone: the double Gram matrix (768 x 768) and the
 *     tridiagonal QL eigen-decomposition, next to a dgemm-rate baseline
 *     (the Gram's flops at the rate of the same call);
 *   - a full galore step with a refresh (update_proj_gap = 1) and without
 *     (gap large), and the same for fira;
 *   - the limit: one sgemm of the step's shape (m x n x k), measured in the
 *     same run; a galore step does two such products.
 * A check first: the fast refresh matches the Jacobi SVD on a 96 x 384
 * slice (the projector's subspace, as |cos| of principal angles).
 *
 * usage: bench_lowrank [--quick]   (--quick: one repetition) */
#include "descent.h"

#include "bench.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* process CPU time (all threads): on a loaded machine, with one thread,
 * closer to the uncontended wall time than the wall clock is */
static double cpu(void) { return (double)clock() / CLOCKS_PER_SEC; }

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

/* Fast route against Jacobi on a small wide matrix: max |v_j - v'_j|. */
static double check_routes(void)
{
    const size_t m = 96, n = 384;
    double *a = malloc(m * n * sizeof *a), *c = malloc(m * m * sizeof *c);
    double *w = malloc(m * sizeof *w), *s = malloc(m * sizeof *s), *u = malloc(m * m * sizeof *u);
    void *ew = malloc(dsc_bench_sym_eig_work_bytes(m, 0));
    for (size_t i = 0; i < m * n; i++) a[i] = frand();
    dsc_bench_gram_f64(m, n, a, c);
    dsc_bench_sym_eig(m, 0, c, w, NULL, ew);
    if (dsc_bench_svd_jacobi(m, n, a, s, u) != DSC_OK) {
        fprintf(stderr, "bench_lowrank: out of memory\n");
        exit(1);
    }
    double worst = 0;
    for (size_t j = 0; j < 32; j++)
        for (size_t i = 0; i < m; i++) worst = fmax(worst, fabs(c[j * m + i] - u[i * m + j]));
    free(a); free(c); free(w); free(s); free(u); free(ew);
    return worst;
}

static double time_step(const char *spec, size_t m, size_t n, int reps, int refresh_every,
                        double *cpu_ms)
{
    float *w = malloc(m * n * sizeof *w), *g = malloc(m * n * sizeof *g);
    for (size_t i = 0; i < m * n; i++) {
        w[i] = frand();
        g[i] = frand();
    }
    char full[256];
    snprintf(full, sizeof full, "%s,update_proj_gap=%d", spec, refresh_every);
    dsc_optimizer *opt = dsc_optimizer_new();
    int64_t shape[2] = {(int64_t)m, (int64_t)n};
    if (dsc_optimizer_add_group(opt, "g", full) != DSC_OK ||
        dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_MATRIX, "g") != DSC_OK) {
        fprintf(stderr, "bench_lowrank: %s\n", dsc_optimizer_error(opt));
        exit(1);
    }
    dsc_optimizer_step(opt); /* first step always refreshes */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now(), k0 = cpu();
        dsc_optimizer_step(opt);
        double dt = bench_now() - t0, dk = cpu() - k0;
        if (dt < best) best = dt;
        if (dk < *cpu_ms) *cpu_ms = dk;
    }
    *cpu_ms *= 1e3;
    dsc_optimizer_free(opt);
    free(w);
    free(g);
    return best * 1e3;
}

int main(int argc, char **argv)
{
    int reps = (argc > 1 && !strcmp(argv[1], "--quick")) ? 1 : 3;
    dsc_build_info_t bi = dsc_build_info();
    /* The GEMM's back end is the build's BLAS (dsc_bench_gemm). */
    printf("bench_lowrank: blas %s, %d threads, gemm %s\n", bi.blas, bi.max_threads, bi.blas);
    printf("check: fast refresh vs Jacobi SVD (96x384, top 32 vectors): max diff %.2e\n",
           check_routes());

    const size_t r = 768, len = 3072, k = 128;
    /* Refresh kernels alone. */
    double *x = malloc(r * len * sizeof *x), *c = malloc(r * r * sizeof *c), *wv = malloc(r * 8);
    double *c2 = malloc(r * r * sizeof *c2), *vecs = malloc(k * r * sizeof *vecs);
    void *ew = malloc(dsc_bench_sym_eig_work_bytes(r, 0));
    void *et = malloc(dsc_bench_sym_eig_work_bytes(r, k));
    for (size_t i = 0; i < r * len; i++) x[i] = frand();
    double tg = 1e30, te = 1e30, tt = 1e30, cg = 1e30, ce = 1e30, ct = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now(), k0 = cpu();
        dsc_bench_gram_f64(r, len, x, c);
        double t1 = bench_now(), k1 = cpu();
        memcpy(c2, c, r * r * sizeof *c);
        double t2 = bench_now(), k2 = cpu();
        dsc_bench_sym_eig(r, k, c2, wv, vecs, et);
        double t3 = bench_now(), k3 = cpu();
        dsc_bench_sym_eig(r, 0, c, wv, NULL, ew);
        double t4 = bench_now(), k4 = cpu();
        tg = fmin(tg, t1 - t0); cg = fmin(cg, k1 - k0);
        tt = fmin(tt, t3 - t2); ct = fmin(ct, k3 - k2);
        te = fmin(te, t4 - t3); ce = fmin(ce, k4 - k3);
    }
    double gram_gflops = (double)r * r * len / tg / 1e9; /* r^2 len flops (half of 2 r^2 len) */
    printf("refresh 768x3072 (wall / cpu ms): gram %.1f / %.1f (%.1f GFLOP/s), "
           "top-128 eigen %.1f / %.1f, full QL eigen %.1f / %.1f\n",
           tg * 1e3, cg * 1e3, gram_gflops, tt * 1e3, ct * 1e3, te * 1e3, ce * 1e3);
    free(c2); free(vecs); free(et);

    /* The limit: one sgemm of the step's shape. */
    float *a = malloc(r * len * sizeof *a), *b = malloc(k * len * sizeof *b);
    float *o = malloc(r * k * sizeof *o);
    float *gw = malloc(dsc_bench_gemm_work_floats() * sizeof(float));
    for (size_t i = 0; i < r * len; i++) a[i] = frand();
    for (size_t i = 0; i < k * len; i++) b[i] = frand();
    double tm = 1e30;
    for (int i = 0; i < reps + 1; i++) {
        double t0 = bench_now();
        dsc_bench_gemm(0, 1, r, k, len, 1.0f, a, len, b, len, 0.0f, o, k, gw);
        tm = fmin(tm, bench_now() - t0);
    }
    printf("limit: sgemm 768x128x3072 %.2f ms (%.1f GFLOP/s)\n", tm * 1e3,
           2.0 * r * k * len / tm / 1e9);

    const char *specs[] = {"galore:lr=0.01,rank=128", "fira:lr=0.01,rank=128"};
    for (int f = 0; f < 2; f++)
        for (int tall = 0; tall < 2; tall++) {
            size_t m = tall ? len : r, n = tall ? r : len;
            double cp = 1e30, cw = 1e30;
            double plain = time_step(specs[f], m, n, reps, 1000000, &cp);
            double with = time_step(specs[f], m, n, reps, 1, &cw);
            printf("%-6s %4zux%-4zu rank 128 (wall / cpu ms): step %.1f / %.1f "
                   "(%.1fx one sgemm), step with refresh %.1f / %.1f\n",
                   f ? "fira" : "galore", m, n, plain, cp, plain / (tm * 1e3), with, cw);
        }
    free(x); free(c); free(wv); free(ew); free(a); free(b); free(o); free(gw);
    return 0;
}
