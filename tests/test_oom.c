/* test_oom.c - out-of-memory injection through the allocator hook
 * (dsc_set_allocator) for every public call that allocates: for each call,
 * the k-th allocation fails for k = 1, 2, ... until the call succeeds.
 * Each failure must return DSC_NO_MEMORY (or NULL), leave the optimizer as
 * it was (groups, parameters, state bytes and the bytes of a checkpoint
 * saved after it) and leak nothing (the ASan build checks leaks); the
 * optimizer must still step afterwards. A step allocates nothing. */
#include "check.h"
#include "descent.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static long alloc_left = -1; /* allocations until the injected failure; -1 off */
static int injected;         /* the failure happened */
static long allocs;          /* allocations seen while armed */

static void *failing_alloc(size_t n)
{
    allocs++;
    if (alloc_left == 0) {
        injected = 1;
        alloc_left = -1; /* one failure per run: what follows may succeed */
        return NULL;
    }
    if (alloc_left > 0) alloc_left--;
    return malloc(n);
}

static void arm(long k)
{
    alloc_left = k;
    injected = 0;
    allocs = 0;
}

static void disarm(void) { alloc_left = -1; }

static char tmpdir[64] = "/tmp/descent-oom-XXXXXX";
static char ck_path[128], probe_a[128], probe_b[128];

static float w_m[48], g_m[48], w_v[8], g_v[8], w_e[40], g_e[40];

/* The base rig: two groups, two parameters. */
static dsc_optimizer *rig(void)
{
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t sm[2] = {6, 8}, sv[1] = {8};
    if (!o || dsc_optimizer_add_group(o, "m", "adamw:lr=1e-2") ||
        dsc_optimizer_add_group(o, "s", "sgd:lr=0.1,momentum=0.9") ||
        dsc_optimizer_add_param(o, "w", w_m, g_m, 2, sm, DSC_ROLE_AUTO, "m") ||
        dsc_optimizer_add_param(o, "b", w_v, g_v, 1, sv, DSC_ROLE_AUTO, "s")) {
        fprintf(stderr, "rig: %s\n", o ? dsc_optimizer_error(o) : "new failed");
        exit(1);
    }
    for (int i = 0; i < 48; i++) g_m[i] = (float)((i * 5) % 7) - 3.0f;
    for (int i = 0; i < 8; i++) g_v[i] = 0.1f * (float)i;
    return o;
}

typedef struct {
    int groups, params;
    size_t state;
    int64_t steps;
    char *bytes;
    size_t nbytes;
} snapshot;

static void snap(dsc_optimizer *o, snapshot *s, const char *path)
{
    s->groups = dsc_optimizer_group_count(o);
    s->params = dsc_optimizer_param_count(o);
    s->state = dsc_optimizer_state_bytes(o);
    s->steps = dsc_optimizer_step_count(o);
    s->bytes = NULL;
    s->nbytes = 0;
    if (dsc_optimizer_save(o, path) == DSC_OK) s->bytes = check_slurp(path, &s->nbytes);
}

static int same(const snapshot *a, const snapshot *b)
{
    return a->groups == b->groups && a->params == b->params && a->state == b->state &&
           a->steps == b->steps && a->nbytes == b->nbytes && a->bytes && b->bytes &&
           !memcmp(a->bytes, b->bytes, a->nbytes);
}

typedef dsc_status (*call_fn)(dsc_optimizer *o);

/* Run `call` on a fresh rig with the k-th allocation failing, k = 0, 1, ...
 * until it succeeds; check each failure changed nothing. */
