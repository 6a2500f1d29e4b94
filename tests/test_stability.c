/* test_stability.c - the stability methods: adamp, sgdp, spam (dense and
 * sparse momentum), stable_spam, sgd_clip, adam_clip and the group-level
 * coordinate_clip option.
 *
 * Per spec: fast path against the reference on sizes 1, 7, 4097, 40000 (1-D,
 * above the parallel threshold) and 10^6 (2-D 1000x1000), 1-D and 2-D, with
 * gradients holding zeros, tiny and huge values and spikes; the same
 * bits at 1, 2 and 4 threads; no allocation inside dsc_optimizer_step; the
 * caller's gradient left untouched; spam across a checkpoint taken between
 * momentum resets; sparse momentum with density 1 equal to dense spam; the
 * coordinate-clip threshold on hand-made and random examples; adamp and
 * sgdp with cosines next to their projection thresholds; the families'
 * prescan (adamp, sgdp, stable_spam, adagradnorm, sgd_clip, adam_clip: where
 * it runs, non-finite gradients, the same bits as without it). Golden
 * trajectories are separate ctests (golden_*). */
#include "check.h"
#include "core/internal.h"
#include "kernels/bracket.h"
#include "descent.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------ counting allocator */

static size_t alloc_calls = 0;
static void *count_alloc(size_t n)
{
    alloc_calls++;
    return malloc(n);
}
static void count_free(void *p) { free(p); }

/* ----------------------------------------------------------------- data */

static uint64_t rng_state = 12345;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* Gradient of step s: mostly N(0,1)-ish values, some zeros, tiny and huge
 * entries, and a spike at step 3 (exercises spam and stable_spam clipping). */
static void fill_grad(float *g, size_t n, int s)
{
    for (size_t i = 0; i < n; i++) {
        double u = urand(), x = 2.0 * urand() - 1.0;
        if (u < 0.02) x = 0.0;
        else if (u < 0.04) x *= 1e-30;
        else if (u < 0.05) x *= 1e4;
        if (s == 3 && i % 97 == 5) x *= 1e3;
        g[i] = (float)x;
    }
}

static void fill_param(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(2.0 * urand() - 1.0);
}

/* Specs covered by the fast/ref and thread tests. */
static const char *const specs[] = {
    "adamp:lr=0.01,weight_decay=0.01",
    "adamp:lr=0.01,weight_decay=0.1,nesterov=1,delta=10",
    "sgdp:lr=0.1,momentum=0.9,weight_decay=0.001",
    "sgdp:lr=0.05,momentum=0.9,nesterov=1,weight_decay=0.01,delta=10",
    "spam:lr=0.01,warmup_steps=2,delta_t=3,grad_accu_steps=1,threshold=50,weight_decay=0.1",
    "spam:lr=0.01,warmup_steps=2,delta_t=2,grad_accu_steps=1,density=0.5",
    "stable_spam:lr=0.01,update_proj_gap=2,total_t=8,amsgrad=1,weight_decay=0.1",
    "stable_spam:lr=0.01,gamma1=-1",
    "sgd_clip:lr=0.02,momentum=0.9,nesterov=1,weight_decay=0.01,coordinate_clip=0.25,normalize=1",
    "adam_clip:lr=0.01,coordinate_clip=0.2,weight_decay=0.05",
    "adamw:lr=0.01,coordinate_clip=0.1,coordinate_clip_scale=0.5",
};
#define NSPECS ((int)(sizeof specs / sizeof specs[0]))

typedef struct {
    int ndim;
    int64_t shape[2];
} shape_case;

