/* test_core.c - the API around the optimizers: spec parsing and bad input,
 * groups and routing, schedules against their closed forms, clipping,
 * accumulation, the non-finite policy, checkpoints (round trip, resume bit
 * for bit, corruption, truncation, mismatches), thread-count determinism,
 * the no-allocation-in-step rule and the atomic step (a failed step changes
 * nothing, in any group). Uses only sgd, which the core always
 * carries, plus any other family the build has for the resume test. */
#include "check.h"

#include "descent.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) /* splitmix64 -> uniform in [-1, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

/* ------------------------------------------------------- parsing, errors */

static void test_parsing(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK(opt != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "nosuch:lr=1"), DSC_UNKNOWN_OPTIMIZER, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "nosuch") != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=0.1,beta3=2"), DSC_UNKNOWN_KEY, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "beta3") != NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "momentum") != NULL); /* lists the keys */
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd"), DSC_INVALID_ARGUMENT, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "lr") != NULL); /* required */
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=nan"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=inf"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=-1"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=abc"), DSC_PARSE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr"), DSC_PARSE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=0.1,momentum=1.5"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=0.1,nesterov=2"), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=0.1,nesterov=1"), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, NULL, "sgd:lr=0.1"), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", NULL), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "", "sgd:lr=0.1"), DSC_INVALID_ARGUMENT, NULL);
    CHECK_EQ_INT(dsc_optimizer_group_count(opt), 0); /* failed calls change nothing */
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", " sgd : lr = 0.1 , momentum=0.9, nesterov=true"),
                 DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "sgd:lr=0.1"), DSC_DUPLICATE_NAME, NULL);
    double v = 0;
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "a", "momentum", &v), DSC_OK, opt);
    CHECK_NEAR(v, 0.9, 0);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "a", "momentum", 0), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "b", "lr", 0.1), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "a", "eps", 0.1), DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "a", "lr", NAN), DSC_OUT_OF_RANGE, NULL);

    float w[6] = {0}, g[6] = {0};
    int64_t shape[2] = {2, 3}, bad[2] = {2, 0};
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_STATE, NULL); /* no params */
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 0, shape, DSC_ROLE_AUTO, "a"), DSC_SHAPE, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 5, shape, DSC_ROLE_AUTO, "a"), DSC_SHAPE, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, bad, DSC_ROLE_AUTO, "a"), DSC_SHAPE, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", NULL, g, 2, shape, DSC_ROLE_AUTO, "a"), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, NULL, 2, shape, DSC_ROLE_AUTO, "a"), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "zz"), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, shape, (dsc_role)42, "a"), DSC_OUT_OF_RANGE, NULL);
    CHECK_EQ_INT(dsc_optimizer_param_count(opt), 0);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "a"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "a"), DSC_DUPLICATE_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_set_param_hyper(opt, "nope", "lr", 1), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_set_param_hyper(opt, "w", "lr", -1), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_rebind(opt, "nope", w, g), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, -1), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, NAN), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_set_accumulation(opt, 0), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_set_nonfinite(opt, (dsc_nonfinite_policy)9), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_add_rule(opt, "*", DSC_ROLE_AUTO, "missing", 0), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_load(opt, "/nonexistent/dir/x.safetensors"), DSC_IO, NULL);
    CHECK_STATUS(dsc_optimizer_save(opt, "/nonexistent/dir/x.safetensors"), DSC_IO, NULL);
    dsc_optimizer_free(opt);
    dsc_optimizer_free(NULL);
    CHECK_STATUS(dsc_optimizer_step(NULL), DSC_NULL_POINTER, NULL);

    CHECK(strcmp(dsc_status_name(DSC_SHAPE), "DSC_SHAPE") == 0);
    CHECK(strlen(dsc_status_string(DSC_CORRUPT)) > 0);
    CHECK(dsc_optimizer_kind_find("sgd") != NULL);
    CHECK(dsc_optimizer_kind_find("nosuch") == NULL);
    CHECK(dsc_optimizer_kind(-1) == NULL);
}

/* ------------------------------------------------------------ routing */

