/*
 * train.h - the GPT-2 training loop: a model (model.h), llm.c token files
 * (data.h) and any libdescent optimizer, through the public API only.
 *
 * One run: build or load the model, set up the optimizer (one spec for all
 * parameters, or the Muon-style split: `matrix_optimizer` for the hidden
 * matrices and `optimizer` for embeddings, gains and biases), a learning
 * rate schedule, clipping and gradient accumulation; then for each update
 * `accum` micro-batches (forward, backward, dsc_optimizer_step), a metrics
 * row and a progress line; validation every `eval_every` updates and at
 * the end; noise density phi (dsc_noise_density over `phi_samples`
 * mini-batch gradients) at the start, the middle and the end; checkpoints.
 *
 * Batches are pure functions of (seed, micro-batch index) (data.h), so a
 * run resumed from a checkpoint (model, optimizer state, step) repeats the
 * uninterrupted run bit for bit: same losses, same final weights.
 *
 * Files under out_dir (all written atomically):
 *   metrics.csv | metrics.jsonl  one row per update ("train"), evaluation
 *                                ("val") and phi measurement ("phi")
 *   loss.png | loss.svg          train and validation loss against step
 *   ckpt_<step>/model.bin        llm.c GPT-2 checkpoint (version 3)
 *   ckpt_<step>/optimizer.safetensors   dsc_optimizer_save
 *   ckpt_<step>/trainer.txt      step, seed, batch shape, optimizer specs
 *   latest                       the name of the newest complete checkpoint
 */
#ifndef DESCENT_GPT2_TRAIN_H
#define DESCENT_GPT2_TRAIN_H

#include "descent.h"
#include "gpt2/model.h"

struct gpt2_loader;

#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* model: a fresh GPT-2 of this size, or init_from (llm.c checkpoint) */
    int layers, channels, heads, max_seq_len;
    int vocab_size;               /* 0: GPT-2's 50257 (padded to 50304) */
    const char *init_from;
    uint64_t seed;            /* initialisation and batch order */
    /* data: llm.c token files, given or DATA_DIR/<corpus>/{train,val}.bin */
    const char *train_path, *val_path;
    const char *data_dir;         /* NULL: gpt2_data_dir(NULL) (prepare.h) */
    const char *corpus;           /* default "moby-dick" */
    int B, T;
    /* optimizer */
    const char *optimizer;        /* spec for every parameter, or the fallback */
    const char *matrix_optimizer; /* NULL: no split; else spec for hidden matrices */
    const char *schedule;         /* dsc_schedule_parse text; NULL: cosine with
                                     `warmup` steps down to 0.1 at `steps` */
    int warmup;
    double clip;                  /* global l2 norm limit; 0: none */
    int accum;                    /* micro-batches per update (>= 1) */
    int steps;                    /* updates */
    int stop_after;               /* > 0: stop (with a checkpoint) at this update,
                                     as if interrupted; --resume continues */
    /* evaluation */
    int eval_every;               /* updates between validations (0: start and end only) */
    int eval_batches;             /* sequential validation batches per evaluation */
    int phi_samples;              /* gradients per phi measurement (0: off, else >= 2;
                                     default 4) */
    /* outputs */
    const char *out_dir;          /* NULL: write nothing */
    const char *metrics_format;   /* "csv" (default) or "jsonl" */
    int ckpt_every;               /* updates between checkpoints; 0: at the end only */
    int save_final;               /* 1: checkpoint at the end (default) */
    const char *resume;           /* checkpoint folder, or out folder with `latest` */
    int threads;                  /* 0: OpenMP default */
    int progress;                 /* 1: progress line on stderr (default) */
    int log_every;                /* updates between lines when stderr is not a
                                     terminal; 0: about 20 lines per run */
    int plot;                     /* 1: write the loss plot (default) */
    const char *label;            /* prefix of the progress line */
    /* measurement hook (the study's phi per layer type, study.h): called
     * between updates at step 0, every `hook_every` updates and at the
     * end (never at the step a resumed run starts from, which its first
     * part already measured). It may run forward and backward passes on
     * the model and the loaders (m->grads and activations are free
     * between updates) but must not change the parameters. A nonzero
     * return stops the run with an error (message in err). */
    int (*hook)(void *user, int step, gpt2_model *m, struct gpt2_loader *train,
                struct gpt2_loader *val, int B, int T, char *err, size_t errlen);
    void *hook_user;
    int hook_every;               /* 0: start and end only */
    int keep;                     /* complete checkpoints kept under out_dir (newest
                                     ones and the one `latest` names); 0: all;
                                     default GPT2_KEEP_DEFAULT (retain.h) */
    int continue_nonfinite;       /* 1: a non-finite loss does not stop the run
                                     (the optimizer skips non-finite gradients) */
    const dsc_comm *comm;         /* data-parallel over these ranks (train_dp.h;
                                     `mpirun -np N descent-mpi gpt2 train`);
                                     NULL: one process. Default: the one set by
                                     gpt2_train_set_default_comm */
} gpt2_train_opts;

