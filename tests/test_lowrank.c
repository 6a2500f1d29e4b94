/* test_lowrank.c - the SVD kernels and the GaLore / Fira families.
 *
 * SVD: orthogonality, reconstruction, order, sign convention, known values,
 * rank-deficient, 1 x N, N x 1 and zero inputs; the Gram eigen route against
 * Jacobi. Families: refresh timing across update_proj_gap, fast against
 * reference, the same bits at 1, 2 and 4 threads, no allocation in a step,
 * checkpoint round trip, bad specs. (Golden replays are separate ctests.) */
#include "check.h"
#include "core/internal.h"
#include "kernels/svd.h"

#include <descent.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

/* ------------------------------------------------------------------ SVD */

static double max_abs(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Checks one decomposition of a (m x n); returns the largest error seen. */
static void check_svd(size_t m, size_t n, const double *a, dsc_svd_sign sign, const char *what)
{
    size_t r = m < n ? m : n;
    double *s = calloc(r, sizeof *s), *u = calloc(m * r, sizeof *u), *v = calloc(n * r, sizeof *v);
    void *work = malloc(dsc_svd_jacobi_work_bytes(m, n));
    int sweeps = dsc_svd_jacobi(m, n, a, s, u, v, sign, work);
    CHECK(sweeps >= 0);
    double scale = fmax(max_abs(a, m * n), 1e-300);
    double rec = 0, orth_u = 0, orth_v = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t k = 0; k < r; k++) acc += u[i * r + k] * s[k] * v[j * r + k];
            rec = fmax(rec, fabs(acc - a[i * n + j]) / scale);
        }
    for (size_t p = 0; p < r; p++)
        for (size_t q = 0; q < r; q++) {
            double du = 0, dv = 0;
            for (size_t i = 0; i < m; i++) du += u[i * r + p] * u[i * r + q];
            for (size_t i = 0; i < n; i++) dv += v[i * r + p] * v[i * r + q];
            orth_u = fmax(orth_u, fabs(du - (p == q)));
            orth_v = fmax(orth_v, fabs(dv - (p == q)));
        }
    int ordered = 1, signs = 1;
    for (size_t k = 0; k < r; k++) {
        if (s[k] < 0 || (k && s[k] > s[k - 1])) ordered = 0;
        const double *x = sign == DSC_SVD_SIGN_U ? u : v;
        size_t len = sign == DSC_SVD_SIGN_U ? m : n, best = 0;
        for (size_t i = 1; i < len; i++)
            if (fabs(x[i * r + k]) > fabs(x[best * r + k])) best = i;
        if (!(x[best * r + k] > 0)) signs = 0;
    }
    if (rec > 1e-13 || orth_u > 1e-13 || orth_v > 1e-13 || !ordered || !signs)
        fprintf(stderr, "svd %s (%zux%zu): rec %.3g orth_u %.3g orth_v %.3g ordered %d signs %d\n",
                what, m, n, rec, orth_u, orth_v, ordered, signs);
    CHECK(rec <= 1e-13);
    CHECK(orth_u <= 1e-13);
    CHECK(orth_v <= 1e-13);
    CHECK(ordered);
    CHECK(signs);
    free(s); free(u); free(v); free(work);
}

