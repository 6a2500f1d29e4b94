/* theory.h - the theory lab: experiments that reproduce when and why
 * sign-based optimizers beat SGD (Tao, Yu, Zhang, arXiv 2605.06615; Yu, Tao
 * et al., arXiv 2602.07425; "Lion Secretly Solves Constrained
 * Optimization"), run with libdescent's own optimizers through the public
 * API only. `descent theory` (tools/cli/cmd_theory.c) is the front end;
 * tests/test_theory.c runs the same functions at TEST size.
 *
 * Every experiment is a function th_run_<name>(ctx, result): it prints a
 * summary table (Markdown, to ctx->log), appends a report section (to
 * ctx->md), writes a CSV and a plot under ctx->out_dir (when set) and fills
 * its result struct (may be NULL). It returns 0 when it ran, 1 when a
 * needed optimizer is not registered in this build (the rest still runs
 * and the output says what was skipped), -1 on an error (message on
 * ctx->log or stderr). Results are deterministic for a given seed.
 *
 * Objectives and gradients are computed here in float64 from the float32
 * parameters; the optimizer sees float32 gradients, as in training. */
#ifndef DESCENT_THEORY_H
#define DESCENT_THEORY_H

#include "descent.h"
#include "plot.h"
#include "stats.h"
#include "tune.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ RNG */

/* xoshiro256** (Blackman and Vigna) seeded through splitmix64 from (seed,
 * stream), so each seed/run/optimizer gets an independent stream. Normals by
 * Marsaglia's polar method; Student-t by Bailey's polar method (exact for
 * any nu > 0); symmetric alpha-stable by Chambers-Mallows-Stuck. */
typedef struct {
    lab_rng core; /* the lab's one xoshiro256** (lab/rng.h) */
    int have_spare;
    double spare;
} th_rng;

void th_rng_seed(th_rng *r, uint64_t seed, uint64_t stream);
uint64_t th_rng_u64(th_rng *r);
double th_rng_uniform(th_rng *r);              /* in (0, 1) */
double th_rng_normal(th_rng *r);               /* N(0, 1) */
double th_rng_student_t(th_rng *r, double nu); /* t with nu degrees of freedom */
double th_rng_stable(th_rng *r, double alpha); /* symmetric, scale 1, alpha in (0, 2] */

/* --------------------------------------------------------------- context */

typedef enum { TH_SIZE_TEST = 0, TH_SIZE_DEFAULT, TH_SIZE_LARGE } th_size;

typedef struct {
    char *buf;
    size_t len, cap;
} th_text;

