/* test_elementwise.c - the element-wise families (sgd, adam, adamw, adagrad,
 * adagradnorm, signsgd, signum, lion) beyond their golden files:
 *
 *   1. fast vs reference: every family on sizes 1, 7, 4097 and 10^6 (a 2-D
 *      tensor of that size, a 1-D tensor of its row count right after it so
 *      adagradnorm's row coupling runs, and a 1-D tensor of that size, 10^5
 *      at the top size), with
 *      zero, ordinary, tiny (1e-30) and huge (1e30) gradients in turn,
 *      three steps each (two at 10^6).
 *      Parameters AND every state slot (group slots too) must be BITWISE
 *      equal: the fused loops do the same float operations in the same
 *      order as the reference loops (no -ffast-math, no FMA contraction on
 *      the baseline ISA) and the reductions use the same fixed blocking.
 *      Size 0 is not tested: add_param rejects empty tensors (checked).
 *   2. the same bits for 1, 2 and 4 threads (10^6 elements, above
 *      DSC_PAR_MIN so the loops really split).
 *   3. no allocation inside dsc_optimizer_step (a counting allocator).
 *   4. one- and two-step values computed by hand (in double, from the spec's
 *      formulas), within float32 rounding.
 *   5. key checks of the families, the amsgrad state size, and a
 *      checkpoint round trip of adagradnorm's group-level accumulator.
 *   6. AdAdaGrad's adaptive batch-size tests on the spec's worked example. */
#include "descent.h"
#include "core/internal.h"

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- allocator */

static long alloc_calls = 0;

static void *counting_alloc(size_t n)
{
    alloc_calls++;
    return malloc(n);
}

/* ------------------------------------------------------------------ data */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float uniform(void) /* in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 23) - 1.0);
}

typedef enum { G_ORDINARY, G_ZERO, G_TINY, G_HUGE, G_KINDS } grad_kind;
static const char *const kind_name[G_KINDS] = {"ordinary", "zero", "tiny", "huge"};

static void fill_grad(float *g, size_t n, grad_kind kind)
{
    for (size_t i = 0; i < n; i++) {
        float u = uniform();
        switch (kind) {
        case G_ORDINARY: g[i] = (i % 11 == 3) ? 0.0f : u; break; /* some exact zeros */
        case G_ZERO: g[i] = 0.0f; break;
        case G_TINY: g[i] = u * 1e-30f; break;
        case G_HUGE: g[i] = u * 1e30f; break;
        default: break;
        }
    }
}

/* ----------------------------------------------------------------- cases */

static const struct {
    const char *label;
    const char *spec;
} families[] = {
    {"sgd nesterov", "sgd:lr=0.01,momentum=0.9,weight_decay=0.01,nesterov=1"},
    {"sgd dampening", "sgd:lr=0.01,momentum=0.9,dampening=0.1,maximize=1"},
    {"adam", "adam:lr=1e-3,weight_decay=0.01"},
    {"adam amsgrad", "adam:amsgrad=1,maximize=1"},
    {"adamw", "adamw:lr=1e-3,weight_decay=0.1"},
    {"adamw amsgrad", "adamw:amsgrad=1,beta2=0.95"},
    {"adagrad", "adagrad:lr=0.1,lr_decay=0.01,weight_decay=0.01,initial_accumulator_value=0.1"},
    {"adagradnorm global", "adagradnorm:lr=0.5,momentum=0.9,weight_decay=0.01"},
    {"adagradnorm rowwise", "adagradnorm:lr=0.5,rowwise=1,momentum=0.5,lr_decay=0.1"},
    {"signsgd", "signsgd:weight_decay=0.1"},
    {"signum", "signum:weight_decay=0.05,wd_lh=0.01"},
    {"lion", "lion:lr=1e-3,weight_decay=0.1,decoupled_weight_decay=1"},
};
#define NFAM ((int)(sizeof families / sizeof families[0]))

/* n: elements of W (rows x n/rows); v has vlen elements (10^5 at the top
 * size, still above DSC_PAR_MIN, to keep the test short). */
static const struct {
    size_t n, rows, vlen;
} sizes[] = {{1, 1, 1}, {7, 7, 7}, {4097, 17, 4097}, {1000000, 1000, 100000}};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* One optimizer over three tensors: W (rows x n/rows), b (rows), v (vlen). */
typedef struct {
    dsc_optimizer *opt;
    float *data[3];
} rig;