static void test_svd(void)
{
    /* Random shapes, both sides of the sign convention. */
    const size_t shapes[][2] = {{7, 4}, {4, 7}, {6, 6}, {1, 5}, {5, 1}, {1, 1}, {33, 9}, {9, 33}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t m = shapes[c][0], n = shapes[c][1];
        double *a = malloc(m * n * sizeof *a);
        for (size_t i = 0; i < m * n; i++) a[i] = urand();
        check_svd(m, n, a, DSC_SVD_SIGN_U, "random");
        check_svd(m, n, a, DSC_SVD_SIGN_V, "random");
        free(a);
    }
    /* Known values: [[3, 0], [4, 5]] has singular values 3 sqrt 5 and sqrt 5. */
    {
        const double a[4] = {3, 0, 4, 5};
        double s[2], u[4], v[4];
        char work[512];
        CHECK(dsc_svd_jacobi_work_bytes(2, 2) <= sizeof work);
        dsc_svd_jacobi(2, 2, a, s, u, v, DSC_SVD_SIGN_V, (double *)(void *)work);
        CHECK_NEAR(s[0], 3 * sqrt(5.0), 1e-14);
        CHECK_NEAR(s[1], sqrt(5.0), 1e-14);
        /* v1 = (1, 1)/sqrt 2 with the sign convention (first on the tie) */
        CHECK_NEAR(v[0], 1 / sqrt(2.0), 1e-15);
        CHECK_NEAR(v[2], 1 / sqrt(2.0), 1e-15);
        check_svd(2, 2, a, DSC_SVD_SIGN_U, "known");
    }
    /* Rank-deficient: 8 x 5 of rank 2, and its transpose. */
    {
        double b[8 * 2], c[2 * 5], a[8 * 5], at[5 * 8];
        for (int i = 0; i < 16; i++) b[i] = urand();
        for (int i = 0; i < 10; i++) c[i] = urand();
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 5; j++) {
                a[i * 5 + j] = b[i * 2] * c[j] + b[i * 2 + 1] * c[5 + j];
                at[j * 8 + i] = a[i * 5 + j];
            }
        check_svd(8, 5, a, DSC_SVD_SIGN_U, "rank 2");
        check_svd(5, 8, at, DSC_SVD_SIGN_V, "rank 2, wide");
        double s[5];
        void *work = malloc(dsc_svd_jacobi_work_bytes(8, 5));
        dsc_svd_jacobi(8, 5, a, s, NULL, NULL, DSC_SVD_SIGN_U, work);
        CHECK(s[2] <= 1e-14 * s[0]);
        free(work);
    }
    /* Zero matrix: zero values, identity-like orthonormal vectors. */
    {
        double a[3 * 5] = {0};
        check_svd(3, 5, a, DSC_SVD_SIGN_U, "zero");
        check_svd(5, 3, a, DSC_SVD_SIGN_V, "zero");
    }
}

