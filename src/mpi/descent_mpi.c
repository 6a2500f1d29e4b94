/* descent_mpi.c - libdescent_mpi: dsc_comm over MPI (descent_mpi.h).
 *
 * Why not MPI_Allreduce: MPI leaves the order of a reduction to the
 * implementation (it may depend on the algorithm chosen for the message
 * size and the number of ranks), so its bits may change with the job's
 * layout. Here each rank adds, in rank order, every rank's copy of the
 * 1/size of the buffer it is responsible for (a reduce-scatter made of
 * MPI_Alltoallv and a local loop), then MPI_Allgatherv spreads the sums.
 * The wire volume is that of a ring all-reduce; the result is the
 * sequential sum over ranks 0, 1, ..., which is also what one process
 * computes when it accumulates the same gradients one after the other. */
#include "descent_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

struct dsc_mpi {
    MPI_Comm comm;
    int rank, size;
    dsc_comm table;
    int *scount, *sdispl, *rcount, *rdispl; /* size entries each */
    void *scratch;                          /* DSC_MPI_BUCKET doubles */
};

int dsc_mpi_init(int *argc, char ***argv)
{
    int done = 0, provided = 0;
    if (MPI_Initialized(&done) != MPI_SUCCESS) return -1;
    if (done) return 0;
    return MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS ? 0 : -1;
}

int dsc_mpi_finalize(void)
{
    int done = 0;
    if (MPI_Finalized(&done) != MPI_SUCCESS) return -1;
    if (done) return 0;
    return MPI_Finalize() == MPI_SUCCESS ? 0 : -1;
}

void dsc_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static MPI_Datatype mpi_type(dsc_comm_dtype t) { return t == DSC_COMM_F64 ? MPI_DOUBLE : MPI_FLOAT; }
static size_t type_size(dsc_comm_dtype t) { return t == DSC_COMM_F64 ? 8 : 4; }

static int c_rank(void *ctx) { return ((dsc_mpi *)ctx)->rank; }
static int c_size(void *ctx) { return ((dsc_mpi *)ctx)->size; }

/* Bounds of rank r's share of n elements. */
static size_t lo_of(size_t n, int r, int size) { return n * (size_t)r / (size_t)size; }

/* Sum in rank order over `size` copies of len elements laid out one after
 * the other in `in`, written to out. The starting +0 makes -0 + -0 + ...
 * come out as +0, as an accumulator that starts from zero does. */
static void add_f32(float *out, const float *in, size_t len, int size)
{
    for (size_t i = 0; i < len; i++) {
        float acc = 0.0f;
        for (int r = 0; r < size; r++) acc += in[(size_t)r * len + i];
        out[i] = acc;
    }
}

static void add_f64(double *out, const double *in, size_t len, int size)
{
    for (size_t i = 0; i < len; i++) {
        double acc = 0.0;
        for (int r = 0; r < size; r++) acc += in[(size_t)r * len + i];
        out[i] = acc;
    }
}

static int c_allreduce(void *ctx, void *buf, size_t count, dsc_comm_dtype t)
{
    dsc_mpi *m = ctx;
    int N = m->size, me = m->rank;
    size_t es = type_size(t);
    MPI_Datatype mt = mpi_type(t);
    for (size_t base = 0; base < count; base += DSC_MPI_BUCKET) {
        size_t n = count - base < DSC_MPI_BUCKET ? count - base : DSC_MPI_BUCKET;
        char *b = (char *)buf + base * es;
        size_t mylo = lo_of(n, me, N), mylen = lo_of(n, me + 1, N) - mylo;
        for (int r = 0; r < N; r++) {
            size_t lo = lo_of(n, r, N), hi = lo_of(n, r + 1, N);
            m->scount[r] = (int)(hi - lo); /* n <= 2^20: fits */
            m->sdispl[r] = (int)lo;
            m->rcount[r] = (int)mylen;
            m->rdispl[r] = (int)((size_t)r * mylen);
        }
        /* every rank's copy of my share, in rank order, into scratch */
        if (MPI_Alltoallv(b, m->scount, m->sdispl, mt, m->scratch, m->rcount, m->rdispl, mt,
                          m->comm) != MPI_SUCCESS)
            return 1;
        if (t == DSC_COMM_F64)
            add_f64((double *)b + mylo, m->scratch, mylen, N);
        else
            add_f32((float *)b + mylo, m->scratch, mylen, N);
        if (MPI_Allgatherv(MPI_IN_PLACE, 0, mt, b, m->scount, m->sdispl, mt, m->comm) !=
            MPI_SUCCESS)
            return 2;
    }
    return 0;
}