static size_t vlen_of(size_t n)
{
    for (int z = 0; z < NSIZES; z++)
        if (sizes[z].n == n) return sizes[z].vlen;
    return n;
}

static size_t tensor_len(size_t n, size_t rows, int i)
{
    return i == 0 ? n : i == 1 ? rows : vlen_of(n);
}

static int rig_new(rig *r, const char *spec, size_t n, size_t rows, float *const grads[3],
                   int reference)
{
    memset(r, 0, sizeof *r);
    r->opt = dsc_optimizer_new();
    if (!r->opt || dsc_optimizer_add_group(r->opt, "main", spec) != DSC_OK) return 0;
    dsc_optimizer_use_reference(r->opt, reference);
    const char *names[3] = {"W", "b", "v"};
    uint64_t saved = rng_state;
    rng_state = 12345; /* the same initial parameters in every rig */
    for (int i = 0; i < 3; i++) {
        size_t len = tensor_len(n, rows, i);
        r->data[i] = malloc(len * sizeof(float));
        if (!r->data[i]) return 0;
        for (size_t j = 0; j < len; j++) r->data[i][j] = uniform();
        int64_t shape2[2] = {(int64_t)rows, (int64_t)(n / rows)};
        int64_t shape1[1] = {(int64_t)len};
        dsc_status st = dsc_optimizer_add_param(r->opt, names[i], r->data[i], grads[i],
                                                i == 0 ? 2 : 1, i == 0 ? shape2 : shape1,
                                                DSC_ROLE_AUTO, "main");
        if (st != DSC_OK) {
            fprintf(stderr, "rig: %s\n", dsc_optimizer_error(r->opt));
            return 0;
        }
    }
    rng_state = saved;
    return 1;
}

static void rig_free(rig *r)
{
    dsc_optimizer_free(r->opt);
    for (int i = 0; i < 3; i++) free(r->data[i]);
}

static int slots_equal(const dsc_slot *a, const dsc_slot *b, int n)
{
    for (int s = 0; s < n; s++) {
        size_t bytes = a[s].count * dsc_dtype_size(a[s].dtype);
        if (a[s].count != b[s].count || memcmp(a[s].data, b[s].data, bytes) != 0) return 0;
    }
    return 1;
}

/* Parameters and all state, bit for bit. */
static int rigs_equal(const rig *a, const rig *b, size_t n, size_t rows)
{
    for (int i = 0; i < 3; i++)
        if (memcmp(a->data[i], b->data[i], tensor_len(n, rows, i) * sizeof(float)) != 0)
            return 0;
    for (int i = 0; i < a->opt->nparams; i++) {
        const dsc_param *pa = a->opt->params[i], *pb = b->opt->params[i];
        if (pa->nslots != pb->nslots || !slots_equal(pa->slots, pb->slots, pa->nslots)) return 0;
    }
    const dsc_group *ga = a->opt->groups[0], *gb = b->opt->groups[0];
    return ga->nslots == gb->nslots && slots_equal(ga->slots, gb->slots, ga->nslots);
}

/* Steps every rig `steps` times with fresh gradients of one kind; checks
 * that no step allocates. */
static void run_steps(rig *rigs, int nrigs, float *const grads[3], size_t n, size_t rows,
                      grad_kind kind, int steps, const int *threads)
{
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 3; i++) fill_grad(grads[i], tensor_len(n, rows, i), kind);
        for (int k = 0; k < nrigs; k++) {
            if (threads) dsc_set_num_threads(threads[k]);
            long before = alloc_calls;
            CHECK_STATUS(dsc_optimizer_step(rigs[k].opt), DSC_OK, rigs[k].opt);
            CHECK_EQ_INT(alloc_calls - before, 0);
        }
    }
    dsc_set_num_threads(0);
}

/* Each rig pair lives through all four gradient kinds in turn (zero first,
 * so a fresh state also sees an all-zero first step; then ordinary, tiny,
 * huge on the state the previous kind left), compared after every kind. */