static void test_eig(void)
{
    /* Gram route against Jacobi: eigenvalues s^2, eigenvectors = right singular vectors. */
    const size_t m = 20, n = 8;
    double g[20 * 8], c[8 * 8], w[8], s[8], v[8 * 8];
    for (size_t i = 0; i < m * n; i++) g[i] = urand();
    double gt[8 * 20];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) gt[j * m + i] = g[i * n + j];
    dsc_gram_f64(n, m, gt, c);
    double a0[64];
    memcpy(a0, c, sizeof a0);
    void *ework = malloc(dsc_sym_eig_work_bytes(n));
    void *jwork = malloc(dsc_svd_jacobi_work_bytes(m, n));
    CHECK_EQ_INT(dsc_sym_eig(n, c, w, ework), 0);
    dsc_svd_jacobi(m, n, g, s, NULL, v, DSC_SVD_SIGN_V, jwork);
    double dval = 0, dvec = 0, resid = 0;
    for (size_t j = 0; j < n; j++) {
        dval = fmax(dval, fabs(w[j] - s[j] * s[j]) / (s[0] * s[0]));
        for (size_t i = 0; i < n; i++) {
            dvec = fmax(dvec, fabs(c[j * n + i] - v[i * n + j]));
            double av = 0;
            for (size_t k = 0; k < n; k++) av += a0[i * n + k] * c[j * n + k];
            resid = fmax(resid, fabs(av - w[j] * c[j * n + i]) / w[0]);
        }
    }
    CHECK(dval <= 1e-14);
    CHECK(dvec <= 1e-11);
    CHECK(resid <= 1e-14);
    /* n = 1, a diagonal matrix with a tie, and the zero matrix. */
    double one = -3.0, w1;
    dsc_sym_eig(1, &one, &w1, ework);
    CHECK_NEAR(w1, -3.0, 0);
    CHECK_NEAR(one, 1.0, 0);
    double d[9] = {1, 0, 0, 0, 5, 0, 0, 0, 1}, wd[3];
    dsc_sym_eig(3, d, wd, ework);
    CHECK_NEAR(wd[0], 5, 0);
    CHECK_NEAR(d[1], 1, 0);
    CHECK_NEAR(wd[2], 1, 0);
    double z[16] = {0}, wz[4];
    dsc_sym_eig(4, z, wz, ework);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) CHECK_NEAR(z[i * 4 + j], i == j, 0);
    free(ework);
    free(jwork);

    /* Top-k by inverse iteration against full QL: a random Gram (n = 150)
     * and a rank-30 one asked for 40 vectors (a cluster of zeros). */
    for (int rankdef = 0; rankdef < 2; rankdef++) {
        const size_t nn = 150, len = 200, kk = rankdef ? 40 : 20, rows = rankdef ? 30 : nn;
        double *x = calloc(nn * len, sizeof *x), *a1 = malloc(nn * nn * sizeof *a1);
        double *a2 = malloc(nn * nn * sizeof *a2), *w1 = malloc(nn * sizeof *w1);
        double *w2 = malloc(nn * sizeof *w2), *vec = malloc(kk * nn * sizeof *vec);
        void *wk1 = malloc(dsc_sym_eig_work_bytes(nn)), *wk2 = malloc(dsc_sym_eig_top_work_bytes(nn));
        double *basis = malloc(rows * len * sizeof *basis);
        for (size_t i = 0; i < rows * len; i++) basis[i] = urand();
        for (size_t i = 0; i < nn; i++) /* row i = a mix of the `rows` basis rows */
            for (size_t b = 0; b < rows; b++) {
                double f = rankdef ? urand() : (b == i);
                for (size_t t = 0; t < len; t++) x[i * len + t] += f * basis[b * len + t];
            }
        dsc_gram_f64(nn, len, x, a1);
        memcpy(a2, a1, nn * nn * sizeof *a1);
        CHECK_EQ_INT(dsc_sym_eig(nn, a1, w1, wk1), 0);
        CHECK_EQ_INT(dsc_sym_eig_top(nn, kk, a2, w2, vec, wk2), 0);
        double dv = 0, dw = 0, orth = 0;
        for (size_t j = 0; j < kk; j++) {
            dw = fmax(dw, fabs(w1[j] - w2[j]) / w1[0]);
            if (j < rows)
                for (size_t i = 0; i < nn; i++) dv = fmax(dv, fabs(a1[j * nn + i] - vec[j * nn + i]));
            for (size_t q = 0; q < kk; q++) {
                double dd = 0;
                for (size_t i = 0; i < nn; i++) dd += vec[j * nn + i] * vec[q * nn + i];
                orth = fmax(orth, fabs(dd - (j == q)));
            }
        }
        if (dv > 1e-9 || dw > 1e-13 || orth > 1e-12)
            fprintf(stderr, "eig_top rankdef %d: dv %.3g dw %.3g orth %.3g\n", rankdef, dv, dw,
                    orth);
        CHECK(dw <= 1e-13);
        CHECK(dv <= 1e-9);
        CHECK(orth <= 1e-12);
        free(x); free(a1); free(a2); free(w1); free(w2); free(vec); free(wk1); free(wk2);
        free(basis);
    }
    {   /* zero matrix: unit vectors */
        double z[100 * 100] = {0}, wz[100], v[3 * 100];
        void *wk = malloc(dsc_sym_eig_top_work_bytes(100));
        dsc_sym_eig_top(100, 3, z, wz, v, wk);
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 100; i++) CHECK_NEAR(v[j * 100 + i], i == j, 0);
        free(wk);
    }
}

/* ------------------------------------------------------------- families */

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[2];
} pdesc;

typedef struct {
    dsc_optimizer *opt;
    int np;
    float *w[4], *g[4];
    size_t numel[4];
} rig;

