/* test_features.c - the spec wrappers (ema, lookahead), the group keys
 * (maximize, layer_decay), step hooks, averaged-weight swapping, the update
 * norm and clip count. The update rules themselves are checked against torch
 * in tests/torch_features.py; here: errors, state, checkpoints, hooks, no
 * allocation, fast == reference bit for bit. */
#include "check.h"
#include "descent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state = 12345;
static float frand(void)
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

static void test_spec_errors(void)
{
    static const struct {
        const char *spec;
        dsc_status want;
    } bad[] = {
        {"ema(decay=1.5):adam", DSC_OUT_OF_RANGE},
        {"ema(decay=1):adam", DSC_OUT_OF_RANGE},
        {"ema(decay=0.9)adam", DSC_PARSE},
        {"ema(decay=0.9:adam", DSC_PARSE},
        {"ema(decay=abc):adam", DSC_PARSE},
        {"ema(warmup=2):adam", DSC_OUT_OF_RANGE},
        {"ema(warmup_gamma=0):adam", DSC_OUT_OF_RANGE},
        {"ema(foo=1):adam", DSC_UNKNOWN_KEY},
        {"ema:ema:adam", DSC_PARSE},
        {"lookahead(k=0):sgd:lr=1", DSC_OUT_OF_RANGE},
        {"lookahead(k=2.5):sgd:lr=1", DSC_OUT_OF_RANGE},
        {"lookahead(alpha=0):sgd:lr=1", DSC_OUT_OF_RANGE},
        {"lookahead(alpha=1.5):sgd:lr=1", DSC_OUT_OF_RANGE},
        {"lookahead(k):sgd:lr=1", DSC_PARSE},
        {"lookahead:nosuch", DSC_UNKNOWN_OPTIMIZER},
        {"adam:layer_decay=0", DSC_OUT_OF_RANGE},
        {"adam:layer_decay=1.2", DSC_OUT_OF_RANGE},
        {"adam:layer_decay=nan", DSC_OUT_OF_RANGE},
        {"lion:maximize=2", DSC_OUT_OF_RANGE},
        {"lion:maximize=yes", DSC_PARSE},
        {"sgd:lr=0.1,decoupled_weight_decay=2", DSC_OUT_OF_RANGE},
        {"adam:bogus=1", DSC_UNKNOWN_KEY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dsc_optimizer *opt = dsc_optimizer_new();
        dsc_status st = dsc_optimizer_add_group(opt, "g", bad[i].spec);
        if (st != bad[i].want)
            fprintf(stderr, "spec \"%s\": %s (%s), expected %s\n", bad[i].spec,
                    dsc_status_name(st), dsc_optimizer_error(opt), dsc_status_name(bad[i].want));
        CHECK(st == bad[i].want);
        CHECK(strlen(dsc_optimizer_error(opt)) > 0);
        CHECK_EQ_INT(dsc_optimizer_group_count(opt), 0); /* a failed call changes nothing */
        dsc_optimizer_free(opt);
    }
    static const char *good[] = {
        "ema(decay=0.99):adam", "ema:adam:lr=1e-3", "lookahead(k=5,alpha=0.5):adamw:lr=1e-3",
        " ema ( decay = 0.9 , warmup = 1 ) : lookahead ( k = 3 ) : sgd : lr = 0.1 ",
        "lion:maximize=1", "lion:lr=1e-4,maximize=1,layer_decay=0.75,weight_decay=0.1",
        "muon:layer_decay=0.8", "adam8bit:maximize=true",
        "sgd:lr=0.1,weight_decay=0.1,decoupled_weight_decay=1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        dsc_optimizer *opt = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_add_group(opt, "g", good[i]), DSC_OK, opt);
        dsc_optimizer_free(opt);
    }
    /* A family's own maximize stays a key of the family (set_hyper works);
     * the group-level one is not a family key. */
    dsc_optimizer *opt = dsc_optimizer_new();
    double v = 0;
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "adam:maximize=1"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "a", "maximize", &v), DSC_OK, opt);
    CHECK(v == 1.0);
    CHECK_STATUS(dsc_optimizer_add_group(opt, "l", "lion:maximize=1,lr=1e-4"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "l", "lr", &v), DSC_OK, opt);
    CHECK(v == 1e-4);
    dsc_optimizer_free(opt);
    /* The listing entries exist and carry their keys. */
    CHECK_EQ_INT(dsc_wrapper_count(), 3);
    CHECK(!strcmp(dsc_wrapper_info(0)->name, "ema"));
    CHECK(!strcmp(dsc_wrapper_info(1)->name, "lookahead"));
    CHECK(dsc_wrapper_info(2)->nkeys == 5); /* maximize, layer_decay, coordinate_clip(_scale), bf16_state */
    CHECK(dsc_wrapper_info(3) == NULL && dsc_wrapper_info(-1) == NULL);
}