static const shape_case shapes[] = {
    {1, {1, 0}}, {2, {1, 1}}, {1, {7, 0}}, {2, {7, 1}}, {1, {4097, 0}},
    {2, {17, 241}}, {1, {40000, 0}}, {2, {1000, 1000}},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static size_t numel_of(const shape_case *sc)
{
    return (size_t)sc->shape[0] * (size_t)(sc->ndim == 2 ? sc->shape[1] : 1);
}

/* Run `steps` steps of spec on a fresh copy of p0 with gradient sequence
 * grads[s]; a second small 1-D parameter joins the group so the group-level
 * parts (coordinate clip threshold) see more than one tensor. */
static int run(const char *spec, const shape_case *sc, const float *p0, float *const *grads,
               int steps, int reference, float *out)
{
    size_t n = numel_of(sc);
    float bias[5] = {0.5f, -0.25f, 0.125f, 1.0f, -1.0f}, bgrad[5];
    dsc_optimizer *opt = dsc_optimizer_new();
    memcpy(out, p0, n * sizeof(float));
    float *g = malloc(n * sizeof(float));
    int64_t bshape[1] = {5};
    int ok = opt && g && dsc_optimizer_add_group(opt, "g", spec) == DSC_OK &&
             dsc_optimizer_add_param(opt, "w", out, g, sc->ndim, sc->shape, DSC_ROLE_AUTO,
                                     "g") == DSC_OK &&
             dsc_optimizer_add_param(opt, "b", bias, bgrad, 1, bshape, DSC_ROLE_AUTO, "g") ==
                 DSC_OK;
    if (!ok)
        fprintf(stderr, "setup failed for %s: %s\n", spec, opt ? dsc_optimizer_error(opt) : "");
    dsc_optimizer_use_reference(opt, reference);
    for (int s = 0; ok && s < steps; s++) {
        memcpy(g, grads[s], n * sizeof(float));
        for (int i = 0; i < 5; i++) bgrad[i] = grads[s][i % n] * 0.5f + 0.1f * (float)i;
        ok = dsc_optimizer_step(opt) == DSC_OK;
        if (!ok) fprintf(stderr, "step failed for %s: %s\n", spec, dsc_optimizer_error(opt));
        /* The gradient must only be read. */
        if (ok && memcmp(g, grads[s], n * sizeof(float)) != 0) {
            fprintf(stderr, "%s wrote into the caller's gradient\n", spec);
            ok = 0;
        }
    }
    dsc_optimizer_free(opt);
    free(g);
    return ok;
}

/* Largest |a-b|/(1+|b|) over n, and whether all bits agree. */
static double max_rel(const float *a, const float *b, size_t n, int *same_bits)
{
    double m = 0.0;
    *same_bits = memcmp(a, b, n * sizeof(float)) == 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

#define STEPS 4

static void test_fast_vs_ref(void)
{
    size_t nmax = 1000000;
    float *p0 = malloc(nmax * sizeof(float)), *a = malloc(nmax * sizeof(float)),
          *b = malloc(nmax * sizeof(float));
    float *grads[STEPS];
    for (int s = 0; s < STEPS; s++) grads[s] = malloc(nmax * sizeof(float));
    int exact = 0, total = 0;
    for (int k = 0; k < NSHAPES; k++) {
        const shape_case *sc = &shapes[k];
        size_t n = numel_of(sc);
        fill_param(p0, n);
        for (int s = 0; s < STEPS; s++) fill_grad(grads[s], n, s);
        for (int i = 0; i < NSPECS; i++) {
            CHECK(run(specs[i], sc, p0, grads, STEPS, 1, a));
            CHECK(run(specs[i], sc, p0, grads, STEPS, 0, b));
            int same;
            double d = max_rel(b, a, n, &same);
            exact += same;
            total++;
            if (!(d <= 1e-6))
                fprintf(stderr, "fast vs ref: %s shape %lldx%lld: max rel %.3g\n", specs[i],
                        (long long)sc->shape[0], (long long)(sc->ndim == 2 ? sc->shape[1] : 1),
                        d);
            CHECK(d <= 1e-6);
        }
    }
    printf("fast vs ref: %d of %d cases bitwise equal, all within 1e-6\n", exact, total);
    for (int s = 0; s < STEPS; s++) free(grads[s]);
    free(p0);
    free(a);
    free(b);
}

/* adamp and sgdp decide whether to project from cosines against thresholds;
 * the fast path decides from float sums with error bounds and falls back to
 * the exact sums when a cosine is too near its threshold. Rows built with
 * their cosine a relative r from the threshold, r from 1e-2 down to 0 on
 * both sides, for the channel view (every row at delta/sqrt(cols)*(1+r)) and
 * for the layer view (rows at 3x the channel threshold, five of nine
 * positive, so the layer cosine is delta/sqrt(numel)*(1+r)); cols = 3000 so
 * a row has full float groups and a tail. A wrong decision moves the update
 * by the projected part, far above any rounding: fast and reference must
 * agree bit for bit, at 1 and 2 threads. */
static void unit_rows(double *v, size_t rows, size_t cols)
{
    for (size_t k = 0; k < rows; k++) {
        double ss = 0.0;
        for (size_t i = 0; i < cols; i++) ss += v[k * cols + i] * v[k * cols + i];
        for (size_t i = 0; i < cols; i++) v[k * cols + i] /= sqrt(ss);
    }
}

static void test_projection_near_threshold(void)
{
    const size_t cols = 3000, rows = 9, n = rows * cols;
    const double delta = 0.1, rel[] = {-1e-2, -1e-4, -1e-6, -1e-7, 0.0, 1e-7, 1e-6, 1e-4, 1e-2};
    const char *const near_specs[] = {"adamp:lr=0.01,weight_decay=0.1", "sgdp:lr=0.1,momentum=0.9"};
    double *u = malloc(n * sizeof(double)), *q = malloc(n * sizeof(double));
    float *p0 = malloc(n * sizeof(float)), *grad = malloc(n * sizeof(float)),
          *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    float *grads[2] = {grad, grad};
    shape_case sc = {2, {(int64_t)rows, (int64_t)cols}};
    int cases = 0, differ = 0;
    for (int view = 0; view < 2; view++) {
        for (size_t r = 0; r < sizeof rel / sizeof rel[0]; r++) {
            for (size_t i = 0; i < n; i++) u[i] = 2.0 * urand() - 1.0;
            for (size_t i = 0; i < n; i++) q[i] = 2.0 * urand() - 1.0;
            unit_rows(u, rows, cols);
            for (size_t k = 0; k < rows; k++) { /* q_k orthogonal to u_k */
                double d = 0.0;
                for (size_t i = 0; i < cols; i++) d += q[k * cols + i] * u[k * cols + i];
                for (size_t i = 0; i < cols; i++) q[k * cols + i] -= d * u[k * cols + i];
            }
            unit_rows(q, rows, cols);
            double t = delta / sqrt((double)cols) * (1.0 + rel[r]);
            for (size_t k = 0; k < rows; k++) {
                double c = view == 0 ? t : (k < 5 ? 3.0 : -3.0) * t;
                for (size_t i = 0; i < cols; i++) {
                    size_t e = k * cols + i;
                    p0[e] = (float)(0.5 * u[e]);
                    grad[e] = (float)(1e-3 * (c * u[e] + sqrt(1.0 - c * c) * q[e]));
                }
            }
            for (size_t i = 0; i < sizeof near_specs / sizeof near_specs[0]; i++) {
                dsc_set_num_threads(1);
                CHECK(run(near_specs[i], &sc, p0, grads, 2, 1, a));
                for (int threads = 1; threads <= 2; threads++) {
                    dsc_set_num_threads(threads);
                    CHECK(run(near_specs[i], &sc, p0, grads, 2, 0, b));
                    int same = memcmp(a, b, n * sizeof(float)) == 0;
                    if (!same)
                        fprintf(stderr, "near threshold: %s, %s view, r = %g, %d threads: fast "
                                "and reference differ\n", near_specs[i],
                                view ? "layer" : "channel", rel[r], threads);
                    CHECK(same);
                    cases++;
                    differ += !same;
                }
            }
        }
    }
    dsc_set_num_threads(0);
    printf("projection near its threshold: %d of %d cases bitwise equal\n", cases - differ,
           cases);
    free(u);
    free(q);
    free(p0);
    free(grad);
    free(a);
    free(b);
}

static void test_threads(void)
{
    shape_case sc = {2, {500, 1000}};
    size_t n = numel_of(&sc);
    float *p0 = malloc(n * sizeof(float)), *r1 = malloc(n * sizeof(float)),
          *rk = malloc(n * sizeof(float));
    float *grads[STEPS];
    for (int s = 0; s < STEPS; s++) {
        grads[s] = malloc(n * sizeof(float));
        fill_grad(grads[s], n, s);
    }
    fill_param(p0, n);
    for (int i = 0; i < NSPECS; i++) {
        dsc_set_num_threads(1);
        CHECK(run(specs[i], &sc, p0, grads, STEPS, 0, r1));
        for (int t = 2; t <= 4; t += 2) {
            dsc_set_num_threads(t);
            CHECK(run(specs[i], &sc, p0, grads, STEPS, 0, rk));
            int same = memcmp(r1, rk, n * sizeof(float)) == 0;
            if (!same) fprintf(stderr, "threads: %s differs at %d threads\n", specs[i], t);
            CHECK(same);
        }
    }
    dsc_set_num_threads(0);
    for (int s = 0; s < STEPS; s++) free(grads[s]);
    free(p0);
    free(r1);
    free(rk);
}

static void test_no_alloc_in_step(void)
{
    for (int i = 0; i < NSPECS; i++) {
        for (int ref = 0; ref <= 1; ref++) {
            int64_t shape[2] = {64, 100};
            size_t n = 64 * 100;
            float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
            fill_param(p, n);
            dsc_optimizer *opt = dsc_optimizer_new();
            CHECK_STATUS(dsc_optimizer_add_group(opt, "g", specs[i]), DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_add_param(opt, "w", p, g, 2, shape, DSC_ROLE_AUTO, "g"),
                         DSC_OK, opt);
            dsc_optimizer_use_reference(opt, ref);
            size_t before = alloc_calls;
            for (int s = 0; s < 5; s++) {
                fill_grad(g, n, s);
                CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            }
            if (alloc_calls != before)
                fprintf(stderr, "%s (ref %d): %zu allocations in 5 steps\n", specs[i], ref,
                        alloc_calls - before);
            CHECK_EQ_INT(alloc_calls - before, 0);
            dsc_optimizer_free(opt);
            free(p);
            free(g);
        }
    }
}

/* Sparse momentum with density 1 is dense SPAM without weight decay (the
 * sparse path ignores weight decay, as the official code does). */
static void test_sparse_density_one(void)
{
    int64_t shape[2] = {33, 150};
    size_t n = 33 * 150;
    float *p0 = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)),
          *b = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    fill_param(p0, n);
    for (int ref = 0; ref <= 1; ref++) {
        memcpy(a, p0, n * sizeof(float));
        memcpy(b, p0, n * sizeof(float));
        dsc_optimizer *d = dsc_optimizer_new(), *s = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_add_group(d, "g", "spam:lr=0.01,warmup_steps=2,delta_t=3,"
                                             "grad_accu_steps=1,threshold=20"), DSC_OK, d);
        CHECK_STATUS(dsc_optimizer_add_group(s, "g", "spam:lr=0.01,warmup_steps=2,delta_t=3,"
                                             "grad_accu_steps=1,threshold=20,density=1,"
                                             "weight_decay=0.5"), DSC_OK, s);
        CHECK_STATUS(dsc_optimizer_add_param(d, "w", a, g, 2, shape, DSC_ROLE_AUTO, "g"),
                     DSC_OK, d);
        CHECK_STATUS(dsc_optimizer_add_param(s, "w", b, g, 2, shape, DSC_ROLE_AUTO, "g"),
                     DSC_OK, s);
        dsc_optimizer_use_reference(d, ref);
        dsc_optimizer_use_reference(s, ref);
        for (int k = 0; k < 10; k++) {
            fill_grad(g, n, k);
            CHECK_STATUS(dsc_optimizer_step(d), DSC_OK, d);
            CHECK_STATUS(dsc_optimizer_step(s), DSC_OK, s);
        }
        CHECK(memcmp(a, b, n * sizeof(float)) == 0);
        dsc_optimizer_free(d);
        dsc_optimizer_free(s);
    }
    /* density 0.3: the first step moves exactly floor(0.3*n) entries, and
     * the same seed and name give the same mask. */
    size_t moved[2] = {0, 0};
    for (int rep = 0; rep < 2; rep++) {
        memcpy(a, p0, n * sizeof(float));
        dsc_optimizer *s = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_add_group(s, "g", "spam:lr=0.01,density=0.3,mask_seed=7"),
                     DSC_OK, s);
        CHECK_STATUS(dsc_optimizer_add_param(s, "w", a, g, 2, shape, DSC_ROLE_AUTO, "g"),
                     DSC_OK, s);
        for (size_t i = 0; i < n; i++) g[i] = 1.0f;
        CHECK_STATUS(dsc_optimizer_step(s), DSC_OK, s);
        for (size_t i = 0; i < n; i++) moved[rep] += a[i] != p0[i];
        if (rep == 0) memcpy(b, a, n * sizeof(float));
        else CHECK(memcmp(a, b, n * sizeof(float)) == 0);
        dsc_optimizer_free(s);
    }
    CHECK_EQ_INT(moved[0], (size_t)(0.3 * (double)n));
    CHECK_EQ_INT(moved[1], moved[0]);
    free(p0);
    free(a);
    free(b);
    free(g);
}