static void test_fast_vs_ref(void)
{
    static const grad_kind order[G_KINDS] = {G_ZERO, G_ORDINARY, G_TINY, G_HUGE};
    for (int z = 0; z < NSIZES; z++) {
        size_t n = sizes[z].n, rows = sizes[z].rows;
        int steps = n >= 1000000 ? 2 : 3;
        float *grads[3];
        for (int i = 0; i < 3; i++) grads[i] = malloc(tensor_len(n, rows, i) * sizeof(float));
        for (int f = 0; f < NFAM; f++) {
            rig r[2];
            int ok = rig_new(&r[0], families[f].spec, n, rows, grads, 0) &&
                     rig_new(&r[1], families[f].spec, n, rows, grads, 1);
            CHECK(ok);
            for (int k = 0; ok && k < G_KINDS; k++) {
                run_steps(r, 2, grads, n, rows, order[k], steps, NULL);
                int same = rigs_equal(&r[0], &r[1], n, rows);
                CHECK(same);
                if (!same)
                    fprintf(stderr, "  fast != ref: %s, n = %zu, %s gradients\n",
                            families[f].label, n, kind_name[order[k]]);
            }
            rig_free(&r[0]);
            rig_free(&r[1]);
        }
        for (int i = 0; i < 3; i++) free(grads[i]);
    }
}

static void test_threads(void)
{
    const size_t n = 1000000, rows = 1000;
    const int threads[3] = {1, 2, 4};
    float *grads[3];
    for (int i = 0; i < 3; i++) grads[i] = malloc(tensor_len(n, rows, i) * sizeof(float));
    for (int f = 0; f < NFAM; f++) {
        rig r[3];
        int ok = 1;
        for (int k = 0; k < 3; k++) ok = rig_new(&r[k], families[f].spec, n, rows, grads, 0) && ok;
        CHECK(ok);
        if (ok) {
            run_steps(r, 3, grads, n, rows, G_ORDINARY, 2, threads);
            for (int k = 1; k < 3; k++) {
                int same = rigs_equal(&r[0], &r[k], n, rows);
                CHECK(same);
                if (!same)
                    fprintf(stderr, "  %s: %d threads differ from 1\n", families[f].label,
                            threads[k]);
            }
        }
        for (int k = 0; k < 3; k++) rig_free(&r[k]);
    }
    for (int i = 0; i < 3; i++) free(grads[i]);
}

/* ------------------------------------------------------ values by hand */

/* One 1-D parameter (or a W 2x2 + b pair) stepped with given gradients. */
typedef struct {
    const char *label;
    const char *spec;
    int len;             /* elements of the single 1-D parameter */
    float p0[3];
    float g[2][3];       /* gradients of steps 1 and 2 */
    int steps;
    double expect[3];    /* after the last step */
} hand_case;