/* ------------------------------------------------------------------ hooks */

typedef struct {
    int pre, post, refuse, last_applied, last_skipped, nested;
    int64_t last_step;
    double lr_set;
} hook_log;

static int pre_hook(dsc_optimizer *opt, void *user)
{
    hook_log *h = user;
    h->pre++;
    if (h->lr_set > 0) dsc_optimizer_set_hyper(opt, "g", "lr", h->lr_set);
    h->nested = dsc_optimizer_step(opt); /* not allowed from a hook */
    return h->refuse;
}

static void post_hook(dsc_optimizer *opt, const dsc_step_stats *st, void *user)
{
    (void)opt;
    hook_log *h = user;
    h->post++;
    h->last_applied = st->applied;
    h->last_skipped = st->skipped;
    h->last_step = st->step;
}

static void test_hooks(void)
{
    float w[6], g[6], w0[6];
    fill(w, 6);
    fill(g, 6);
    memcpy(w0, w, sizeof w);
    int64_t shape[1] = {6};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "sgd:lr=0.1"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 1, shape, DSC_ROLE_AUTO, "g"), DSC_OK,
                 opt);
    hook_log h = {0};
    int pre_id = 0, post_id = 0;
    CHECK_STATUS(dsc_optimizer_add_pre_hook(opt, NULL, &h, &pre_id), DSC_NULL_POINTER, opt);
    CHECK_STATUS(dsc_optimizer_add_pre_hook(opt, pre_hook, &h, &pre_id), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_post_hook(opt, post_hook, &h, &post_id), DSC_OK, opt);
    CHECK(pre_id != post_id);
    /* A refusing pre hook: DSC_STATE, nothing changes, post hooks not run. */
    h.refuse = 1;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_STATE, opt);
    CHECK(strstr(dsc_optimizer_error(opt), "refused") != NULL);
    CHECK(memcmp(w, w0, sizeof w) == 0);
    CHECK_EQ_INT(dsc_optimizer_step_count(opt), 0);
    CHECK_EQ_INT(h.pre, 1);
    CHECK_EQ_INT(h.post, 0);
    CHECK_EQ_INT(h.nested, DSC_STATE);
    /* Accepting, and changing lr from the hook: the step uses the new lr. */
    h.refuse = 0;
    h.lr_set = 0.5;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_EQ_INT(h.pre, 2);
    CHECK_EQ_INT(h.post, 1);
    CHECK_EQ_INT(h.last_step, 1);
    CHECK_EQ_INT(h.last_applied, 1);
    for (int i = 0; i < 6; i++) CHECK(w[i] == w0[i] - 0.5f * g[i]);
    /* A skipped step (non-finite gradient) still runs the post hooks. */
    h.lr_set = 0;
    g[2] = NAN;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_EQ_INT(h.post, 2);
    CHECK_EQ_INT(h.last_skipped, 1);
    CHECK_EQ_INT(h.last_applied, 0);
    g[2] = 0.25f;
    /* Accumulation: hooks run on the updating call only. */
    CHECK_STATUS(dsc_optimizer_set_accumulation(opt, 3), DSC_OK, opt);
    int pre0 = h.pre, post0 = h.post;
    for (int i = 0; i < 3; i++) CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_EQ_INT(h.pre - pre0, 1);
    CHECK_EQ_INT(h.post - post0, 1);
    /* Removal. */
    CHECK_STATUS(dsc_optimizer_remove_hook(opt, pre_id), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_remove_hook(opt, pre_id), DSC_UNKNOWN_NAME, opt);
    CHECK_STATUS(dsc_optimizer_remove_hook(opt, post_id), DSC_OK, opt);
    pre0 = h.pre;
    for (int i = 0; i < 3; i++) CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_EQ_INT(h.pre, pre0);
    dsc_optimizer_free(opt);
}

/* --------------------------------------------------- stats: update, clips */