/* SPAM's reset interval and warmup counter are group state: a run that saves
 * and reloads between two resets continues bit for bit. */
static void test_spam_checkpoint(void)
{
    const char *spec_list[] = {
        "spam:lr=0.01,warmup_steps=2,delta_t=4,grad_accu_steps=2,threshold=20",
        "spam:lr=0.01,warmup_steps=2,delta_t=4,grad_accu_steps=1,density=0.5",
        "stable_spam:lr=0.01,update_proj_gap=3,total_t=10",
    };
    int64_t shape[2] = {12, 9};
    size_t n = 12 * 9;
    float p0[108], a[108], b[108], g[108], grads[14][108];
    fill_param(p0, n);
    for (int s = 0; s < 14; s++) fill_grad(grads[s], n, s);
    char path[64];
    snprintf(path, sizeof path, "/tmp/descent_test_stab_%ld.safetensors", (long)getpid());
    for (int q = 0; q < 3; q++) {
        for (int split = 1; split < 13; split += 3) {
            memcpy(a, p0, sizeof a);
            memcpy(b, p0, sizeof b);
            dsc_optimizer *one = dsc_optimizer_new();
            dsc_optimizer_add_group(one, "g", spec_list[q]);
            dsc_optimizer_add_param(one, "w", a, g, 2, shape, DSC_ROLE_AUTO, "g");
            for (int s = 0; s < 14; s++) {
                memcpy(g, grads[s], sizeof g);
                dsc_optimizer_step(one);
            }
            dsc_optimizer_free(one);
            dsc_optimizer *first = dsc_optimizer_new();
            dsc_optimizer_add_group(first, "g", spec_list[q]);
            dsc_optimizer_add_param(first, "w", b, g, 2, shape, DSC_ROLE_AUTO, "g");
            for (int s = 0; s < split; s++) {
                memcpy(g, grads[s], sizeof g);
                dsc_optimizer_step(first);
            }
            CHECK_STATUS(dsc_optimizer_save(first, path), DSC_OK, first);
            dsc_optimizer_free(first);
            dsc_optimizer *second = dsc_optimizer_new();
            dsc_optimizer_add_group(second, "g", spec_list[q]);
            dsc_optimizer_add_param(second, "w", b, g, 2, shape, DSC_ROLE_AUTO, "g");
            CHECK_STATUS(dsc_optimizer_load(second, path), DSC_OK, second);
            for (int s = split; s < 14; s++) {
                memcpy(g, grads[s], sizeof g);
                dsc_optimizer_step(second);
            }
            dsc_optimizer_free(second);
            int same = memcmp(a, b, sizeof a) == 0;
            if (!same) fprintf(stderr, "checkpoint: %s split at %d differs\n", spec_list[q], split);
            CHECK(same);
        }
    }
    remove(path);
}

/* ------------------------------------------------- coordinate-clip threshold */

static int cmp_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

/* tau of a group holding the given tensors, by every selection: the radix
 * passes (no workspace), the one-pass select (the sgd_clip group's scratch)
 * and the reference's bisection. Returns the one-pass select's path. */
