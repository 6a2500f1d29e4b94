/* test_bf16_state.c - optimizer states stored in bf16 (the group key
 * bf16_state).
 *
 * The reference for rounding to nearest is built from the public API alone:
 * the float32 optimizer (whose update replays the official code's golden
 * files) with every state slot rounded to bf16 after each step through
 * dsc_optimizer_read_slot / write_slot. bf16_state=1 must give the same
 * parameters and states bit for bit. tests/python/test_torch.py checks the
 * same against torch.optim. Stochastic rounding is checked for what it
 * promises: unbiased rounding (exhaustively over the 16 random bits), a
 * second moment that keeps decaying where rounding to nearest freezes it,
 * the same bits for any thread count, by the reference loops and after a
 * checkpoint (the seed is saved). */
#include "check.h"
#include "descent.h"
#include "kernels/bf16.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Test data from the library's generator (kernels/rng.h, via bf16.h). */
static uint64_t rng_state = 777;
static float frand(void) { return (float)(dsc_rng_unit(dsc_rng_next(&rng_state)) * 2.0 - 1.0); }

/* Two parameters: a small matrix and a vector long enough to be split over
 * threads (DSC_PAR_MIN is 32768). */
#define NA (37 * 29)
#define NB 70001
static const int64_t shape_a[2] = {37, 29}, shape_b[1] = {NB};

typedef struct {
    dsc_optimizer *opt;
    float a[NA], ga[NA];
    float *b, *gb;
} model;

static model *model_new(const char *spec, uint64_t seed)
{
    model *m = calloc(1, sizeof *m);
    m->b = malloc(NB * sizeof(float));
    m->gb = malloc(NB * sizeof(float));
    rng_state = seed;
    for (int i = 0; i < NA; i++) m->a[i] = frand();
    for (int i = 0; i < NB; i++) m->b[i] = frand();
    m->opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(m->opt, "g", spec), DSC_OK, m->opt);
    CHECK_STATUS(dsc_optimizer_add_param(m->opt, "a", m->a, m->ga, 2, shape_a, DSC_ROLE_MATRIX,
                                         "g"),
                 DSC_OK, m->opt);
    CHECK_STATUS(dsc_optimizer_add_param(m->opt, "b", m->b, m->gb, 1, shape_b, DSC_ROLE_VECTOR,
                                         "g"),
                 DSC_OK, m->opt);
    return m;
}

static void model_free(model *m)
{
    if (!m) return;
    dsc_optimizer_free(m->opt);
    free(m->b);
    free(m->gb);
    free(m);
}

/* The gradients of step k (the same for every model). */
static void gradients(model *m, int k)
{
    rng_state = 1000 + (uint64_t)k;
    for (int i = 0; i < NA; i++) m->ga[i] = frand();
    for (int i = 0; i < NB; i++) m->gb[i] = frand() * (i % 7 == 0 ? 1e-3f : 1.0f);
}

/* Slot `slot` of parameter `name` as float32, whatever its storage. */
static float *slot_f32(dsc_optimizer *opt, const char *name, const char *slot, size_t *count)
{
    int n = dsc_optimizer_slot_count(opt, name, 0);
    for (int i = 0; i < n; i++) {
        dsc_slot_info info;
        if (dsc_optimizer_slot_info(opt, name, 0, i, &info) != DSC_OK) return NULL;
        if (strcmp(info.name, slot)) continue;
        void *raw = malloc(info.bytes);
        float *out = malloc(info.count * sizeof(float));
        CHECK_STATUS(dsc_optimizer_read_slot(opt, name, 0, slot, raw, info.bytes), DSC_OK, opt);
        if (!strcmp(info.dtype, "BF16"))
            for (size_t j = 0; j < info.count; j++) out[j] = dsc_bf16_widen(((uint16_t *)raw)[j]);
        else memcpy(out, raw, info.count * sizeof(float));
        free(raw);
        *count = info.count;
        return out;
    }
    return NULL;
}

/* Round every float32 slot of `name` except "step" to bf16 in place. */
static void round_slots(dsc_optimizer *opt, const char *name)
{
    int n = dsc_optimizer_slot_count(opt, name, 0);
    for (int i = 0; i < n; i++) {
        dsc_slot_info info;
        CHECK_STATUS(dsc_optimizer_slot_info(opt, name, 0, i, &info), DSC_OK, opt);
        if (strcmp(info.dtype, "F32")) continue;
        float *x = malloc(info.bytes);
        CHECK_STATUS(dsc_optimizer_read_slot(opt, name, 0, info.name, x, info.bytes), DSC_OK,
                     opt);
        for (size_t j = 0; j < info.count; j++) x[j] = dsc_bf16_widen(dsc_bf16_round(x[j]));
        CHECK_STATUS(dsc_optimizer_write_slot(opt, name, 0, info.name, x, info.bytes), DSC_OK,
                     opt);
        free(x);
    }
}

