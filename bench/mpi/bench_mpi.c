/* bench_mpi.c - the sharded optimizer at 1 and 2 ranks on GPT-2 small shapes.
 *
 *   mpirun -np 2 build/bench_mpi [--layers 12] [--steps 5]
 *          [--spec adamw:lr=1e-4] [--matrix-spec muon:lr=0.02]
 *
 * In one job: (a) rank 0 alone, unsharded, (b) rank 0 alone, sharded over
 * a communicator of size 1 (the shard path's own cost), (c) all ranks,
 * sharded. For each: optimizer state bytes per rank, the median step time
 * (the step includes the all-gather of the new weights), the time of the
 * gradient all-reduce the trainer does before it (descent_mpi's ordered
 * all-reduce over the whole gradient), and the step's memory traffic
 * divided by the step time, as a fraction of an in-place stream
 * (a = a + s b) measured in the same run on the same rank. */
#include "descent.h"
#include "descent_mpi.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAXT 256
typedef struct {
    int n;
    char name[MAXT][64];
    int ndim[MAXT];
    int64_t shape[MAXT][2];
    size_t off[MAXT];
    size_t total;
} shapes;

/* GPT-2 small (124M) tensors for `layers` blocks, llm.c layout. */
static void gpt2_shapes(shapes *s, int layers)
{
    const int64_t C = 768, V = 50304, T = 1024;
    s->n = 0;
    s->total = 0;
#define ADD(nm, d, a, b)                                                                     \
    do {                                                                                     \
        snprintf(s->name[s->n], 64, "%s", nm);                                               \
        s->ndim[s->n] = d, s->shape[s->n][0] = a, s->shape[s->n][1] = b;                    \
        s->off[s->n] = s->total, s->total += (size_t)(a) * (size_t)(d == 2 ? b : 1);          \
        s->n++;                                                                              \
    } while (0)
    ADD("wte", 2, V, C);
    ADD("wpe", 2, T, C);
    for (int l = 0; l < layers; l++) {
        char b[64];
#define L(suffix, d, a, bb)                                                              \
    do {                                                                                 \
        snprintf(b, sizeof b, "h%d.%s", l, suffix);                                      \
        ADD(b, d, a, bb);                                                                \
    } while (0)
        L("ln1.w", 1, C, 1); L("ln1.b", 1, C, 1);
        L("attn.w", 2, 3 * C, C); L("attn.b", 1, 3 * C, 1);
        L("attnproj.w", 2, C, C); L("attnproj.b", 1, C, 1);
        L("ln2.w", 1, C, 1); L("ln2.b", 1, C, 1);
        L("fc.w", 2, 4 * C, C); L("fc.b", 1, 4 * C, 1);
        L("fcproj.w", 2, C, 4 * C); L("fcproj.b", 1, C, 1);
#undef L
    }
    ADD("lnf.w", 1, C, 1);
    ADD("lnf.b", 1, C, 1);
#undef ADD
}

static dsc_optimizer *make(const shapes *s, float *w, float *g, const char *spec,
                           const char *mspec, const dsc_comm *comm)
{
    dsc_optimizer *o = dsc_optimizer_new();
    dsc_status st = mspec ? dsc_optimizer_use_split(o, mspec, spec)
                          : dsc_optimizer_add_group(o, "all", spec);
    for (int i = 0; i < s->n && st == DSC_OK; i++)
        st = dsc_optimizer_add_param(o, s->name[i], w + s->off[i], g + s->off[i], s->ndim[i],
                                     s->shape[i], DSC_ROLE_AUTO, NULL);
    if (st == DSC_OK && comm) st = dsc_optimizer_set_comm(o, comm);
    if (st != DSC_OK) {
        fprintf(stderr, "bench_mpi: %s\n", dsc_optimizer_error(o));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return o;
}

/* Median seconds per step over `steps` steps. */
static double time_steps(dsc_optimizer *o, int steps)
{
    double t[64];
    for (int i = 0; i < steps; i++) {
        double t0 = now_s();
        if (dsc_optimizer_step(o) != DSC_OK) {
            fprintf(stderr, "bench_mpi: %s\n", dsc_optimizer_error(o));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)steps, sizeof(double), cmp_d);
    return t[steps / 2];
}

/* In-place stream a = a + s b over n floats: bytes per second (12 per element). */
static double stream_bw(float *a, const float *b, size_t n)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (size_t i = 0; i < n; i++) a[i] = a[i] + 1e-7f * b[i];
        double dt = now_s() - t0, bw = 12.0 * (double)n / dt;
        if (bw > best) best = bw;
    }
    return best;
}