static void test_routing(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_use_split(opt, "sgd:lr=0.1,weight_decay=0.01",
                                         "sgd:lr=0.01,weight_decay=0.1"), DSC_OK, opt);
    static float buf[8][64], gbuf[64];
    int64_t m[2] = {4, 8}, v[1] = {8}, c[4] = {2, 2, 2, 2};
    CHECK_STATUS(dsc_optimizer_add_param(opt, "h0.attn.w", buf[0], gbuf, 2, m, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "wte", buf[1], gbuf, 2, m, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "lm_head", buf[2], gbuf, 2, m, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "ln.b", buf[3], gbuf, 1, v, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "conv", buf[4], gbuf, 4, c, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "forced", buf[5], gbuf, 2, m, DSC_ROLE_EMBEDDING, NULL), DSC_OK, opt);
    const char *want_group[] = {"matrix", "fallback", "fallback", "fallback", "matrix", "fallback"};
    const dsc_role want_role[] = {DSC_ROLE_MATRIX, DSC_ROLE_EMBEDDING, DSC_ROLE_HEAD,
                                  DSC_ROLE_VECTOR, DSC_ROLE_CONV, DSC_ROLE_EMBEDDING};
    for (int i = 0; i < 6; i++) {
        dsc_param_info info;
        CHECK_STATUS(dsc_optimizer_param_info(opt, i, &info), DSC_OK, opt);
        CHECK(strcmp(info.group, want_group[i]) == 0);
        CHECK_EQ_INT(info.role, want_role[i]);
        CHECK_EQ_INT(info.no_decay, i == 3);
    }
    /* override a routing decision */
    CHECK_STATUS(dsc_optimizer_move_param(opt, "forced", "matrix"), DSC_OK, opt);
    dsc_param_info info;
    dsc_optimizer_param_info(opt, 5, &info);
    CHECK(strcmp(info.group, "matrix") == 0);
    CHECK_STATUS(dsc_optimizer_move_param(opt, "forced", "nope"), DSC_UNKNOWN_NAME, NULL);
    /* no_decay: the vector sees weight_decay 0 although its group has 0.1 */
    memset(gbuf, 0, sizeof gbuf);
    for (int i = 0; i < 8; i++) buf[3][i] = 1.0f;
    for (int i = 0; i < 32; i++) buf[1][i] = 1.0f;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_NEAR(buf[3][0], 1.0, 0);                     /* no decay */
    CHECK_NEAR(buf[1][0], 1.0f - 0.01f * 0.1f, 1e-7);   /* L2 decay through sgd */
    CHECK_STATUS(dsc_optimizer_move_param(opt, "forced", "fallback"), DSC_STATE, NULL);
    dsc_optimizer_free(opt);

    /* a single group takes everything without rules */
    opt = dsc_optimizer_new();
    dsc_optimizer_add_group(opt, "all", "sgd:lr=0.1");
    CHECK_STATUS(dsc_optimizer_add_param(opt, "x", buf[0], gbuf, 1, v, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    dsc_optimizer_add_group(opt, "other", "sgd:lr=0.1");
    CHECK_STATUS(dsc_optimizer_add_param(opt, "y", buf[1], gbuf, 1, v, DSC_ROLE_AUTO, NULL), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_add_rule(opt, "y*", DSC_ROLE_AUTO, "other", 0), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "y", buf[1], gbuf, 1, v, DSC_ROLE_AUTO, NULL), DSC_OK, opt);
    dsc_optimizer_param_info(opt, 1, &info);
    CHECK(strcmp(info.group, "other") == 0);
    dsc_optimizer_free(opt);
}

/* ----------------------------------------------------------- schedules */