void th_text_printf(th_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void th_text_free(th_text *t);

typedef struct {
    th_size size;
    const char *out_dir;   /* CSV and plots go here; NULL writes no files */
    FILE *log;             /* summary tables; NULL is silent */
    th_text *md;           /* report section; NULL keeps none */
    lab_plot_format plot;  /* AUTO (gnuplot PNG, else SVG), SVG or NONE */
    uint64_t seed;         /* base seed (default 42) */
    int resume;            /* 1: reuse finished cells and experiments cached in out_dir */
} th_ctx;

/* "test", "default", "large". */
const char *th_size_name(th_size s);

th_ctx th_ctx_default(void);

/* Text to both the log and the report. */
void th_say(const th_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text to the report only. */
void th_md(const th_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Full path of out_dir/name in buf; 0 if there is no out_dir. */
int th_path(const th_ctx *c, const char *name, char *buf, size_t n);
/* Writes the plot as out_dir/base.{png,svg} and links it in the report
 * (or says in both places why it was skipped). */
void th_plot(const th_ctx *c, const lab_plot *p, const char *base);
/* Opens out_dir/name for an atomic CSV write; NULL if no out_dir or error. */
FILE *th_csv_open(const th_ctx *c, const char *name, void **handle);
void th_csv_close(const th_ctx *c, void *handle);

/* --------------------------------------------------------------- helpers */

/* 1 if the optimizer is registered in this build. */
int th_have(const char *name);
/* An optimizer with one group "g" run by `spec` and one parameter "x" of
 * the given shape (ndim 1 or 2). NULL on failure, with a message in err. */
dsc_optimizer *th_opt_new(const char *spec, float *x, const float *g, int ndim,
                          const int64_t *shape, char *err, size_t errlen);

/* -------------------------------------------------------------- verdicts */

/* Every experiment ends with one line per claim: the claim in words, the
 * measured figure with its interval, what the bounds predict, and a verdict
 * computed by lab_verdict_of() from the interval (rules in docs/theory.md).
 * The same lines go to OUT/<experiment>.json. */
#define TH_MAX_CLAIMS 40
typedef struct {
    char claim[240];
    char rule[96];          /* the rule in words, e.g. "interval above 1" */
    double measured, lo, hi; /* +INF: did not reach */
    double predicted;       /* NAN: no prediction */
    lab_verdict verdict;
} th_claim;

typedef struct {
    char experiment[32];
    int nclaims;
    int edge_hits;          /* tuned lrs left on a grid edge (warnings printed where they occur) */
    int unreached;          /* tunings where no lr reached the target at all */
    int tuned;              /* tuned lrs in all */
    th_claim claims[TH_MAX_CLAIMS];
} th_verdicts;

void th_verdicts_init(th_verdicts *v, const char *experiment);
/* Adds a claim and computes its verdict: kind/a/b as in lab_verdict_of. */
void th_claim_add(th_verdicts *v, const char *claim, lab_claim_kind kind, double a, double b,
                  lab_ci ci, double predicted);
/* Counts one tuned lr; a grid-edge hit is counted and warned about. */
void th_tuned(const th_ctx *c, th_verdicts *v, const char *what, const lab_tune_result *r);
/* Prints the verdict lines (log and report) and writes OUT/<experiment>.json.
 * Returns 0, or -1 if the JSON could not be written. */
int th_verdicts_finish(const th_ctx *c, const th_verdicts *v);

/* Formats a number for tables: "did not reach" for +INF, "-" for NAN. */
const char *th_fmt(char *buf, size_t n, double v);
/* "12.3 [9.8, 15.1]" */
const char *th_fmt_ci(char *buf, size_t n, lab_ci ci);
/* lr with the tuner's flag: "0.0178", "1.98 (cap)", "0.001 (EDGE: low)". */
const char *th_fmt_lr(char *buf, size_t n, const lab_tune_result *r);

/* Bootstrap settings every experiment uses: 90% intervals, 2000 resamples. */
#define TH_LEVEL 0.9
#define TH_BOOT 2000

/* ------------------------------------------------------- tuned hit times */

/* The shared measurement of the stochastic experiments: `draws`
 * independent problem draws; a method at a learning rate gives each draw a
 * hit time (steps until the true objective's stationarity measure reaches
 * the cell's target), +INF if not within the cap. */
typedef int (*th_hit_fn)(void *cell, int method, double lr, int draw, long cap, double *steps);

/* Tunes `method`'s lr with lab_tune on the median hit time over the draws,
 * stopping runs early once they cannot beat the best so far, then reruns
 * the best lr with the full budget so that hits[0..draws-1] are uncensored
 * (+INF: did not reach within budget). Returns 0 or -1 (callback error). */
int th_tune_hits(void *cell, th_hit_fn fn, int method, int draws, long budget,
                 const lab_tune_opts *o, lab_tune_result *r, double *hits);

/* ----------------------------------------------------------- experiments */

typedef struct {
    int ran[2];                /* sgd, signsgd */
    double best_lr[2], final_loss[2], start_loss; /* paper-exact run (one x0) */
    int steps, d;
    /* over 10 x0 draws: SGD/SignSGD final-loss factor with the paper grid and
     * fairly tuned, and their quotient (how much the coarse grid inflates it) */
    lab_ci paper_ratio, fair_ratio, inflation;
    double fair_lr[2];  /* median tuned lr over draws */
    int edge_hits;
} th_det_result;
int th_run_deterministic(const th_ctx *c, th_det_result *res);

typedef struct {
    int ran[2];
    double mean_final[2], q10_final[2], q90_final[2], start_mean; /* paper-exact */
    int steps, d, seeds;
    /* per-seed factor SGD/SignSGD of the final loss: paper lrs and fairly tuned */
    lab_ci paper_ratio, fair_ratio;
    double fair_lr[2];
    int edge_hits;
} th_sparse_result;
int th_run_sparse_noise(const th_ctx *c, th_sparse_result *res);

#define TH_SCALE_MAX_D 4
#define TH_SC_G 3       /* geometry: iso, stiff, graded */
#define TH_SC_P 3       /* noise placement: stiff, flat, spread */
#define TH_SC_PHI 3     /* phi: 1/d, d^-1/2, 1 */
#define TH_SC_MAXDRAWS 20
extern const char *const th_sc_geom_names[TH_SC_G];
extern const char *const th_sc_place_names[TH_SC_P];
extern const char *const th_sc_phi_names[TH_SC_PHI];
typedef struct {
    int nd, draws, ran, edge_hits, tuned;
    int d[TH_SCALE_MAX_D];
    /* [geometry][placement][phi][d]: SGD/SignSGD steps, median over draws
     * with its interval; the noise-only factor (over the same draw's no-noise
     * ratio); the bounds' prediction (median over draws) */
    lab_ci ratio[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D];
    lab_ci noise_only[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D];
    double predicted[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D];
    double meas_over_pred[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D];
    lab_ci clean[TH_SC_G][TH_SCALE_MAX_D];
    double predicted_clean[TH_SC_G][TH_SCALE_MAX_D];
    double draw_ratio[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D][TH_SC_MAXDRAWS];
    double draw_noise_only[TH_SC_G][TH_SC_P][TH_SC_PHI][TH_SCALE_MAX_D][TH_SC_MAXDRAWS];
    double draw_clean[TH_SC_G][TH_SCALE_MAX_D][TH_SC_MAXDRAWS];
    /* slopes in d (log-log, per-d medians) with stratified bootstrap intervals */
    lab_ci slope_clean[TH_SC_G], slope_total[TH_SC_G][TH_SC_P][TH_SC_PHI],
        slope_noise[TH_SC_G][TH_SC_P][TH_SC_PHI];
    double pred_slope_clean[TH_SC_G], pred_slope_total[TH_SC_G][TH_SC_P][TH_SC_PHI],
        pred_slope_noise[TH_SC_G][TH_SC_P][TH_SC_PHI];
} th_scaling_result;
int th_run_scaling(const th_ctx *c, th_scaling_result *res);

#define TH_HT_NOPT 6   /* sgd, sgd+clip, nsgd | signsgd, signum, lion */
#define TH_HT_MAXCFG 10
typedef struct {
    int ncfg, seeds;
    long budget;
    char cfg_name[TH_HT_MAXCFG][32];
    double alpha[TH_HT_MAXCFG];
    int ran[TH_HT_NOPT];
    double best_lr[TH_HT_MAXCFG][TH_HT_NOPT];
    int lr_edge[TH_HT_MAXCFG][TH_HT_NOPT];
    double clip[TH_HT_MAXCFG];    /* tuned clip level of sgd+clip */
    int clip_edge[TH_HT_MAXCFG];
    lab_ci median[TH_HT_MAXCFG][TH_HT_NOPT]; /* steps to the target; +INF: did not reach */
    int best_base[TH_HT_MAXCFG], best_sign[TH_HT_MAXCFG];
    lab_ci ratio[TH_HT_MAXCFG];   /* per seed: best baseline steps / best sign steps */
    int edge_hits;
} th_heavy_result;
extern const char *const th_heavy_opt_names[TH_HT_NOPT];
int th_run_heavy_tail(const th_ctx *c, th_heavy_result *res);

typedef struct {
    int ran;
    double lambda, lr;
    double max_scaled_inside;   /* run started inside: max_t max_i |x_i| lambda */
    double max_scaled_after;    /* run started outside: after it entered */
    int enter_step;             /* first step with max_i |x_i| lambda <= 1 (outside start) */
    double dist_inf[2], dist_2[2]; /* final distance to the constrained optimum */
    double unconstrained_scaled;   /* max_i |c_i| lambda of the free optimum */
} th_lion_result;
int th_run_lion_box(const th_ctx *c, th_lion_result *res);

#define TH_MAT_MAX 5
typedef struct {
    int nm, ran, draws, edge_hits;
    int m[TH_MAT_MAX];
    /* [geometry stiff, graded][noise none, rank-one, spread][m] */
    lab_ci ratio[2][3][TH_MAT_MAX], noise_only[2][3][TH_MAT_MAX];
    double predicted[2][3][TH_MAT_MAX];
    double hits[2][3][TH_MAT_MAX][2][16];  /* [..][sgd, muon][draw] */
    double draw_ratio[2][3][TH_MAT_MAX][16], draw_noise_only[2][3][TH_MAT_MAX][16];
    lab_ci slope[2][3], slope_noise[2][3];
    double pred_slope[2][3], pred_slope_noise[2][3];
} th_matrix_result;
int th_run_matrix(const th_ctx *c, th_matrix_result *res);

#define TH_ND_MAX 8
typedef struct {
    int n;
    char name[TH_ND_MAX][48];
    int d[TH_ND_MAX], k[TH_ND_MAX];
    double exact[TH_ND_MAX], estimate[TH_ND_MAX]; /* estimate: median over 10 draws */
    lab_ci rel_err[TH_ND_MAX];                     /* (estimate - exact) / exact */
} th_density_result;
int th_run_noise_density(const th_ctx *c, th_density_result *res);

/* Run every experiment, write out_dir/report.md. With c->resume, an
 * experiment whose section and JSON are cached in out_dir from a run with
 * the same size and seed is not run again. */
int th_run_all(const th_ctx *c);

/* Runs one experiment by name with its section cached in out_dir
 * (<name>.section.md) for `all` and --resume. -2 if the name is unknown. */
int th_run_named(const th_ctx *c, const char *name);

/* Cache of finished cells (scaling, matrix): a line of text under a key.
 * th_cache_get returns 1 and fills buf if resume is on and the key is
 * cached; th_cache_put stores it (atomically, one file per key). */
int th_cache_get(const th_ctx *c, const char *key, char *buf, size_t n);
void th_cache_put(const th_ctx *c, const char *key, const char *text);

#endif
