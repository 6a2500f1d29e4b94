/* test_shard.c - the sharded optimizer (shard.c) with a communicator of one
 * rank, in-process: no MPI needed, so it runs in every build (and under
 * LeakSanitizer, which the MPI test cannot use). With one rank every piece is
 * a whole tensor, so the sharded path must give exactly the plain results;
 * the multi-rank cases are in tests/mpi/test_mpi.c. Also: the communicator's
 * argument checks, a failing collective (DSC_IO, named), the manifest and
 * shard files of a save, and the load errors. */
#include "descent.h"

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail_allreduce;

static int self_rank(void *ctx) { (void)ctx; return 0; }
static int self_size(void *ctx) { (void)ctx; return 1; }
static int bad_size(void *ctx) { (void)ctx; return 0; }
static int self_allreduce(void *ctx, void *buf, size_t count, dsc_comm_dtype t)
{
    (void)ctx; (void)buf; (void)count; (void)t;
    return fail_allreduce;
}
static int self_allgatherv(void *ctx, void *buf, const size_t *c, const size_t *d,
                           dsc_comm_dtype t)
{
    (void)ctx; (void)buf; (void)c; (void)d; (void)t;
    return 0;
}
static int self_broadcast(void *ctx, void *buf, size_t count, dsc_comm_dtype t, int root)
{
    (void)ctx; (void)buf; (void)count; (void)t;
    return root == 0 ? 0 : 1;
}

static const dsc_comm self_comm = {NULL, self_rank, self_size, self_allreduce, self_allgatherv,
                                   self_broadcast};

#define NT 4
static const char *names[NT] = {"wte", "h0.w", "h0.b", "h1.w"};
static const int64_t shapes[NT][2] = {{70, 90}, {32, 48}, {48, 1}, {48, 32}};
static const int ndims[NT] = {2, 2, 1, 2};

typedef struct {
    float *w[NT], *g[NT];
    size_t n[NT];
} model;