static void test_schedules(void)
{
    dsc_schedule s;
    char err[256];
    CHECK_STATUS(dsc_schedule_parse("cosine:warmup=10,total=110,min_ratio=0.1", &s, err, sizeof err), DSC_OK, NULL);
    for (int64_t t = 0; t < 200; t++) {
        double want;
        if (t < 10) want = (double)(t + 1) / 10.0;
        else {
            double p = fmin(1.0, (double)(t - 10) / 100.0);
            want = 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * p));
        }
        CHECK_NEAR(dsc_schedule_factor(&s, t), want, 1e-15);
    }
    CHECK_STATUS(dsc_schedule_parse("wsd:warmup=5,total=100,decay=20,min_ratio=0", &s, err, sizeof err), DSC_OK, NULL);
    CHECK_NEAR(dsc_schedule_factor(&s, 0), 0.2, 1e-15);
    CHECK_NEAR(dsc_schedule_factor(&s, 50), 1.0, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 80), 1.0, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 90), 0.5, 1e-15);
    CHECK_NEAR(dsc_schedule_factor(&s, 100), 0.0, 1e-15);
    CHECK_NEAR(dsc_schedule_factor(&s, 500), 0.0, 1e-15);
    CHECK_STATUS(dsc_schedule_parse("step:step_size=3,gamma=0.5", &s, err, sizeof err), DSC_OK, NULL);
    CHECK_NEAR(dsc_schedule_factor(&s, 2), 1.0, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 3), 0.5, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 7), 0.25, 0);
    CHECK_STATUS(dsc_schedule_parse("linear_warmup:warmup=4", &s, err, sizeof err), DSC_OK, NULL);
    CHECK_NEAR(dsc_schedule_factor(&s, 0), 0.25, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 3), 1.0, 0);
    CHECK_NEAR(dsc_schedule_factor(&s, 99), 1.0, 0);
    CHECK_STATUS(dsc_schedule_parse("constant", &s, err, sizeof err), DSC_OK, NULL);
    CHECK_NEAR(dsc_schedule_factor(&s, 12345), 1.0, 0);
    /* bad schedules */
    CHECK_STATUS(dsc_schedule_parse("cosine:warmup=10,total=5", &s, err, sizeof err), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_schedule_parse("cosine:total=100,min_ratio=2", &s, err, sizeof err), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_schedule_parse("exp:total=100", &s, err, sizeof err), DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_schedule_parse("cosine:totl=100", &s, err, sizeof err), DSC_UNKNOWN_KEY, NULL);
    CHECK(strstr(err, "totl") != NULL);
    CHECK_STATUS(dsc_schedule_parse("step:step_size=0", &s, err, sizeof err), DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_schedule_parse("cosine:total=nan", &s, err, sizeof err), DSC_OUT_OF_RANGE, NULL);

    /* Applied to lr: plain SGD on w with g = 1 moves w by exactly -lr(t). */
    dsc_optimizer *opt = dsc_optimizer_new();
    dsc_optimizer_add_group(opt, "g", "sgd:lr=0.5");
    double w64 = 0;
    float w = 0, g = 1;
    int64_t one[1] = {1};
    dsc_optimizer_add_param(opt, "w", &w, &g, 1, one, DSC_ROLE_AUTO, "g");
    dsc_schedule cos;
    dsc_schedule_parse("cosine:warmup=3,total=20,min_ratio=0.2", &cos, NULL, 0);
    CHECK_STATUS(dsc_optimizer_set_schedule(opt, "g", "lr", &cos), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_schedule(opt, "g", "nesterov", &cos), DSC_INVALID_ARGUMENT, NULL);
    CHECK_STATUS(dsc_optimizer_set_schedule(opt, "g", "nope", &cos), DSC_UNKNOWN_KEY, NULL);
    for (int t = 0; t < 25; t++) {
        dsc_optimizer_step(opt);
        w64 -= (double)(float)(0.5 * dsc_schedule_factor(&cos, t));
        dsc_step_stats st;
        dsc_optimizer_stats(opt, &st);
        CHECK_NEAR(st.lr, 0.5 * dsc_schedule_factor(&cos, t), 1e-15);
    }
    CHECK_NEAR(w, w64, 1e-5);
    dsc_optimizer_free(opt);
}

/* ----------------------------------------- clipping, accumulation, NaN */

