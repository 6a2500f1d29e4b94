/* test_mpi.c - the sharded optimizer over real MPI (run by tests/mpi/run.sh
 * under `mpirun -np 2` and `-np 3`).
 *
 * Every rank builds the same model twice: a plain single-process optimizer
 * over one copy of the weights (the reference: what one process computes)
 * and a sharded one (dsc_optimizer_set_comm over libdescent_mpi) over
 * another copy. Both get the same gradients each step; after every step the
 * two weight copies must be equal bit for bit, on every rank. Also: state
 * bytes per rank, clipping and skipping decisions and gradient norms across
 * ranks, sharded checkpoints (save, reload, resume bit for bit, wrong world
 * size, a plain checkpoint, a rank whose shard is missing: all ranks fail
 * and nothing changes), and the deterministic all-reduce. */
#include "descent.h"
#include "descent_mpi.h"

#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size;
static const dsc_comm *comm;

/* The model: a few tensors of awkward sizes: "wte" (19264 elements) is cut
 * between ranks, with a partial last 8-bit block; the others fall whole to
 * one rank or another; vectors. */
#define NT 6
static const char *names[NT] = {"wte", "h0.w", "h0.b", "h1.w", "h1.b", "lm_head"};
static const int64_t shapes[NT][2] = {{301, 64}, {48, 80}, {80, 1}, {64, 48}, {48, 1}, {33, 64}};
static const int ndims[NT] = {2, 2, 1, 2, 1, 2};

typedef struct {
    float *w[NT], *g[NT];
    size_t n[NT];
} model;

static uint64_t rng_state;
static float rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static void model_init(model *m)
{
    rng_state = 42;
    for (int t = 0; t < NT; t++) {
        m->n[t] = (size_t)(shapes[t][0] * (ndims[t] == 2 ? shapes[t][1] : 1));
        m->w[t] = malloc(m->n[t] * sizeof(float));
        m->g[t] = malloc(m->n[t] * sizeof(float));
        for (size_t i = 0; i < m->n[t]; i++) m->w[t][i] = 0.1f * rnd();
    }
}

static void model_copy(model *dst, const model *src)
{
    for (int t = 0; t < NT; t++) memcpy(dst->w[t], src->w[t], src->n[t] * sizeof(float));
}

static void model_free(model *m)
{
    for (int t = 0; t < NT; t++) free(m->w[t]), free(m->g[t]);
}

/* The gradient of step s (the same on every rank: the all-reduced mean),
 * scaled by `scale`; `poison` puts a NaN into tensor 3. */
static void make_grads(model *m, int s, float scale, int poison)
{
    rng_state = 1000 + (uint64_t)s;
    for (int t = 0; t < NT; t++)
        for (size_t i = 0; i < m->n[t]; i++) m->g[t][i] = scale * rnd();
    if (poison) m->g[3][7] = NAN;
}

static dsc_optimizer *make_opt(model *m, const char *matrix_spec, const char *spec, int sharded)
{
    dsc_optimizer *o = dsc_optimizer_new();
    dsc_status st = matrix_spec ? dsc_optimizer_use_split(o, matrix_spec, spec)
                                : dsc_optimizer_add_group(o, "all", spec);
    for (int t = 0; t < NT && st == DSC_OK; t++)
        st = dsc_optimizer_add_param(o, names[t], m->w[t], m->g[t], ndims[t], shapes[t],
                                     DSC_ROLE_AUTO, NULL);
    if (st == DSC_OK && sharded) st = dsc_optimizer_set_comm(o, comm);
    if (st != DSC_OK) {
        fprintf(stderr, "rank %d: set-up of %s failed: %s\n", rank, spec, dsc_optimizer_error(o));
        dsc_mpi_abort(1);
    }
    return o;
}

static int same_bits(const model *a, const model *b)
{
    for (int t = 0; t < NT; t++)
        if (memcmp(a->w[t], b->w[t], a->n[t] * sizeof(float)) != 0) return 0;
    return 1;
}

/* Sum over ranks of x (exact for integers below 2^53). */
static double sum_ranks(double x)
{
    if (comm->allreduce_sum(comm->ctx, &x, 1, DSC_COMM_F64) != 0) dsc_mpi_abort(2);
    return x;
}