static int check_tau(float *const *g, const size_t *n, int k, double c, float expect)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "sgd_clip:lr=0.1"), DSC_OK, opt);
    float *data[4];
    for (int i = 0; i < k; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        int64_t shape[1] = {(int64_t)n[i]};
        data[i] = calloc(n[i], sizeof(float));
        CHECK_STATUS(dsc_optimizer_add_param(opt, name, data[i], g[i], 1, shape, DSC_ROLE_AUTO,
                                             "g"), DSC_OK, opt);
    }
    dsc_group *grp = dsc_optimizer_find_group(opt, "g");
    float radix = dsc_coordclip_tau(grp, c, 1.0, -1, 0, NULL, 0, 0);
    float once = dsc_coordclip_tau(grp, c, 1.0, -1, 0, grp->scratch, grp->scratch_bytes, 0);
    int path = dsc_coordclip_path(grp->scratch);
    float ref = dsc_coordclip_tau(grp, c, 1.0, -1, 1, NULL, 0, 0);
    if (radix != expect || once != expect || ref != expect)
        fprintf(stderr, "tau c=%g: radix %.9g one-pass %.9g (path %d) ref %.9g expected %.9g\n",
                c, radix, once, path, ref, expect);
    CHECK(radix == expect);
    CHECK(once == expect);
    CHECK(ref == expect);
    dsc_optimizer_free(opt);
    for (int i = 0; i < k; i++) free(data[i]);
    return path;
}

/* The value at index floor(N*c) of |x| sorted in descending order. */
static float sorted_tau(float *const *g, const size_t *n, int k, double c)
{
    size_t N = 0;
    for (int i = 0; i < k; i++) N += n[i];
    float *all = malloc(N * sizeof(float));
    size_t at = 0;
    for (int i = 0; i < k; i++)
        for (size_t j = 0; j < n[i]; j++) all[at++] = fabsf(g[i][j]);
    qsort(all, N, sizeof(float), cmp_desc);
    size_t idx = (size_t)floor((double)N * c);
    float t = all[idx > N - 1 ? N - 1 : idx];
    free(all);
    return t;
}

static void test_coordclip_threshold(void)
{
    /* N = 28 over a 4x6 and a 4 (the sgd_clip_momentum_4x6 layout), c = 0.1:
     * floor(2.8) = 2, the third largest |g|. */
    float w[24], b[4];
    for (int i = 0; i < 24; i++) w[i] = (float)((i % 2 ? -1 : 1) * (0.01 * (i + 1)));
    b[0] = 0.5f;
    b[1] = -3.0f;  /* largest */
    b[2] = 0.02f;
    b[3] = -0.75f; /* third */
    w[7] = 2.0f;   /* second */
    float *g2[2] = {w, b};
    size_t n2[2] = {24, 4};
    check_tau(g2, n2, 2, 0.1, 0.75f);
    check_tau(g2, n2, 2, 0.0001, 3.0f);   /* index 0: the largest */
    check_tau(g2, n2, 2, 1.0, 0.0f);      /* c = 1: tau = 0 */
    /* Ties: three entries of 2.0 at the top, index 2 is still 2.0. */
    b[3] = 2.0f;
    b[1] = -2.0f;
    check_tau(g2, n2, 2, 0.1, 2.0f);

    /* Random tensors with many ties and zeros, against a full sort. */
    for (int trial = 0; trial < 6; trial++) {
        size_t n[3] = {1 + (size_t)(urand() * 5000), 1 + (size_t)(urand() * 40000),
                       1 + (size_t)(urand() * 300)};
        float *g[3], *all = malloc((n[0] + n[1] + n[2]) * sizeof(float));
        size_t N = 0;
        for (int i = 0; i < 3; i++) {
            g[i] = malloc(n[i] * sizeof(float));
            for (size_t j = 0; j < n[i]; j++) {
                double u = urand();
                float x = u < 0.3 ? (float)((int)(urand() * 8) - 4) : (float)(urand() - 0.5);
                if (u > 0.95) x = 0.0f;
                g[i][j] = x;
                all[N++] = fabsf(x);
            }
        }
        qsort(all, N, sizeof(float), cmp_desc);
        double c = trial == 0 ? 0.5 : urand();
        size_t idx = (size_t)floor((double)N * c);
        CHECK(check_tau(g, n, 3, c, all[idx]) == DSC_COORDCLIP_CANDIDATES); /* all fit */
        for (int i = 0; i < 3; i++) free(g[i]);
        free(all);
    }
}

/* The one-pass select on groups large enough to be sampled (N above the
 * ~65K values a workspace always holds), each against a full sort, the
 * radix passes and the reference: the paths it takes (candidates; one
 * value when ties overflow the workspace; the radix passes when the
 * bracket misses or more than one value overflows), a bracket made for
 * other data, a rank other than the bracket's, and the Inf/NaN count. */
static float clip_value(int kind, size_t i, size_t n)
{
    double u = urand(), s = urand() < 0.5 ? -1.0 : 1.0;
    switch (kind) {
    case 0: return (float)(2.0 * u - 1.0);                          /* uniform */
    case 1: return (float)(urand() + urand() + u - 1.5);            /* bell-shaped */
    case 2: return (float)(s * 1e-3 / ((1.0 - u) * (1.0 - u)));     /* heavy tail */
    case 3: return u < 0.6 ? 0.0f : (float)(2.0 * urand() - 1.0);   /* 60% zeros */
    case 4: return u < 0.2 ? (float)(s * 0.01 * urand())            /* two values tie */
                           : (float)s * (u < 0.6 ? 1.0f : nextafterf(1.0f, 2.0f));
    case 5: return (float)(s * (double)i / (double)n);              /* sorted by index */
    default: return i % 768 == 0 ? (float)(s * 100.0) : (float)(s * 1e-3 * u); /* columns */
    }
}

/* The kernel of the pass (src/kernels/bracket.h): the AVX-512 loop (where
 * the CPU has it) and the plain loop against the definition, value by
 * value: the two counts, and the values in the bracket in index order. */
