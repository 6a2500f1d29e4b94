/* tune.h - the lab's one learning-rate tuner, shared by every experiment
 * (the theory lab, `descent gpt2 compare`).
 *
 * The caller supplies a callback that trains at a given learning rate and
 * returns a score to minimize (final loss, steps to a target, validation
 * loss, ...). The tuner evaluates a log-spaced grid with a fixed number of
 * points per decade, then extends the grid one point at a time past
 * whichever end holds the best score, until the best learning rate is
 * interior (at least `margin` evaluated points on each side) or a hard
 * limit stops it. What it could not fix it reports: `edge` says the best lr
 * still sits on an end of the grid, so a table can flag it.
 *
 *     static int train(double lr, double bound, void *user, double *score)
 *     {   ... run at lr; stop early once the score cannot beat `bound` ...
 *         *score = final_loss;   // NAN or +INF: diverged / never reached
 *         return 0;              // -1: hard error, the tuner stops
 *     }
 *     lab_tune_opts o = lab_tune_defaults();
 *     o.lr_lo = 1e-4, o.lr_hi = 1e-1;  // first grid, both ends included
 *     o.lr_cap = 0.99 * 2 / L_max;     // optional: never above (stability)
 *     lab_tune_result r;
 *     if (lab_tune(&o, train, &ctx, &r) == 0) use(r.best_lr, r.edge);
 *
 * Grid points are 10^(k / per_decade) for integers k, so grids of runs
 * with the same per_decade share their points; a cap that falls between two
 * grid points becomes a point of its own (the largest lr tried).
 *
 * Scores: lower is better; NAN, +INF and anything non-finite rank last
 * (diverged, did not reach). Equal scores prefer the larger lr: a fixed
 * rule, so the answer never depends on the order of evaluation.
 *
 * A best lr equal to the cap is not a grid edge: every lr above the cap is
 * excluded by the caller's own reason (for SGD on a quadratic, lr >= 2/L_max
 * diverges), so the result sets `at_cap` instead, and tables say "(cap)".
 *
 * Deterministic: the evaluation order depends only on the scores. */
#ifndef DESCENT_LAB_TUNE_H
#define DESCENT_LAB_TUNE_H

/* The most evaluations one call keeps (and the default hard limit). */
#define LAB_TUNE_MAX 96

/* Train at `lr` and store the score in *score (lower is better; NAN or
 * +INF when the run diverged or never reached its target). `bound` is the
 * best score so far (+INF at first): a run may stop early once it cannot
 * beat it and report any score above it (+INF will do). Return 0, or -1
 * on a hard error (the tuner stops and returns -1). */
typedef int (*lab_tune_fn)(double lr, double bound, void *user, double *score);

typedef struct {
    double lr_lo, lr_hi; /* the first grid: grid points within [lr_lo, lr_hi] */
    int per_decade;      /* grid points per decade: >= 3 (default 4) */
    double lr_cap;       /* > 0: no lr above it; it is tried itself when the grid
                            would step past it. 0: no cap */
    double lr_floor;     /* > 0: no lr below it (a hard limit). 0: none */
    int margin;          /* evaluated points wanted on each side of the best (default 1) */
    int max_evals;       /* hard limit on evaluations, <= LAB_TUNE_MAX (default LAB_TUNE_MAX) */
} lab_tune_opts;

enum {
    LAB_TUNE_EDGE_LOW = 1,  /* best lr is (within margin of) the smallest lr tried */
    LAB_TUNE_EDGE_HIGH = 2, /* best lr is (within margin of) the largest lr tried, not the cap */
};

typedef struct {
    double best_lr;    /* NAN if no evaluation gave a finite score */
    double best_score; /* +INF if none did */
    int best;          /* index of the best in lr[] / score[], -1 if none */
    int edge;          /* LAB_TUNE_EDGE_* bits; 0 = interior (or at the cap) */
    int at_cap;        /* 1 if best_lr is the cap */
    int n;             /* evaluations, lr[] ascending */
    double lr[LAB_TUNE_MAX], score[LAB_TUNE_MAX];
} lab_tune_result;

lab_tune_opts lab_tune_defaults(void);

/* Tunes `fn` over the learning rate. Returns 0 when it ran (check r->edge
 * and r->best), -1 on bad options (message in err, if given) or when the
 * callback failed. On -1, *r holds the evaluations made so far. */
int lab_tune(const lab_tune_opts *o, lab_tune_fn fn, void *user, lab_tune_result *r,
             char *err, int errlen);

/* "interior", "low edge", "high edge", "both edges", "at cap", "none reached". */
const char *lab_tune_edge_name(const lab_tune_result *r);

/* 1 if a is strictly better than b under the tuner's order (finite beats
 * non-finite, then smaller; equal scores are not better). */
int lab_tune_better(double a, double b);

#endif
