/* golden.h - reader for golden trajectory files (format: tests/golden/README.md,
 * the project's copy of the shared golden README). */
#ifndef DESCENT_GOLDEN_H
#define DESCENT_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define GOLDEN_MAX_HYPERS 32
#define GOLDEN_NAME 128

typedef struct {
    char key[64];
    double value;
} golden_hyper;

typedef struct {
    char name[GOLDEN_NAME];
    int ndim;
    int64_t shape[4];
    size_t numel;
    double *init;
    char group_opt[64];          /* "" unless a `group` line names another optimizer */
    int nghypers;
    golden_hyper ghyper[GOLDEN_MAX_HYPERS];
} golden_param;

typedef struct {
    int has_lr;
    double lr;
    double **grad;   /* [param][numel], NULL when absent (treated as zero) */
    double **expect; /* [param][numel], NULL when absent */
} golden_step;

typedef struct {
    char name[GOLDEN_NAME];
    char optimizer[64];
    double tolerance;
    int nhypers;
    golden_hyper hyper[GOLDEN_MAX_HYPERS];
    int nparams;
    golden_param *params;
    int nsteps;
    golden_step *steps;
} golden_file;

/* Reads and validates a file. On error returns non-zero and writes a
 * message naming the file and line into err. */
int golden_read(const char *path, golden_file *out, char *err, size_t errlen);
void golden_free(golden_file *g);

/* Replays through libdescent. Returns 0 PASS, 1 FAIL, 2 UNSUPPORTED
 * (optimizer unknown to this build), 3 error (message in err). max_err is
 * the largest |got - expect| / (1 + |expect|). reference: use the
 * reference loops. */
int golden_replay(const golden_file *g, int reference, double *max_err, char *err,
                  size_t errlen);

#endif
