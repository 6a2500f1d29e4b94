/* mpi_glue.c - what makes `descent-mpi` of the `descent` command: MPI is
 * started, the trainer gets the communicator of all processes (so
 * `mpirun -np N descent-mpi gpt2 train ...` trains data-parallel), and a
 * rank that fails ends the whole job instead of leaving the others waiting
 * in a collective. Only this file and libdescent_mpi see MPI. */
#include "descent.h"
#include "descent_mpi.h"
#include "gpt2/train.h"

#include <stdio.h>

int cli_mpi_main(int argc, char **argv, int (*run)(int, char **));

int cli_mpi_main(int argc, char **argv, int (*run)(int, char **))
{
    if (dsc_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "descent-mpi: MPI_Init failed\n");
        return 1;
    }
    dsc_mpi *m = dsc_mpi_new(NULL);
    if (!m) {
        fprintf(stderr, "descent-mpi: cannot create the communicator\n");
        dsc_mpi_finalize();
        return 1;
    }
    gpt2_train_set_default_comm(dsc_mpi_comm(m));
    int rc = run(argc, argv);
    if (rc != 0 && dsc_mpi_size(m) > 1) {
        /* The other ranks may be inside a collective: end them too. */
        fprintf(stderr, "descent-mpi: rank %d failed (exit %d): ending the job\n",
                dsc_mpi_rank(m), rc);
        fflush(stderr);
        dsc_mpi_abort(rc);
    }
    gpt2_train_set_default_comm(NULL);
    dsc_mpi_free(m);
    dsc_mpi_finalize();
    return rc;
}
