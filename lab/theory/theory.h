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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ RNG */

/* xoshiro256** (Blackman and Vigna) seeded through splitmix64 from (seed,
 * stream), so each seed/run/optimizer gets an independent stream. Normals by
 * Marsaglia's polar method; Student-t by Bailey's polar method (exact for
 * any nu > 0); symmetric alpha-stable by Chambers-Mallows-Stuck. */
typedef struct {
    uint64_t s[4];
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

typedef enum { TH_SIZE_TEST = 0, TH_SIZE_DEFAULT, TH_SIZE_FULL } th_size;

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
} th_ctx;

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
/* q-quantile (linear interpolation) of v[0..n-1]; v is sorted in place. */
double th_quantile(double *v, int n, double q);
/* Least-squares slope of log(y) on log(x) over the points with y > 0. */
double th_loglog_slope(const double *x, const double *y, int n);

/* ----------------------------------------------------------- experiments */

typedef struct {
    int ran[2];                /* sgd, signsgd */
    double best_lr[2], final_loss[2], start_loss;
    int steps, d;
} th_det_result;
int th_run_deterministic(const th_ctx *c, th_det_result *res);

typedef struct {
    int ran[2];
    double mean_final[2], q10_final[2], q90_final[2], start_mean;
    int steps, d, seeds;
} th_sparse_result;
int th_run_sparse_noise(const th_ctx *c, th_sparse_result *res);

#define TH_SCALE_MAX_D 8
#define TH_SCALE_MAX_PHI 4
typedef struct {
    int nd, nphi, ran;
    int d[TH_SCALE_MAX_D];
    double phi[TH_SCALE_MAX_D][TH_SCALE_MAX_PHI];
    double n_sgd[TH_SCALE_MAX_D][TH_SCALE_MAX_PHI], n_sign[TH_SCALE_MAX_D][TH_SCALE_MAX_PHI];
    double ratio[TH_SCALE_MAX_D][TH_SCALE_MAX_PHI];   /* n_sgd / n_sign */
    double ratio_iso[TH_SCALE_MAX_D];                   /* isotropic control, phi = 1/d */
    double ratio_clean[TH_SCALE_MAX_D];                 /* stiff instance without noise */
    double slope_sparse, slope_dense, slope_iso, slope_clean; /* d.log ratio / d.log d */
} th_scaling_result;
int th_run_scaling(const th_ctx *c, th_scaling_result *res);

#define TH_HT_NOPT 6
#define TH_HT_MAXCFG 10
typedef struct {
    int ncfg;
    char cfg_name[TH_HT_MAXCFG][32];
    double alpha[TH_HT_MAXCFG];
    int ran[TH_HT_NOPT];
    double best_lr[TH_HT_MAXCFG][TH_HT_NOPT];
    double median[TH_HT_MAXCFG][TH_HT_NOPT], q10[TH_HT_MAXCFG][TH_HT_NOPT],
        q90[TH_HT_MAXCFG][TH_HT_NOPT];
    double start_loss;
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

#define TH_MAT_MAX 6
typedef struct {
    int nm, ran;
    int m[TH_MAT_MAX];
    double n_sgd[TH_MAT_MAX][2], n_muon[TH_MAT_MAX][2], ratio[TH_MAT_MAX][2]; /* [rank1, spread] */
    double slope_rank1, slope_spread;
} th_matrix_result;
int th_run_matrix(const th_ctx *c, th_matrix_result *res);

#define TH_ND_MAX 8
typedef struct {
    int n;
    char name[TH_ND_MAX][48];
    int d[TH_ND_MAX], k[TH_ND_MAX];
    double exact[TH_ND_MAX], estimate[TH_ND_MAX];
} th_density_result;
int th_run_noise_density(const th_ctx *c, th_density_result *res);

/* Run every experiment, write out_dir/report.md. */
int th_run_all(const th_ctx *c);

#endif