static void model_init(model *m)
{
    uint32_t s = 7;
    for (int t = 0; t < NT; t++) {
        m->n[t] = (size_t)(shapes[t][0] * (ndims[t] == 2 ? shapes[t][1] : 1));
        m->w[t] = malloc(m->n[t] * sizeof(float));
        m->g[t] = malloc(m->n[t] * sizeof(float));
        for (size_t i = 0; i < m->n[t]; i++) {
            s = s * 1664525u + 1013904223u;
            m->w[t][i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        }
    }
}

static void grads(model *m, int step)
{
    uint32_t s = 1000u + (uint32_t)step;
    for (int t = 0; t < NT; t++)
        for (size_t i = 0; i < m->n[t]; i++) {
            s = s * 1664525u + 1013904223u;
            m->g[t][i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        }
}

static void model_free(model *m)
{
    for (int t = 0; t < NT; t++) free(m->w[t]), free(m->g[t]);
}

static int same(const model *a, const model *b)
{
    for (int t = 0; t < NT; t++)
        if (memcmp(a->w[t], b->w[t], a->n[t] * sizeof(float))) return 0;
    return 1;
}

static dsc_optimizer *make(model *m, const dsc_comm *comm)
{
    dsc_optimizer *o = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_use_split(o, "muon:lr=0.02", "adamw8bit:lr=1e-2,min_8bit_size=2000"),
                 DSC_OK, o);
    for (int t = 0; t < NT; t++)
        CHECK_STATUS(dsc_optimizer_add_param(o, names[t], m->w[t], m->g[t], ndims[t], shapes[t],
                                             DSC_ROLE_AUTO, NULL), DSC_OK, o);
    dsc_optimizer_set_clip(o, DSC_CLIP_NORM, 3.0);
    dsc_optimizer_set_stats(o, 1);
    if (comm) CHECK_STATUS(dsc_optimizer_set_comm(o, comm), DSC_OK, o);
    return o;
}

int main(void)
{
    char dir[] = "/tmp/descent_test_shard_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256], shard[300];
    snprintf(path, sizeof path, "%s/opt.safetensors", dir);
    snprintf(shard, sizeof shard, "%s.rank0-of-1", path);

    model a, b, c;
    model_init(&a);
    model_init(&b);
    model_init(&c);
    dsc_optimizer *plain = make(&a, NULL), *sh = make(&b, &self_comm);
    CHECK_EQ_INT(dsc_optimizer_state_bytes(plain), dsc_optimizer_state_bytes(sh));
    for (int s = 0; s < 3; s++) {
        grads(&a, s), grads(&b, s);
        CHECK_STATUS(dsc_optimizer_step(plain), DSC_OK, plain);
        CHECK_STATUS(dsc_optimizer_step(sh), DSC_OK, sh);
        dsc_step_stats x, y;
        dsc_optimizer_stats(plain, &x);
        dsc_optimizer_stats(sh, &y);
        CHECK(memcmp(&x.grad_l2, &y.grad_l2, sizeof(double)) == 0);
        CHECK(memcmp(&x.clip_scale, &y.clip_scale, sizeof(double)) == 0);
    }
    CHECK(same(&a, &b));

    /* save: a manifest at the path, the rank's shard beside it */
    CHECK_STATUS(dsc_optimizer_save(sh, path), DSC_OK, sh);
    CHECK(access(path, F_OK) == 0 && access(shard, F_OK) == 0);
    FILE *f = fopen(path, "r");
    char line[128] = "";
    CHECK(f && fgets(line, sizeof line, f));
    if (f) fclose(f);
    CHECK(strncmp(line, "descent-sharded-checkpoint 1", 28) == 0);
    /* resume from it */
    for (int t = 0; t < NT; t++) memcpy(c.w[t], b.w[t], b.n[t] * sizeof(float));
    dsc_optimizer *r = make(&c, &self_comm);
    CHECK_STATUS(dsc_optimizer_load(r, path), DSC_OK, r);
    CHECK_EQ_INT(dsc_optimizer_step_count(r), 3);
    for (int s = 3; s < 5; s++) {
        grads(&b, s), grads(&c, s);
        CHECK_STATUS(dsc_optimizer_step(sh), DSC_OK, sh);
        CHECK_STATUS(dsc_optimizer_step(r), DSC_OK, r);
    }
    CHECK(same(&b, &c));
    /* a plain optimizer is told what the file is */
    CHECK_STATUS(dsc_optimizer_load(plain, path), DSC_MISMATCH, plain);
    CHECK(strstr(dsc_optimizer_error(plain), "sharded checkpoint written by 1 ranks"));
    /* the shard itself is a plain checkpoint of other tensors: the sharded
     * optimizer refuses it as not being a manifest */
    CHECK_STATUS(dsc_optimizer_load(r, shard), DSC_MISMATCH, r);
    /* a malformed manifest, a missing one */
    f = fopen(path, "w");
    fputs("descent-sharded-checkpoint 1\nworld_size x\n", f);
    fclose(f);
    CHECK_STATUS(dsc_optimizer_load(r, path), DSC_CORRUPT, r);
    remove(path);
    CHECK_STATUS(dsc_optimizer_load(r, path), DSC_IO, r);
    CHECK_EQ_INT(dsc_optimizer_step_count(r), 5); /* failed loads changed nothing */
    remove(shard);

    /* argument checks */
    dsc_comm bad = self_comm;
    bad.size = bad_size;
    CHECK_STATUS(dsc_optimizer_set_comm(plain, NULL), DSC_NULL_POINTER, plain);
    dsc_optimizer *fresh = make(&a, NULL);
    CHECK_STATUS(dsc_optimizer_set_comm(fresh, &bad), DSC_OUT_OF_RANGE, fresh);
    bad = self_comm;
    bad.allgatherv = NULL;
    CHECK_STATUS(dsc_optimizer_set_comm(fresh, &bad), DSC_NULL_POINTER, fresh);
    CHECK_STATUS(dsc_optimizer_set_comm(plain, &self_comm), DSC_STATE, plain); /* stepped */
    CHECK_STATUS(dsc_optimizer_set_comm(sh, &self_comm), DSC_STATE, sh);      /* already */
    dsc_optimizer *empty = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_set_comm(empty, &self_comm), DSC_STATE, empty);
    CHECK_STATUS(dsc_optimizer_add_group(sh, "late", "sgd:lr=0.1"), DSC_STATE, sh);
    /* a failing collective is named */
    fail_allreduce = 1;
    CHECK_STATUS(dsc_optimizer_step(sh), DSC_IO, sh);
    CHECK(strstr(dsc_optimizer_error(sh), "communicator"));
    fail_allreduce = 0;

    dsc_optimizer_free(plain);
    dsc_optimizer_free(sh);
    dsc_optimizer_free(r);
    dsc_optimizer_free(fresh);
    dsc_optimizer_free(empty);
    model_free(&a);
    model_free(&b);
    model_free(&c);
    rmdir(dir);
    return check_report("test_shard");
}
