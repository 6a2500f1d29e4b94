/* train_dp.c - data-parallel updates of the GPT-2 trainer (train_dp.h). */
#include "gpt2/train_dp.h"
#include "labfile.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gpt2_dp {
    const dsc_comm *inner; /* the caller's communicator */
    dsc_comm timed;        /* the same, timing the optimizer's gathers */
    int rank, size, accum;
    size_t n;
    float *acc;            /* local sum of A > 1 micro-batch gradients */
    double *losses;        /* size * accum */
    double gather_s;       /* time in allgatherv/broadcast since the reset */
    gpt2_dp_times last;
    FILE *metrics;
    double *bytes;         /* state bytes of every rank */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The timed table: forwards to the caller's functions. */
static int t_rank(void *ctx) { gpt2_dp *d = ctx; return d->inner->rank(d->inner->ctx); }
static int t_size(void *ctx) { gpt2_dp *d = ctx; return d->inner->size(d->inner->ctx); }
static int t_allreduce(void *ctx, void *buf, size_t count, dsc_comm_dtype t)
{
    gpt2_dp *d = ctx;
    return d->inner->allreduce_sum(d->inner->ctx, buf, count, t);
}
static int t_allgatherv(void *ctx, void *buf, const size_t *c, const size_t *di,
                        dsc_comm_dtype t)
{
    gpt2_dp *d = ctx;
    double t0 = now_s();
    int rc = d->inner->allgatherv(d->inner->ctx, buf, c, di, t);
    d->gather_s += now_s() - t0;
    return rc;
}
static int t_broadcast(void *ctx, void *buf, size_t count, dsc_comm_dtype t, int root)
{
    gpt2_dp *d = ctx;
    double t0 = now_s();
    int rc = d->inner->broadcast(d->inner->ctx, buf, count, t, root);
    d->gather_s += now_s() - t0;
    return rc;
}

gpt2_dp *gpt2_dp_new(const dsc_comm *comm, size_t num_params, int accum, char *err,
                     size_t errlen)
{
    gpt2_dp *d = calloc(1, sizeof *d);
    if (!d) {
        lab_set_err(err, errlen, "out of memory");
        return NULL;
    }
    d->inner = comm;
    d->rank = comm->rank(comm->ctx);
    d->size = comm->size(comm->ctx);
    d->accum = accum;
    d->n = num_params;
    d->timed = (dsc_comm){d, t_rank, t_size, t_allreduce, t_allgatherv, t_broadcast};
    d->losses = calloc((size_t)d->size * (size_t)accum, sizeof(double));
    d->bytes = calloc((size_t)d->size, sizeof(double));
    if (accum > 1) d->acc = malloc(num_params * sizeof(float));
    if (!d->losses || !d->bytes || (accum > 1 && !d->acc)) {
        gpt2_dp_free(d);
        lab_set_err(err, errlen, "out of memory (data-parallel buffers)");
        return NULL;
    }
    return d;
}

void gpt2_dp_free(gpt2_dp *d)
{
    if (!d) return;
    if (d->metrics) fclose(d->metrics);
    free(d->acc);
    free(d->losses);
    free(d->bytes);
    free(d);
}

int gpt2_dp_rank(const gpt2_dp *d) { return d->rank; }
int gpt2_dp_size(const gpt2_dp *d) { return d->size; }
const dsc_comm *gpt2_dp_comm(gpt2_dp *d) { return &d->timed; }
gpt2_dp_times gpt2_dp_last_times(const gpt2_dp *d) { return d->last; }

int gpt2_dp_agree(gpt2_dp *d, int failed)
{
    double x = failed ? 1.0 : 0.0;
    if (d->inner->allreduce_sum(d->inner->ctx, &x, 1, DSC_COMM_F64) != 0) return -1;
    return (int)x;
}

