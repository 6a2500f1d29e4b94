/* test_transform.c - the gradient-transform stage (src/core/transform.c)
 * through the public API:
 * - clipping by global norm, by value and the non-finite policies against
 *   values worked by hand (torch.nn.utils.clip_grad_norm_: the gradient is
 *   scaled by max_norm / (total_norm + 1e-6) when total_norm > max_norm,
 *   total_norm over every parameter of every group);
 * - the group keys coordinate_clip / coordinate_clip_scale: hand-worked
 *   thresholds, set_hyper and get_hyper with range checks (a refused value
 *   changes nothing), equal to the spec;
 * - checkpoints carry the group keys and the optimizer-wide settings, and
 *   an older file (tests/data/ckpt_v1.safetensors) keeps the caller's;
 * - a step whose later group fails changes nothing, transforms configured. */
#include "check.h"
#include "descent.h"

#include <stdint.h>
#include <unistd.h>

static dsc_optimizer *two_groups(float *w1, const float *g1, float *w2, const float *g2,
                                 const char *spec1, const char *spec2)
{
    int64_t s2[1] = {2};
    dsc_optimizer *o = dsc_optimizer_new();
    if (!o || dsc_optimizer_add_group(o, "a", spec1) || dsc_optimizer_add_group(o, "b", spec2) ||
        dsc_optimizer_add_param(o, "w1", w1, g1, 1, s2, DSC_ROLE_VECTOR, "a") ||
        dsc_optimizer_add_param(o, "w2", w2, g2, 1, s2, DSC_ROLE_VECTOR, "b")) {
        CHECK(!"set-up failed");
        if (o) fprintf(stderr, "%s\n", dsc_optimizer_error(o));
    }
    return o;
}

/* ------------------------------------------- norm, value, non-finite */

static void test_hand_worked(void)
{
    /* Two groups, two parameters: g = (3, 0 | 0, 4), total norm 5 across
     * the groups; max_norm 2 gives the factor 2 / (5 + 1e-6), applied to
     * every entry in float; plain sgd with lr 1 makes w = -g * factor. */
    float w1[2] = {0}, w2[2] = {0}, g1[2] = {3, 0}, g2[2] = {0, 4};
    dsc_optimizer *o = two_groups(w1, g1, w2, g2, "sgd:lr=1", "sgd:lr=1");
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 2.0), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    dsc_step_stats st;
    dsc_optimizer_stats(o, &st);
    const double factor = 2.0 / (5.0 + 1e-6);
    CHECK_NEAR(st.grad_l2, 5.0, 0);
    CHECK_NEAR(st.clip_scale, factor, 0);
    CHECK_EQ_INT(st.clipped_total, 1);
    CHECK(w1[0] == -(3.0f * (float)factor) && w1[1] == 0.0f);
    CHECK(w2[0] == 0.0f && w2[1] == -(4.0f * (float)factor));
    CHECK_NEAR(w1[0], -1.2, 1e-6); /* 3 * 2/5 */
    CHECK_NEAR(w2[1], -1.6, 1e-6);

    /* Below the limit: no scaling, no count (torch leaves it: the factor
     * is clamped at 1). */
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 6.0), DSC_OK, o);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    dsc_optimizer_stats(o, &st);
    CHECK_NEAR(st.clip_scale, 1.0, 0);
    CHECK_EQ_INT(st.clipped_total, 1);
    CHECK(w1[0] == -3.0f && w2[1] == -4.0f);

    /* Zero policy with norm clipping: the NaN becomes 0 and the norm is
     * that of the finite entries, (3, NaN | 0, 4) -> 5. */
    CHECK_STATUS(dsc_optimizer_set_nonfinite(o, DSC_NONFINITE_ZERO), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 2.0), DSC_OK, o);
    g1[1] = NAN;
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    dsc_optimizer_stats(o, &st);
    CHECK_EQ_INT(st.nonfinite, 1);
    CHECK_EQ_INT(st.zeroed_total, 1);
    CHECK_NEAR(st.grad_l2, 5.0, 0);
    CHECK(w1[0] == -(3.0f * (float)factor) && w1[1] == 0.0f);
    CHECK(w2[1] == -(4.0f * (float)factor));
    CHECK(isnan(g1[1])); /* the caller's gradient is only read */

    /* By value at 3.5 with zeroing: (3, NaN | 0, 4) -> (3, 0 | 0, 3.5). */
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_VALUE, 3.5), DSC_OK, o);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    CHECK(w1[0] == -3.0f && w1[1] == 0.0f && w2[0] == 0.0f && w2[1] == -3.5f);

    /* Skip: nothing moves, the step count stays, the skip is counted. */
    CHECK_STATUS(dsc_optimizer_set_nonfinite(o, DSC_NONFINITE_SKIP), DSC_OK, o);
    int64_t steps = dsc_optimizer_step_count(o);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    dsc_optimizer_stats(o, &st);
    CHECK_EQ_INT(st.skipped, 1);
    CHECK_EQ_INT(st.skipped_total, 1);
    CHECK_EQ_INT(dsc_optimizer_step_count(o), steps);
    CHECK(w1[0] == 0.0f && w2[1] == 0.0f);
    /* Fail: DSC_NONFINITE naming the parameter, nothing moves. */
    CHECK_STATUS(dsc_optimizer_set_nonfinite(o, DSC_NONFINITE_FAIL), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_NONFINITE, NULL);
    CHECK(strstr(dsc_optimizer_error(o), "\"w1\"") != NULL);
    CHECK_EQ_INT(dsc_optimizer_step_count(o), steps);
    CHECK(w1[0] == 0.0f && w2[1] == 0.0f);
    dsc_optimizer_free(o);
}