static void test_bracket_kernel(void)
{
    enum { SPAN = DSC_BRACKET_SPAN };
    static float g[SPAN], p[SPAN];
    static uint32_t out_fast[SPAN + DSC_BRACKET_SLACK], out_plain[SPAN + DSC_BRACKET_SLACK],
        expect[SPAN];
    const float specials[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-45f, -3e38f};
    int mismatches = 0, cases = 0;
    for (int trial = 0; trial < 400; trial++) {
        size_t n = trial < 40 ? (size_t)trial : 1 + (size_t)(urand() * SPAN);
        if (n > SPAN) n = SPAN;
        /* brackets from nothing to everything, around values of the data */
        float a = (float)urand(), b = a + (float)(urand() * (trial % 4 == 0 ? 1.0 : 0.02));
        uint32_t lo, hi;
        memcpy(&lo, &a, sizeof lo);
        memcpy(&hi, &b, sizeof hi);
        if (trial % 7 == 0) lo = 0, hi = 0x80000000u;
        if (trial % 11 == 0) hi = lo; /* empty */
        const uint32_t width = hi - lo;
        /* values, specials, and (where x = g) the bracket's edges */
        const uint32_t edges[4] = {lo, lo - 1u, hi, hi - 1u};
        for (size_t i = 0; i < n; i++) {
            g[i] = (float)(2.0 * urand() - 1.0);
            p[i] = (float)(4.0 * urand() - 2.0);
            double u = urand();
            if (u < 0.05) g[i] = specials[(int)(urand() * 8)];
            else if (u < 0.15) {
                uint32_t bits = (edges[(int)(urand() * 4)] & 0x7fffffffu) |
                                (urand() < 0.5 ? 0x80000000u : 0u);
                memcpy(&g[i], &bits, sizeof bits);
            }
        }
        const float wd = trial % 3 == 0 ? 0.0f : 0.05f;
        const float *pp = trial % 2 ? p : NULL;
        size_t ce[2] = {0, 0}, m = 0;
        for (size_t i = 0; i < n; i++) {
            float x = pp && wd != 0.0f ? g[i] + wd * pp[i] : g[i];
            uint32_t u;
            memcpy(&u, &x, sizeof u);
            u &= 0x7fffffffu;
            ce[0] += u >= hi;
            ce[1] += u >= 0x7f800000u;
            if (u - lo < width) expect[m++] = u;
        }
        size_t cf[2] = {0, 0}, cp[2] = {0, 0};
        size_t mf = dsc_bracket_span(g, pp, wd, n, lo, width, hi, out_fast, cf);
        size_t mp = dsc_bracket_span_plain(g, pp, wd, n, lo, width, hi, out_plain, cp);
        int ok = mf == m && mp == m && cf[0] == ce[0] && cf[1] == ce[1] && cp[0] == ce[0] &&
                 cp[1] == ce[1] && memcmp(out_fast, expect, m * sizeof *expect) == 0 &&
                 memcmp(out_plain, expect, m * sizeof *expect) == 0;
        if (!ok && mismatches++ < 3)
            fprintf(stderr, "bracket kernel: n=%zu lo=%08x hi=%08x: %zu/%zu/%zu values, above "
                    "%zu/%zu/%zu, bad %zu/%zu/%zu (fast/plain/definition)\n", n, lo, hi, mf, mp, m,
                    cf[0], cp[0], ce[0], cf[1], cp[1], ce[1]);
        cases++;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(cases, 400);
}

static void test_coordclip_one_pass(void)
{
    static const struct {
        int kind;
        double c;
        int path;
    } cases[] = {
        {0, 0.1, DSC_COORDCLIP_CANDIDATES}, {0, 0.9, DSC_COORDCLIP_CANDIDATES},
        {1, 0.1, DSC_COORDCLIP_CANDIDATES}, {1, 0.003, DSC_COORDCLIP_CANDIDATES},
        {2, 0.1, DSC_COORDCLIP_CANDIDATES}, {2, 0.5, DSC_COORDCLIP_CANDIDATES},
        {3, 0.2, DSC_COORDCLIP_CANDIDATES}, {3, 0.5, DSC_COORDCLIP_ONE_VALUE},
        {4, 0.4, DSC_COORDCLIP_RADIX},      {4, 0.3, DSC_COORDCLIP_ONE_VALUE},
        {4, 0.9, DSC_COORDCLIP_CANDIDATES},
        {5, 0.25, DSC_COORDCLIP_CANDIDATES}, {6, 0.1, DSC_COORDCLIP_CANDIDATES},
        {6, 0.0005, DSC_COORDCLIP_CANDIDATES}, {1, 0.999999, DSC_COORDCLIP_CANDIDATES},
    };
    size_t n[3] = {300000, 150001, 77777};
    float *g[3];
    for (int i = 0; i < 3; i++) g[i] = malloc(n[i] * sizeof(float));
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < n[i]; j++) g[i][j] = clip_value(cases[k].kind, j, n[i]);
        int path = check_tau(g, n, 3, cases[k].c, sorted_tau(g, n, 3, cases[k].c));
        if (path != cases[k].path)
            fprintf(stderr, "one-pass select: kind %d c=%g took path %d, not %d\n",
                    cases[k].kind, cases[k].c, path, cases[k].path);
        CHECK_EQ_INT(path, cases[k].path);
    }

    /* The bracket of one gradient, the pass over another (every value
     * doubled: all above it): the counts miss, the radix passes answer. A
     * bracket made for another rank is not used. */
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "sgd_clip:lr=0.1"), DSC_OK, opt);
    float *data[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        int64_t shape[1] = {(int64_t)n[i]};
        data[i] = calloc(n[i], sizeof(float));
        for (size_t j = 0; j < n[i]; j++) g[i][j] = clip_value(1, j, n[i]);
        CHECK_STATUS(dsc_optimizer_add_param(opt, name, data[i], g[i], 1, shape, DSC_ROLE_AUTO,
                                             "g"), DSC_OK, opt);
    }
    dsc_group *grp = dsc_optimizer_find_group(opt, "g");
    void *ws = grp->scratch;
    size_t bytes = grp->scratch_bytes;
    dsc_coordclip_begin(grp, 0.1, -1, ws, bytes);
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < n[i]; j++) g[i][j] *= 2.0f;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT((int)dsc_coordclip_count(grp, dsc_group_param(grp, i), 0.0f, ws, bytes), 0);
    float tau = dsc_coordclip_tau(grp, 0.1, 1.0, -1, 0, ws, bytes, 1);
    CHECK(tau == sorted_tau(g, n, 3, 0.1));
    CHECK_EQ_INT(dsc_coordclip_path(ws), DSC_COORDCLIP_RADIX);
    dsc_coordclip_begin(grp, 0.1, -1, ws, bytes);
    for (int i = 0; i < 3; i++) dsc_coordclip_count(grp, dsc_group_param(grp, i), 0.0f, ws, bytes);
    tau = dsc_coordclip_tau(grp, 0.3, 1.0, -1, 0, ws, bytes, 1); /* counted for 0.1 */
    CHECK(tau == sorted_tau(g, n, 3, 0.3));
    CHECK_EQ_INT(dsc_coordclip_path(ws), DSC_COORDCLIP_CANDIDATES);
    /* Counted once, answered once: a second answer from the same counts
     * would read the reordered candidates, so it counts again. */
    tau = dsc_coordclip_tau(grp, 0.3, 1.0, -1, 0, ws, bytes, 1);
    CHECK(tau == sorted_tau(g, n, 3, 0.3));

    /* Inf and NaN entries: counted per parameter; tau as the reference's
     * (NaN bit patterns above every number). */
    g[1][5] = NAN;
    g[1][99999] = -INFINITY;
    g[1][150000] = -NAN;
    dsc_coordclip_begin(grp, 0.1, -1, ws, bytes);
    size_t bad[3];
    for (int i = 0; i < 3; i++)
        bad[i] = dsc_coordclip_count(grp, dsc_group_param(grp, i), 0.0f, ws, bytes);
    CHECK(bad[0] == 0 && bad[1] == 3 && bad[2] == 0);
    tau = dsc_coordclip_tau(grp, 0.1, 1.0, -1, 0, ws, bytes, 1);
    CHECK(tau == dsc_coordclip_tau(grp, 0.1, 1.0, -1, 1, NULL, 0, 0));
    CHECK(tau == dsc_coordclip_tau(grp, 0.1, 1.0, -1, 0, NULL, 0, 0));
    /* A workspace too small for the group: no count, the radix passes. */
    CHECK(dsc_coordclip_count(grp, dsc_group_param(grp, 0), 0.0f, ws, 64) == SIZE_MAX);
    CHECK(dsc_coordclip_tau(grp, 0.1, 1.0, -1, 0, ws, 64, 0) == tau);
    dsc_optimizer_free(opt);
    for (int i = 0; i < 3; i++) {
        free(data[i]);
        free(g[i]);
    }
}