static void test_stats(void)
{
    enum { N = 50000 };
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g), *w0 = malloc(N * sizeof *w0);
    fill(w, N);
    fill(g, N);
    int64_t shape[1] = {N};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "adam:lr=0.01"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 1, shape, DSC_ROLE_AUTO, "g"), DSC_OK,
                 opt);
    dsc_step_stats st;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_optimizer_stats(opt, &st);
    CHECK(isnan(st.update_l2)); /* stats off */
    CHECK_STATUS(dsc_optimizer_set_stats(opt, 1), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 1.0), DSC_OK, opt);
    for (int s = 0; s < 3; s++) {
        memcpy(w0, w, N * sizeof *w);
        for (size_t i = 0; i < N; i++) g[i] *= s == 1 ? 1e-6f : 1.0f; /* step 2: no clip */
        CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
        double want = 0;
        for (size_t i = 0; i < N; i++) want += ((double)w[i] - w0[i]) * ((double)w[i] - w0[i]);
        dsc_optimizer_stats(opt, &st);
        CHECK_NEAR(st.update_l2, sqrt(want), 1e-9 * sqrt(want));
        CHECK(st.update_l2 > 0);
        fill(g, N);
    }
    CHECK_EQ_INT(st.clipped_total, 2);
    g[7] = INFINITY;
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_optimizer_stats(opt, &st);
    CHECK(st.skipped == 1 && st.update_l2 == 0.0 && st.skipped_total == 1);
    dsc_optimizer_free(opt);
    free(w);
    free(g);
    free(w0);
}

/* The families with tracks_update (AdamW, Adam, SGD with and without
 * momentum, Lion, SignSGD, Signum, AdaGrad) measure their update norm
 * inside their step (no copy of the parameters,
 * dsc_parallel_ranges_diff); the reference loops take the copy and compare
 * route. Both must give the same bits, here with an AdamP group (which does
 * not measure its own) between the tracking group's parameters, at 1 and 3
 * threads, over 3 steps (SGD's first step takes its own branch). */
static void test_stats_tracked(void)
{
    enum { NW = 70001, NV = 40000, NU = 100 };
    static const char *const specs[] = {
        "adamw:lr=0.01,weight_decay=0.1", "adam:lr=0.01,weight_decay=0.1,amsgrad=1",
        "sgd:lr=0.01", "sgd:lr=0.01,momentum=0.9,nesterov=1,weight_decay=0.01",
        "lion:lr=1e-3,weight_decay=0.1", "signsgd:lr=1e-3,weight_decay=0.1",
        "signum:lr=1e-3,momentum=0.9", "adagrad:lr=0.01,lr_decay=0.01",
    };
    const size_t total = NW + NV + NU;
    float *x[2], *g = malloc(total * sizeof *g);
    double l2[2][3];
    fill(g, total);
    /* Magnitudes spread over 2^22, so that the lanes' sums round and any
     * other summation order would show in the last bits. */
    for (size_t i = 0; i < total; i++) g[i] = ldexpf(g[i], (int)(i % 23) - 11);
    for (size_t sp = 0; sp < sizeof specs / sizeof specs[0]; sp++)
        for (int threads = 1; threads <= 3; threads += 2) {
            dsc_set_num_threads(threads);
            for (int ref = 0; ref < 2; ref++) {
                x[ref] = malloc(total * sizeof(float));
                for (size_t i = 0; i < total; i++) x[ref][i] = 0.5f * g[(i * 7919) % total];
                dsc_optimizer *opt = dsc_optimizer_new();
                int64_t sw[1] = {NW}, sv[2] = {200, NV / 200}, su[1] = {NU};
                CHECK_STATUS(dsc_optimizer_add_group(opt, "a", specs[sp]), DSC_OK, opt);
                CHECK_STATUS(dsc_optimizer_add_group(opt, "b", "adamp:lr=1e-3"), DSC_OK, opt);
                CHECK_STATUS(dsc_optimizer_add_param(opt, "w", x[ref], g, 1, sw, DSC_ROLE_AUTO,
                                                     "a"), DSC_OK, opt);
                CHECK_STATUS(dsc_optimizer_add_param(opt, "v", x[ref] + NW, g + NW, 2, sv,
                                                     DSC_ROLE_AUTO, "b"), DSC_OK, opt);
                CHECK_STATUS(dsc_optimizer_add_param(opt, "u", x[ref] + NW + NV, g + NW + NV, 1,
                                                     su, DSC_ROLE_AUTO, "a"), DSC_OK, opt);
                CHECK_STATUS(dsc_optimizer_set_stats(opt, 1), DSC_OK, opt);
                dsc_optimizer_use_reference(opt, ref);
                for (int s = 0; s < 3; s++) {
                    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
                    dsc_step_stats st;
                    dsc_optimizer_stats(opt, &st);
                    l2[ref][s] = st.update_l2;
                }
                dsc_optimizer_free(opt);
            }
            for (int s = 0; s < 3; s++) {
                if (!(l2[0][s] == l2[1][s] && l2[0][s] > 0))
                    printf("  %s, %d threads, step %d: update_l2 %.17g fast, %.17g reference\n",
                           specs[sp], threads, s + 1, l2[0][s], l2[1][s]);
                CHECK(l2[0][s] == l2[1][s] && l2[0][s] > 0);
            }
            CHECK(memcmp(x[0], x[1], total * sizeof(float)) == 0);
            free(x[0]);
            free(x[1]);
        }
    dsc_set_num_threads(0);
    free(g);
}

