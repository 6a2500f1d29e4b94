/*
 * descent_mpi.h - libdescent_mpi: the dsc_comm communicator (descent.h)
 * over MPI, in a library of its own so that libdescent never needs MPI.
 *
 *     dsc_mpi_init(&argc, &argv);              // or MPI_Init yourself
 *     dsc_mpi *m = dsc_mpi_new(NULL);          // all processes
 *     dsc_optimizer_set_comm(opt, dsc_mpi_comm(m));
 *     ...
 *     dsc_mpi_free(m);
 *     dsc_mpi_finalize();
 *
 * Link with -ldescent_mpi -ldescent and MPI (mpicc). The communicator works
 * on a duplicate of the given MPI communicator with errors returned, not
 * fatal: a failing collective makes the descent call fail with DSC_IO.
 *
 * allreduce_sum is deterministic: every rank gets the same bits, and they
 * are the bits of adding the ranks' values one after the other in rank
 * order, starting from +0, in the element type (float for F32). It runs as
 * a reduce-scatter (MPI_Alltoallv: each rank receives every rank's copy of
 * its 1/size of the buffer and adds them in rank order) and an all-gather,
 * the same bytes on the wire as a ring all-reduce (2 (size-1)/size of the
 * buffer per rank), in buckets of DSC_MPI_BUCKET elements.
 */
#ifndef DESCENT_MPI_H
#define DESCENT_MPI_H

#include "descent.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSC_MPI_BUCKET ((size_t)1 << 20) /* elements per all-reduce bucket */

typedef struct dsc_mpi dsc_mpi;

/* MPI_Init (thread level FUNNELED: OpenMP threads never call MPI) unless MPI
 * is already initialized. 0 on success. */
int dsc_mpi_init(int *argc, char ***argv);
/* MPI_Finalize unless already finalized. 0 on success. */
int dsc_mpi_finalize(void);
/* Ends every process of the job (MPI_Abort on MPI_COMM_WORLD). */
void dsc_mpi_abort(int code);

/* A communicator over `mpi_comm` (a pointer to an MPI_Comm; NULL means
 * MPI_COMM_WORLD). NULL if MPI is not initialized or memory runs out. */
dsc_mpi *dsc_mpi_new(const void *mpi_comm);
void dsc_mpi_free(dsc_mpi *m); /* NULL is a no-op; collective */
/* The table to pass to dsc_optimizer_set_comm; valid until dsc_mpi_free. */
const dsc_comm *dsc_mpi_comm(const dsc_mpi *m);
int dsc_mpi_rank(const dsc_mpi *m);
int dsc_mpi_size(const dsc_mpi *m);

#ifdef __cplusplus
}
#endif
#endif /* DESCENT_MPI_H */