/* The group-level option equals clipping by hand and running the plain family. */
static void test_coordclip_option(void)
{
    int64_t shape[2] = {6, 5};
    float p0[30], a[30], b[30], g[30], gc[30];
    fill_param(p0, 30);
    memcpy(a, p0, sizeof a);
    memcpy(b, p0, sizeof b);
    dsc_optimizer *o1 = dsc_optimizer_new(), *o2 = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o1, "g", "adamw:lr=0.01, coordinate_clip = 0.2 ,"
                                         "weight_decay=0.1"), DSC_OK, o1);
    CHECK_STATUS(dsc_optimizer_add_group(o2, "g", "adamw:lr=0.01,weight_decay=0.1"), DSC_OK, o2);
    CHECK_STATUS(dsc_optimizer_add_param(o1, "w", a, g, 2, shape, DSC_ROLE_AUTO, "g"), DSC_OK, o1);
    CHECK_STATUS(dsc_optimizer_add_param(o2, "w", b, gc, 2, shape, DSC_ROLE_AUTO, "g"), DSC_OK, o2);
    for (int s = 0; s < 5; s++) {
        fill_grad(g, 30, s);
        float sorted[30];
        for (int i = 0; i < 30; i++) sorted[i] = fabsf(g[i]);
        qsort(sorted, 30, sizeof(float), cmp_desc);
        float tau = sorted[6]; /* floor(30 * 0.2) */
        for (int i = 0; i < 30; i++) gc[i] = fabsf(g[i]) < tau ? g[i] : dsc_signf(g[i]) * tau;
        CHECK_STATUS(dsc_optimizer_step(o1), DSC_OK, o1);
        CHECK_STATUS(dsc_optimizer_step(o2), DSC_OK, o2);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    dsc_optimizer_free(o1);
    dsc_optimizer_free(o2);

    /* A group large enough for the one-pass select, whose workspace is
     * borrowed from the largest work buffer (and cannot be when an
     * earlier transform wrote the gradients there: norm clipping), against
     * clipping by hand at the sorted tau and the reference loops. */
    for (int variant = 0; variant < 3; variant++) {
        const size_t nw = 400 * 1000, nb = 30000, N = nw + nb;
        float *w[3], *bias[3], *gw = malloc(nw * sizeof(float)), *gb = malloc(nb * sizeof(float)),
              *cw = malloc(nw * sizeof(float)), *cb = malloc(nb * sizeof(float)),
              *all = malloc(N * sizeof(float));
        dsc_optimizer *o[3];
        int64_t sw[2] = {400, 1000}, sb[1] = {(int64_t)nb};
        for (int k = 0; k < 3; k++) {
            w[k] = malloc(nw * sizeof(float));
            bias[k] = malloc(nb * sizeof(float));
            fill_param(w[k], nw);
            fill_param(bias[k], nb);
            if (k) {
                memcpy(w[k], w[0], nw * sizeof(float));
                memcpy(bias[k], bias[0], nb * sizeof(float));
            }
            o[k] = dsc_optimizer_new();
            CHECK_STATUS(dsc_optimizer_add_group(o[k], "g", k == 1 ? "adamw:lr=0.01"
                                                 : "adamw:lr=0.01,coordinate_clip=0.1"),
                         DSC_OK, o[k]);
            CHECK_STATUS(dsc_optimizer_add_param(o[k], "w", w[k], k == 1 ? cw : gw, 2, sw,
                                                 DSC_ROLE_AUTO, "g"), DSC_OK, o[k]);
            CHECK_STATUS(dsc_optimizer_add_param(o[k], "b", bias[k], k == 1 ? cb : gb, 1, sb,
                                                 DSC_ROLE_AUTO, "g"), DSC_OK, o[k]);
        }
        dsc_optimizer_use_reference(o[2], 1);
        if (variant == 1) { /* a norm clip that never clips: gradients still pass through p->work */
            CHECK_STATUS(dsc_optimizer_set_clip(o[0], DSC_CLIP_NORM, 1e30), DSC_OK, o[0]);
            CHECK_STATUS(dsc_optimizer_set_clip(o[2], DSC_CLIP_NORM, 1e30), DSC_OK, o[2]);
        }
        for (int step = 0; step < 3; step++) {
            fill_grad(gw, nw, step + variant);
            fill_grad(gb, nb, step + 7);
            if (variant == 2) /* ties: every gradient a multiple of 1/8 */
                for (size_t i = 0; i < nw; i++) gw[i] = roundf(gw[i] * 8.0f) / 8.0f;
            for (size_t i = 0; i < nw; i++) all[i] = fabsf(gw[i]);
            for (size_t i = 0; i < nb; i++) all[nw + i] = fabsf(gb[i]);
            qsort(all, N, sizeof(float), cmp_desc);
            float tau = all[(size_t)floor((double)N * 0.1)];
            for (size_t i = 0; i < nw; i++) cw[i] = dsc_clip_tau(gw[i], tau);
            for (size_t i = 0; i < nb; i++) cb[i] = dsc_clip_tau(gb[i], tau);
            for (int k = 0; k < 3; k++) CHECK_STATUS(dsc_optimizer_step(o[k]), DSC_OK, o[k]);
        }
        for (int k = 1; k < 3; k++) {
            int same = memcmp(w[0], w[k], nw * sizeof(float)) == 0 &&
                       memcmp(bias[0], bias[k], nb * sizeof(float)) == 0;
            if (!same) fprintf(stderr, "coordinate_clip on %zu values, variant %d: differs from %s\n",
                               N, variant, k == 1 ? "clipping by hand" : "the reference loops");
            CHECK(same);
        }
        for (int k = 0; k < 3; k++) {
            dsc_optimizer_free(o[k]);
            free(w[k]);
            free(bias[k]);
        }
        free(gw), free(gb), free(cw), free(cb), free(all);
    }

    /* Bad values are reported with the key's name; unknown keys still fail. */
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "x", "adamw:coordinate_clip=1.5"), DSC_OUT_OF_RANGE, o);
    CHECK(strstr(dsc_optimizer_error(o), "coordinate_clip") != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(o, "y", "adamw:coordinate_clip=abc"), DSC_PARSE, o);
    CHECK_STATUS(dsc_optimizer_add_group(o, "z", "adamw:coordinate_clp=0.1"), DSC_UNKNOWN_KEY, o);
    /* sgd_clip keeps its own coordinate_clip key (and has no _scale key). */
    CHECK_STATUS(dsc_optimizer_add_group(o, "w", "sgd_clip:coordinate_clip=0.1"), DSC_OK, o);
    CHECK_EQ_INT(dsc_optimizer_find_group(o, "w")->wrap.coord_clip == 0.0, 1);
    CHECK_STATUS(dsc_optimizer_add_group(o, "v", "sgd_clip:coordinate_clip_scale=2"),
                 DSC_UNKNOWN_KEY, o);
    dsc_optimizer_free(o);
}