/* --------------------------------------------- coordinate-wise clipping */

static void test_coordinate_clip(void)
{
    /* Group a: g = (1, -5 | 3, -2) over two parameters of one group, N = 4.
     * coordinate_clip 0.25: tau = the floor(4 * 0.25) = 1st (0-based) largest
     * |g| = 3; |g| >= tau clips to sign * tau: (1, -3 | 3, -2). With
     * coordinate_clip_scale 0.5: tau = 1.5: (1, -1.5 | 1.5, -1.5). */
    int64_t s2[1] = {2};
    float w1[2] = {0}, w2[2] = {0}, g1[2] = {1, -5}, g2[2] = {3, -2};
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "a", "sgd:lr=1,coordinate_clip=0.25"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "w1", w1, g1, 1, s2, DSC_ROLE_VECTOR, "a"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param(o, "w2", w2, g2, 1, s2, DSC_ROLE_VECTOR, "a"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    CHECK(w1[0] == -1.0f && w1[1] == 3.0f && w2[0] == -3.0f && w2[1] == 2.0f);
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clip_scale", 0.5), DSC_OK, o);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    CHECK(w1[0] == -1.0f && w1[1] == 1.5f && w2[0] == -1.5f && w2[1] == 1.5f);
    double v = -1;
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "a", "coordinate_clip", &v), DSC_OK, o);
    CHECK_NEAR(v, 0.25, 0);
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "a", "coordinate_clip_scale", &v), DSC_OK, o);
    CHECK_NEAR(v, 0.5, 0);

    /* Refused values name the key and change nothing. */
    const double bad[] = {1.5, -0.1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clip", bad[i]),
                     DSC_OUT_OF_RANGE, NULL);
        CHECK(strstr(dsc_optimizer_error(o), "coordinate_clip") != NULL);
    }
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clip_scale", -1),
                 DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clip_scale", 1e31),
                 DSC_OUT_OF_RANGE, NULL);
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clp", 0.1), DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "a", "coordinate_clip", &v), DSC_OK, o);
    CHECK_NEAR(v, 0.25, 0);
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "a", "coordinate_clip_scale", &v), DSC_OK, o);
    CHECK_NEAR(v, 0.5, 0);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o); /* the same step as before */
    CHECK(w1[0] == -1.0f && w1[1] == 1.5f && w2[0] == -1.5f && w2[1] == 1.5f);
    /* 0 turns it off. */
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "coordinate_clip", 0), DSC_OK, o);
    memset(w1, 0, sizeof w1), memset(w2, 0, sizeof w2);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    CHECK(w1[1] == 5.0f && w2[0] == -3.0f);
    dsc_optimizer_free(o);

    /* sgd_clip defines coordinate_clip itself (its key, its threshold_scale):
     * the group key coordinate_clip_scale does not exist there. */
    o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o, "c", "sgd_clip:lr=0.1"), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "c", "coordinate_clip", 0.5), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "c", "coordinate_clip_scale", 2),
                 DSC_UNKNOWN_KEY, NULL);
    CHECK_STATUS(dsc_optimizer_get_hyper(o, "c", "coordinate_clip_scale", &v), DSC_UNKNOWN_KEY,
                 NULL);
    dsc_optimizer_free(o);

    /* set_hyper from 0 equals the spec, bit for bit, over several steps
     * (the work buffers are made when the key is switched on). */
    enum { N = 37 };
    int64_t sn[1] = {N};
    float wa[N], wb[N], g[N];
    for (int i = 0; i < N; i++) wa[i] = wb[i] = 0.01f * (float)(i % 11);
    dsc_optimizer *x = dsc_optimizer_new(), *y = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(x, "g", "adamw:lr=0.01,coordinate_clip=0.3,"
                                         "coordinate_clip_scale=0.7"), DSC_OK, x);
    CHECK_STATUS(dsc_optimizer_add_group(y, "g", "adamw:lr=0.01"), DSC_OK, y);
    CHECK_STATUS(dsc_optimizer_add_param(x, "w", wa, g, 1, sn, DSC_ROLE_VECTOR, "g"), DSC_OK, x);
    CHECK_STATUS(dsc_optimizer_add_param(y, "w", wb, g, 1, sn, DSC_ROLE_VECTOR, "g"), DSC_OK, y);
    CHECK_STATUS(dsc_optimizer_set_hyper(y, "g", "coordinate_clip", 0.3), DSC_OK, y);
    CHECK_STATUS(dsc_optimizer_set_hyper(y, "g", "coordinate_clip_scale", 0.7), DSC_OK, y);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)sin(0.9 * i + t) * (float)(1 + i % 5);
        CHECK_STATUS(dsc_optimizer_step(x), DSC_OK, x);
        CHECK_STATUS(dsc_optimizer_step(y), DSC_OK, y);
    }
    CHECK(memcmp(wa, wb, sizeof wa) == 0);
    dsc_optimizer_free(x);
    dsc_optimizer_free(y);
}