static void test_transforms(void)
{
    int64_t shape[1] = {4};
    float w[4] = {0}, g[4] = {3, 4, 0, 0};
    dsc_optimizer *opt = dsc_optimizer_new();
    dsc_optimizer_add_group(opt, "g", "sgd:lr=1");
    dsc_optimizer_add_param(opt, "w", w, g, 1, shape, DSC_ROLE_AUTO, "g");
    CHECK_STATUS(dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 1.0), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_stats(opt, 1), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_step_stats st;
    dsc_optimizer_stats(opt, &st);
    CHECK_NEAR(st.grad_l2, 5.0, 1e-12);
    CHECK_NEAR(st.grad_l1, 7.0, 1e-12);
    CHECK_NEAR(st.grad_linf, 4.0, 1e-12);
    CHECK_NEAR(st.clip_scale, 1.0 / (5.0 + 1e-6), 1e-12);
    CHECK_NEAR(w[0], -0.6, 1e-6);
    CHECK_NEAR(w[1], -0.8, 1e-6);
    CHECK_NEAR(g[0], 3.0, 0); /* the caller's gradient is untouched */
    /* by value */
    CHECK_STATUS(dsc_optimizer_set_clip(opt, DSC_CLIP_VALUE, 3.5), DSC_OK, opt);
    memset(w, 0, sizeof w);
    dsc_optimizer_step(opt);
    CHECK_NEAR(w[0], -3.0, 0);
    CHECK_NEAR(w[1], -3.5, 0);
    dsc_optimizer_set_clip(opt, DSC_CLIP_NONE, 0);

    /* non-finite: skip leaves everything untouched and counts */
    memset(w, 0, sizeof w);
    g[2] = NAN;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_optimizer_stats(opt, &st);
    CHECK_EQ_INT(st.skipped, 1);
    CHECK_EQ_INT(st.applied, 0);
    CHECK_EQ_INT(st.nonfinite, 1);
    CHECK_EQ_INT(st.skipped_total, 1);
    CHECK_EQ_INT(dsc_optimizer_step_count(opt), 2);
    CHECK_NEAR(w[0], 0.0, 0);
    /* fail */
    CHECK_STATUS(dsc_optimizer_set_nonfinite(opt, DSC_NONFINITE_FAIL), DSC_OK, opt);
    g[3] = INFINITY;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_NONFINITE, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "\"w\"") != NULL);
    CHECK_NEAR(w[0], 0.0, 0);
    /* zero */
    CHECK_STATUS(dsc_optimizer_set_nonfinite(opt, DSC_NONFINITE_ZERO), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_optimizer_stats(opt, &st);
    CHECK_EQ_INT(st.zeroed_total, 2);
    CHECK_NEAR(w[0], -3.0, 0);
    CHECK_NEAR(w[2], 0.0, 0);
    CHECK_NEAR(w[3], 0.0, 0);
    dsc_optimizer_free(opt);

    /* accumulation: 3 micro-steps of g1, g2, g3 equal one step of the mean */
    float a[4] = {0}, b[4] = {0}, ga[4], gb[4];
    dsc_optimizer *acc = dsc_optimizer_new(), *one = dsc_optimizer_new();
    dsc_optimizer_add_group(acc, "g", "sgd:lr=0.1,momentum=0.9");
    dsc_optimizer_add_group(one, "g", "sgd:lr=0.1,momentum=0.9");
    dsc_optimizer_add_param(acc, "w", a, ga, 1, shape, DSC_ROLE_AUTO, "g");
    dsc_optimizer_add_param(one, "w", b, gb, 1, shape, DSC_ROLE_AUTO, "g");
    CHECK_STATUS(dsc_optimizer_set_accumulation(acc, 3), DSC_OK, acc);
    float micro[3][4] = {{1, 2, 3, 4}, {0.5f, -1, 2, 0}, {-2, 1, 1, 1}};
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 3; k++) {
            memcpy(ga, micro[k], sizeof ga);
            CHECK_STATUS(dsc_optimizer_step(acc), DSC_OK, acc);
            dsc_optimizer_stats(acc, &st);
            CHECK_EQ_INT(st.applied, k == 2);
            if (k == 0) CHECK_STATUS(dsc_optimizer_set_accumulation(acc, 2), DSC_STATE, NULL);
        }
        for (int i = 0; i < 4; i++)
            gb[i] = ((micro[0][i] + micro[1][i]) + micro[2][i]) * (1.0f / 3.0f);
        dsc_optimizer_step(one);
        for (int i = 0; i < 4; i++) CHECK_NEAR(a[i], b[i], 0);
    }
    dsc_optimizer_free(acc);
    dsc_optimizer_free(one);
}

/* ---------------------------------------------------- no allocation */

static long alloc_count = 0;
static void *counting_malloc(size_t n)
{
    alloc_count++;
    return malloc(n);
}