/* Spot checks of rules the golden files cover only partly. */
static void test_rules(void)
{
    /* stable_spam: gamma1 must be -1 or in [0, 1). */
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "a", "stable_spam:gamma1=-0.5"), DSC_OUT_OF_RANGE, o);
    CHECK_STATUS(dsc_optimizer_add_group(o, "b", "stable_spam:gamma1=-1"), DSC_OK, o);
    /* sgdp: weight decay with momentum 1 would divide by zero. */
    CHECK_STATUS(dsc_optimizer_add_group(o, "c", "sgdp:lr=0.1,momentum=1,weight_decay=0.1"),
                 DSC_INVALID_ARGUMENT, o);
    CHECK_STATUS(dsc_optimizer_add_group(o, "d", "spam:delta_t=0"), DSC_OUT_OF_RANGE, o);
    CHECK_STATUS(dsc_optimizer_add_group(o, "e", "sgdp"), DSC_INVALID_ARGUMENT, o); /* lr */
    dsc_optimizer_free(o);

    /* spam warmup: W = 3, D = 4: scale 1 at steps 1-3, 0.01 at the reset
     * step 4 (the first update of fresh moments is then 0.01*lr*sign(g)). */
    o = dsc_optimizer_new();
    float p[1] = {0.0f}, g[1] = {1.0f};
    int64_t shape[1] = {1};
    CHECK_STATUS(dsc_optimizer_add_group(o, "g", "spam:lr=1,warmup_steps=3,delta_t=4,"
                                         "threshold=0,eps=1e-30"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "p", p, g, 1, shape, DSC_ROLE_AUTO, "g"), DSC_OK, o);
    for (int s = 0; s < 3; s++) CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    float before = p[0];
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    /* t = 4 after the reset: m = 0.1, v = 0.001, s = sqrt(1-0.999^4)/(1-0.9^4). */
    double t4 = sqrt(1 - pow(0.999, 4)) / (1 - pow(0.9, 4)) * 0.1 / sqrt(0.001);
    CHECK_NEAR(before - p[0], 0.01 * t4, 2e-6);
    dsc_optimizer_free(o);
}

/* The prescan (dsc_family.prescan): adamp, sgdp, stable_spam, global
 * adagradnorm, and sgd_clip and adam_clip when they clip, read each
 * gradient in the validate phase in place of the driver's non-finite
 * count. Checked: it runs exactly where the gradient reaches the family
 * unchanged on the fast path (not with stats, a clip, the reference loops,
 * row-wise adagradnorm, a 1-D adamp parameter or adam_clip without
 * clipping); a
 * NaN or an Inf entry still skips the step (nothing changes, the count
 * exact) or fails it; a gradient with finite entries whose float squares
 * overflow (1e20) is not taken for non-finite; and the results match the
 * run without the prescan (stats on: the driver scans, the family sweeps
 * itself) and the reference loops bit for bit. */
typedef struct {
    const char *spec;
    int ndim, expect; /* the prescan runs on the first parameter */
} prescan_case;

/* A bias of 7 joins the group, so the group-wide parts (the clipping
 * threshold's histogram) span two parameters; each optimizer has its own. */
typedef struct {
    float w[7], g[7];
} prescan_bias;

