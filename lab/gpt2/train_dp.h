/*
 * train_dp.h - data-parallel pieces of the GPT-2 trainer (train.c), over
 * the public dsc_comm communicator only (no MPI here: descent-mpi passes
 * one made by libdescent_mpi).
 *
 * One update on N ranks with A micro-batches each: rank r computes the
 * gradients of micro-batches k = step*N*A + r*A + m (m = 0..A-1), adds them
 * (from +0, in m order), the ranks' sums are all-reduced in rank order
 * (descent_mpi.h) and scaled by 1/(N*A); then the sharded optimizer steps.
 * With A = 1 this is, bit for bit, one process with accum N: it computes
 * ((0 + g_0) + g_1 + ... + g_(N-1)) * (1/N) too, over the same batches. The
 * loss is the mean of the N*A micro-batch losses added in k order.
 */
#ifndef DESCENT_GPT2_TRAIN_DP_H
#define DESCENT_GPT2_TRAIN_DP_H

#include "descent.h"
#include "gpt2/data.h"
#include "gpt2/model.h"

#include <stddef.h>
#include <stdio.h>

typedef struct gpt2_dp gpt2_dp;

/* Per-update times (seconds) on this rank, and state bytes. */
typedef struct {
    double compute, allreduce, step, gather;
} gpt2_dp_times;

/* NULL with a message on failure. accum: micro-batches per rank. */
gpt2_dp *gpt2_dp_new(const dsc_comm *comm, size_t num_params, int accum, char *err,
                     size_t errlen);
void gpt2_dp_free(gpt2_dp *dp);
int gpt2_dp_rank(const gpt2_dp *dp);
int gpt2_dp_size(const gpt2_dp *dp);
/* The communicator to give the optimizer: dp's, with its gathers timed. */
const dsc_comm *gpt2_dp_comm(gpt2_dp *dp);
/* One update: forward/backward of this rank's micro-batches, gradient
 * all-reduce, optimizer step; *loss is the global mean loss. 0 or -1. */
int gpt2_dp_update(gpt2_dp *dp, gpt2_model *m, const gpt2_loader *train, dsc_optimizer *opt,
                   int *inputs, int *targets, int B, int T, int step, double *loss, char *err,
                   size_t errlen);
/* The last update's phase times. */
gpt2_dp_times gpt2_dp_last_times(const gpt2_dp *dp);
/* Every rank passes its failure flag; returns the number of ranks that
 * failed (so all ranks branch the same way), -1 if the collective failed. */
int gpt2_dp_agree(gpt2_dp *dp, int failed);
/* Rank 0 writes the header of metrics_dp.csv (per update: phase times and
 * per-rank state bytes); every rank must call it (it gathers the bytes). */
int gpt2_dp_metrics_open(gpt2_dp *dp, const char *out_dir, dsc_optimizer *opt, int resumed,
                         char *err, size_t errlen);
void gpt2_dp_metrics_row(gpt2_dp *dp, int step);

#endif