static void rig_make(rig *r, const char *spec, const pdesc *ps, int np, int reference)
{
    memset(r, 0, sizeof *r);
    r->opt = dsc_optimizer_new();
    r->np = np;
    CHECK_STATUS(dsc_optimizer_add_group(r->opt, "g", spec), DSC_OK, r->opt);
    dsc_optimizer_use_reference(r->opt, reference);
    uint64_t saved = rng_state;
    rng_state = 12345;
    for (int i = 0; i < np; i++) {
        size_t n = (size_t)ps[i].shape[0] * (size_t)(ps[i].ndim == 2 ? ps[i].shape[1] : 1);
        r->numel[i] = n;
        r->w[i] = malloc(n * sizeof(float));
        r->g[i] = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) r->w[i][k] = (float)urand();
        CHECK_STATUS(dsc_optimizer_add_param(r->opt, ps[i].name, r->w[i], r->g[i], ps[i].ndim,
                                             ps[i].shape, DSC_ROLE_AUTO, "g"),
                     DSC_OK, r->opt);
    }
    rng_state = saved;
}

/* Deterministic gradients for step `step`, the same for every rig. */
static void rig_grads(rig *r, int step)
{
    uint64_t saved = rng_state;
    rng_state = 777 + (uint64_t)step * 1000003u;
    for (int i = 0; i < r->np; i++)
        for (size_t k = 0; k < r->numel[i]; k++) r->g[i][k] = (float)urand();
    rng_state = saved;
}

static void rig_free(rig *r)
{
    dsc_optimizer_free(r->opt);
    for (int i = 0; i < r->np; i++) {
        free(r->w[i]);
        free(r->g[i]);
    }
}

static const float *slot_of(dsc_optimizer *opt, const char *param, const char *slot)
{
    dsc_param *p = dsc_optimizer_find_param(opt, param);
    for (int i = 0; p && i < p->nslots; i++)
        if (!strcmp(p->slots[i].name, slot)) return p->slots[i].data;
    return NULL;
}

static void test_refresh_timing(void)
{
    const char *specs[] = {"galore:lr=0.01,rank=3,update_proj_gap=3",
                           "fira:lr=0.01,rank=3,update_proj_gap=3"};
    const pdesc ps[] = {{"tall", 2, {16, 5}}, {"wide", 2, {4, 9}}};
    for (int f = 0; f < 2; f++) {
        rig r;
        rig_make(&r, specs[f], ps, 2, 0);
        for (int pi = 0; pi < 2; pi++) {
            const float *pj = slot_of(r.opt, ps[pi].name, "projector");
            CHECK(pj != NULL);
        }
        float before[2][64];
        const size_t psize[2] = {3 * 5, 4 * 3};
        for (int step = 1; step <= 8; step++) {
            for (int pi = 0; pi < 2; pi++)
                memcpy(before[pi], slot_of(r.opt, ps[pi].name, "projector"),
                       psize[pi] * sizeof(float));
            rig_grads(&r, step);
            CHECK_STATUS(dsc_optimizer_step(r.opt), DSC_OK, r.opt);
            int refresh = step % 3 == 1; /* 1-based steps 1, 4, 7 */
            for (int pi = 0; pi < 2; pi++) {
                int changed = memcmp(before[pi], slot_of(r.opt, ps[pi].name, "projector"),
                                     psize[pi] * sizeof(float)) != 0;
                if (changed != refresh)
                    fprintf(stderr, "%s %s step %d: changed %d expected %d\n", specs[f],
                            ps[pi].name, step, changed, refresh);
                CHECK_EQ_INT(changed, refresh);
            }
        }
        /* P is orthonormal: right P P^T = I (3x3), left P^T P = I */
        const float *pt = slot_of(r.opt, "tall", "projector"); /* 3 x 5 */
        const float *pw = slot_of(r.opt, "wide", "projector"); /* 4 x 3 */
        double e1 = 0, e2 = 0;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                double d1 = 0, d2 = 0;
                for (int i = 0; i < 5; i++) d1 += (double)pt[a * 5 + i] * pt[b * 5 + i];
                for (int i = 0; i < 4; i++) d2 += (double)pw[i * 3 + a] * pw[i * 3 + b];
                e1 = fmax(e1, fabs(d1 - (a == b)));
                e2 = fmax(e2, fabs(d2 - (a == b)));
            }
        CHECK(e1 < 1e-6);
        CHECK(e2 < 1e-6);
        rig_free(&r);
    }
}