/* Expected values: the spec's formulas written out in double. */
static void hand_cases(hand_case *c, int *count)
{
    int k = 0;
    /* sgd: p - lr*g */
    c[k++] = (hand_case){"sgd", "sgd:lr=0.1", 2, {0.5f, -1.0f}, {{0.2f, 0.0f}}, 1,
                         {0.5 - 0.1 * 0.2, -1.0}};
    /* adam, two steps: m, v, bias corrections by hand */
    {
        double p = 0.5, m = 0, v = 0, g[2] = {0.2, -0.1};
        for (int t = 1; t <= 2; t++) {
            m = 0.9 * m + 0.1 * g[t - 1];
            v = 0.999 * v + 0.001 * g[t - 1] * g[t - 1];
            double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
            p -= 0.1 / bc1 * m / (sqrt(v) / sqrt(bc2) + 1e-8);
        }
        c[k++] = (hand_case){"adam 2 steps", "adam:lr=0.1", 1, {0.5f}, {{0.2f}, {-0.1f}}, 2,
                             {p}};
    }
    /* adam L2: g' = 0.2 + 0.1*0.5 = 0.25; first step moves by lr*g'/(|g'|+eps) */
    c[k++] = (hand_case){"adam l2", "adam:lr=0.1,weight_decay=0.1", 1, {0.5f}, {{0.2f}}, 1,
                         {0.5 - 0.1 * 0.25 / (0.25 + 1e-8)}};
    /* adamw: p*(1 - 0.1*0.1) first, then the same unit step */
    c[k++] = (hand_case){"adamw", "adamw:lr=0.1,weight_decay=0.1", 1, {0.5f}, {{0.2f}}, 1,
                         {0.5 * 0.99 - 0.1 * 0.2 / (0.2 + 1e-8)}};
    /* amsgrad, two steps: the second step divides by the first v (larger) */
    {
        double p = 0.5, m = 0, v = 0, vmax = 0, g[2] = {1.0, 0.1};
        for (int t = 1; t <= 2; t++) {
            m = 0.9 * m + 0.1 * g[t - 1];
            v = 0.999 * v + 0.001 * g[t - 1] * g[t - 1];
            vmax = vmax > v ? vmax : v;
            p -= 0.1 / (1 - pow(0.9, t)) * m / (sqrt(vmax) / sqrt(1 - pow(0.999, t)) + 1e-8);
        }
        c[k++] = (hand_case){"adam amsgrad", "adam:lr=0.1,amsgrad=1", 1, {0.5f},
                             {{1.0f}, {0.1f}}, 2, {p}};
    }
    /* adagrad: s = 0.1 + 0.04; second step clr = 0.1/(1 + 0.5) */
    {
        double s = 0.1 + 0.04, p = 0.5 - 0.1 * 0.2 / (sqrt(s) + 1e-10);
        s += 0.09;
        p -= 0.1 / 1.5 * -0.3 / (sqrt(s) + 1e-10);
        c[k++] = (hand_case){"adagrad", "adagrad:lr=0.1,lr_decay=0.5,initial_accumulator_value=0.1",
                             1, {0.5f}, {{0.2f}, {-0.3f}}, 2, {p}};
    }
    /* adagradnorm global, one tensor of 3: S = 0.01 + 0.09 + 0.16 + 0 = 0.26;
     * weight_decay 0.1 adds the extra gradient step -lr*0.1*g */
    {
        double sd = sqrt(0.26) + 1e-10;
        c[k++] = (hand_case){"adagradnorm global", "adagradnorm:lr=0.5,weight_decay=0.1", 3,
                             {1.0f, 1.0f, 1.0f}, {{0.3f, -0.4f, 0.0f}}, 1,
                             {1 - 0.5 * 0.3 / sd - 0.05 * 0.3, 1 + 0.5 * 0.4 / sd + 0.05 * 0.4,
                              1.0}};
    }
    /* adagradnorm with momentum 0.5: buf = 0.5*g at step 1 */
    c[k++] = (hand_case){"adagradnorm momentum", "adagradnorm:lr=1,momentum=0.5", 1, {0.0f},
                         {{0.6f}}, 1, {-0.5 * 0.6 / (sqrt(0.01 + 0.36) + 1e-10)}};
    /* signsgd: (1 - 0.01*0.5)*p - 0.01*sign(g); sign(0) = 0 only decays */
    c[k++] = (hand_case){"signsgd", "signsgd:lr=0.01,weight_decay=0.5", 3, {1.0f, 1.0f, -2.0f},
                         {{-3.0f, 0.0f, 1e-30f}}, 1,
                         {0.995 + 0.01, 0.995, -2 * 0.995 - 0.01}};
    /* signum: m = 0.1*(g + 0.5*p): the L2 term flips the sign of the first */
    c[k++] = (hand_case){"signum", "signum:lr=0.01,weight_decay=0.5,wd_lh=1", 2, {1.0f, 1.0f},
                         {{-0.2f, -0.8f}}, 1, {0.99 - 0.01, 0.99 + 0.01}};
    /* lion, two steps with beta1 0.9, beta2 0.99: c2 = 0.9*0.01*g1 + 0.1*g2 */
    {
        double p = 0.5 * (1 - 0.1 * 0.5) - 0.1 * 1.0; /* g1 = +1 */
        double m = 0.01 * 1.0, cc = 0.9 * m + 0.1 * -0.05; /* = 0.004 > 0 */
        p = p * (1 - 0.1 * 0.5) - 0.1 * (cc > 0 ? 1 : -1);
        c[k++] = (hand_case){"lion", "lion:lr=0.1,weight_decay=0.5", 1, {0.5f},
                             {{1.0f}, {-0.05f}}, 2, {p}};
    }
    /* lion decoupled: wd/lr0 = 0.01/0.1, so p*(1 - 0.1*0.1) */
    c[k++] = (hand_case){"lion decoupled", "lion:lr=0.1,weight_decay=0.01,decoupled_weight_decay=1",
                         2, {2.0f, 2.0f}, {{0.0f, -1.0f}}, 1, {2 * 0.99, 2 * 0.99 + 0.1}};
    *count = k;
}