static int same_bits(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

/* Parameters and every state slot of two models are equal bit for bit. */
static int same_models(model *x, model *y, const char *const *slots)
{
    int ok = same_bits(x->a, y->a, NA) && same_bits(x->b, y->b, NB);
    for (int s = 0; slots[s]; s++)
        for (int w = 0; w < 2; w++) {
            const char *name = w ? "b" : "a";
            size_t nx = 0, ny = 0;
            float *sx = slot_f32(x->opt, name, slots[s], &nx);
            float *sy = slot_f32(y->opt, name, slots[s], &ny);
            ok = ok && sx && sy && nx == ny && same_bits(sx, sy, nx);
            free(sx);
            free(sy);
        }
    return ok;
}

typedef struct {
    const char *spec;
    const char *slots[4];
} family_case;

/* adagrad's initial value is a bf16 number: the bf16 sum starts rounded,
 * the float32 one would not (see adagrad.c). */
static const family_case cases[] = {
    {"sgd:lr=0.1,momentum=0.9,weight_decay=0.01", {"momentum_buffer"}},
    {"sgd:lr=0.1,momentum=0.9,nesterov=1,maximize=1", {"momentum_buffer"}},
    {"sgd:lr=0.1,momentum=0.8,dampening=0.1,weight_decay=0.1,decoupled_weight_decay=1",
     {"momentum_buffer"}},
    {"adam:lr=1e-2,weight_decay=0.1", {"exp_avg", "exp_avg_sq"}},
    {"adamw:lr=1e-2,amsgrad=1,beta2=0.99", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
    {"adam:lr=1e-3,maximize=1,amsgrad=1", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
    {"adagrad:lr=0.1,initial_accumulator_value=0.125,weight_decay=0.01,lr_decay=0.01",
     {"sum"}},
    {"lion:lr=1e-3,weight_decay=0.1", {"exp_avg"}},
    {"signum:lr=1e-2,weight_decay=0.01", {"momentum_buffer"}},
    {"signum:lr=1e-2,momentum=0.95", {"momentum_buffer"}},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* bf16_state=1 == float32 optimizer with its states rounded after every step. */
static void test_matches_rounded_float32(int reference)
{
    for (int c = 0; c < NCASES; c++) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s,bf16_state=1", cases[c].spec);
        model *f = model_new(cases[c].spec, 5), *h = model_new(spec, 5);
        dsc_optimizer_use_reference(h->opt, reference);
        int ok = 1;
        for (int k = 0; k < 6 && ok; k++) {
            gradients(f, k);
            gradients(h, k);
            CHECK_STATUS(dsc_optimizer_step(f->opt), DSC_OK, f->opt);
            CHECK_STATUS(dsc_optimizer_step(h->opt), DSC_OK, h->opt);
            round_slots(f->opt, "a");
            round_slots(f->opt, "b");
            ok = same_models(f, h, cases[c].slots);
        }
        if (!ok) fprintf(stderr, "bf16 states differ from rounded float32: %s%s\n", spec,
                         reference ? " (reference loops)" : "");
        CHECK(ok);
        model_free(f);
        model_free(h);
    }
}

/* The stochastic rounding's bits: the same with 1 and 2 threads, with the
 * reference loops, and only the same under the same seed. */
static void test_stochastic_determinism(void)
{
    for (int c = 0; c < NCASES; c++) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s,bf16_state=2", cases[c].spec);
        model *m[4];
        for (int v = 0; v < 4; v++) {
            m[v] = model_new(spec, 9);
            CHECK_STATUS(dsc_optimizer_set_seed(m[v]->opt, v == 3 ? 43 : 42), DSC_OK, m[v]->opt);
        }
        dsc_optimizer_use_reference(m[2]->opt, 1);
        int threads = dsc_get_num_threads();
        for (int k = 0; k < 4; k++)
            for (int v = 0; v < 4; v++) {
                gradients(m[v], k);
                dsc_set_num_threads(v == 1 ? 1 : 2);
                CHECK_STATUS(dsc_optimizer_step(m[v]->opt), DSC_OK, m[v]->opt);
            }
        dsc_set_num_threads(threads);
        CHECK(same_models(m[0], m[1], cases[c].slots)); /* 1 vs 2 threads */
        CHECK(same_models(m[0], m[2], cases[c].slots)); /* reference loops */
        size_t n0 = 0, n3 = 0;
        float *s0 = slot_f32(m[0]->opt, "b", cases[c].slots[0], &n0);
        float *s3 = slot_f32(m[3]->opt, "b", cases[c].slots[0], &n3);
        CHECK(s0 && s3 && n0 == n3 && !same_bits(s0, s3, n0)); /* another seed */
        free(s0);
        free(s3);
        for (int v = 0; v < 4; v++) model_free(m[v]);
    }
}

/* Over all 2^16 random bit patterns a value rounds to its two neighbours
 * in the proportion that makes the mean exact. */
static void test_rounding_unbiased(void)
{
    const float xs[] = {1.0f + 0x1p-9f, -3.14159265f, 1e-3f, 0.999f * 1e-3f, 7.77e20f,
                        -2.5e-30f, 65504.1f, 1.0f};
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        double sum = 0;
        for (uint32_t r = 0; r < 65536; r++)
            sum += dsc_bf16_widen(dsc_bf16_round_stochastic(xs[k], r));
        CHECK(sum / 65536.0 == (double)xs[k]);
    }
    CHECK(dsc_bf16_round(1.0f + 0x1p-8f) == 0x3F80); /* a tie goes to even */
    CHECK(dsc_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);
    CHECK(dsc_bf16_round(NAN) == 0x7FC0);
    CHECK(dsc_bf16_round_stochastic(INFINITY, 0xFFFF) == 0x7F80);
}

/* Adam's second moment under beta2 = 0.999 and zero gradients: the exact
 * value decays by 0.999 per step; rounded to nearest, 0.999 v rounds back
 * to v (a change below half a bf16 step) and the moment freezes; rounded
 * stochastically, it keeps decaying on average. */
static void test_second_moment_decay(void)
{
    const int steps = 200;
    double exact = 0.001 * pow(0.999, steps); /* v after step 1 is (1 - beta2) g^2 = 1e-3 */
    double mean[2];
    for (int sr = 0; sr < 2; sr++) {
        model *m = model_new(sr ? "adam:lr=1e-6,bf16_state=2" : "adam:lr=1e-6,bf16_state=1", 3);
        for (int i = 0; i < NA; i++) m->ga[i] = 1.0f;
        for (int i = 0; i < NB; i++) m->gb[i] = 1.0f;
        CHECK_STATUS(dsc_optimizer_step(m->opt), DSC_OK, m->opt);
        memset(m->gb, 0, NB * sizeof(float));
        memset(m->ga, 0, NA * sizeof(float));
        for (int k = 0; k < steps; k++) CHECK_STATUS(dsc_optimizer_step(m->opt), DSC_OK, m->opt);
        size_t n = 0;
        float *v = slot_f32(m->opt, "b", "exp_avg_sq", &n);
        double s = 0;
        for (size_t i = 0; i < n; i++) s += v[i];
        mean[sr] = s / (double)n;
        free(v);
        model_free(m);
    }
    CHECK(mean[0] == (double)dsc_bf16_widen(dsc_bf16_round(1e-3f))); /* frozen */
    CHECK_NEAR(mean[1] / exact, 1.0, 0.005);                         /* decays */
}

static void test_errors_and_memory(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "m", "muon:lr=0.02,bf16_state=1"),
                 DSC_INVALID_ARGUMENT, opt);
    CHECK(strstr(dsc_optimizer_error(opt), "float32") != NULL);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "x", "adam:bf16_state=3"), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "y", "adam:bf16_state=0.5"), DSC_OUT_OF_RANGE,
                 opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "adamw"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "e", "adam"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "e", "bf16_state", 1), DSC_OK, opt); /* empty */
    float p[8] = {0}, g[8] = {0};
    int64_t shape[1] = {8};
    CHECK_STATUS(dsc_optimizer_add_param(opt, "p", p, g, 1, shape, DSC_ROLE_VECTOR, "g"), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "g", "bf16_state", 1), DSC_STATE, opt);
    double v = -1;
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "g", "bf16_state", &v), DSC_OK, opt);
    CHECK(v == 0);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "q", p, g, 1, shape, DSC_ROLE_VECTOR, "e"), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "e", "bf16_state", 2), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_hyper(opt, "e", "bf16_state", 0), DSC_STATE, opt);
    dsc_slot_info info;
    CHECK_STATUS(dsc_optimizer_slot_info(opt, "q", 0, 0, &info), DSC_OK, opt);
    CHECK(!strcmp(info.dtype, "BF16") && info.bytes == 16);
    dsc_optimizer_free(opt);

    const int64_t n[1] = {1000};
    size_t b32 = 0, b16 = 0, l16 = 0;
    CHECK_STATUS(dsc_state_bytes("adamw", 1, n, &b32), DSC_OK, NULL);
    CHECK_STATUS(dsc_state_bytes("adamw:bf16_state=1", 1, n, &b16), DSC_OK, NULL);
    CHECK_STATUS(dsc_state_bytes("lion:bf16_state=2", 1, n, &l16), DSC_OK, NULL);
    CHECK_EQ_INT(b32, 8000 + 8); /* two float32 moments and the step counter */
    CHECK_EQ_INT(b16, 4000 + 8);
    CHECK_EQ_INT(l16, 2000);
}