/* The communicator gpt2_train_opts_default puts in `comm` (descent-mpi sets
 * it to all MPI processes; NULL by default). */
void gpt2_train_set_default_comm(const dsc_comm *comm);

/* Defaults: a 4-layer, 64-channel, 4-head model, B=8, T=64, adamw, 200 steps. */
void gpt2_train_opts_default(gpt2_train_opts *o);

typedef struct {
    int steps_done;        /* updates applied, including resumed ones */
    int diverged;          /* 1 if the loss became non-finite (run stopped unless
                              continue_nonfinite; no checkpoint is taken after it) */
    int diverged_step;     /* the first update whose loss was non-finite */
    double final_train_loss, final_val_loss, initial_val_loss;
    double tokens_per_s;   /* training tokens per second (this process, no eval) */
    double ms_per_step;    /* per update, this process */
    double wall_s;         /* whole run, this process */
    size_t num_params;
    /* curves: every update (train) and every evaluation (val) */
    int ntrain, nval;
    int *train_step, *val_step;
    double *train_loss, *val_loss;
    double tokens_per_step;
    /* phi at start, middle, end (NAN when not measured) */
    int nphi;
    int phi_step[3];
    double phi[3];
} gpt2_train_result;

/* Runs training. 0 on success (also when the run diverged: see
 * result->diverged); -1 with a message in err on bad options, missing
 * files, optimizer errors or failed writes. The result's arrays are owned
 * by it: gpt2_train_result_free (after a failed call it holds nothing). */
int gpt2_train(const gpt2_train_opts *o, gpt2_train_result *r, char *err, size_t errlen);
void gpt2_train_result_free(gpt2_train_result *r);

/* A new optimizer over every parameter view of m, set up as gpt2_train
 * does it (groups or split, clipping, accumulation, lr schedule). *out
 * is set even on failure (free it with dsc_optimizer_free). */
struct dsc_optimizer;
int gpt2_make_optimizer(struct dsc_optimizer **out, gpt2_model *m, const gpt2_train_opts *o,
                        char *err, size_t errlen);

/* Command-line flags shared by train, compare, bench and study, parsed
 * with getopt_long (lab/opts.h: "--steps 3" and "--steps=3"; the
 * short options -B N and -T N as "B:T:").
 * gpt2_flag_table: dst <- the command's own entries `extra` (may be NULL),
 *   then the trainer's flags that extra does not name; with `only`
 *   (NULL-terminated long names) just those. Returns the entries written
 *   (the terminator follows), -1 if cap is too small. The trainer's
 *   entries have val GPT2_FLAG + k.
 * gpt2_set_flag: applies one parsed flag (val as getopt returned it, 'B'
 *   and 'T' included; value = optarg, NULL for flags without one) to o.
 *   0, or -1 with a message. Strings point into argv. */
#include <getopt.h>
enum { GPT2_FLAG = 1000 };
int gpt2_flag_table(struct option *dst, int cap, const struct option *extra,
                    const char *const *only);
const char *gpt2_flag_name(int val); /* "steps", "B", or NULL */
int gpt2_set_flag(gpt2_train_opts *o, int val, const char *value, char *err, size_t errlen);
/* Help text for those flags (for usage texts). */
extern const char gpt2_common_flags_help[];

/* Subcommands of `descent gpt2` (argv[0] = the subcommand's name):
 * train (train.c), compare (compare.c), sample (sample.c). */
int gpt2_cmd_train(int argc, char **argv);
int gpt2_cmd_compare(int argc, char **argv);
int gpt2_cmd_sample(int argc, char **argv);
extern const char gpt2_train_usage[];
extern const char gpt2_compare_usage[];
extern const char gpt2_sample_usage[];

#endif