/* ---------------------------------------------------------- checkpoints */

/* The optimizer that wrote tests/data/ckpt_v1.safetensors (two groups,
 * three parameters, a cosine schedule; as test_ckfile.c's rig), with the
 * transform settings on when `configured`. */
typedef struct {
    float w[13], g[13]; /* w1: 6, w2: 4, b: 3 */
    dsc_optimizer *o;
} old_rig;

static void old_rig_init(old_rig *r, int configured)
{
    memset(r, 0, sizeof *r);
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, s3[1] = {3};
    r->o = dsc_optimizer_new();
    dsc_schedule cs;
    if (!r->o ||
        dsc_optimizer_add_group(r->o, "main", configured ? "adamw:lr=0.01,weight_decay=0.1,"
                                "coordinate_clip=0.3" : "adamw:lr=0.01,weight_decay=0.1") ||
        dsc_optimizer_add_group(r->o, "aux", "sgd:lr=0.1,momentum=0.9") ||
        dsc_optimizer_add_param(r->o, "w1", r->w, r->g, 2, s1, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(r->o, "w2", r->w + 6, r->g + 6, 2, s2, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(r->o, "b", r->w + 10, r->g + 10, 1, s3, DSC_ROLE_AUTO, "aux") ||
        dsc_schedule_parse("cosine:warmup=2,total=20,min_ratio=0.1", &cs, NULL, 0) ||
        dsc_optimizer_set_schedule(r->o, "main", "lr", &cs) ||
        (configured && dsc_optimizer_set_clip(r->o, DSC_CLIP_VALUE, 0.25))) {
        CHECK(!"old_rig: set-up failed");
        if (r->o) fprintf(stderr, "%s\n", dsc_optimizer_error(r->o));
    }
}

static void old_rig_step(old_rig *r, int t)
{
    for (int i = 0; i < 13; i++) r->g[i] = (float)sin(1.3 * i + t) * (float)(1 + i % 4);
    CHECK_STATUS(dsc_optimizer_step(r->o), DSC_OK, r->o);
}

static void test_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "test_transform_%d.safetensors", (int)getpid());
    float wa[2], wb[2], ga[2], gb[2], va[2], vb[2], ha[2], hb[2];
    for (int i = 0; i < 2; i++) wa[i] = wb[i] = va[i] = vb[i] = 0.02f * (float)(i % 7) - 0.05f;
    /* a: configured; b: defaults everywhere, then loads a's file. */
    dsc_optimizer *a = two_groups(wa, ga, va, ha, "adamw:lr=0.01,coordinate_clip=0.2,"
                                  "coordinate_clip_scale=0.5,maximize=1", "sgd:lr=0.05");
    dsc_optimizer *b = two_groups(wb, gb, vb, hb, "adamw:lr=0.01", "sgd:lr=0.05");
    CHECK_STATUS(dsc_optimizer_set_clip(a, DSC_CLIP_NORM, 0.75), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_set_nonfinite(a, DSC_NONFINITE_ZERO), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_set_hyper(a, "b", "coordinate_clip", 0.5), DSC_OK, a);
    for (int i = 0; i < 2; i++) ga[i] = (float)(i + 1), ha[i] = -(float)(2 * i + 1);
    CHECK_STATUS(dsc_optimizer_step(a), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_save(a, path), DSC_OK, a);
    CHECK_STATUS(dsc_optimizer_load(b, path), DSC_OK, b);
    double v = -1;
    CHECK_STATUS(dsc_optimizer_get_hyper(b, "a", "coordinate_clip", &v), DSC_OK, b);
    CHECK_NEAR(v, 0.2, 0);
    CHECK_STATUS(dsc_optimizer_get_hyper(b, "a", "coordinate_clip_scale", &v), DSC_OK, b);
    CHECK_NEAR(v, 0.5, 0);
    CHECK_STATUS(dsc_optimizer_get_hyper(b, "a", "maximize", &v), DSC_OK, b);
    CHECK_NEAR(v, 1, 0);
    CHECK_STATUS(dsc_optimizer_get_hyper(b, "b", "coordinate_clip", &v), DSC_OK, b);
    CHECK_NEAR(v, 0.5, 0);
    /* b continues exactly as a (its own parameters copied over): the
     * restored clipping, policy and keys all act. */
    memcpy(wb, wa, 2 * sizeof(float));
    memcpy(vb, va, 2 * sizeof(float));
    for (int t = 1; t < 4; t++) {
        for (int i = 0; i < 2; i++) {
            ga[i] = gb[i] = (float)((i + t) % 3) - 0.5f;
            ha[i] = hb[i] = (float)(t - i) * 1.5f;
        }
        ga[1] = gb[1] = t == 2 ? NAN : ga[1]; /* zeroed under the restored policy */
        CHECK_STATUS(dsc_optimizer_step(a), DSC_OK, a);
        CHECK_STATUS(dsc_optimizer_step(b), DSC_OK, b);
        dsc_step_stats sa, sb;
        dsc_optimizer_stats(a, &sa);
        dsc_optimizer_stats(b, &sb);
        CHECK(sa.clip_scale == sb.clip_scale);
        CHECK_EQ_INT(sa.zeroed_total, sb.zeroed_total);
    }
    CHECK(memcmp(wa, wb, 2 * sizeof(float)) == 0 && memcmp(va, vb, 2 * sizeof(float)) == 0);
    /* A refused load (a bad file) changes none of it. */
    dsc_optimizer *c = two_groups(wb, gb, vb, hb, "adamw:lr=0.01", "sgd:lr=0.05");
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, -1, SEEK_END);
        int ch = fgetc(f);
        fseek(f, -1, SEEK_END);
        fputc(ch ^ 1, f);
        fclose(f);
    }
    CHECK_STATUS(dsc_optimizer_load(c, path), DSC_CORRUPT, NULL);
    CHECK_STATUS(dsc_optimizer_get_hyper(c, "a", "coordinate_clip", &v), DSC_OK, c);
    CHECK_NEAR(v, 0, 0);
    remove(path);
    dsc_optimizer_free(a);
    dsc_optimizer_free(b);
    dsc_optimizer_free(c);

    /* An older file (no group keys, no transform settings): the caller's
     * settings stay. x sets them before the load, y after it, z not at
     * all; x and y then step alike, z differently. The optimizer of the
     * file: tests/data/README.md. */
    old_rig x, y, z;
    old_rig_init(&x, 1);
    old_rig_init(&y, 0);
    old_rig_init(&z, 0);
    CHECK_STATUS(dsc_optimizer_load(x.o, "tests/data/ckpt_v1.safetensors"), DSC_OK, x.o);
    CHECK_STATUS(dsc_optimizer_load(y.o, "tests/data/ckpt_v1.safetensors"), DSC_OK, y.o);
    CHECK_STATUS(dsc_optimizer_load(z.o, "tests/data/ckpt_v1.safetensors"), DSC_OK, z.o);
    CHECK_STATUS(dsc_optimizer_get_hyper(x.o, "main", "coordinate_clip", &v), DSC_OK, x.o);
    CHECK_NEAR(v, 0.3, 0);
    CHECK_STATUS(dsc_optimizer_set_clip(y.o, DSC_CLIP_VALUE, 0.25), DSC_OK, y.o);
    CHECK_STATUS(dsc_optimizer_set_hyper(y.o, "main", "coordinate_clip", 0.3), DSC_OK, y.o);
    for (int t = 0; t < 2; t++) {
        old_rig_step(&x, t);
        old_rig_step(&y, t);
        old_rig_step(&z, t);
    }
    CHECK(memcmp(x.w, y.w, sizeof x.w) == 0);
    CHECK(memcmp(x.w, z.w, sizeof x.w) != 0);
    dsc_optimizer_free(x.o);
    dsc_optimizer_free(y.o);
    dsc_optimizer_free(z.o);
}