static void test_hand_values(void)
{
    hand_case c[16];
    int count = 0;
    hand_cases(c, &count);
    for (int i = 0; i < count; i++) {
        for (int ref = 0; ref < 2; ref++) {
            dsc_optimizer *opt = dsc_optimizer_new();
            float p[3], g[3];
            memcpy(p, c[i].p0, sizeof p);
            int64_t shape[1] = {c[i].len};
            CHECK_STATUS(dsc_optimizer_add_group(opt, "main", c[i].spec), DSC_OK, opt);
            CHECK_STATUS(dsc_optimizer_add_param(opt, "p", p, g, 1, shape, DSC_ROLE_AUTO,
                                                 "main"), DSC_OK, opt);
            dsc_optimizer_use_reference(opt, ref);
            for (int s = 0; s < c[i].steps; s++) {
                memcpy(g, c[i].g[s], sizeof g);
                CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
            }
            for (int j = 0; j < c[i].len; j++) {
                /* float32 state and arithmetic: a few ulps of the result */
                CHECK_NEAR(p[j], c[i].expect[j], 4e-7 * (1 + fabs(c[i].expect[j])));
            }
            dsc_optimizer_free(opt);
        }
    }
}

/* adagradnorm row-wise coupling by hand: W 2x2 then b (2) and c (1).
 * r = (0.25, 1); A_W = 0.01 + r; b_i gets r_i + g_i^2; c gets mean(r) + g^2. */
static void test_rowwise_coupling(void)
{
    for (int ref = 0; ref < 2; ref++) {
        dsc_optimizer *opt = dsc_optimizer_new();
        float w[4] = {0, 0, 0, 0}, b[2] = {0, 0}, c[1] = {0};
        const float gw[4] = {0.3f, 0.4f, 1.0f, 0.0f}, gb[2] = {0.5f, 0.5f}, gc[1] = {0.2f};
        int64_t sw[2] = {2, 2}, sb[1] = {2}, sc[1] = {1};
        CHECK_STATUS(dsc_optimizer_add_group(opt, "main", "adagradnorm:rowwise=1"), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "W", w, gw, 2, sw, DSC_ROLE_MATRIX, "main"),
                     DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "b", b, gb, 1, sb, DSC_ROLE_VECTOR, "main"),
                     DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "c", c, gc, 1, sc, DSC_ROLE_VECTOR, "main"),
                     DSC_OK, opt);
        dsc_optimizer_use_reference(opt, ref);
        CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
        const double tol = 4e-7;
        CHECK_NEAR(w[0], -0.3 / sqrt(0.26), tol);
        CHECK_NEAR(w[2], -1.0 / sqrt(1.01), tol);
        CHECK_NEAR(w[3], 0.0, 0.0);
        CHECK_NEAR(b[0], -0.5 / sqrt(0.01 + 0.25 + 0.25), tol);
        CHECK_NEAR(b[1], -0.5 / sqrt(0.01 + 1.0 + 0.25), tol);
        CHECK_NEAR(c[0], -0.2 / sqrt(0.01 + 0.625 + 0.04), tol);
        dsc_optimizer_free(opt);
    }
}

/* ------------------------------------------------------- keys and state */