static void inject(const char *name, dsc_optimizer *(*setup)(void), call_fn call)
{
    long failures = 0;
    for (long k = 0; k < 10000; k++) {
        dsc_optimizer *o = setup();
        snapshot before, after;
        snap(o, &before, probe_a);
        arm(k);
        dsc_status st = call(o);
        int hit = injected;
        disarm();
        if (!hit) {
            check_count++;
            if (st != DSC_OK) {
                check_failures++;
                fprintf(stderr, "%s: fails without injection: %s\n", name, dsc_optimizer_error(o));
            }
            free(before.bytes);
            dsc_optimizer_free(o);
            break;
        }
        failures++;
        check_count++;
        if (st != DSC_NO_MEMORY) {
            check_failures++;
            fprintf(stderr, "%s: allocation %ld failed, call returned %s (%s)\n", name, k + 1,
                    dsc_status_name(st), dsc_optimizer_error(o));
        }
        snap(o, &after, probe_b);
        check_count++;
        if (!same(&before, &after)) {
            check_failures++;
            fprintf(stderr, "%s: allocation %ld failed and the optimizer changed\n", name, k + 1);
        }
        /* Still usable. */
        if (dsc_optimizer_param_count(o) > 0) CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
        free(before.bytes);
        free(after.bytes);
        dsc_optimizer_free(o);
    }
    printf("%-34s %ld injected failures\n", name, failures);
}

static dsc_status c_add_group(dsc_optimizer *o)
{
    return dsc_optimizer_add_group(o, "x", "muon:lr=0.02");
}
static dsc_status c_add_group_cclip(dsc_optimizer *o)
{
    return dsc_optimizer_add_group(o, "x", "adamw:lr=1e-3,coordinate_clip=0.1");
}
static dsc_status c_add_rule(dsc_optimizer *o)
{
    return dsc_optimizer_add_rule(o, "emb*", DSC_ROLE_AUTO, "s", 1);
}
static dsc_status c_use_split(dsc_optimizer *o)
{
    return dsc_optimizer_use_split(o, "muon:lr=0.02", "adamw:lr=3e-4");
}
static dsc_status add_e(dsc_optimizer *o, const char *group)
{
    int64_t se[2] = {5, 8};
    for (int i = 0; i < 40; i++) g_e[i] = (float)(i % 3) - 1.0f;
    return dsc_optimizer_add_param(o, "e", w_e, g_e, 2, se, DSC_ROLE_AUTO, group);
}
static dsc_status c_add_param(dsc_optimizer *o) { return add_e(o, "m"); }
static dsc_optimizer *rig_with(const char *group, const char *spec)
{
    dsc_optimizer *o = rig();
    if (dsc_optimizer_add_group(o, group, spec)) exit(1);
    return o;
}
static dsc_optimizer *rig_mu(void) { return rig_with("mu", "muon:lr=0.02"); }
static dsc_optimizer *rig_q(void) { return rig_with("q", "adam8bit:lr=1e-3,min_8bit_size=0"); }
static dsc_optimizer *rig_gl(void) { return rig_with("gl", "galore:lr=1e-3,rank=2"); }
static dsc_status c_add_param_muon(dsc_optimizer *o) { return add_e(o, "mu"); }
static dsc_status c_add_param_8bit(dsc_optimizer *o) { return add_e(o, "q"); }
static dsc_status c_add_param_galore(dsc_optimizer *o) { return add_e(o, "gl"); }
static dsc_status c_clip(dsc_optimizer *o) { return dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 1.0); }
static dsc_status c_nonfinite(dsc_optimizer *o)
{
    return dsc_optimizer_set_nonfinite(o, DSC_NONFINITE_ZERO);
}
static dsc_status c_accum(dsc_optimizer *o) { return dsc_optimizer_set_accumulation(o, 2); }
static dsc_status c_move(dsc_optimizer *o) { return dsc_optimizer_move_param(o, "b", "m"); }
static dsc_status c_save(dsc_optimizer *o) { return dsc_optimizer_save(o, ck_path); }
static dsc_status c_load(dsc_optimizer *o) { return dsc_optimizer_load(o, ck_path); }
static dsc_status c_schedule(dsc_optimizer *o)
{
    dsc_schedule s;
    dsc_schedule_parse("cosine:warmup=2,total=10", &s, NULL, 0);
    return dsc_optimizer_set_schedule(o, NULL, "lr", &s);
}

/* Calls outside a handle: dsc_optimizer_new, dsc_state_bytes,
 * dsc_adadagrad_next_batch. */