/* 1 on every rank if x is the same on every rank. */
static int agree(double x)
{
    double v[2] = {x, -x}; /* max and min by sums is not possible: compare with rank 0 */
    double *all = calloc((size_t)size, sizeof(double));
    all[rank] = v[0];
    if (comm->allreduce_sum(comm->ctx, all, (size_t)size, DSC_COMM_F64) != 0) dsc_mpi_abort(2);
    int ok = 1;
    for (int r = 0; r < size; r++)
        if (memcmp(&all[r], &all[0], sizeof(double)) != 0) ok = 0;
    free(all);
    return ok;
}

/* K steps of plain and sharded on the same gradients; weights equal after
 * each; per-rank state bytes add up to the plain bytes (plus per-piece
 * counters), and each rank holds less than all of it when it can. */
static void run_equal(const char *label, const char *matrix_spec, const char *spec, int steps,
                      int expect_split)
{
    model a, b;
    model_init(&a);
    model_init(&b);
    dsc_optimizer *plain = make_opt(&a, matrix_spec, spec, 0);
    dsc_optimizer *shard = make_opt(&b, matrix_spec, spec, 1);
    dsc_optimizer_set_clip(plain, DSC_CLIP_NORM, 5.0);
    dsc_optimizer_set_clip(shard, DSC_CLIP_NORM, 5.0);
    dsc_optimizer_set_stats(plain, 1);
    dsc_optimizer_set_stats(shard, 1);
    int equal = 1, statsok = 1, agreeok = 1;
    for (int s = 0; s < steps; s++) {
        /* step 1 clips (large gradient), step 2 has a NaN (skipped) */
        float scale = s == 1 ? 50.0f : 1.0f;
        make_grads(&a, s, scale, s == 2);
        make_grads(&b, s, scale, s == 2);
        CHECK_STATUS(dsc_optimizer_step(plain), DSC_OK, plain);
        CHECK_STATUS(dsc_optimizer_step(shard), DSC_OK, shard);
        dsc_step_stats sp, ss;
        dsc_optimizer_stats(plain, &sp);
        dsc_optimizer_stats(shard, &ss);
        if (!same_bits(&a, &b)) equal = 0;
        if (memcmp(&sp.grad_l2, &ss.grad_l2, sizeof(double)) ||
            memcmp(&sp.grad_l1, &ss.grad_l1, sizeof(double)) ||
            memcmp(&sp.clip_scale, &ss.clip_scale, sizeof(double)) || sp.skipped != ss.skipped ||
            sp.nonfinite != ss.nonfinite || sp.applied != ss.applied)
            statsok = 0;
        if (!agree(ss.clip_scale) || !agree(ss.grad_l2) || !agree((double)ss.skipped) ||
            !agree((double)ss.nonfinite))
            agreeok = 0;
        if (s == 1 && !(ss.clip_scale < 1.0)) statsok = 0; /* really clipped */
        if (s == 2 && !ss.skipped) statsok = 0;            /* really skipped */
    }
    if (!equal) fprintf(stderr, "rank %d: %s: sharded weights differ from one process\n", rank,
                        label);
    if (!statsok) fprintf(stderr, "rank %d: %s: stats or decisions differ\n", rank, label);
    if (!agreeok) fprintf(stderr, "rank %d: %s: ranks disagree\n", rank, label);
    CHECK(equal);
    CHECK(statsok);
    CHECK(agreeok);
    size_t full = dsc_optimizer_state_bytes(plain), mine = dsc_optimizer_state_bytes(shard);
    double total = sum_ranks((double)mine);
    /* pieces add one step counter (8 bytes) and up to a partial block's
     * absmax each: at most 64 bytes per tensor per rank */
    if (expect_split) {
        CHECK((double)full <= total && total <= (double)full + 64.0 * NT * size);
        if (size > 1) CHECK(mine < full);
    } else {
        CHECK_EQ_INT(mine, full); /* replicated: every rank holds it all */
    }
    size_t per_param = 0;
    for (int t = 0; t < NT; t++) {
        dsc_param_info info;
        dsc_optimizer_param_info(shard, t, &info);
        per_param += info.state_bytes;
    }
    CHECK(per_param <= mine);
    if (rank == 0)
        printf("%-28s state bytes: one process %zu, rank 0 %zu, all ranks %.0f\n", label, full,
               mine, total);
    dsc_optimizer_free(plain);
    dsc_optimizer_free(shard);
    model_free(&a);
    model_free(&b);
}