static double run_and_compare(rig *a, rig *b, int steps)
{
    for (int s = 1; s <= steps; s++) {
        rig_grads(a, s);
        rig_grads(b, s);
        CHECK_STATUS(dsc_optimizer_step(a->opt), DSC_OK, a->opt);
        CHECK_STATUS(dsc_optimizer_step(b->opt), DSC_OK, b->opt);
    }
    double worst = 0;
    for (int i = 0; i < a->np; i++)
        for (size_t k = 0; k < a->numel[i]; k++)
            worst = fmax(worst, fabs((double)a->w[i][k] - b->w[i][k]) / (1 + fabs(b->w[i][k])));
    return worst;
}

static void test_fast_vs_ref(void)
{
    const char *specs[] = {
        "galore:lr=0.01,rank=4,update_proj_gap=2,scale=0.25,weight_decay=0.1",
        "fira:lr=0.01,rank=4,update_proj_gap=2,alpha=0.25,weight_decay=0.1",
        "galore:lr=0.01,rank=64,update_proj_gap=3,correct_bias=0",
        "fira:lr=0.01,rank=3,update_proj_gap=3",
    };
    const pdesc ps[] = {{"tall", 2, {40, 12}}, {"wide", 2, {12, 40}}, {"row", 2, {1, 17}},
                        {"bias", 1, {13, 0}}};
    const pdesc ps2[] = {{"col", 2, {17, 1}}, {"sq", 2, {9, 9}}, {"big", 2, {150, 100}}};
    for (size_t f = 0; f < sizeof specs / sizeof specs[0]; f++) {
        rig a, b;
        rig_make(&a, specs[f], ps, 4, 0);
        rig_make(&b, specs[f], ps, 4, 1);
        double e = run_and_compare(&a, &b, 7);
        if (e > 1e-5) fprintf(stderr, "fast vs ref %s: %.3g\n", specs[f], e);
        CHECK(e <= 1e-5);
        rig_free(&a);
        rig_free(&b);
        rig_make(&a, specs[f], ps2, 3, 0);
        rig_make(&b, specs[f], ps2, 3, 1);
        e = run_and_compare(&a, &b, 7);
        if (e > 1e-5) fprintf(stderr, "fast vs ref %s (col, sq, big): %.3g\n", specs[f], e);
        CHECK(e <= 1e-5);
        rig_free(&a);
        rig_free(&b);
    }
}

static void test_threads(void)
{
    const char *specs[] = {"galore:lr=0.01,rank=8,update_proj_gap=2,weight_decay=0.1",
                           "fira:lr=0.01,rank=8,update_proj_gap=2,alpha=0.5"};
    const pdesc ps[] = {{"tall", 2, {320, 160}}, {"wide", 2, {96, 400}}, {"v", 1, {40000, 0}}};
    for (int f = 0; f < 2; f++) {
        float *ref[3] = {0};
        const int threads[] = {1, 2, 4};
        for (int ti = 0; ti < 3; ti++) {
            dsc_set_num_threads(threads[ti]);
            rig r;
            rig_make(&r, specs[f], ps, 3, 0);
            for (int s = 1; s <= 3; s++) {
                rig_grads(&r, s);
                CHECK_STATUS(dsc_optimizer_step(r.opt), DSC_OK, r.opt);
            }
            for (int i = 0; i < 3; i++) {
                if (ti == 0) {
                    ref[i] = malloc(r.numel[i] * sizeof(float));
                    memcpy(ref[i], r.w[i], r.numel[i] * sizeof(float));
                } else {
                    int same = memcmp(ref[i], r.w[i], r.numel[i] * sizeof(float)) == 0;
                    if (!same)
                        fprintf(stderr, "%s: %s differs at %d threads\n", specs[f], ps[i].name,
                                threads[ti]);
                    CHECK(same);
                }
            }
            rig_free(&r);
        }
        for (int i = 0; i < 3; i++) free(ref[i]);
    }
    dsc_set_num_threads(0);
}