static void test_no_alloc(void)
{
    dsc_set_allocator(counting_malloc, free);
    enum { N = 100000 };
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
    fill(w, N);
    fill(g, N);
    int64_t shape[2] = {100, 1000};
    dsc_optimizer *opt = dsc_optimizer_new();
    dsc_optimizer_add_group(opt, "g", "sgd:lr=0.1,momentum=0.9,nesterov=1");
    dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "g");
    dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 0.5);
    dsc_optimizer_set_accumulation(opt, 2);
    dsc_schedule s;
    dsc_schedule_parse("cosine:warmup=2,total=10", &s, NULL, 0);
    dsc_optimizer_set_schedule(opt, NULL, "lr", &s);
    long before = alloc_count;
    for (int i = 0; i < 6; i++) CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_EQ_INT(alloc_count - before, 0);
    dsc_optimizer_free(opt);
    dsc_set_allocator(NULL, NULL);
    free(w);
    free(g);
}

/* ------------------------------------------------- thread determinism */

static void test_threads(void)
{
    enum { N = 300000 };
    float *w[3], *g = malloc(N * sizeof *g);
    int64_t shape[1] = {N};
    int threads[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        w[k] = malloc(N * sizeof(float));
        rng_state = 7;
        fill(w[k], N);
        dsc_set_num_threads(threads[k]);
        dsc_optimizer *opt = dsc_optimizer_new();
        dsc_optimizer_add_group(opt, "g", "sgd:lr=0.01,momentum=0.9,weight_decay=0.1");
        dsc_optimizer_add_param(opt, "w", w[k], g, 1, shape, DSC_ROLE_AUTO, "g");
        dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 10.0); /* uses the global norm */
        for (int s = 0; s < 5; s++) {
            fill(g, N);
            dsc_optimizer_step(opt);
        }
        dsc_step_stats st;
        dsc_optimizer_stats(opt, &st);
        CHECK(st.clip_scale < 1.0);
        dsc_optimizer_free(opt);
    }
    dsc_set_num_threads(0);
    CHECK(memcmp(w[0], w[1], N * sizeof(float)) == 0);
    CHECK(memcmp(w[0], w[2], N * sizeof(float)) == 0);
    for (int k = 0; k < 3; k++) free(w[k]);
    free(g);
}

/* --------------------------------------------------------- checkpoints */

typedef struct {
    dsc_optimizer *opt;
    float w1[24], w2[6], g1[24], g2[6];
} rig;