static int c_allgatherv(void *ctx, void *buf, const size_t *counts, const size_t *displs,
                        dsc_comm_dtype t)
{
    dsc_mpi *m = ctx;
    for (int r = 0; r < m->size; r++) {
        if (counts[r] > INT_MAX || displs[r] > INT_MAX) return 3; /* MPI counts are int */
        m->scount[r] = (int)counts[r];
        m->sdispl[r] = (int)displs[r];
    }
    return MPI_Allgatherv(MPI_IN_PLACE, 0, mpi_type(t), buf, m->scount, m->sdispl, mpi_type(t),
                          m->comm) == MPI_SUCCESS ? 0 : 4;
}

static int c_broadcast(void *ctx, void *buf, size_t count, dsc_comm_dtype t, int root)
{
    dsc_mpi *m = ctx;
    size_t es = type_size(t);
    const size_t chunk = (size_t)1 << 30; /* MPI counts are int */
    for (size_t at = 0; at < count; at += chunk) {
        size_t n = count - at < chunk ? count - at : chunk;
        if (MPI_Bcast((char *)buf + at * es, (int)n, mpi_type(t), root, m->comm) != MPI_SUCCESS)
            return 5;
    }
    return 0;
}

dsc_mpi *dsc_mpi_new(const void *mpi_comm)
{
    int done = 0;
    if (MPI_Initialized(&done) != MPI_SUCCESS || !done) return NULL;
    dsc_mpi *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    MPI_Comm base = mpi_comm ? *(const MPI_Comm *)mpi_comm : MPI_COMM_WORLD;
    if (MPI_Comm_dup(base, &m->comm) != MPI_SUCCESS) {
        free(m);
        return NULL;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &m->rank);
    MPI_Comm_size(m->comm, &m->size);
    size_t N = (size_t)m->size;
    m->scount = calloc(N, sizeof(int));
    m->sdispl = calloc(N, sizeof(int));
    m->rcount = calloc(N, sizeof(int));
    m->rdispl = calloc(N, sizeof(int));
    /* size copies of a share of at most ceil(BUCKET / size) + 1 elements */
    m->scratch = malloc((DSC_MPI_BUCKET + 2 * N) * sizeof(double));
    if (!m->scount || !m->sdispl || !m->rcount || !m->rdispl || !m->scratch) {
        dsc_mpi_free(m);
        return NULL;
    }
    m->table.ctx = m;
    m->table.rank = c_rank;
    m->table.size = c_size;
    m->table.allreduce_sum = c_allreduce;
    m->table.allgatherv = c_allgatherv;
    m->table.broadcast = c_broadcast;
    return m;
}

void dsc_mpi_free(dsc_mpi *m)
{
    if (!m) return;
    MPI_Comm_free(&m->comm);
    free(m->scount);
    free(m->sdispl);
    free(m->rcount);
    free(m->rdispl);
    free(m->scratch);
    free(m);
}

const dsc_comm *dsc_mpi_comm(const dsc_mpi *m) { return m ? &m->table : NULL; }
int dsc_mpi_rank(const dsc_mpi *m) { return m ? m->rank : 0; }
int dsc_mpi_size(const dsc_mpi *m) { return m ? m->size : 1; }