static void test_allreduce(void)
{
    /* floats whose sum depends on the order: the result must be the
     * sequential sum over ranks, the same on every rank */
    size_t n = 3 * DSC_MPI_BUCKET / 2 + 7; /* two buckets, uneven shares */
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7919 + (size_t)rank * 104729) % 1000) * 1e-3f + (rank == 1 ? 1e7f : 0.0f);
    int rc = comm->allreduce_sum(comm->ctx, x, n, DSC_COMM_F32);
    CHECK_EQ_INT(rc, 0);
    int ok = 1;
    for (size_t i = 0; i < n; i += 9973) {
        float acc = 0.0f;
        for (int r = 0; r < size; r++)
            acc += (float)((i * 7919 + (size_t)r * 104729) % 1000) * 1e-3f + (r == 1 ? 1e7f : 0.0f);
        if (memcmp(&acc, &x[i], sizeof acc) != 0) ok = 0;
    }
    CHECK(ok);
    CHECK(agree((double)x[n - 1]) && agree((double)x[12345]));
    free(x);
}

static void test_checkpoint(const char *dir)
{
    const char *spec = "adamw8bit:lr=1e-2,weight_decay=0.1";
    const char *mspec = "muon:lr=0.02";
    char path[512], other[512];
    snprintf(path, sizeof path, "%s/opt.safetensors", dir);
    model a, b;
    model_init(&a);
    model_init(&b);
    dsc_optimizer *o = make_opt(&a, mspec, spec, 1);
    for (int s = 0; s < 3; s++) {
        make_grads(&a, s, 1.0f, 0);
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    }
    CHECK_STATUS(dsc_optimizer_save(o, path), DSC_OK, o);
    model_copy(&b, &a); /* weights at the checkpoint */
    for (int s = 3; s < 6; s++) {
        make_grads(&a, s, 1.0f, 0);
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    }
    /* resume: a fresh sharded optimizer, the saved weights, the checkpoint */
    dsc_optimizer *r = make_opt(&b, mspec, spec, 1);
    CHECK_STATUS(dsc_optimizer_load(r, path), DSC_OK, r);
    CHECK_EQ_INT(dsc_optimizer_step_count(r), 3);
    for (int s = 3; s < 6; s++) {
        make_grads(&b, s, 1.0f, 0);
        CHECK_STATUS(dsc_optimizer_step(r), DSC_OK, r);
    }
    CHECK(same_bits(&a, &b));

    /* a single process cannot load it, and says why */
    dsc_optimizer *plain = make_opt(&b, mspec, spec, 0);
    CHECK_STATUS(dsc_optimizer_load(plain, path), DSC_MISMATCH, plain);
    CHECK(strstr(dsc_optimizer_error(plain), "ranks") != NULL);
    /* nor can a sharded one load a plain checkpoint */
    snprintf(other, sizeof other, "%s/plain.rank%d.safetensors", dir, rank);
    CHECK_STATUS(dsc_optimizer_save(plain, other), DSC_OK, plain);
    CHECK_STATUS(dsc_optimizer_load(r, other), DSC_MISMATCH, r);
    CHECK(strstr(dsc_optimizer_error(r), "not a sharded checkpoint") != NULL);
    /* another world size: rank 0 rewrites the manifest */
    snprintf(other, sizeof other, "%s/opt3.safetensors", dir);
    if (rank == 0) {
        FILE *f = fopen(other, "w");
        fprintf(f, "descent-sharded-checkpoint 1\nworld_size %d\nstep 3\n", size + 1);
        fclose(f);
    }
    sum_ranks(0); /* everyone waits for the file */
    CHECK_STATUS(dsc_optimizer_load(r, other), DSC_MISMATCH, r);
    CHECK(strstr(dsc_optimizer_error(r), "resharding is not supported") != NULL);

    /* the last rank's shard is missing: every rank fails, nothing changes */
    model c;
    model_init(&c);
    model_copy(&c, &b);
    if (rank == size - 1) {
        char sp[600];
        snprintf(sp, sizeof sp, "%s.rank%d-of-%d", path, rank, size);
        CHECK_EQ_INT(remove(sp), 0);
    }
    sum_ranks(0);
    dsc_status st = dsc_optimizer_load(r, path);
    CHECK(st != DSC_OK);
    if (rank != size - 1) CHECK(strstr(dsc_optimizer_error(r), "could not load") != NULL);
    CHECK_EQ_INT(dsc_optimizer_step_count(r), 6);
    /* r still continues exactly like o */
    for (int s = 6; s < 8; s++) {
        make_grads(&b, s, 1.0f, 0);
        make_grads(&a, s, 1.0f, 0);
        CHECK_STATUS(dsc_optimizer_step(r), DSC_OK, r);
        CHECK_STATUS(dsc_optimizer_step(o), DSC_OK, o);
    }
    CHECK(same_bits(&a, &b));
    dsc_optimizer_free(o);
    dsc_optimizer_free(r);
    dsc_optimizer_free(plain);
    model_free(&a);
    model_free(&b);
    model_free(&c);
}