/* Two groups, a schedule, overrides; optimizer names from the build. */
static int rig_init(rig *r, const char *spec1, const char *spec2)
{
    memset(r, 0, sizeof *r);
    r->opt = dsc_optimizer_new();
    for (int i = 0; i < 24; i++) r->w1[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (int i = 0; i < 6; i++) r->w2[i] = (float)i * 0.05f;
    int64_t s1[2] = {4, 6}, s2[1] = {6};
    if (dsc_optimizer_add_group(r->opt, "main", spec1) || dsc_optimizer_add_group(r->opt, "aux", spec2) ||
        dsc_optimizer_add_param(r->opt, "W", r->w1, r->g1, 2, s1, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(r->opt, "b", r->w2, r->g2, 1, s2, DSC_ROLE_AUTO, "aux"))
        return 0;
    dsc_schedule s;
    dsc_schedule_parse("cosine:warmup=2,total=12,min_ratio=0.1", &s, NULL, 0);
    dsc_optimizer_set_schedule(r->opt, "main", "lr", &s);
    return 1;
}

static void rig_step(rig *r, int t)
{
    for (int i = 0; i < 24; i++) r->g1[i] = sinf((float)(t * 24 + i)) + 0.1f * r->w1[i];
    for (int i = 0; i < 6; i++) r->g2[i] = cosf((float)(t * 6 + i));
    dsc_optimizer_step(r->opt);
}

static void corrupt_copy(const char *src, const char *dst, long at, long truncate_to)
{
    FILE *in = fopen(src, "rb");
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (fread(buf, 1, (size_t)n, in) != (size_t)n) n = 0;
    fclose(in);
    if (at >= 0 && at < n) buf[at] ^= 0x5A;
    if (truncate_to >= 0 && truncate_to < n) n = truncate_to;
    FILE *out = fopen(dst, "wb");
    fwrite(buf, 1, (size_t)n, out);
    fclose(out);
    free(buf);
}

static void test_checkpoint_pair(const char *spec1, const char *spec2)
{
    char path[64], bad[64];
    snprintf(path, sizeof path, "test_core_%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "test_core_%d_bad.safetensors", (int)getpid());
    rig a, b;
    if (!rig_init(&a, spec1, spec2) || !rig_init(&b, spec1, spec2)) {
        fprintf(stderr, "skip checkpoint test for %s + %s: %s\n", spec1, spec2,
                dsc_optimizer_error(a.opt));
        dsc_optimizer_free(a.opt);
        dsc_optimizer_free(b.opt);
        return;
    }
    dsc_optimizer_set_param_hyper(a.opt, "b", "lr", 0.003);
    dsc_optimizer_set_param_hyper(b.opt, "b", "lr", 0.5); /* restored from the file */
    for (int t = 0; t < 5; t++) rig_step(&a, t);
    CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
    /* b resumes from a's file with a's parameters */
    memcpy(b.w1, a.w1, sizeof a.w1);
    memcpy(b.w2, a.w2, sizeof a.w2);
    CHECK_STATUS(dsc_optimizer_load(b.opt, path), DSC_OK, b.opt);
    CHECK_EQ_INT(dsc_optimizer_step_count(b.opt), 5);
    for (int t = 5; t < 12; t++) {
        rig_step(&a, t);
        rig_step(&b, t);
    }
    CHECK(memcmp(a.w1, b.w1, sizeof a.w1) == 0);
    CHECK(memcmp(a.w2, b.w2, sizeof a.w2) == 0);

    /* A second save of the same state is byte-identical. */
    CHECK_STATUS(dsc_optimizer_save(a.opt, path), DSC_OK, a.opt);
    CHECK_STATUS(dsc_optimizer_save(b.opt, bad), DSC_OK, b.opt);
    FILE *fa = fopen(path, "rb"), *fb = fopen(bad, "rb");
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
    } while (ca != EOF && cb != EOF);
    fclose(fa);
    fclose(fb);
    CHECK(same);

    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    float snapshot[24];
    memcpy(snapshot, b.w1, sizeof snapshot);
    int64_t steps_before = dsc_optimizer_step_count(b.opt);
    /* corrupted data byte -> checksum (stateless optimizers have no data:
     * the byte then falls in the header) */
    corrupt_copy(path, bad, size - 3, -1);
    CHECK_STATUS(dsc_optimizer_load(b.opt, bad), DSC_CORRUPT, NULL);
    if (dsc_optimizer_state_bytes(b.opt) > 8)
        CHECK(strstr(dsc_optimizer_error(b.opt), "checksum") != NULL);
    /* corrupted header byte */
    corrupt_copy(path, bad, 12, -1);
    dsc_status st = dsc_optimizer_load(b.opt, bad);
    CHECK(st == DSC_CORRUPT || st == DSC_MISMATCH);
    /* truncations at many points */
    long cuts[] = {0, 4, 8, 9, 40, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        corrupt_copy(path, bad, -1, cuts[i]);
        st = dsc_optimizer_load(b.opt, bad);
        CHECK(st == DSC_CORRUPT || st == DSC_MISMATCH);
    }
    CHECK_EQ_INT(dsc_optimizer_step_count(b.opt), steps_before); /* nothing changed */
    CHECK(memcmp(snapshot, b.w1, sizeof snapshot) == 0);

    /* mismatches: another group layout, a missing parameter, another shape */
    rig c;
    if (rig_init(&c, spec2, spec1)) {
        st = dsc_optimizer_load(c.opt, path);
        char k1[32], k2[32];
        sscanf(spec1, "%31[^:]", k1);
        sscanf(spec2, "%31[^:]", k2);
        if (strcmp(k1, k2)) CHECK_EQ_INT(st, DSC_MISMATCH);
    }
    dsc_optimizer_free(c.opt);
    dsc_optimizer *d = dsc_optimizer_new();
    dsc_optimizer_add_group(d, "main", spec1);
    dsc_optimizer_add_group(d, "aux", spec2);
    float w[24] = {0}, g[24] = {0};
    int64_t s1[2] = {6, 4}, s2[1] = {6};
    dsc_optimizer_add_param(d, "W", w, g, 2, s1, DSC_ROLE_AUTO, "main");
    CHECK_STATUS(dsc_optimizer_load(d, path), DSC_MISMATCH, NULL); /* b missing */
    dsc_optimizer_add_param(d, "b", w, g, 1, s2, DSC_ROLE_AUTO, "aux");
    CHECK_STATUS(dsc_optimizer_load(d, path), DSC_MISMATCH, NULL); /* W is 6x4, not 4x6 */
    CHECK(strstr(dsc_optimizer_error(d), "W") != NULL);
    dsc_optimizer_free(d);
    /* not a descent file */
    f = fopen(bad, "wb");
    fputs("hello, world: definitely not safetensors", f);
    fclose(f);
    CHECK_STATUS(dsc_optimizer_load(b.opt, bad), DSC_CORRUPT, NULL);

    dsc_optimizer_free(a.opt);
    dsc_optimizer_free(b.opt);
    remove(path);
    remove(bad);
}

static void test_checkpoints(void)
{
    test_checkpoint_pair("sgd:lr=0.1,momentum=0.9,nesterov=1", "sgd:lr=0.01,momentum=0.5");
    /* Every registered family: resume bit for bit, corruption and
     * mismatches. Matrix families get the 1-D tensor in an adamw group. */
    for (int k = 0; k < dsc_optimizer_kind_count(); k++) {
        const dsc_optimizer_info *info = dsc_optimizer_kind(k);
        if (!strcmp(info->name, "sgd")) continue;
        const char *extra = "";
        if (strstr(info->name, "8bit")) extra = ",min_8bit_size=0";
        if (!strcmp(info->name, "sgd8bit")) extra = ",momentum=0.9,min_8bit_size=0";
        if (!strcmp(info->name, "sgdp") || !strcmp(info->name, "sgd_clip")) extra = ",momentum=0.9";
        if (!strcmp(info->name, "galore") || !strcmp(info->name, "fira")) extra = ",rank=2,update_proj_gap=3";
        if (!strcmp(info->name, "spam")) extra = ",delta_t=4,warmup_steps=2,grad_accu_steps=2";
        if (!strcmp(info->name, "stable_spam")) extra = ",update_proj_gap=4";
        char spec1[128], spec2[128];
        snprintf(spec1, sizeof spec1, "%s:lr=0.01%s", info->name, extra);
        snprintf(spec2, sizeof spec2, "%s", info->matrix ? "adamw:lr=0.01" : spec1);
        test_checkpoint_pair(spec1, spec2);
    }
}

/* ------------------------------------------------ a failed step is atomic */

/* Byte-compare two files. */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca, cb;
    if (same) {
        do {
            ca = fgetc(fa);
            cb = fgetc(fb);
            if (ca != cb) same = 0;
        } while (ca != EOF && cb != EOF);
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

enum { ATOM_N = 40 };

typedef struct {
    dsc_optimizer *opt;
    float w[3][ATOM_N], g[3][ATOM_N];
} atom_rig;

/* Three groups in creation order: sgd with momentum, lion, adam; one
 * parameter each. The adam group is last, so that a failure there comes
 * after the two others would already have written in a one-phase step. */
static int atom_init(atom_rig *r)
{
    static const char *specs[3] = {"sgd:lr=0.1,momentum=0.9", "lion:lr=0.01,weight_decay=0.1",
                                   "adam:lr=0.01"};
    static const char *names[3] = {"s", "l", "a"};
    r->opt = dsc_optimizer_new();
    int64_t shape[1] = {ATOM_N};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < ATOM_N; i++) r->w[k][i] = 0.1f * (float)(i % 7) - 0.3f;
        if (dsc_optimizer_add_group(r->opt, names[k], specs[k]) != DSC_OK ||
            dsc_optimizer_add_param(r->opt, names[k], r->w[k], r->g[k], 1, shape,
                                    DSC_ROLE_VECTOR, names[k]) != DSC_OK)
            return 0;
    }
    return 1;
}

static void atom_grads(atom_rig *r, int t)
{
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ATOM_N; i++)
            r->g[k][i] = (float)sin(0.37 * (double)(i + 1) * (double)(t + 1) + (double)k);
}