static void test_free_calls(void)
{
    long k;
    for (k = 0; k < 100; k++) {
        arm(k);
        dsc_optimizer *o = dsc_optimizer_new();
        int hit = injected;
        disarm();
        if (!hit) {
            CHECK(o != NULL);
            dsc_optimizer_free(o);
            break;
        }
        CHECK(o == NULL);
    }
    printf("%-34s %ld injected failures\n", "dsc_optimizer_new", k);
    int64_t shape[2] = {16, 16};
    for (k = 0; k < 1000; k++) {
        size_t bytes = 12345;
        arm(k);
        dsc_status st = dsc_state_bytes("adamw:lr=1e-3", 2, shape, &bytes);
        int hit = injected;
        disarm();
        if (!hit) {
            CHECK_STATUS(st, DSC_OK, NULL);
            break;
        }
        CHECK_STATUS(st, DSC_NO_MEMORY, NULL);
        CHECK_EQ_INT(bytes, 12345);
    }
    printf("%-34s %ld injected failures\n", "dsc_state_bytes", k);
    float g[3][4] = {{1, 2, 3, 4}, {2, 3, 4, 5}, {0, 1, 0, 1}};
    const float *grads[1] = {&g[0][0]};
    size_t numel[1] = {4};
    for (k = 0; k < 100; k++) {
        int64_t next = -7;
        arm(k);
        dsc_status st = dsc_adadagrad_next_batch(DSC_BATCH_TEST_NORM, 0.1, 0.1, 3, 1, grads,
                                                 numel, 64, &next, NULL);
        int hit = injected;
        disarm();
        if (!hit) {
            CHECK_STATUS(st, DSC_OK, NULL);
            break;
        }
        CHECK_STATUS(st, DSC_NO_MEMORY, NULL);
        CHECK_EQ_INT(next, -7);
    }
    printf("%-34s %ld injected failures\n", "dsc_adadagrad_next_batch", k);
}

/* A step allocates nothing, whatever the transforms. */
static void test_step_allocates_nothing(void)
{
    dsc_optimizer *o = rig();
    CHECK_STATUS(dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 1.0), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_accumulation(o, 2), DSC_OK, o);
    CHECK_STATUS(dsc_optimizer_set_stats(o, 1), DSC_OK, o);
    arm(0); /* the first allocation would fail */
    for (int s = 0; s < 4; s++) CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    disarm();
    CHECK_EQ_INT(allocs, 0);
    dsc_optimizer_free(o);
}

static dsc_optimizer *rig_stepped(void)
{
    dsc_optimizer *o = rig();
    if (dsc_optimizer_step(o)) exit(1);
    return o;
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(ck_path, sizeof ck_path, "%s/ck.st", tmpdir);
    snprintf(probe_a, sizeof probe_a, "%s/a.st", tmpdir);
    snprintf(probe_b, sizeof probe_b, "%s/b.st", tmpdir);
    dsc_set_allocator(failing_alloc, free);
    /* A checkpoint to load: the rig after three steps. */
    {
        dsc_optimizer *o = rig();
        for (int s = 0; s < 3; s++) dsc_optimizer_step(o);
        CHECK_STATUS(dsc_optimizer_save(o, ck_path), DSC_OK, o);
        dsc_optimizer_free(o);
    }
    test_free_calls();
    test_step_allocates_nothing();
    inject("dsc_optimizer_add_group", rig, c_add_group);
    inject("add_group (coordinate_clip)", rig, c_add_group_cclip);
    inject("dsc_optimizer_add_rule", rig, c_add_rule);
    inject("dsc_optimizer_use_split", dsc_optimizer_new, c_use_split);
    inject("dsc_optimizer_add_param (adamw)", rig, c_add_param);
    inject("add_param (muon)", rig_mu, c_add_param_muon);
    inject("add_param (adam8bit)", rig_q, c_add_param_8bit);
    inject("add_param (galore)", rig_gl, c_add_param_galore);
    inject("dsc_optimizer_set_clip", rig, c_clip);
    inject("dsc_optimizer_set_nonfinite", rig, c_nonfinite);
    inject("dsc_optimizer_set_accumulation", rig, c_accum);
    inject("dsc_optimizer_move_param", rig, c_move);
    inject("dsc_optimizer_set_schedule", rig, c_schedule);
    inject("dsc_optimizer_save", rig_stepped, c_save);
    inject("dsc_optimizer_load", rig, c_load);
    dsc_set_allocator(NULL, NULL);
    unlink(ck_path);
    unlink(probe_a);
    unlink(probe_b);
    rmdir(tmpdir);
    return check_report("test_oom");
}