static void test_setup_errors(void)
{
    model a;
    model_init(&a);
    dsc_optimizer *o = make_opt(&a, NULL, "adamw:lr=1e-3", 1);
    int64_t sh[1] = {4};
    float w[4], g[4] = {0};
    CHECK_STATUS(dsc_optimizer_add_param(o, "late", w, g, 1, sh, DSC_ROLE_AUTO, NULL), DSC_STATE, o);
    CHECK_STATUS(dsc_optimizer_set_comm(o, comm), DSC_STATE, o);
    dsc_optimizer_free(o);
    /* ranks with different models: every rank fails with MISMATCH */
    dsc_optimizer *d = dsc_optimizer_new();
    dsc_optimizer_add_group(d, "all", "sgd:lr=0.1");
    int64_t shr[1] = {rank == 0 ? 4 : 3};
    dsc_optimizer_add_param(d, "x", w, g, 1, shr, DSC_ROLE_AUTO, NULL);
    if (size > 1) CHECK_STATUS(dsc_optimizer_set_comm(d, comm), DSC_MISMATCH, d);
    dsc_optimizer_free(d);
    /* wrappers keep whole averaged weights: refused, on every rank */
    dsc_optimizer *e = dsc_optimizer_new();
    dsc_optimizer_add_group(e, "all", "ema(decay=0.9):adamw:lr=1e-3");
    dsc_optimizer_add_param(e, "x", w, g, 1, sh, DSC_ROLE_AUTO, NULL);
    CHECK_STATUS(dsc_optimizer_set_comm(e, comm), DSC_UNSUPPORTED, e);
    dsc_optimizer_free(e);
    /* maximize and layer_decay act on the gradient and lr: sharded as usual */
    run_equal("adamw maximize layer_decay", NULL,
              "adamw:lr=1e-2,maximize=1,layer_decay=0.8", 4, 1);
    model_free(&a);
}

int main(int argc, char **argv)
{
    if (dsc_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "MPI_Init failed\n");
        return 1;
    }
    dsc_mpi *m = dsc_mpi_new(NULL);
    if (!m) {
        fprintf(stderr, "dsc_mpi_new failed\n");
        return 1;
    }
    comm = dsc_mpi_comm(m);
    rank = dsc_mpi_rank(m);
    size = dsc_mpi_size(m);
    const char *dir = argc > 1 ? argv[1] : ".";

    test_allreduce();
    run_equal("adamw", NULL, "adamw:lr=1e-2,weight_decay=0.1", 6, 1);
    run_equal("sgd nesterov", NULL, "sgd:lr=0.1,momentum=0.9,nesterov=1", 6, 1);
    run_equal("adamw8bit", NULL, "adamw8bit:lr=1e-2,weight_decay=0.1", 6, 1);
    run_equal("adam8bit min_8bit_size 5000", NULL, "adam8bit:lr=1e-2,min_8bit_size=5000", 5, 1);
    run_equal("lion", NULL, "lion:lr=1e-3", 5, 1);
    /* bf16 states: a piece's stochastic rounding draws the whole tensor's bits */
    run_equal("adamw bf16_state=2", NULL, "adamw:lr=1e-2,amsgrad=1,bf16_state=2", 5, 1);
    run_equal("sgd bf16_state=1", NULL, "sgd:lr=0.1,momentum=0.9,bf16_state=1", 5, 1);
    run_equal("muon + adamw", "muon:lr=0.02,weight_decay=0.01", "adamw:lr=1e-2", 6, 1);
    run_equal("muon_moonlight", NULL, "muon_moonlight:lr=0.02", 5, 1);
    run_equal("stable_spam (replicated)", NULL, "stable_spam:lr=1e-3", 5, 0);
    test_checkpoint(dir);
    test_setup_errors();

    /* every rank's verdict, so that one failing rank fails the job */
    double failed = sum_ranks(check_failures ? 1.0 : 0.0);
    char name[64];
    snprintf(name, sizeof name, "test_mpi rank %d of %d", rank, size);
    int rc = check_report(name);
    dsc_mpi_free(m);
    dsc_mpi_finalize();
    return rc || failed > 0;
}