static void test_atomic_step(void)
{
    char before[64], after[64];
    snprintf(before, sizeof before, "test_core_%d_before.safetensors", (int)getpid());
    snprintf(after, sizeof after, "test_core_%d_after.safetensors", (int)getpid());
    atom_rig a, ref;
    if (!atom_init(&a) || !atom_init(&ref)) {
        CHECK(!"atomic step: set-up failed");
        fprintf(stderr, "%s\n", dsc_optimizer_error(a.opt));
        dsc_optimizer_free(a.opt);
        dsc_optimizer_free(ref.opt);
        return;
    }
    for (int t = 0; t < 3; t++) {
        atom_grads(&a, t);
        atom_grads(&ref, t);
        CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt);
        CHECK_STATUS(dsc_optimizer_step(ref.opt), DSC_OK, ref.opt);
    }

    /* 1. The last group cannot step (amsgrad switched on after its parameter
     * was added: no max_exp_avg_sq state). Nothing of any group changes. */
    CHECK_STATUS(dsc_optimizer_set_hyper(a.opt, "a", "amsgrad", 1), DSC_OK, a.opt);
    atom_grads(&a, 3);
    float w0[3][ATOM_N];
    memcpy(w0, a.w, sizeof w0);
    CHECK_STATUS(dsc_optimizer_save(a.opt, before), DSC_OK, a.opt);
    CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_STATE, a.opt);
    CHECK(strstr(dsc_optimizer_error(a.opt), "amsgrad") != NULL);
    CHECK(memcmp(w0, a.w, sizeof w0) == 0); /* parameters of all three groups */
    CHECK_EQ_INT(dsc_optimizer_step_count(a.opt), 3);
    CHECK_STATUS(dsc_optimizer_save(a.opt, after), DSC_OK, a.opt);
    CHECK(same_file(before, after)); /* every state slot and step counter */
    /* Switched back, the step is the one the reference takes. */
    CHECK_STATUS(dsc_optimizer_set_hyper(a.opt, "a", "amsgrad", 0), DSC_OK, a.opt);
    atom_grads(&ref, 3);
    CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt);
    CHECK_STATUS(dsc_optimizer_step(ref.opt), DSC_OK, ref.opt);
    CHECK(memcmp(a.w, ref.w, sizeof a.w) == 0);

    /* 2. Accumulation over 2 micro-steps, non-finite policy FAIL: a NaN in
     * the last micro-step fails it and keeps the first micro-step's sum, so
     * that retrying with a clean gradient gives the reference's update (a
     * checkpoint cannot be taken between micro-steps, so the sum is checked
     * by what it does). */
    CHECK_STATUS(dsc_optimizer_set_accumulation(a.opt, 2), DSC_OK, a.opt);
    CHECK_STATUS(dsc_optimizer_set_accumulation(ref.opt, 2), DSC_OK, ref.opt);
    CHECK_STATUS(dsc_optimizer_set_nonfinite(a.opt, DSC_NONFINITE_FAIL), DSC_OK, a.opt);
    atom_grads(&a, 4);
    atom_grads(&ref, 4);
    CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt); /* micro-step 1 of 2 */
    CHECK_STATUS(dsc_optimizer_step(ref.opt), DSC_OK, ref.opt);
    atom_grads(&a, 5);
    atom_grads(&ref, 5);
    a.g[1][7] = NAN;
    memcpy(w0, a.w, sizeof w0);
    CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_NONFINITE, a.opt);
    CHECK(memcmp(w0, a.w, sizeof w0) == 0);
    CHECK_EQ_INT(dsc_optimizer_step_count(a.opt), 4);
    a.g[1][7] = ref.g[1][7];
    CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt); /* micro-step 2 of 2 */
    CHECK_STATUS(dsc_optimizer_step(ref.opt), DSC_OK, ref.opt);
    CHECK_EQ_INT(dsc_optimizer_step_count(a.opt), 5);
    CHECK(memcmp(a.w, ref.w, sizeof a.w) == 0);
    /* ... and the window starts again from zero afterwards. */
    for (int t = 6; t < 8; t++) {
        atom_grads(&a, t);
        atom_grads(&ref, t);
        CHECK_STATUS(dsc_optimizer_step(a.opt), DSC_OK, a.opt);
        CHECK_STATUS(dsc_optimizer_step(ref.opt), DSC_OK, ref.opt);
    }
    CHECK(memcmp(a.w, ref.w, sizeof a.w) == 0);
    remove(before);
    remove(after);
    dsc_optimizer_free(a.opt);
    dsc_optimizer_free(ref.opt);
}

int main(void)
{
    test_parsing();
    test_routing();
    test_schedules();
    test_transforms();
    test_no_alloc();
    test_threads();
    test_checkpoints();
    test_atomic_step();
    return check_report("test_core");
}