int main(int argc, char **argv)
{
    dsc_mpi_init(&argc, &argv);
    int layers = 12, steps = 5;
    const char *spec = "adamw:lr=1e-4,weight_decay=0.1", *mspec = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--spec") && i + 1 < argc) spec = argv[++i];
        else if (!strcmp(argv[i], "--matrix-spec") && i + 1 < argc) mspec = argv[++i];
        else {
            fprintf(stderr, "usage: mpirun -np N bench_mpi [--layers L] [--steps S] "
                    "[--spec SPEC] [--matrix-spec SPEC]\n");
            return 2;
        }
    }
    if (layers < 0 || layers > 20 || steps < 1 || steps > 64) {
        fprintf(stderr, "bench_mpi: --layers 0..20, --steps 1..64\n");
        return 2;
    }
    dsc_mpi *world = dsc_mpi_new(NULL);
    MPI_Comm self = MPI_COMM_SELF;
    dsc_mpi *one = dsc_mpi_new(&self);
    int rank = dsc_mpi_rank(world), size = dsc_mpi_size(world);
    shapes *s = malloc(sizeof *s);
    gpt2_shapes(s, layers);
    size_t n = s->total;
    float *w = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)((i * 2654435761u) % 1000) * 1e-5f - 5e-3f;
        g[i] = (float)((i * 40503u) % 1000) * 1e-6f - 5e-4f;
    }
    double bw = stream_bw(w, g, n < ((size_t)1 << 26) ? n : ((size_t)1 << 26));
    if (rank == 0) {
        dsc_build_info_t b = dsc_build_info();
        printf("bench_mpi: GPT-2 small shapes, %d layers, %zu parameters; optimizer %s%s%s; "
               "%d ranks; %d threads per rank; %d steps (median)\n", layers, n, spec,
               mspec ? ", matrices " : "", mspec ? mspec : "", size, b.max_threads, steps);
        printf("in-place stream on rank 0: %.2f GB/s\n", bw / 1e9);
        printf("%-22s %5s %14s %10s %14s %12s\n", "configuration", "ranks", "state MB/rank",
               "step ms", "grad allred ms", "step traffic");
    }
    /* state bytes per element: the traffic of the step is read p, g, state;
     * write p, state (per rank: its share), plus the gathered weights */
    for (int cfg = 0; cfg < 3; cfg++) {
        int ranks = cfg < 2 ? 1 : size;
        const dsc_comm *c = cfg == 0 ? NULL : cfg == 1 ? dsc_mpi_comm(one) : dsc_mpi_comm(world);
        int active = cfg == 2 || rank == 0;
        double ms = 0, ar = 0;
        size_t bytes = 0;
        if (active) {
            dsc_optimizer *o = make(s, w, g, spec, mspec, c);
            bytes = dsc_optimizer_state_bytes(o);
            dsc_optimizer_step(o); /* warm up */
            ms = 1e3 * time_steps(o, steps);
            dsc_optimizer_free(o);
            if (cfg == 2) { /* the trainer's gradient all-reduce, same buffer size */
                float *tmp = malloc(n * sizeof(float));
                memcpy(tmp, g, n * sizeof(float));
                double t0 = now_s();
                dsc_mpi_comm(world)->allreduce_sum(dsc_mpi_comm(world)->ctx, tmp, n, DSC_COMM_F32);
                ar = 1e3 * (now_s() - t0);
                free(tmp);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            const char *name = cfg == 0 ? "one process" : cfg == 1 ? "sharded, 1 rank"
                                                                  : "sharded, all ranks";
            /* traffic: 8 bytes p read+write, 4 g read, state read+write, gathered p */
            double share = (double)n / ranks;
            double traffic = share * 12.0 + 2.0 * (double)bytes + (ranks > 1 ? 4.0 * (n - share) : 0);
            printf("%-22s %5d %14.1f %10.1f %14s %6.2f GB/s = %.0f%% of stream\n", name, ranks,
                   (double)bytes / 1e6, ms, cfg == 2 ? "" : "-", traffic / (ms * 1e-3) / 1e9,
                   100.0 * traffic / (ms * 1e-3) / bw);
            if (cfg == 2) printf("%-22s %5d %14s %10s %14.1f\n", "gradient all-reduce", ranks,
                                 "", "", ar);
        }
    }
    free(w);
    free(g);
    free(s);
    dsc_mpi_free(one);
    dsc_mpi_free(world);
    dsc_mpi_finalize();
    return 0;
}