int gpt2_dp_update(gpt2_dp *d, gpt2_model *m, const gpt2_loader *train, dsc_optimizer *opt,
                   int *inputs, int *targets, int B, int T, int step, double *loss, char *err,
                   size_t errlen)
{
    const int A = d->accum, N = d->size;
    double t0 = now_s();
    memset(d->losses, 0, (size_t)N * (size_t)A * sizeof(double));
    int bad = 0;
    for (int mi = 0; mi < A && !bad; mi++) {
        uint64_t k = ((uint64_t)step * (uint64_t)N + (uint64_t)d->rank) * (uint64_t)A +
                     (uint64_t)mi;
        double l = NAN;
        gpt2_loader_random(train, k, inputs, targets);
        if (gpt2_forward(m, inputs, targets, B, T, &l, err, errlen)) {
            bad = 1;
            break;
        }
        gpt2_backward(m);
        d->losses[(size_t)d->rank * A + mi] = l;
        if (A > 1) {
            float *restrict acc = d->acc;
            const float *restrict g = m->grads;
            if (mi == 0)
                for (size_t i = 0; i < d->n; i++) acc[i] = 0.0f + g[i];
            else
                for (size_t i = 0; i < d->n; i++) acc[i] += g[i];
        }
    }
    /* a rank whose forward failed must not leave the others in the all-reduce */
    int nbad = gpt2_dp_agree(d, bad);
    if (nbad != 0) {
        if (!bad) lab_set_err(err, errlen, "step %d: another rank failed (%d ranks)", step, nbad);
        return -1;
    }
    double t1 = now_s();
    float *buf = A > 1 ? d->acc : m->grads;
    if (d->inner->allreduce_sum(d->inner->ctx, buf, d->n, DSC_COMM_F32) != 0) {
        lab_set_err(err, errlen, "step %d: gradient all-reduce failed", step);
        return -1;
    }
    /* the mean, as the optimizer's accumulation forms it: sum * (1/count) */
    const float scale = 1.0f / (float)(A * N);
    float *restrict g = m->grads;
    for (size_t i = 0; i < d->n; i++) g[i] = buf[i] * scale;
    double t2 = now_s();
    d->gather_s = 0;
    if (dsc_optimizer_step(opt) != DSC_OK) {
        lab_set_err(err, errlen, "step %d: %s", step, dsc_optimizer_error(opt));
        return -1;
    }
    double t3 = now_s();
    if (d->inner->allreduce_sum(d->inner->ctx, d->losses, (size_t)N * A, DSC_COMM_F64) != 0) {
        lab_set_err(err, errlen, "step %d: loss all-reduce failed", step);
        return -1;
    }
    double sum = 0;
    for (int i = 0; i < N * A; i++) sum += d->losses[i];
    *loss = sum / (N * A);
    d->last.compute = t1 - t0;
    d->last.allreduce = t2 - t1;
    d->last.gather = d->gather_s;
    d->last.step = (t3 - t2) - d->gather_s;
    return 0;
}

int gpt2_dp_metrics_open(gpt2_dp *d, const char *out_dir, dsc_optimizer *opt, int resumed,
                         char *err, size_t errlen)
{
    for (int r = 0; r < d->size; r++) d->bytes[r] = 0;
    d->bytes[d->rank] = (double)dsc_optimizer_state_bytes(opt);
    if (d->inner->allreduce_sum(d->inner->ctx, d->bytes, (size_t)d->size, DSC_COMM_F64) != 0) {
        lab_set_err(err, errlen, "all-reduce of the state bytes failed");
        return -1;
    }
    if (d->rank != 0 || !out_dir) return 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics_dp.csv", out_dir);
    d->metrics = fopen(path, resumed ? "a" : "w");
    if (!d->metrics) {
        lab_set_err(err, errlen, "%s: cannot open", path);
        return -1;
    }
    if (!resumed)
        fprintf(d->metrics, "step,ranks,state_bytes_rank0,state_bytes_max,state_bytes_all,"
                "compute_ms,allreduce_ms,step_ms,gather_ms\n");
    return 0;
}

void gpt2_dp_metrics_row(gpt2_dp *d, int step)
{
    if (!d->metrics) return;
    double mx = 0, all = 0;
    for (int r = 0; r < d->size; r++) {
        if (d->bytes[r] > mx) mx = d->bytes[r];
        all += d->bytes[r];
    }
    fprintf(d->metrics, "%d,%d,%.0f,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f\n", step, d->size, d->bytes[0],
            mx, all, 1e3 * d->last.compute, 1e3 * d->last.allreduce, 1e3 * d->last.step,
            1e3 * d->last.gather);
    fflush(d->metrics);
}