static dsc_optimizer *prescan_opt(const char *spec, int ndim, float *w, const float *g,
                                  int64_t rows, int64_t cols, prescan_bias *b)
{
    int64_t shape[2] = {ndim == 2 ? rows : rows * cols, cols}, bshape[1] = {7};
    for (int i = 0; i < 7; i++) b->w[i] = 0.25f * (float)i - 0.5f, b->g[i] = 0.1f * (float)(i - 3);
    dsc_optimizer *opt = dsc_optimizer_new();
    if (!opt || dsc_optimizer_add_group(opt, "g", spec) != DSC_OK ||
        dsc_optimizer_add_param(opt, "w", w, g, ndim, shape, DSC_ROLE_AUTO, "g") != DSC_OK ||
        dsc_optimizer_add_param(opt, "b", b->w, b->g, 1, bshape, DSC_ROLE_AUTO, "g") != DSC_OK) {
        fprintf(stderr, "prescan: set-up failed for %s: %s\n", spec,
                opt ? dsc_optimizer_error(opt) : "");
        CHECK(0);
        dsc_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

/* Three steps of spec on 200 x 300 from p0 with the gradients grads[0..2];
 * mode 0 plain, 1 stats on, 2 reference loops, 3 norm clipping (a limit
 * no gradient reaches, so the values are those of mode 0). Returns the
 * prescanned flag after the last step. */
static int prescan_run(const prescan_case *c, int mode, const float *p0, float *const *grads,
                       float *out, size_t n)
{
    float *g = calloc(n, sizeof(float)); /* filled before each step */
    prescan_bias bias;
    memcpy(out, p0, n * sizeof(float));
    dsc_optimizer *opt = prescan_opt(c->spec, c->ndim, out, g, 200, 400, &bias);
    int flag = -1;
    if (opt && g) {
        if (mode == 1) dsc_optimizer_set_stats(opt, 1);
        if (mode == 2) dsc_optimizer_use_reference(opt, 1);
        if (mode == 3) dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 1e30);
        for (int s = 0; s < 3; s++) {
            memcpy(g, grads[s], n * sizeof(float));
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
        }
        flag = opt->params[0]->prescanned;
    }
    dsc_optimizer_free(opt);
    free(g);
    return flag;
}

static void test_prescan(void)
{
    static const prescan_case cases[] = {
        {"adamp:lr=0.01,weight_decay=0.01", 2, 1},
        {"adamp:lr=0.01,weight_decay=0.01,delta=10", 2, 1},
        {"adamp:lr=0.01", 1, 0},
        {"sgdp:lr=0.1,momentum=0.9,weight_decay=0.001,delta=10", 2, 1},
        {"stable_spam:lr=0.01,update_proj_gap=2,total_t=8", 2, 1},
        {"adagradnorm:lr=0.1,momentum=0.9", 2, 1},
        {"adagradnorm:lr=0.1,momentum=0.9,rowwise=1", 2, 0},
        {"adam_clip:lr=0.01,coordinate_clip=0.2,weight_decay=0.05", 2, 1},
        {"adam_clip:lr=0.01,coordinate_clip=0.1", 1, 1},
        {"adam_clip:lr=0.01", 2, 0},
        {"sgd_clip:lr=0.02,momentum=0.9,coordinate_clip=0.25,normalize=1", 2, 1},
    };
    const size_t n = 200 * 400;
    float *p0 = malloc(n * sizeof(float)), *plain = malloc(n * sizeof(float)),
          *other = malloc(n * sizeof(float)), *grads[3];
    fill_param(p0, n);
    for (int s = 0; s < 3; s++) {
        grads[s] = malloc(n * sizeof(float));
        fill_grad(grads[s], n, s);
    }
    for (size_t i = 0; i < n; i += 1000) grads[1][i] = 1e20f; /* squares overflow a float */
    int runs = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const prescan_case *c = &cases[k];
        int flag = prescan_run(c, 0, p0, grads, plain, n);
        if (flag != c->expect) fprintf(stderr, "prescan: %s (%d-D): flag %d\n", c->spec,
                                       c->ndim, flag);
        CHECK_EQ_INT(flag, c->expect);
        for (int mode = 1; mode <= 3; mode++) {
            CHECK_EQ_INT(prescan_run(c, mode, p0, grads, other, n), 0);
            int same = memcmp(plain, other, n * sizeof(float)) == 0;
            if (!same) fprintf(stderr, "prescan: %s (%d-D) differs in mode %d\n", c->spec,
                               c->ndim, mode);
            CHECK(same);
            runs++;
        }

        /* A non-finite entry anywhere: skipped with the exact count and
         * nothing changed, or DSC_NONFINITE; then the step goes on as if
         * the bad gradient had not been offered. */
        static const float bad_values[] = {NAN, INFINITY, -INFINITY};
        for (int b = 0; b < 3; b++) {
            float *g = calloc(n, sizeof(float)), *w = malloc(n * sizeof(float));
            prescan_bias bias;
            memcpy(w, p0, n * sizeof(float));
            dsc_optimizer *opt = prescan_opt(c->spec, c->ndim, w, g, 200, 400, &bias);
            if (!opt) break;
            memcpy(g, grads[0], n * sizeof(float));
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            memcpy(g, grads[1], n * sizeof(float));
            g[n - 1 - 977 * (size_t)b] = bad_values[b];
            g[12345] = bad_values[b];
            memcpy(other, w, n * sizeof(float));
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            dsc_step_stats st;
            CHECK_STATUS(dsc_optimizer_stats(opt, &st), DSC_OK, opt);
            CHECK_EQ_INT(st.skipped, 1);
            CHECK_EQ_INT((long long)st.nonfinite, 2);
            CHECK(memcmp(other, w, n * sizeof(float)) == 0);
            CHECK_STATUS(dsc_optimizer_set_nonfinite(opt, DSC_NONFINITE_FAIL), DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_NONFINITE, NULL);
            CHECK(memcmp(other, w, n * sizeof(float)) == 0);
            memcpy(g, grads[1], n * sizeof(float));
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            memcpy(g, grads[2], n * sizeof(float));
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            int same = memcmp(plain, w, n * sizeof(float)) == 0;
            if (!same) fprintf(stderr, "prescan: %s (%d-D) after a skipped step differs\n",
                               c->spec, c->ndim);
            CHECK(same);
            dsc_optimizer_free(opt);
            free(g);
            free(w);
        }
    }
    /* A group that a moved parameter joins: "a" is added to "h", "b" to
     * "g", then "a" moves to "g" (its list re-sorted into the optimizer's
     * order). The large gradients of "a" hold the top tenth of |g|: a
     * threshold whose histogram missed them would differ from the
     * reference's. */
    {
        enum { NA = 3000, NB = 5000 };
        static float wa[2][NA], wb[2][NB], ga[NA], gb[NB];
        for (int ref = 0; ref < 2; ref++) {
            for (int i = 0; i < NA; i++) wa[ref][i] = 0.01f * (float)(i % 7), ga[i] = 0;
            for (int i = 0; i < NB; i++) wb[ref][i] = -0.02f * (float)(i % 5), gb[i] = 0;
            dsc_optimizer *opt = dsc_optimizer_new();
            int64_t sa[1] = {NA}, sb[1] = {NB};
            CHECK_STATUS(dsc_optimizer_add_group(opt, "h", "adam_clip:lr=0.01"), DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "adam_clip:lr=0.01,coordinate_clip=0.1"),
                         DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_add_param(opt, "a", wa[ref], ga, 1, sa, DSC_ROLE_AUTO, "h"),
                         DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_add_param(opt, "b", wb[ref], gb, 1, sb, DSC_ROLE_AUTO, "g"),
                         DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_move_param(opt, "a", "g"), DSC_OK, opt);
            dsc_optimizer_use_reference(opt, ref);
            for (int s = 0; s < 3; s++) {
                for (int i = 0; i < NA; i++) ga[i] = (float)(10.0 + (i * 37 + s) % 100);
                for (int i = 0; i < NB; i++) gb[i] = (float)((i * 53 + s) % 97) * 0.01f - 0.4f;
                CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
                if (!ref) CHECK_EQ_INT(opt->params[0]->prescanned, 1);
            }
            dsc_optimizer_free(opt);
        }
        int same = !memcmp(wa[0], wa[1], sizeof wa[0]) && !memcmp(wb[0], wb[1], sizeof wb[0]);
        if (!same) fprintf(stderr, "prescan: a moved parameter's group differs from the reference\n");
        CHECK(same);
        runs++;
    }
    printf("prescan: %d comparisons with the driver's scan and the reference, bitwise\n", runs);
    for (int s = 0; s < 3; s++) free(grads[s]);
    free(p0);
    free(plain);
    free(other);
}

int main(void)
{
    dsc_set_allocator(count_alloc, count_free);
    test_coordclip_threshold();
    test_bracket_kernel();
    test_coordclip_one_pass();
    test_coordclip_option();
    test_rules();
    test_sparse_density_one();
    test_no_alloc_in_step();
    test_spam_checkpoint();
    test_threads();
    test_fast_vs_ref();
    test_projection_near_threshold();
    test_prescan();
    return check_report("test_stability");
}