/* x takes `before` steps and saves to path; y gets x's parameters and
 * loads the file; both take `after` more steps on the same gradients. */
static void save_load_continue(model *x, model *y, const char *path, int before, int after)
{
    for (int k = 0; k < before; k++) {
        gradients(x, k);
        CHECK_STATUS(dsc_optimizer_step(x->opt), DSC_OK, x->opt);
    }
    CHECK_STATUS(dsc_optimizer_save(x->opt, path), DSC_OK, x->opt);
    memcpy(y->a, x->a, sizeof y->a);
    memcpy(y->b, x->b, NB * sizeof(float));
    CHECK_STATUS(dsc_optimizer_load(y->opt, path), DSC_OK, y->opt);
    for (int k = before; k < before + after; k++) {
        gradients(x, k);
        gradients(y, k);
        CHECK_STATUS(dsc_optimizer_step(x->opt), DSC_OK, x->opt);
        CHECK_STATUS(dsc_optimizer_step(y->opt), DSC_OK, y->opt);
    }
}

/* Save, load into a fresh optimizer with another seed: the seed and the
 * bf16 states come back, and both continue with the same bits. A float32
 * optimizer refuses the file and is unchanged. */
static void test_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "bf16_state_%d.safetensors", (int)getpid());
    const char *spec = "adamw:lr=1e-2,amsgrad=1,bf16_state=2";
    const char *slots[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", NULL};
    model *x = model_new(spec, 11), *y = model_new(spec, 11);
    CHECK_STATUS(dsc_optimizer_set_seed(x->opt, 99), DSC_OK, x->opt);
    CHECK_STATUS(dsc_optimizer_set_seed(y->opt, 5), DSC_OK, y->opt);
    save_load_continue(x, y, path, 3, 3);
    CHECK(same_models(x, y, slots));

    model *f = model_new("adamw:lr=1e-2,amsgrad=1", 11);
    CHECK(dsc_optimizer_load(f->opt, path) != DSC_OK);
    CHECK(strstr(dsc_optimizer_error(f->opt), "BF16") != NULL);
    size_t n = 0;
    float *m = slot_f32(f->opt, "b", "exp_avg", &n);
    int zero = m != NULL;
    for (size_t i = 0; m && i < n; i++) zero &= m[i] == 0;
    CHECK(zero);
    free(m);
    model_free(f);
    model_free(x);
    model_free(y);
    remove(path);
}