static void test_keys_and_state(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "adam:beta1=1"), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "adamw:eps=0"), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "adagrad:lr=-1"), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "signum:momentum=1"), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "lion:lr=0,decoupled_weight_decay=1"),
                 DSC_INVALID_ARGUMENT, opt);
    CHECK(strstr(dsc_optimizer_error(opt), "decoupled_weight_decay") != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "signsgd:momentum=0.9"), DSC_UNKNOWN_KEY, opt);
    /* weight_decay defaults: adam 0, adamw 1e-2 */
    double wd = -1;
    CHECK_STATUS(dsc_optimizer_add_group(opt, "w", "adamw"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "w", "weight_decay", &wd), DSC_OK, opt);
    CHECK(wd == 1e-2);
    /* adagradnorm: 3-D tensors are rejected in row-wise mode; size 0 by the core */
    CHECK_STATUS(dsc_optimizer_add_group(opt, "r", "adagradnorm:rowwise=1"), DSC_OK, opt);
    float x[8] = {0}, gx[8] = {0};
    int64_t s3[3] = {2, 2, 2}, s0[1] = {0};
    CHECK_STATUS(dsc_optimizer_add_param(opt, "t3", x, gx, 3, s3, DSC_ROLE_AUTO, "r"),
                 DSC_SHAPE, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "t0", x, gx, 1, s0, DSC_ROLE_AUTO, "r"),
                 DSC_SHAPE, opt);
    dsc_optimizer_free(opt);

    /* state sizes: m, v (+ vmax with amsgrad) and an 8-byte step counter */
    int64_t shape[1] = {10};
    size_t plain = 0, ams = 0, none = 1, agn = 0;
    CHECK_STATUS(dsc_state_bytes("adamw", 1, shape, &plain), DSC_OK, NULL);
    CHECK_STATUS(dsc_state_bytes("adamw:amsgrad=1", 1, shape, &ams), DSC_OK, NULL);
    CHECK_STATUS(dsc_state_bytes("signsgd", 1, shape, &none), DSC_OK, NULL);
    CHECK_EQ_INT(ams - plain, 40);
    CHECK_EQ_INT(none, 0);
    int64_t shape2[2] = {4, 100};
    CHECK_STATUS(dsc_state_bytes("adagradnorm:rowwise=1", 2, shape2, &agn), DSC_OK, NULL);
    CHECK(agn < 400 * 4 + 4 * 4 + 64); /* buffer + one accumulator per row + counter */

    /* amsgrad switched on after the parameter was added: reported, nothing moves */
    opt = dsc_optimizer_new();
    int64_t s1[1] = {8};
    float p[8] = {0}, g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_STATUS(dsc_optimizer_add_group(opt, "w", "adam"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "p", p, g, 1, s1, DSC_ROLE_AUTO, "w"), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "w", "amsgrad", 1), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_STATE, opt);
    CHECK(strstr(dsc_optimizer_error(opt), "max_exp_avg_sq") != NULL);
    CHECK(p[0] == 0.0f);
    dsc_optimizer_free(opt);
}

/* adagradnorm global mode keeps S and t in group slots: a checkpoint taken
 * after two steps and loaded into a fresh optimizer continues bit for bit. */
static void test_group_state_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/descent_test_elementwise_%ld.safetensors", (long)getpid());
    const char *spec = "adagradnorm:lr=0.3,momentum=0.9";
    float g[8];
    float a[6], b[2], a2[6], b2[2];
    for (int i = 0; i < 6; i++) a[i] = a2[i] = uniform();
    for (int i = 0; i < 2; i++) b[i] = b2[i] = uniform();
    int64_t sa[2] = {2, 3}, sb[1] = {2};
    dsc_optimizer *o1 = dsc_optimizer_new(), *o2 = dsc_optimizer_new();
    dsc_optimizer *opts[2] = {o1, o2};
    float *as[2] = {a, a2}, *bs[2] = {b, b2};
    for (int k = 0; k < 2; k++) {
        CHECK_STATUS(dsc_optimizer_add_group(opts[k], "main", spec), DSC_OK, opts[k]);
        CHECK_STATUS(dsc_optimizer_add_param(opts[k], "A", as[k], g, 2, sa, DSC_ROLE_MATRIX,
                                             "main"), DSC_OK, opts[k]);
        CHECK_STATUS(dsc_optimizer_add_param(opts[k], "b", bs[k], g + 6, 1, sb,
                                             DSC_ROLE_VECTOR, "main"), DSC_OK, opts[k]);
    }
    for (int s = 0; s < 2; s++) {
        fill_grad(g, 8, G_ORDINARY);
        CHECK_STATUS(dsc_optimizer_step(o1), DSC_OK, o1);
    }
    CHECK_STATUS(dsc_optimizer_save(o1, path), DSC_OK, o1);
    CHECK_STATUS(dsc_optimizer_load(o2, path), DSC_OK, o2);
    memcpy(a2, a, sizeof a);
    memcpy(b2, b, sizeof b);
    const dsc_group *g2 = o2->groups[0];
    CHECK(g2->nslots == 2 && *(const double *)g2->slots[0].data > 0.01);
    CHECK(*(const int64_t *)g2->slots[1].data == 2);
    fill_grad(g, 8, G_ORDINARY);
    CHECK_STATUS(dsc_optimizer_step(o1), DSC_OK, o1);
    CHECK_STATUS(dsc_optimizer_step(o2), DSC_OK, o2);
    CHECK(memcmp(a, a2, sizeof a) == 0 && memcmp(b, b2, sizeof b) == 0);
    dsc_optimizer_free(o1);
    dsc_optimizer_free(o2);
    remove(path);
}