/* The copy of the parameters for the update norm (4 bytes per parameter,
 * work_bytes) exists only where it is used: not for a group that measures
 * its own update (AdamW), yes for one that does not (AdamP) and for a
 * Lookahead group, and for every parameter once the reference loops are
 * on or a parameter moves to a group that needs it; the reference steps
 * then give the same update norm as the tracked ones. */
static size_t work_of(dsc_optimizer *opt, int i)
{
    dsc_param_info info;
    CHECK_STATUS(dsc_optimizer_param_info(opt, i, &info), DSC_OK, opt);
    return info.work_bytes;
}

static void test_stats_prev(void)
{
    enum { N = 50000 };
    float *x = malloc(3 * N * sizeof(float)), *g = malloc(3 * N * sizeof(float));
    fill(g, 3 * N);
    double l2[2];
    for (int ref = 0; ref < 2; ref++) {
        for (size_t i = 0; i < 3 * (size_t)N; i++) x[i] = 0.25f * g[(i * 7919) % (3 * N)];
        dsc_optimizer *opt = dsc_optimizer_new();
        int64_t s1[1] = {N}, s2[2] = {250, N / 250};
        CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "adamw:lr=0.01"), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_group(opt, "b", "adamp:lr=1e-3"), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_group(opt, "c", "lookahead(k=2,alpha=0.5):adamw:lr=0.01"),
                     DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_set_stats(opt, 1), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "w", x, g, 1, s1, DSC_ROLE_AUTO, "a"), DSC_OK,
                     opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "v", x + N, g + N, 2, s2, DSC_ROLE_AUTO, "b"),
                     DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param(opt, "u", x + 2 * N, g + 2 * N, 1, s1,
                                             DSC_ROLE_AUTO, "a"), DSC_OK, opt);
        CHECK_EQ_INT(work_of(opt, 0), 0);
        CHECK(work_of(opt, 1) >= 4 * N); /* the copy, and AdamP's block partials */
        CHECK_EQ_INT(work_of(opt, 2), 0);
        /* u moves to the Lookahead group: it needs the copy from now on */
        CHECK_STATUS(dsc_optimizer_move_param(opt, "u", "c"), DSC_OK, opt);
        CHECK_EQ_INT(work_of(opt, 2), 4 * N);
        dsc_optimizer_use_reference(opt, ref);
        CHECK_EQ_INT(work_of(opt, 0), ref ? 4 * N : 0);
        for (int s = 0; s < 2; s++) CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
        dsc_step_stats st;
        dsc_optimizer_stats(opt, &st);
        l2[ref] = st.update_l2;
        dsc_optimizer_free(opt);
    }
    CHECK(l2[0] == l2[1] && l2[0] > 0);
    /* stats turned on after the parameters: the same rule */
    dsc_optimizer *opt = dsc_optimizer_new();
    int64_t s1[1] = {N};
    CHECK_STATUS(dsc_optimizer_add_group(opt, "a", "lion:lr=1e-3"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", x, g, 1, s1, DSC_ROLE_AUTO, "a"), DSC_OK, opt);
    CHECK_EQ_INT(work_of(opt, 0), 0);
    CHECK_STATUS(dsc_optimizer_set_stats(opt, 1), DSC_OK, opt);
    CHECK_EQ_INT(work_of(opt, 0), 0);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    dsc_optimizer_free(opt);
    free(x);
    free(g);
}

/* --------------------------------------------- wrappers: state and checkpoints */

#define NP 40000 /* above DSC_PAR_MIN: the range kernels run split */

typedef struct {
    dsc_optimizer *opt;
    float *w, *gw, b[5], gb[5];
} wrig;

static void wrig_init(wrig *r, const char *spec, int reference)
{
    r->w = malloc(NP * sizeof(float));
    r->gw = malloc(NP * sizeof(float));
    rng_state = 99;
    fill(r->w, NP);
    fill(r->b, 5);
    r->opt = dsc_optimizer_new();
    int64_t sw[2] = {200, NP / 200}, sb[1] = {5};
    CHECK_STATUS(dsc_optimizer_add_group(r->opt, "g", spec), DSC_OK, r->opt);
    CHECK_STATUS(dsc_optimizer_add_param(r->opt, "h.0.w", r->w, r->gw, 2, sw, DSC_ROLE_AUTO, "g"),
                 DSC_OK, r->opt);
    CHECK_STATUS(dsc_optimizer_add_param(r->opt, "b", r->b, r->gb, 1, sb, DSC_ROLE_AUTO, "g"),
                 DSC_OK, r->opt);
    dsc_optimizer_use_reference(r->opt, reference);
}

static void wrig_step(wrig *r, int t)
{
    rng_state = 1000 + (uint64_t)t;
    fill(r->gw, NP);
    fill(r->gb, 5);
    CHECK_STATUS(dsc_optimizer_step(r->opt), DSC_OK, r->opt);
}

static void wrig_free(wrig *r)
{
    dsc_optimizer_free(r->opt);
    free(r->w);
    free(r->gw);
}

static void test_wrappers(void)
{
    const char *spec = "ema(decay=0.95,warmup=1):lookahead(k=3,alpha=0.6):adamw:lr=0.01,"
                       "weight_decay=0.1,maximize=1,layer_decay=0.5";
    /* Fast == reference, bit for bit, over 1, 2 and 4 threads. */
    wrig ref, fast[3];
    wrig_init(&ref, spec, 1);
    for (int t = 0; t < 7; t++) wrig_step(&ref, t);
    int threads[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        dsc_set_num_threads(threads[k]);
        wrig_init(&fast[k], spec, 0);
        for (int t = 0; t < 7; t++) wrig_step(&fast[k], t);
        CHECK(memcmp(fast[k].w, ref.w, NP * sizeof(float)) == 0);
        CHECK(memcmp(fast[k].b, ref.b, sizeof ref.b) == 0);
        for (int kind = 0; kind < 2; kind++) {
            const float *a = NULL, *b = NULL;
            CHECK_STATUS(dsc_optimizer_average(fast[k].opt, "h.0.w", kind, &a), DSC_OK, NULL);
            CHECK_STATUS(dsc_optimizer_average(ref.opt, "h.0.w", kind, &b), DSC_OK, NULL);
            CHECK(a && b && memcmp(a, b, NP * sizeof(float)) == 0);
        }
    }
    dsc_set_num_threads(0);
    for (int k = 1; k < 3; k++) wrig_free(&fast[k]);
    wrig_free(&ref);

    /* Swapping: the live weights and the EMA exchange, steps and saves are
     * refused meanwhile, a second swap restores the live bits. */
    wrig *r = &fast[0];
    float *live = malloc(NP * sizeof(float));
    memcpy(live, r->w, NP * sizeof(float));
    const float *ema = NULL;
    CHECK_STATUS(dsc_optimizer_average(r->opt, "h.0.w", DSC_AVERAGE_EMA, &ema), DSC_OK, r->opt);
    float *ema_copy = malloc(NP * sizeof(float));
    memcpy(ema_copy, ema, NP * sizeof(float));
    CHECK(memcmp(ema_copy, live, NP * sizeof(float)) != 0);
    CHECK_STATUS(dsc_optimizer_swap_average(r->opt, DSC_AVERAGE_EMA), DSC_OK, r->opt);
    CHECK_EQ_INT(dsc_optimizer_swapped(r->opt), 1 + DSC_AVERAGE_EMA);
    CHECK(memcmp(r->w, ema_copy, NP * sizeof(float)) == 0);
    CHECK_STATUS(dsc_optimizer_step(r->opt), DSC_STATE, r->opt);
    char path[64];
    snprintf(path, sizeof path, "/tmp/descent_features_%d.safetensors", (int)getpid());
    CHECK_STATUS(dsc_optimizer_save(r->opt, path), DSC_STATE, r->opt);
    CHECK_STATUS(dsc_optimizer_swap_average(r->opt, DSC_AVERAGE_LOOKAHEAD), DSC_STATE, r->opt);
    CHECK_STATUS(dsc_optimizer_swap_average(r->opt, DSC_AVERAGE_EMA), DSC_OK, r->opt);
    CHECK_EQ_INT(dsc_optimizer_swapped(r->opt), 0);
    CHECK(memcmp(r->w, live, NP * sizeof(float)) == 0);
    CHECK_STATUS(dsc_optimizer_swap_average(r->opt, (dsc_average_kind)7), DSC_OUT_OF_RANGE, r->opt);

    /* Checkpoint: save, run on; a fresh optimizer that loads continues with
     * the same bits (the EMA, slow weights and their counters are state). */
    CHECK_STATUS(dsc_optimizer_save(r->opt, path), DSC_OK, r->opt);
    float *w_saved = malloc(NP * sizeof(float)), b_saved[5];
    memcpy(w_saved, r->w, NP * sizeof(float));
    memcpy(b_saved, r->b, sizeof b_saved);
    for (int t = 7; t < 12; t++) wrig_step(r, t);
    wrig again;
    wrig_init(&again, spec, 0);
    memcpy(again.w, w_saved, NP * sizeof(float));
    memcpy(again.b, b_saved, sizeof b_saved);
    CHECK_STATUS(dsc_optimizer_load(again.opt, path), DSC_OK, again.opt);
    for (int t = 7; t < 12; t++) wrig_step(&again, t);
    CHECK(memcmp(again.w, r->w, NP * sizeof(float)) == 0);
    const float *e1 = NULL, *e2 = NULL;
    dsc_optimizer_average(r->opt, "b", DSC_AVERAGE_EMA, &e1);
    dsc_optimizer_average(again.opt, "b", DSC_AVERAGE_EMA, &e2);
    CHECK(e1 && e2 && memcmp(e1, e2, 5 * sizeof(float)) == 0);
    wrig_free(&again);
    /* Into an optimizer without the wrappers: refused, nothing changes. */
    wrig plain;
    wrig_init(&plain, "adamw:lr=0.01,weight_decay=0.1", 0);
    CHECK(dsc_optimizer_load(plain.opt, path) != DSC_OK);
    wrig_free(&plain);
    remove(path);

    /* Averages before any update, of unknown parameters, of absent wrappers. */
    wrig fresh;
    wrig_init(&fresh, "lookahead:sgd:lr=0.1", 0);
    const float *a = NULL;
    CHECK_STATUS(dsc_optimizer_average(fresh.opt, "b", DSC_AVERAGE_LOOKAHEAD, &a), DSC_STATE, NULL);
    CHECK_STATUS(dsc_optimizer_swap_average(fresh.opt, DSC_AVERAGE_LOOKAHEAD), DSC_STATE, fresh.opt);
    wrig_step(&fresh, 0);
    CHECK_STATUS(dsc_optimizer_average(fresh.opt, "b", DSC_AVERAGE_LOOKAHEAD, &a), DSC_OK, NULL);
    CHECK_STATUS(dsc_optimizer_average(fresh.opt, "b", DSC_AVERAGE_EMA, &a), DSC_STATE, NULL);
    CHECK_STATUS(dsc_optimizer_average(fresh.opt, "nope", DSC_AVERAGE_LOOKAHEAD, &a),
                 DSC_UNKNOWN_NAME, NULL);
    CHECK_STATUS(dsc_optimizer_swap_average(fresh.opt, DSC_AVERAGE_EMA), DSC_STATE, fresh.opt);
    /* State size: sgd's buffer and step, plus the slow weights and a counter. */
    dsc_param_info info;
    dsc_optimizer_param_info(fresh.opt, 1, &info);
    CHECK_EQ_INT(info.state_bytes, 5 * 4 + 8 + 5 * 4 + 8);
    wrig_free(&fresh);
    wrig_free(r);
    free(live);
    free(ema_copy);
    free(w_saved);
}

/* ------------------------------------------------------------ layer decay */

static void test_layer_decay(void)
{
    /* Plain SGD, so each update is exactly -lr * scale * g. */
    float a[3] = {0}, b[3] = {0}, c[3] = {0}, e[3] = {0}, g[3] = {1, 1, 1};
    int64_t s[1] = {3}, s2[2] = {1, 3};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "sgd:lr=1,layer_decay=0.5"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "blocks.2.w", a, g, 1, s, DSC_ROLE_AUTO, "g"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "blocks.0.w", b, g, 1, s, DSC_ROLE_AUTO, "g"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "norm.w", c, g, 1, s, DSC_ROLE_AUTO, "g"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "tok_embed", e, g, 2, s2, DSC_ROLE_AUTO, "g"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    /* depths: blocks.2 -> 3, blocks.0 -> 1, embedding 0, norm the top 4. */
    CHECK(a[0] == -0.5f && b[0] == -0.125f && c[0] == -1.0f && e[0] == -0.0625f);
    /* An explicit depth above the others becomes the top. */
    CHECK_STATUS(dsc_optimizer_set_param_layer(opt, "norm.w", 6), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_set_param_layer(opt, "nope", 1), DSC_UNKNOWN_NAME, opt);
    CHECK_STATUS(dsc_optimizer_set_param_layer(opt, "norm.w", -2), DSC_OUT_OF_RANGE, opt);
    CHECK_STATUS(dsc_optimizer_set_param_layer(NULL, "norm.w", 1), DSC_NULL_POINTER, NULL);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK(c[0] == -2.0f && a[0] == -0.5f - 0.125f);
    dsc_optimizer_free(opt);
}

/* ------------------------------------------------------- no allocation */

static long alloc_count = 0;
static void *counting_malloc(size_t n)
{
    alloc_count++;
    return malloc(n);
}

static void test_no_alloc(void)
{
    dsc_set_allocator(counting_malloc, free);
    wrig r;
    wrig_init(&r, "ema(warmup=1):lookahead(k=2):lion:lr=1e-3,maximize=1,layer_decay=0.7", 0);
    CHECK_STATUS(dsc_optimizer_set_stats(r.opt, 1), DSC_OK, r.opt);
    hook_log h = {0};
    CHECK_STATUS(dsc_optimizer_add_post_hook(r.opt, post_hook, &h, NULL), DSC_OK, r.opt);
    long before = alloc_count;
    for (int t = 0; t < 5; t++) wrig_step(&r, t);
    CHECK_EQ_INT(alloc_count - before, 0);
    CHECK_EQ_INT(h.post, 5);
    wrig_free(&r);
    /* bf16 parameters, both modes, with accumulation and clipping. */
    enum { NB = 50000 };
    uint16_t *wb = calloc(NB, sizeof *wb), *gb = calloc(NB, sizeof *gb);
    for (size_t i = 0; i < NB; i++) wb[i] = 0x3F80, gb[i] = (uint16_t)(0x3A00 + (i & 0xFF));
    int64_t sh[1] = {NB / 2};
    dsc_optimizer *o = dsc_optimizer_new();
    dsc_optimizer_add_group(o, "g", "lookahead:adamw:lr=1e-3");
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o, "m", wb, gb, 1, sh, DSC_ROLE_AUTO, "g",
                                              DSC_BF16_MASTER), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o, "s", wb + NB / 2, gb + NB / 2, 1, sh,
                                              DSC_ROLE_AUTO, "g", DSC_BF16_STOCHASTIC), DSC_OK, o);
    dsc_optimizer_set_accumulation(o, 2);
    dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 1.0);
    dsc_optimizer_set_stats(o, 1);
    before = alloc_count;
    for (int t = 0; t < 6; t++) CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    CHECK_EQ_INT(alloc_count - before, 0);
    CHECK_EQ_INT(dsc_optimizer_step_count(o), 3);
    dsc_optimizer_free(o);
    free(wb);
    free(gb);
    dsc_set_allocator(NULL, NULL);
}