static long alloc_count = 0;
static void *counting_alloc(size_t n)
{
    alloc_count++;
    return malloc(n);
}

static void test_no_alloc(void)
{
    dsc_set_allocator(counting_alloc, free);
    const char *specs[] = {"galore:lr=0.01,rank=4,update_proj_gap=2",
                           "fira:lr=0.01,rank=4,update_proj_gap=2"};
    const pdesc ps[] = {{"tall", 2, {30, 10}}, {"wide", 2, {10, 30}}, {"b", 1, {10, 0}}};
    for (int f = 0; f < 2; f++)
        for (int ref = 0; ref < 2; ref++) {
            rig r;
            rig_make(&r, specs[f], ps, 3, ref);
            long before = alloc_count;
            for (int s = 1; s <= 4; s++) {
                rig_grads(&r, s);
                CHECK_STATUS(dsc_optimizer_step(r.opt), DSC_OK, r.opt);
            }
            CHECK_EQ_INT(alloc_count - before, 0);
            rig_free(&r);
        }
    dsc_set_allocator(NULL, NULL);
}

static void test_checkpoint(void)
{
    const char *specs[] = {"galore:lr=0.01,rank=3,update_proj_gap=3,weight_decay=0.05",
                           "fira:lr=0.01,rank=3,update_proj_gap=3,alpha=0.5"};
    const pdesc ps[] = {{"tall", 2, {16, 5}}, {"wide", 2, {4, 9}}, {"b", 1, {7, 0}}};
    const char *path = "build-lr-test-lowrank.safetensors";
    for (int f = 0; f < 2; f++) {
        rig a, b;
        rig_make(&a, specs[f], ps, 3, 0);
        for (int s = 1; s <= 5; s++) { /* refreshes at 1 and 4; prev set */
            rig_grads(&a, s);
            CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt);
        }
        CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
        rig_make(&b, specs[f], ps, 3, 0);
        for (int i = 0; i < 3; i++) memcpy(b.w[i], a.w[i], a.numel[i] * sizeof(float));
        CHECK_STATUS(dsc_optimizer_load(b.opt, path), DSC_OK, b.opt);
        for (int s = 6; s <= 9; s++) { /* crosses the refresh at step 7 */
            rig_grads(&a, s);
            rig_grads(&b, s);
            CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt);
            CHECK_STATUS(dsc_optimizer_step(b.opt), DSC_OK, b.opt);
        }
        for (int i = 0; i < 3; i++)
            CHECK(memcmp(a.w[i], b.w[i], a.numel[i] * sizeof(float)) == 0);
        rig_free(&a);
        rig_free(&b);
    }
    remove(path);
}

static void test_specs(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "galore:lr=0.01"), DSC_INVALID_ARGUMENT,
                 NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "rank") != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "b", "fira:rank=0"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "c", "fira:rank=2.5"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "d", "galore:rank=2,alpha=1"), DSC_UNKNOWN_KEY,
                 NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "e", "galore:rank=2,update_proj_gap=0"),
                 DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "f", "fira:rank=2,alpha=0.25"), DSC_OK, opt);
    const dsc_optimizer_info *gi = dsc_optimizer_kind_find("galore");
    CHECK(gi && gi->matrix == 1 && gi->paper && gi->source);
    /* state: a 16 x 5 at rank 3 holds P (3 x 5), m and v (16 x 3), step, flag */
    int64_t shape[2] = {16, 5};
    size_t bytes = 0;
    CHECK_STATUS(dsc_state_bytes("galore:rank=3", 2, shape, &bytes), DSC_OK, NULL);
    CHECK_EQ_INT(bytes, (15 + 2 * 48) * 4 + 8 + 1);
    dsc_optimizer_free(opt);
}

int main(void)
{
    test_svd();
    test_eig();
    test_specs();
    test_refresh_timing();
    test_fast_vs_ref();
    test_threads();
    test_no_alloc();
    test_checkpoint();
    return check_report("test_lowrank");
}
