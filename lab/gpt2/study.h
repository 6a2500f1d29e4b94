/*
 * study.h - the optimizer study: every optimizer's learning rate tuned on a
 * short budget, then several seeds at the tuned rate on the full budget,
 * with the noise density phi measured through training, overall and per
 * layer type, on held-out batches; tables, plots and the SGD/SignSGD
 * prediction against the outcome. `descent gpt2 study` runs it on GPT-2
 * (State of the Union), `descent classify study` on Fashion-MNIST.
 *
 * The engine knows nothing of models: a task (study_task) trains one run
 * (method spec, lr, seed, steps) and fills a study_curve (validation loss
 * and phi per group at its measurement points). The engine decides which
 * runs to do, keeps every finished run on disk and skips it when the study
 * is started again (resume), and computes every figure of the report from
 * those files.
 *
 * Files under OUT (all written atomically):
 *   tune/<method>/lr_<lr>/    one tuning run  (run.txt, val.csv, phi.csv)
 *   runs/<method>/seed_<s>/   one final run   (same files)
 *   summary.md, summary.csv   final loss (median and range over seeds),
 *                             tokens to the loss targets, wall time per run
 *   tuning.csv                every tuning run, best lr and grid-edge flags
 *   phi.csv, phi_trend.csv    phi per method, group and point (median, range);
 *                             the trend of log phi over training per seed
 *   prediction.csv            SGD/SignSGD: 1/phi against the measured gap
 *   val_loss.png, phi_<group>.png, prediction.png   (or .svg)
 * A run folder is finished when run.txt exists (written last); a folder
 * without it is redone from the start.
 */
#ifndef DESCENT_GPT2_STUDY_H
#define DESCENT_GPT2_STUDY_H

#include <stddef.h>
#include <stdint.h>

#define STUDY_MAX_GROUPS 6
#define STUDY_MAX_POINTS 128
#define STUDY_MAX_METHODS 8
#define STUDY_MAX_SEEDS 16

/* An optimizer of the study. */
typedef struct {
    const char *name;   /* short name: folders, --methods, CSV */
    const char *label;  /* tables and legends */
    const char *spec;   /* libdescent spec, printf format with one %g for the lr */
    int matrix;         /* 1: spec for the hidden matrices, the `adamw` method at
                           its tuned lr for the rest (the task's split) */
    double lr0;         /* centre of the first tuning grid */
} study_method;

/* What one run produced. */
typedef struct {
    int nval;
    double val_units[STUDY_MAX_POINTS], val_loss[STUDY_MAX_POINTS];
    int nphi;
    double phi_units[STUDY_MAX_POINTS];
    double phi[STUDY_MAX_POINTS][STUDY_MAX_GROUPS]; /* [point][group], group 0 = all */
    double snr[STUDY_MAX_POINTS]; /* ||mean gradient||_2^2 / ||sigma||_2^2 (all) */
    double final_val;   /* NAN when diverged */
    double extra;       /* the task's end metric (accuracy), NAN if none */
    int diverged;
    double wall_s, units_per_s;
    char commit[24];    /* the commit the run was made at (from run.txt) */
} study_curve;

/* One run to do. */
typedef struct {
    const char *spec;         /* resolved spec (lr filled in) */
    const char *matrix_spec;  /* NULL, or the hidden matrices' spec */
    double lr;
    uint64_t seed;
    int steps;
    const char *dir;          /* run folder (exists); the task may write there */
    const char *label;        /* progress label */
    int tuning;               /* 1: a tuning run (the task may skip phi) */
} study_job;

typedef struct {
    const char *name;             /* "gpt2", "fashion" */
    const char *unit;             /* "tokens", "images" */
    double units_per_step;
    int ngroups;                  /* <= STUDY_MAX_GROUPS, group 0 = "all" */
    const char *groups[STUDY_MAX_GROUPS];
    const char *extra_name;       /* name of study_curve.extra, or NULL */
    char setup[1024];             /* one paragraph for the report */
    /* trains one run; 0 on success (also when it diverged), -1 on error */
    int (*run)(void *ctx, const study_job *job, study_curve *out, char *err, size_t errlen);
    void *ctx;
} study_task;

typedef struct {
    const char *out;
    int seeds;              /* final runs per method (1..STUDY_MAX_SEEDS) */
    uint64_t seed0;         /* final seeds seed0+1..seed0+seeds; tuning uses seed0 */
    int steps, tune_steps;
    int per_decade;         /* tuning grid points per decade (>= 3) */
    int max_tune_runs;      /* per method, extensions included */
    const char *methods;    /* comma list, NULL: all */
    int only_seed;          /* > 0: only final seed number only_seed (1..seeds) and
                               no report (to share the runs among processes) */
    int ntargets;           /* loss targets; 0: automatic (see study.c) */
    double targets[4];
    int progress;
    const char *command;    /* the command line, for the report */
} study_opts;

void study_opts_default(study_opts *o);

/* Reads --targets ("1 to 4 finite numbers separated by commas") into
 * o->targets and o->ntargets. 0 on success; -1 with a message on stderr
 * naming `command` otherwise (o->ntargets is then 0: automatic). */
int study_parse_targets(const char *arg, study_opts *o, const char *command);

/* The seven optimizers of the study, in run order (AdamW before Muon). */
extern const study_method study_methods[];
extern const int study_nmethods;

/* Runs what is missing, then writes the report. 0 on success, -1 with a
 * message in err. */
int study_run(const study_task *t, const study_method *methods, int nmethods,
              const study_opts *o, char *err, size_t errlen);

/* Noise density per group from k gradient copies of d floats: group 0 is
 * every coordinate, group g >= 1 the union of the segments whose seg_group
 * is g. phi[g] as dsc_noise_density (0 when the group has no variance), and
 * *snr = ||mean||_2^2 / sum of the coordinate variances (all coordinates).
 * 0, or -1 with a message. */
typedef struct {
    size_t off, len;
    int group;
} study_seg;
int study_phi_groups(const float *const *grads, int k, size_t d, const study_seg *segs,
                     int nsegs, int ngroups, double *phi, double *snr, char *err,
                     size_t errlen);

/* GPT-2 on a compact vocabulary: writes DST/train.bin, val.bin with the
 * GPT-2 ids of SRC/{train,val}.bin renumbered, and DST/vocab.txt (line i:
 * the GPT-2 id of compact id i). top <= 0: every id that occurs in either
 * file, 0..V-1 in GPT-2 order. top > 0: the top - 1 most frequent ids of
 * the training file (ties: smaller id first) in GPT-2 order, and one last
 * id V - 1 ("rare") for every other token, so V = top. Skips the writing
 * when DST is complete and newer than SRC. *vocab gets V. 0, or -1 with a
 * message. */
int study_compact_corpus(const char *src_dir, const char *dst_dir, int top, int *vocab,
                         char *err, size_t errlen);

/* `descent gpt2 study` and `descent classify study` */
int gpt2_cmd_study(int argc, char **argv);
extern const char gpt2_study_usage[];

#endif