/* AdAdaGrad batch-size tests on a worked example
 * (b = 4, a 2x3 tensor and a bias of 2, per-sample gradients). */
static void test_adadagrad_batch(void)
{
    static const float W[4 * 6] = {1, -2, 0.5f, 0, 1.5f, -1,     0.5f, -1, 1, 1, 0.5f, -0.5f,
                                   2, -1.5f, 0, -0.5f, 1, -1.5f, 1.5f, -0.5f, 0.5f, 0.5f, 2, 0};
    static const float B[4 * 2] = {0.2f, -0.4f, 0.6f, 0, -0.2f, -0.8f, 0.4f, -0.4f};
    const float *grads[2] = {W, B};
    const size_t numel[2] = {6, 2};
    const double N2 = 5.785, vnorm = 2.4733333333333333, vip = 2.01865,
                 vorth = 2.0973782771;
    int64_t next = 0;
    double c = 0;
    /* with param 1 the candidates are the variances over N2 (N2^2 for IP) */
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_NORM, 1, 0, 4, 2, grads, numel, 1000,
                                          &next, &c), DSC_OK, NULL);
    CHECK_NEAR(c, vnorm / N2, 1e-6 * vnorm / N2);
    CHECK_EQ_INT(next, 4);
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_IP, 1, 0, 4, 2, grads, numel, 1000,
                                          &next, &c), DSC_OK, NULL);
    CHECK_NEAR(c, vip / (N2 * N2), 1e-6 * vip / (N2 * N2));
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_ORTH, 1, 0, 4, 2, grads, numel, 1000,
                                          &next, &c), DSC_OK, NULL);
    CHECK_NEAR(c, vorth / N2, 1e-6 * vorth / N2);
    /* the spec's results: norm eta 0.5 -> 4, 0.1 -> 43 (42.75); ip theta 0.5 -> 4,
     * 0.1 -> 7 (6.03); and the clamp to max_batch */
    static const struct {
        dsc_batch_test test;
        double param;
        int64_t max_batch, expect;
    } rows[] = {
        {DSC_BATCH_TEST_NORM, 0.5, 1000, 4}, {DSC_BATCH_TEST_NORM, 0.1, 1000, 43},
        {DSC_BATCH_TEST_IP, 0.5, 1000, 4},   {DSC_BATCH_TEST_IP, 0.1, 1000, 7},
        {DSC_BATCH_TEST_NORM, 0.1, 32, 32},  {DSC_BATCH_TEST_ORTH, 0.1, 1000, 37},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK_STATUS(dsc_adadagrad_next_batch(rows[i].test, rows[i].param, 0, 4, 2, grads,
                                              numel, rows[i].max_batch, &next, NULL),
                     DSC_OK, NULL);
        CHECK_EQ_INT(next, rows[i].expect);
    }
    /* ip+orth: the larger of ip (theta 0.1: 6.03) and orth (nu 0.5: 1.45) */
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_IP_ORTH, 0.1, 0.5, 4, 2, grads, numel,
                                          1000, &next, &c), DSC_OK, NULL);
    CHECK_EQ_INT(next, 7);
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_NORM, 0.1, 0, 1, 2, grads, numel,
                                          1000, &next, &c), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_adadagrad_next_batch(DSC_BATCH_TEST_NORM, 0, 0, 4, 2, grads, numel,
                                          1000, &next, &c), DSC_INVALID_ARGUMENT, NULL);
}

int main(void)
{
    dsc_set_allocator(counting_alloc, free);
    test_keys_and_state();
    test_hand_values();
    test_rowwise_coupling();
    test_group_state_checkpoint();
    test_adadagrad_batch();
    test_fast_vs_ref();
    test_threads();
    dsc_set_allocator(NULL, NULL);
    return check_report("test_elementwise");
}