/* The wrappers' settings travel with the checkpoint: a file saved under
 * ema(decay=0.9,warmup=1) and lookahead(k=3,alpha=0.7) continues the same
 * way when loaded into an optimizer built with other settings; an
 * optimizer without the wrapper refuses it and is unchanged. */
static void test_wrapper_settings_checkpoint(void)
{
    char path[64];
    snprintf(path, sizeof path, "wrap_settings_%d.safetensors", (int)getpid());
    const char *slots[] = {"exp_avg", "ema", "lookahead_slow", NULL};
    model *x = model_new("ema(decay=0.9,warmup=1):lookahead(k=3,alpha=0.7):adam:lr=1e-2", 4);
    model *y = model_new("ema(decay=0.5):lookahead(k=5,alpha=0.5):adam:lr=1e-2", 4);
    save_load_continue(x, y, path, 4, 5);
    CHECK(same_models(x, y, slots));
    model *z = model_new("lookahead(k=3,alpha=0.7):adam:lr=1e-2", 4);
    CHECK_STATUS(dsc_optimizer_load(z->opt, path), DSC_MISMATCH, z->opt);
    model_free(x);
    model_free(y);
    model_free(z);
    remove(path);
}

int main(void)
{
    test_rounding_unbiased();
    test_matches_rounded_float32(0);
    test_matches_rounded_float32(1);
    test_stochastic_determinism();
    test_second_moment_decay();
    test_errors_and_memory();
    test_checkpoint();
    test_wrapper_settings_checkpoint();
    return check_report("test_bf16_state");
}