/* ------------------------------------------- a later group fails: nothing */

static int same_file(const char *x, const char *y)
{
    size_t nx = 0, ny = 0;
    char *a = check_slurp(x, &nx), *b = check_slurp(y, &ny);
    int same = a && b && nx == ny && memcmp(a, b, nx) == 0;
    free(a);
    free(b);
    return same;
}

static void test_later_group_fails(void)
{
    char before[64], after[64];
    snprintf(before, sizeof before, "test_transform_%d_a.safetensors", (int)getpid());
    snprintf(after, sizeof after, "test_transform_%d_b.safetensors", (int)getpid());
    enum { N = 24 };
    int64_t sn[1] = {N};
    float w[3][N], g[3][N];
    dsc_optimizer *o = dsc_optimizer_new();
    /* Every transform on: the first groups clip and negate into p->work,
     * the last group (adam) fails validation. */
    static const char *specs[3] = {"sgd:lr=0.1,momentum=0.9,coordinate_clip=0.25",
                                   ("lion:lr=0.01,maximize=1,coordinate_clip=0.5,"
                                    "coordinate_clip_scale=2"),
                                   "adam:lr=0.01"};
    static const char *names[3] = {"s", "l", "a"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++) w[k][i] = 0.05f * (float)(i % 9) - 0.2f;
        CHECK_STATUS(dsc_optimizer_add_group(o, names[k], specs[k]), DSC_OK, o);
        CHECK_STATUS(dsc_optimizer_add_param(o, names[k], w[k], g[k], 1, sn, DSC_ROLE_VECTOR,
                                             names[k]), DSC_OK, o);
    }
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 1.0), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_nonfinite(o, DSC_NONFINITE_ZERO), DSC_OK, o);
    for (int t = 0; t < 3; t++) {
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < N; i++) g[k][i] = (float)cos(0.31 * (i + 1) * (t + 1) + k);
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    }
    /* amsgrad switched on after the parameter joined: no max_exp_avg_sq
     * state, so adam's validation refuses the step. */
    CHECK_STATUS(dsc_optimizer_set_hyper(o, "a", "amsgrad", 1), DSC_OK, o);
    g[0][3] = NAN; /* zeroing would write too, had the step gone on */
    float w0[3][N];
    memcpy(w0, w, sizeof w0);
    dsc_step_stats s0, s1;
    dsc_optimizer_stats(o, &s0);
    CHECK_STATUS(dsc_optimizer_save(o, before), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_step(o), DSC_STATE, NULL);
    CHECK(memcmp(w0, w, sizeof w0) == 0);
    CHECK_EQ_INT(dsc_optimizer_step_count(o), 3);
    dsc_optimizer_stats(o, &s1);
    CHECK_EQ_INT(s1.zeroed_total, s0.zeroed_total);
    CHECK_EQ_INT(s1.clipped_total, s0.clipped_total);
    CHECK_STATUS(dsc_optimizer_save(o, after), DSC_OK, o);
    CHECK(same_file(before, after)); /* every slot, counter and setting */
    remove(before);
    remove(after);
    dsc_optimizer_free(o);
}

int main(void)
{
    test_hand_worked();
    test_coordinate_clip();
    test_checkpoint();
    test_later_group_fails();
    return check_report("test_transform");
}