/* ------------------------------------------------------------- bf16 */

static uint16_t to_bf16(float x) /* round to nearest even, as torch */
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

static void test_bf16(void)
{
    enum { N = 70000 }; /* above DSC_PAR_MIN: split over threads */
    uint16_t *w[3], *g = malloc(N * sizeof *g);
    int64_t shape[1] = {N};
    int threads[3] = {1, 2, 4};
    /* Stochastic rounding: the same bits for any thread count. */
    for (int k = 0; k < 3; k++) {
        w[k] = malloc(N * sizeof(uint16_t));
        rng_state = 5;
        for (size_t i = 0; i < N; i++) w[k][i] = to_bf16(frand());
        dsc_set_num_threads(threads[k]);
        dsc_optimizer *opt = dsc_optimizer_new();
        CHECK_STATUS(dsc_optimizer_add_group(opt, "g", "adamw:lr=1e-3"), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_add_param_bf16(opt, "w", w[k], g, 1, shape, DSC_ROLE_AUTO, "g",
                                                  DSC_BF16_STOCHASTIC), DSC_OK, opt);
        CHECK_STATUS(dsc_optimizer_set_seed(opt, 42), DSC_OK, opt);
        for (int t = 0; t < 4; t++) {
            for (size_t i = 0; i < N; i++) g[i] = to_bf16(frand());
            CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
        }
        dsc_param_info info;
        dsc_optimizer_param_info(opt, 0, &info);
        CHECK_EQ_INT(info.bf16, 1 + DSC_BF16_STOCHASTIC);
        CHECK_EQ_INT(info.state_bytes, 2 * 4 * N + 8); /* adamw's moments and step: no master */
        CHECK_EQ_INT(info.work_bytes, 2 * 4 * N);      /* float32 gradient and parameter */
        dsc_optimizer_free(opt);
    }
    dsc_set_num_threads(0);
    CHECK(memcmp(w[0], w[1], N * sizeof(uint16_t)) == 0);
    CHECK(memcmp(w[0], w[2], N * sizeof(uint16_t)) == 0);

    /* Master copy: checkpointed; a resumed run continues with the same bits,
     * and the EMA wrapper swaps into the bf16 buffer. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/descent_bf16_%d.safetensors", (int)getpid());
    uint16_t *a = w[0], *b = w[1];
    rng_state = 9;
    for (size_t i = 0; i < N; i++) a[i] = to_bf16(frand());
    dsc_optimizer *o1 = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(o1, "g", "ema(decay=0.9):sgd:lr=1e-4,momentum=0.9"),
                 DSC_OK, o1);
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o1, "w", a, g, 1, shape, DSC_ROLE_AUTO, "g",
                                              DSC_BF16_MASTER), DSC_OK, o1);
    dsc_param_info info;
    dsc_optimizer_param_info(o1, 0, &info);
    CHECK_EQ_INT(info.state_bytes, 4 * N + 8 + 4 * N + 8 + 4 * N); /* buffer, ema, master */
    CHECK_EQ_INT(info.work_bytes, 4 * N);
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < N; i++) g[i] = to_bf16(frand());
        CHECK_STATUS(dsc_optimizer_step(o1), DSC_OK, o1);
    }
    CHECK_STATUS(dsc_optimizer_save(o1, path), DSC_OK, o1);
    uint16_t *at_save = malloc(N * sizeof(uint16_t));
    memcpy(at_save, a, N * sizeof(uint16_t));
    uint64_t rs = rng_state;
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < N; i++) g[i] = to_bf16(frand());
        CHECK_STATUS(dsc_optimizer_step(o1), DSC_OK, o1);
    }
    dsc_optimizer *o2 = dsc_optimizer_new();
    dsc_optimizer_add_group(o2, "g", "ema(decay=0.9):sgd:lr=1e-4,momentum=0.9");
    memset(b, 0, N * sizeof(uint16_t)); /* the load brings the master back into b */
    dsc_optimizer_add_param_bf16(o2, "w", b, g, 1, shape, DSC_ROLE_AUTO, "g", DSC_BF16_MASTER);
    CHECK_STATUS(dsc_optimizer_load(o2, path), DSC_OK, o2);
    CHECK(memcmp(b, at_save, N * sizeof(uint16_t)) == 0);
    free(at_save);
    rng_state = rs;
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < N; i++) g[i] = to_bf16(frand());
        CHECK_STATUS(dsc_optimizer_step(o2), DSC_OK, o2);
    }
    CHECK(memcmp(a, b, N * sizeof(uint16_t)) == 0);
    /* With lr 1e-4 most steps are below half a bf16 step: the master keeps
     * them, so the weights differ from the start after 6 steps. */
    const float *ema = NULL;
    CHECK_STATUS(dsc_optimizer_average(o2, "w", DSC_AVERAGE_EMA, &ema), DSC_OK, o2);
    uint16_t first = to_bf16(ema[0]);
    CHECK_STATUS(dsc_optimizer_swap_average(o2, DSC_AVERAGE_EMA), DSC_OK, o2);
    CHECK(b[0] == first);
    CHECK_STATUS(dsc_optimizer_swap_average(o2, DSC_AVERAGE_EMA), DSC_OK, o2);
    CHECK(memcmp(a, b, N * sizeof(uint16_t)) == 0);
    /* A float32 optimizer without the master slot refuses the checkpoint. */
    dsc_optimizer *o3 = dsc_optimizer_new();
    float *wf = calloc(N, sizeof(float)), *gf = calloc(N, sizeof(float));
    dsc_optimizer_add_group(o3, "g", "ema(decay=0.9):sgd:lr=1e-4,momentum=0.9");
    dsc_optimizer_add_param(o3, "w", wf, gf, 1, shape, DSC_ROLE_AUTO, "g");
    CHECK(dsc_optimizer_load(o3, path) != DSC_OK);
    remove(path);
    /* Errors. */
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o3, "x", NULL, g, 1, shape, DSC_ROLE_AUTO, "g",
                                              DSC_BF16_MASTER), DSC_NULL_POINTER, o3);
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o3, "x", a, g, 1, shape, DSC_ROLE_AUTO, "g",
                                              (dsc_bf16_mode)5), DSC_OUT_OF_RANGE, o3);
    CHECK_STATUS(dsc_optimizer_add_param_bf16(o3, "w", a, g, 1, shape, DSC_ROLE_AUTO, "g",
                                              DSC_BF16_MASTER), DSC_DUPLICATE_NAME, o3);
    CHECK_EQ_INT(dsc_optimizer_param_count(o3), 1);
    CHECK_STATUS(dsc_optimizer_rebind(o2, "w", wf, gf), DSC_STATE, o2);
    dsc_optimizer_free(o1);
    dsc_optimizer_free(o2);
    dsc_optimizer_free(o3);
    free(wf);
    free(gf);
    for (int k = 0; k < 3; k++) free(w[k]);
    free(g);
}

int main(void)
{
    test_spec_errors();
    test_hooks();
    test_stats();
    test_stats_tracked();
    test_stats_prev();
    test_wrappers();
    test_layer_decay();
    test_no_alloc();
    test_bf16();
    return check_report("test_features");
}
