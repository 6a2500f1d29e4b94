/*
 * study.c - the optimizer study engine (contract in study.h): tuning,
 * seeds, resume, and the report computed from the runs' files.
 *
 * Rules the report relies on (also in docs/gpt2.md):
 * - Tuning: each method's lr on a log grid of `per_decade` points per
 *   decade around lr0, one seed (seed0, never used by the final runs), the
 *   short budget `tune_steps` (with its own schedule of that length); the
 *   score is the final validation loss (a diverged run scores +inf). The
 *   grid is extended past an edge while the best point sits on it
 *   (lab/tune.h); a best lr that stays on an edge is flagged in every table.
 * - Final runs: `seeds` seeds at the tuned lr on the full budget.
 * - Loss targets (tokens to reach): given, or automatic: the largest and
 *   the smallest of the methods' median final losses and their midpoint,
 *   so the first is reached by every method that did not diverge and the
 *   last by the best one.
 * - phi trend: per run, the least-squares slope of ln phi against the
 *   fraction of training done (every measurement, step 0 included). The
 *   claim "phi falls" (slope < 0) gets lab_verdict_of's rule with the range
 *   over seeds as the interval: "falls" when every seed's slope is below
 *   0, "does not fall" when none is, else "mixed".
 * - Prediction: the noise term of the bounds gives SGD/SignSGD = 1/phi
 *   (d ||sigma||_2^2 / ||sigma||_1^2); it is set beside the measured ratio
 *   of tokens (SGD's tokens to reach the loss SignSGD has at a point,
 *   divided by SignSGD's tokens) and the loss gap at equal tokens, both
 *   from the median curves over seeds. "ranks right" when both are on the
 *   same side of 1; "size right" when the measured/predicted ratio is in
 *   [1/2, 2].
 */
#include "gpt2/study.h"

#include "descent.h"
#include "labfile.h"
#include "plot.h"
#include "stats.h"
#include "tune.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* lr0: the first grid's centre (a decade around it, then extended), from
 * the ranges these rules usually take on small transformers at short
 * budgets; the tuner moves past them when they are wrong. */
const study_method study_methods[] = {
    {"sgd", "SGD", "sgd:lr=%g", 0, 1.0},
    {"sgdm", "SGD (momentum 0.9)", "sgd:lr=%g,momentum=0.9", 0, 0.3},
    {"signsgd", "SignSGD", "signsgd:lr=%g", 0, 3e-3},
    {"signum", "Signum (momentum 0.9)", "signum:lr=%g,momentum=0.9", 0, 3e-3},
    {"lion", "Lion", "lion:lr=%g,beta1=0.9,beta2=0.99", 0, 1e-3},
    {"adamw", "AdamW", "adamw:lr=%g,beta1=0.9,beta2=0.95,weight_decay=0", 0, 5e-3},
    {"muon", "Muon + AdamW", "muon:lr=%g", 1, 0.03},
};
const int study_nmethods = (int)(sizeof study_methods / sizeof study_methods[0]);

#define ADAMW_REST "adamw:lr=%g,beta1=0.9,beta2=0.95,weight_decay=0"

int study_parse_targets(const char *arg, study_opts *o, const char *command)
{
    const char *p = arg;
    o->ntargets = 0;
    while (*p) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || !isfinite(v) || o->ntargets >= 4 || (*e && *e != ',')) break;
        o->targets[o->ntargets++] = v;
        if (!*e) return 0;
        p = e + 1; /* a comma: another number must follow */
    }
    o->ntargets = 0;
    fprintf(stderr, "%s: --targets \"%s\": expected 1 to 4 numbers separated by commas\n",
            command, arg);
    return -1;
}

void study_opts_default(study_opts *o)
{
    memset(o, 0, sizeof *o);
    o->out = "out/study";
    o->seeds = 3;
    o->seed0 = 1000;
    o->steps = 500;
    o->tune_steps = 125;
    o->per_decade = 3;
    o->max_tune_runs = 9;
    o->progress = 1;
}

/* ------------------------------------------------------------ phi */

int study_phi_groups(const float *const *grads, int k, size_t d, const study_seg *segs,
                     int nsegs, int ngroups, double *phi, double *snr, char *err,
                     size_t errlen)
{
    if (!grads || k < 2 || d == 0 || ngroups < 1 || ngroups > STUDY_MAX_GROUPS || !phi) {
        lab_set_err(err, errlen, "phi: need k >= 2 gradients of d >= 1 floats and 1..%d groups",
                STUDY_MAX_GROUPS);
        return -1;
    }
    for (int s = 0; s < nsegs; s++)
        if (segs[s].group < 1 || segs[s].group >= ngroups || segs[s].off + segs[s].len > d) {
            lab_set_err(err, errlen, "phi: segment %d (offset %zu, length %zu, group %d) outside "
                    "d = %zu or groups 1..%d", s, segs[s].off, segs[s].len, segs[s].group, d,
                    ngroups - 1);
            return -1;
        }
    dsc_status st = dsc_noise_density(grads, k, d, &phi[0]);
    if (st != DSC_OK) {
        lab_set_err(err, errlen, "phi: %s", dsc_status_string(st));
        return -1;
    }
    /* groups: a group made of one segment is read in place; others are
     * gathered into k contiguous copies first */
    const float **g = malloc(sizeof(float *) * (size_t)k);
    if (!g) {
        lab_set_err(err, errlen, "phi: out of memory");
        return -1;
    }
    int rc = 0;
    for (int grp = 1; grp < ngroups && !rc; grp++) {
        size_t len = 0;
        int nseg = 0, first = -1;
        for (int s = 0; s < nsegs; s++)
            if (segs[s].group == grp) {
                len += segs[s].len;
                nseg++;
                if (first < 0) first = s;
            }
        phi[grp] = NAN;
        if (len == 0) continue;
        float *buf = NULL;
        if (nseg == 1) {
            for (int i = 0; i < k; i++) g[i] = grads[i] + segs[first].off;
        } else {
            buf = malloc(sizeof(float) * len * (size_t)k);
            if (!buf) {
                lab_set_err(err, errlen, "phi: out of memory");
                rc = -1;
                break;
            }
            for (int i = 0; i < k; i++) {
                float *dst = buf + (size_t)i * len;
                for (int s = 0; s < nsegs; s++)
                    if (segs[s].group == grp) {
                        memcpy(dst, grads[i] + segs[s].off, sizeof(float) * segs[s].len);
                        dst += segs[s].len;
                    }
                g[i] = buf + (size_t)i * len;
            }
        }
        st = dsc_noise_density(g, k, len, &phi[grp]);
        free(buf);
        if (st != DSC_OK) {
            lab_set_err(err, errlen, "phi (group %d): %s", grp, dsc_status_string(st));
            rc = -1;
        }
    }
    free(g);
    if (!rc && snr) {
        /* signal against noise over all coordinates: the mean gradient's
         * squared norm over the summed coordinate variances (the sample
         * variance, k - 1 in the denominator, as dsc_noise_density) */
        double m2 = 0, v = 0;
        for (size_t j = 0; j < d; j++) {
            double mean = 0;
            for (int i = 0; i < k; i++) mean += grads[i][j];
            mean /= k;
            double ss = 0;
            for (int i = 0; i < k; i++) {
                double e = grads[i][j] - mean;
                ss += e * e;
            }
            m2 += mean * mean;
            v += ss / (k - 1);
        }
        *snr = v > 0 ? m2 / v : INFINITY;
    }
    return rc;
}

/* ------------------------------------------------------------ run files */

/* The commit of the working tree when the study started (runs record it;
 * a binary copied aside keeps reporting the tree it was started from). */
static char start_commit[64];

static const char *git_commit(char *buf, size_t n)
{
    if (start_commit[0]) {
        snprintf(buf, n, "%s", start_commit);
        return buf;
    }
    snprintf(buf, n, "unknown");
    FILE *p = popen("git describe --always --dirty --abbrev=12 2>/dev/null", "r");
    if (!p) return buf;
    char line[64];
    if (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) snprintf(buf, n, "%s", line);
    }
    pclose(p);
    return buf;
}



static int write_run(const char *dir, const study_task *t, const study_job *job,
                     const study_curve *c, char *err, size_t errlen)
{
    char path[1200];
    lab_file f;
    snprintf(path, sizeof path, "%s/val.csv", dir);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "units,val_loss\n");
    for (int i = 0; i < c->nval; i++)
        fprintf(f.fp, "%.17g,%.17g\n", c->val_units[i], c->val_loss[i]);
    if (lab_file_commit(&f)) goto io;
    snprintf(path, sizeof path, "%s/phi.csv", dir);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "units");
    for (int g = 0; g < t->ngroups; g++) fprintf(f.fp, ",phi_%s", t->groups[g]);
    fprintf(f.fp, ",snr\n");
    for (int i = 0; i < c->nphi; i++) {
        fprintf(f.fp, "%.17g", c->phi_units[i]);
        for (int g = 0; g < t->ngroups; g++) fprintf(f.fp, ",%.17g", c->phi[i][g]);
        fprintf(f.fp, ",%.17g\n", c->snr[i]);
    }
    if (lab_file_commit(&f)) goto io;
    /* run.txt last: it marks the run as finished */
    snprintf(path, sizeof path, "%s/run.txt", dir);
    if (lab_file_open(&f, path)) goto io;
    char commit[64];
    git_commit(commit, sizeof commit);
    fprintf(f.fp, "format descent-study-run 1\ncommit %s\nspec %s\nmatrix_spec %s\nlr %.17g\nseed %llu\n"
            "steps %d\nfinal_val %.17g\nextra %.17g\ndiverged %d\nwall_s %.6f\n"
            "units_per_s %.6f\n", commit, job->spec, job->matrix_spec ? job->matrix_spec : "-",
            job->lr, (unsigned long long)job->seed, job->steps, c->final_val, c->extra,
            c->diverged, c->wall_s, c->units_per_s);
    if (lab_file_commit(&f)) goto io;
    return 0;
io:
    lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
}

/* Reads a finished run back; 1 if found and consistent with the job,
 * 0 if not finished, -1 on a finished run that belongs to another setup. */
static int read_run(const char *dir, const study_task *t, const study_job *job, study_curve *c,
                    char *err, size_t errlen)
{
    char path[1200], line[4096];
    snprintf(path, sizeof path, "%s/run.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    memset(c, 0, sizeof *c);
    c->final_val = c->extra = NAN;
    int steps = -1;
    char spec[1024] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        const char *k = line, *v = sp + 1;
        if (!strcmp(k, "spec")) snprintf(spec, sizeof spec, "%s", v);
        else if (!strcmp(k, "steps")) steps = atoi(v);
        else if (!strcmp(k, "final_val")) c->final_val = strtod(v, NULL);
        else if (!strcmp(k, "extra")) c->extra = strtod(v, NULL);
        else if (!strcmp(k, "diverged")) c->diverged = atoi(v);
        else if (!strcmp(k, "wall_s")) c->wall_s = strtod(v, NULL);
        else if (!strcmp(k, "units_per_s")) c->units_per_s = strtod(v, NULL);
        else if (!strcmp(k, "commit")) snprintf(c->commit, sizeof c->commit, "%.20s", v);
    }
    fclose(f);
    if (strcmp(spec, job->spec) || steps != job->steps) {
        lab_set_err(err, errlen, "%s was made by another setup (spec \"%s\", %d steps; this study "
                "wants \"%s\", %d steps): use another --out or remove it", path, spec, steps,
                job->spec, job->steps);
        return -1;
    }
    snprintf(path, sizeof path, "%s/val.csv", dir);
    f = fopen(path, "r");
    if (!f) goto bad;
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    while (c->nval < STUDY_MAX_POINTS && fgets(line, sizeof line, f)) {
        char *e;
        c->val_units[c->nval] = strtod(line, &e);
        if (*e != ',') continue;
        c->val_loss[c->nval] = strtod(e + 1, NULL);
        c->nval++;
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/phi.csv", dir);
    f = fopen(path, "r");
    if (!f) goto bad;
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    while (c->nphi < STUDY_MAX_POINTS && fgets(line, sizeof line, f)) {
        char *p = line, *e;
        int i = c->nphi;
        c->phi_units[i] = strtod(p, &e);
        for (int g = 0; g < t->ngroups; g++) {
            if (*e != ',') goto skip;
            p = e + 1;
            c->phi[i][g] = strtod(p, &e);
        }
        if (*e != ',') goto skip;
        c->snr[i] = strtod(e + 1, NULL);
        c->nphi++;
    skip:;
    }
    fclose(f);
    return 1;
bad:
    lab_set_err(err, errlen, "%s: %s (run folder incomplete: remove it to redo the run)", path,
            strerror(errno));
    return -1;
}

/* The run of a job: read back when finished, else trained and saved. */
static int do_job(const study_task *t, const study_job *job, study_curve *c, int *ran,
                  char *err, size_t errlen)
{
    *ran = 0;
    int got = read_run(job->dir, t, job, c, err, errlen);
    if (got < 0) return -1;
    if (got) return 0;
    if (lab_mkdirs(job->dir)) {
        lab_set_err(err, errlen, "%s: %s", job->dir, strerror(errno));
        return -1;
    }
    memset(c, 0, sizeof *c);
    c->final_val = c->extra = NAN;
    double t0 = now_s();
    if (t->run(t->ctx, job, c, err, errlen)) return -1;
    if (!(c->wall_s > 0)) c->wall_s = now_s() - t0;
    if (c->diverged) c->final_val = NAN;
    *ran = 1;
    git_commit(c->commit, sizeof c->commit);
    return write_run(job->dir, t, job, c, err, errlen);
}

/* ------------------------------------------------------------ statistics */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of the finite values (NAN if none); *lo, *hi their range */
static double med_range(const double *v, int n, double *lo, double *hi)
{
    double s[STUDY_MAX_SEEDS * 2];
    int m = 0;
    for (int i = 0; i < n && m < (int)(sizeof s / sizeof s[0]); i++)
        if (isfinite(v[i])) s[m++] = v[i];
    if (lo) *lo = NAN;
    if (hi) *hi = NAN;
    if (!m) return NAN;
    qsort(s, (size_t)m, sizeof *s, cmp_d);
    if (lo) *lo = s[0];
    if (hi) *hi = s[m - 1];
    return m % 2 ? s[m / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
}

/* First units at which the curve is <= target, linearly interpolated
 * between evaluations; NAN if never. */
static double units_to(const study_curve *c, double target)
{
    for (int i = 0; i < c->nval; i++) {
        if (!(c->val_loss[i] <= target)) continue;
        if (i == 0) return c->val_units[0];
        double y0 = c->val_loss[i - 1], y1 = c->val_loss[i];
        double x0 = c->val_units[i - 1], x1 = c->val_units[i];
        if (!isfinite(y0) || y0 == y1) return x1;
        return x0 + (x1 - x0) * (y0 - target) / (y0 - y1);
    }
    return NAN;
}

/* A curve given as points (x, y), y decreasing or not: first x where y <= target. */
static double xs_to(const double *x, const double *y, int n, double target)
{
    for (int i = 0; i < n; i++) {
        if (!(y[i] <= target)) continue;
        if (i == 0 || !isfinite(y[i - 1]) || y[i - 1] == y[i]) return x[i];
        return x[i - 1] + (x[i] - x[i - 1]) * (y[i - 1] - target) / (y[i - 1] - y[i]);
    }
    return NAN;
}

/* Least-squares slope of ln phi[group] against the fraction of training
 * done; NAN with fewer than 3 usable points. */
static double phi_slope(const study_curve *c, int group, double total_units)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int n = 0;
    for (int i = 0; i < c->nphi; i++) {
        double p = c->phi[i][group];
        if (!(p > 0) || !isfinite(p)) continue;
        double x = c->phi_units[i] / total_units, y = log(p);
        sx += x, sy += y, sxx += x * x, sxy += x * y;
        n++;
    }
    if (n < 3) return NAN;
    double den = n * sxx - sx * sx;
    return den > 0 ? (n * sxy - sx * sy) / den : NAN;
}

/* ------------------------------------------------------------ the study */

typedef struct {
    const study_method *m;
    /* tuning */
    int ntune;
    double tune_lr[32], tune_loss[32];
    int best;            /* index into tune_*, -1 if every tuning run diverged */
    int edge_lo, edge_hi;/* best lr still at the grid's low / high edge */
    double lr;           /* tuned lr */
    char spec[512], matrix_spec[512];
    /* final runs */
    int nseeds;
    study_curve *runs;   /* nseeds */
    double final_med, final_lo, final_hi, wall_med, ups_med, extra_med, extra_lo, extra_hi;
    int ndiverged;
    /* median curves over seeds */
    int nval;
    double val_x[STUDY_MAX_POINTS], val_med[STUDY_MAX_POINTS], val_lo[STUDY_MAX_POINTS],
        val_hi[STUDY_MAX_POINTS];
} method_state;

static void resolve(const study_method *m, double lr, double adamw_lr, char *spec, size_t sn,
                    char *mspec, size_t mn)
{
    if (m->matrix) {
        snprintf(mspec, mn, m->spec, lr);
        snprintf(spec, sn, ADAMW_REST, adamw_lr);
    } else {
        snprintf(spec, sn, m->spec, lr);
        mspec[0] = 0;
    }
}

typedef struct {
    const study_task *t;
    const study_opts *o;
    method_state *ms;
    double adamw_lr;
    char *err;
    size_t errlen;
    int failed;
    double *ran_wall;
} tune_ctx;

/* The tuner's objective: final validation loss of a short run at lr
 * (+inf when it diverged). Runs are never cut short at `bound`: a finished
 * tuning run is kept on disk whole, so a resumed study reads the same
 * numbers back. */
static int tune_objective(double lr, double bound, void *user, double *score)
{
    (void)bound;
    tune_ctx *tc = user;
    method_state *ms = tc->ms;
    char dir[1200], label[96], spec[512], mspec[512];
    resolve(ms->m, lr, tc->adamw_lr, spec, sizeof spec, mspec, sizeof mspec);
    snprintf(dir, sizeof dir, "%s/tune/%s/lr_%.4g", tc->o->out, ms->m->name, lr);
    snprintf(label, sizeof label, "tune %s lr=%.4g", ms->m->name, lr);
    /* spec: every parameter, or the rest of the split; matrix_spec: hidden matrices */
    study_job job = {spec, mspec[0] ? mspec : NULL, lr, tc->o->seed0, tc->o->tune_steps, dir,
                     label, 1};
    study_curve c;
    int ran = 0;
    if (do_job(tc->t, &job, &c, &ran, tc->err, tc->errlen)) {
        tc->failed = 1;
        return -1;
    }
    *tc->ran_wall += c.wall_s; /* every tuning run's wall time, earlier invocations too */
    *score = c.diverged || !isfinite(c.final_val) ? INFINITY : c.final_val;
    if (tc->o->progress)
        fprintf(stderr, "[%s] final val loss %.4f%s\n", label, *score,
                ran ? "" : " (done before)");
    return 0;
}

/* The method's first grid: lr0 and one decade around it (both ends kept:
 * lab_tune extends it while the best sits on an end). */
static int tune_method(const study_task *t, const study_opts *o, method_state *ms,
                       double adamw_lr, double *ran_wall, char *err, size_t errlen)
{
    tune_ctx tc = {t, o, ms, adamw_lr, err, errlen, 0, ran_wall};
    lab_tune_opts to = lab_tune_defaults();
    to.lr_lo = ms->m->lr0 / sqrt(10.0);
    to.lr_hi = ms->m->lr0 * sqrt(10.0);
    to.per_decade = o->per_decade;
    to.max_evals = o->max_tune_runs;
    lab_tune_result tr;
    if (lab_tune(&to, tune_objective, &tc, &tr, err, (int)errlen)) {
        if (!tc.failed && !err[0]) lab_set_err(err, errlen, "tuning %s failed", ms->m->name);
        return -1;
    }
    ms->ntune = tr.n < 32 ? tr.n : 32;
    for (int i = 0; i < ms->ntune; i++) {
        ms->tune_lr[i] = tr.lr[i];
        ms->tune_loss[i] = tr.score[i];
    }
    ms->best = tr.best < 32 ? tr.best : -1;
    ms->edge_lo = (tr.edge & LAB_TUNE_EDGE_LOW) != 0;
    ms->edge_hi = (tr.edge & LAB_TUNE_EDGE_HIGH) != 0;
    ms->lr = tr.best >= 0 ? tr.best_lr : ms->m->lr0;
    return 0;
}

static void median_curve(method_state *ms)
{
    /* the points of the longest run; each point's median over the seeds
     * that have it (a diverged run stops early) */
    int longest = -1;
    for (int s = 0; s < ms->nseeds; s++)
        if (longest < 0 || ms->runs[s].nval > ms->runs[longest].nval) longest = s;
    ms->nval = 0;
    if (longest < 0) return;
    const study_curve *L = &ms->runs[longest];
    for (int i = 0; i < L->nval; i++) {
        double v[STUDY_MAX_SEEDS];
        int n = 0;
        for (int s = 0; s < ms->nseeds; s++)
            if (i < ms->runs[s].nval) v[n++] = ms->runs[s].val_loss[i];
        ms->val_x[ms->nval] = L->val_units[i];
        ms->val_med[ms->nval] = med_range(v, n, &ms->val_lo[ms->nval], &ms->val_hi[ms->nval]);
        ms->nval++;
    }
}

/* median over seeds of phi[group] at point i (and its range) */
static double phi_at(const method_state *ms, int i, int group, double *lo, double *hi,
                     double *units)
{
    double v[STUDY_MAX_SEEDS];
    int n = 0;
    *units = NAN;
    for (int s = 0; s < ms->nseeds; s++)
        if (i < ms->runs[s].nphi) {
            v[n++] = ms->runs[s].phi[i][group];
            *units = ms->runs[s].phi_units[i];
        }
    return med_range(v, n, lo, hi);
}

static int max_phi_points(const method_state *ms)
{
    int n = 0;
    for (int s = 0; s < ms->nseeds; s++)
        if (ms->runs[s].nphi > n) n = ms->runs[s].nphi;
    return n;
}

static void fmt_units(double u, char *buf, size_t n)
{
    if (!isfinite(u)) snprintf(buf, n, "not reached");
    else if (u >= 1e6) snprintf(buf, n, "%.2fM", u / 1e6);
    else if (u >= 1e4) snprintf(buf, n, "%.0fk", u / 1e3);
    else snprintf(buf, n, "%.0f", u);
}

static void plot_out(const lab_plot *p, const char *out, const char *name)
{
    char base[1100], got[1200], msg[256];
    snprintf(base, sizeof base, "%s/%s", out, name);
    if (lab_plot_write(p, base, LAB_PLOT_AUTO, got, sizeof got, msg, sizeof msg) ==
        LAB_PLOT_NONE)
        fprintf(stderr, "study: plot %s skipped: %s\n", name, msg);
}

/* Writes every table and plot. */
static int report(const study_task *t, const study_opts *o, method_state *ms, int nm,
                  double wall_this, double wall_runs, char *err, size_t errlen)
{
    const char *out = o->out;
    char path[1200], commit[64];
    git_commit(commit, sizeof commit);
    double total_units = o->steps * t->units_per_step;

    /* loss targets */
    double targets[4];
    int nt = o->ntargets;
    for (int i = 0; i < nt; i++) targets[i] = o->targets[i];
    if (nt == 0) {
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < nm; i++)
            if (isfinite(ms[i].final_med)) {
                if (ms[i].final_med < lo) lo = ms[i].final_med;
                if (ms[i].final_med > hi) hi = ms[i].final_med;
            }
        if (isfinite(lo)) {
            targets[0] = hi;
            targets[1] = 0.5 * (lo + hi);
            targets[2] = lo;
            nt = hi > lo ? 3 : 1;
        }
    }

    /* per method, per target: units to reach, per seed then median */
    double reach[STUDY_MAX_METHODS][4];
    int nreach[STUDY_MAX_METHODS][4];
    for (int i = 0; i < nm; i++)
        for (int k = 0; k < nt; k++) {
            double v[STUDY_MAX_SEEDS];
            int n = 0;
            for (int s = 0; s < ms[i].nseeds; s++) {
                double u = units_to(&ms[i].runs[s], targets[k]);
                v[s] = u;
                n += isfinite(u);
            }
            nreach[i][k] = n;
            /* the median counts a seed that never got there as +inf */
            for (int s = 0; s < ms[i].nseeds; s++)
                if (!isfinite(v[s])) v[s] = INFINITY;
            qsort(v, (size_t)ms[i].nseeds, sizeof *v, cmp_d);
            int S = ms[i].nseeds;
            reach[i][k] = S % 2 ? v[S / 2] : 0.5 * (v[S / 2 - 1] + v[S / 2]);
        }

    /* phi trend per method and group */
    double slope_med[STUDY_MAX_METHODS][STUDY_MAX_GROUPS], slope_lo[STUDY_MAX_METHODS][STUDY_MAX_GROUPS],
        slope_hi[STUDY_MAX_METHODS][STUDY_MAX_GROUPS];
    int slope_n[STUDY_MAX_METHODS][STUDY_MAX_GROUPS];
    const char *verdict[STUDY_MAX_METHODS][STUDY_MAX_GROUPS];
    lab_file f;
    snprintf(path, sizeof path, "%s/phi_trend.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "method,group,seed,slope_ln_phi_per_training,phi_first,phi_last\n");
    for (int i = 0; i < nm; i++)
        for (int g = 0; g < t->ngroups; g++) {
            double v[STUDY_MAX_SEEDS];
            int n = 0, neg = 0, pos = 0;
            for (int s = 0; s < ms[i].nseeds; s++) {
                const study_curve *c = &ms[i].runs[s];
                double sl = phi_slope(c, g, total_units);
                fprintf(f.fp, "%s,%s,%llu,%.6g,%.6g,%.6g\n", ms[i].m->name, t->groups[g],
                        (unsigned long long)(o->seed0 + 1 + (uint64_t)s), sl,
                        c->nphi ? c->phi[0][g] : NAN, c->nphi ? c->phi[c->nphi - 1][g] : NAN);
                if (!isfinite(sl)) continue;
                v[n++] = sl;
                neg += sl < 0;
                pos += sl > 0;
            }
            slope_n[i][g] = n;
            slope_med[i][g] = med_range(v, n, &slope_lo[i][g], &slope_hi[i][g]);
            /* the claim "phi falls" (slope < 0) against the range over seeds */
            lab_ci ci = {slope_med[i][g], slope_lo[i][g], slope_hi[i][g]};
            lab_verdict vd = n >= 2 ? lab_verdict_of(LAB_CLAIM_BELOW, 0, 0, ci) : LAB_INCONCLUSIVE;
            verdict[i][g] = n == 0 ? "no data"
                            : vd == LAB_SUPPORTED    ? "falls"
                            : vd == LAB_CONTRADICTED ? "does not fall"
                                                    : "mixed";
            (void)neg, (void)pos;
        }
    if (lab_file_commit(&f)) goto io;

    /* phi.csv: every method, group and point */
    snprintf(path, sizeof path, "%s/phi.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "method,group,%s,phi_median,phi_min,phi_max\n", t->unit);
    for (int i = 0; i < nm; i++)
        for (int g = 0; g < t->ngroups; g++)
            for (int p = 0; p < max_phi_points(&ms[i]); p++) {
                double lo, hi, u, m = phi_at(&ms[i], p, g, &lo, &hi, &u);
                fprintf(f.fp, "%s,%s,%.0f,%.6g,%.6g,%.6g\n", ms[i].m->name, t->groups[g], u, m,
                        lo, hi);
            }
    if (lab_file_commit(&f)) goto io;

    /* tuning.csv */
    snprintf(path, sizeof path, "%s/tuning.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "method,lr,final_val_loss,best,edge_low,edge_high\n");
    for (int i = 0; i < nm; i++)
        for (int k = 0; k < ms[i].ntune; k++)
            fprintf(f.fp, "%s,%.6g,%.9g,%d,%d,%d\n", ms[i].m->name, ms[i].tune_lr[k],
                    ms[i].tune_loss[k], k == ms[i].best, ms[i].edge_lo, ms[i].edge_hi);
    if (lab_file_commit(&f)) goto io;

    /* runs.csv and summary.csv */
    snprintf(path, sizeof path, "%s/runs.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "method,lr,seed,final_val_loss,%s,diverged,wall_s,%s_per_s\n",
            t->extra_name ? t->extra_name : "extra", t->unit);
    for (int i = 0; i < nm; i++)
        for (int s = 0; s < ms[i].nseeds; s++) {
            const study_curve *c = &ms[i].runs[s];
            fprintf(f.fp, "%s,%.6g,%llu,%.9g,%.6g,%d,%.3f,%.1f\n", ms[i].m->name, ms[i].lr,
                    (unsigned long long)(o->seed0 + 1 + (uint64_t)s), c->final_val, c->extra,
                    c->diverged, c->wall_s, c->units_per_s);
        }
    if (lab_file_commit(&f)) goto io;
    snprintf(path, sizeof path, "%s/summary.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "method,lr,lr_edge,seeds,diverged,final_val_median,final_val_min,"
            "final_val_max,%s_median,wall_s_median,%s_per_s_median",
            t->extra_name ? t->extra_name : "extra", t->unit);
    for (int k = 0; k < nt; k++) fprintf(f.fp, ",%s_to_%.4f", t->unit, targets[k]);
    fprintf(f.fp, "\n");
    for (int i = 0; i < nm; i++) {
        fprintf(f.fp, "%s,%.6g,%s,%d,%d,%.6f,%.6f,%.6f,%.6g,%.2f,%.1f", ms[i].m->name, ms[i].lr,
                ms[i].edge_lo ? "low" : ms[i].edge_hi ? "high" : "", ms[i].nseeds,
                ms[i].ndiverged, ms[i].final_med, ms[i].final_lo, ms[i].final_hi,
                ms[i].extra_med, ms[i].wall_med, ms[i].ups_med);
        for (int k = 0; k < nt; k++) fprintf(f.fp, ",%.0f", reach[i][k]);
        fprintf(f.fp, "\n");
    }
    if (lab_file_commit(&f)) goto io;

    /* prediction: SGD against SignSGD */
    int isgd = -1, isign = -1;
    for (int i = 0; i < nm; i++) {
        if (!strcmp(ms[i].m->name, "sgd")) isgd = i;
        if (!strcmp(ms[i].m->name, "signsgd")) isign = i;
    }
    int npred = 0, rank_ok = 0, size_ok = 0, nmeasured = 0, ncensored = 0, size_no = 0;
    double pr_u[STUDY_MAX_POINTS], pr_pred[STUDY_MAX_POINTS], pr_meas[STUDY_MAX_POINTS],
        pr_gap[STUDY_MAX_POINTS], pr_phi[STUDY_MAX_POINTS], pr_lo[STUDY_MAX_POINTS],
        pr_hi[STUDY_MAX_POINTS], pr_snr[STUDY_MAX_POINTS];
    if (isgd >= 0 && isign >= 0) {
        method_state *a = &ms[isgd], *b = &ms[isign];
        int np = max_phi_points(b);
        for (int p = 0; p < np && npred < STUDY_MAX_POINTS; p++) {
            double u = NAN, v[2 * STUDY_MAX_SEEDS], snr[2 * STUDY_MAX_SEEDS];
            int n = 0, nsn = 0;
            for (int s = 0; s < a->nseeds; s++)
                if (p < a->runs[s].nphi) {
                    v[n++] = a->runs[s].phi[p][0];
                    snr[nsn++] = a->runs[s].snr[p];
                }
            for (int s = 0; s < b->nseeds; s++)
                if (p < b->runs[s].nphi) {
                    v[n++] = b->runs[s].phi[p][0];
                    snr[nsn++] = b->runs[s].snr[p];
                    u = b->runs[s].phi_units[p];
                }
            if (!(u > 0)) continue; /* step 0: nobody has trained yet */
            double lo, hi, phi = med_range(v, n, &lo, &hi);
            /* the losses at u: SignSGD's median curve at u, SGD's tokens to it */
            double Lb = NAN, La = NAN;
            for (int k = 0; k < b->nval; k++)
                if (b->val_x[k] == u) Lb = b->val_med[k];
            for (int k = 0; k < a->nval; k++)
                if (a->val_x[k] == u) La = a->val_med[k];
            double ua = xs_to(a->val_x, a->val_med, a->nval, Lb);
            pr_u[npred] = u;
            pr_phi[npred] = phi;
            pr_lo[npred] = lo > 0 ? 1.0 / hi : NAN;
            pr_hi[npred] = lo > 0 ? 1.0 / lo : NAN;
            pr_pred[npred] = phi > 0 ? 1.0 / phi : NAN;
            pr_meas[npred] = isfinite(ua) ? ua / u : NAN;
            pr_gap[npred] = La - Lb;
            pr_snr[npred] = med_range(snr, nsn, NULL, NULL);
            if (isfinite(pr_meas[npred]) && isfinite(pr_pred[npred])) {
                nmeasured++;
                rank_ok += (pr_meas[npred] > 1) == (pr_pred[npred] > 1);
                double q = pr_meas[npred] / pr_pred[npred];
                size_ok += q >= 0.5 && q <= 2;
            } else if (isfinite(pr_pred[npred]) && isfinite(Lb)) {
                /* SGD never reached SignSGD's loss: the ratio is only known to
                 * exceed the budget over u, so SignSGD is ahead */
                double lb = total_units / u;
                ncensored++;
                rank_ok += pr_pred[npred] > 1;
                size_no += lb > 2 * pr_pred[npred];
            }
            npred++;
        }
    }
    snprintf(path, sizeof path, "%s/prediction.csv", out);
    if (lab_file_open(&f, path)) goto io;
    fprintf(f.fp, "%s,phi_median,predicted_sgd_over_signsgd,predicted_min,predicted_max,"
            "measured_units_ratio,loss_gap_sgd_minus_signsgd,snr_median\n", t->unit);
    for (int i = 0; i < npred; i++)
        fprintf(f.fp, "%.0f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", pr_u[i], pr_phi[i],
                pr_pred[i], pr_lo[i], pr_hi[i], pr_meas[i], pr_gap[i], pr_snr[i]);
    if (lab_file_commit(&f)) goto io;

    /* summary.md */
    snprintf(path, sizeof path, "%s/summary.md", out);
    if (lab_file_open(&f, path)) goto io;
    FILE *m = f.fp;
    fprintf(m, "# Optimizer study: %s\n\n%s\n\n", t->name, t->setup);
    fprintf(m, "Budget: %d updates (%.0f %s) per final run, %d seeds per optimizer (seeds "
            "%llu..%llu); lr tuned on %d updates (seed %llu), %d points per decade, grid "
            "extended while the best lr is on an edge.\n\n",
            o->steps, total_units, t->unit, o->seeds, (unsigned long long)o->seed0 + 1,
            (unsigned long long)o->seed0 + (unsigned long long)o->seeds, o->tune_steps,
            (unsigned long long)o->seed0, o->per_decade);
    char runs_at[256] = "";
    for (int i = 0; i < nm; i++)
        for (int r = 0; r < ms[i].nseeds; r++) {
            const char *cm = ms[i].runs[r].commit[0] ? ms[i].runs[r].commit : "unknown";
            if (!strstr(runs_at, cm) && strlen(runs_at) + strlen(cm) + 8 < sizeof runs_at)
                snprintf(runs_at + strlen(runs_at), sizeof runs_at - strlen(runs_at), "%s`%s`",
                         runs_at[0] ? ", " : "", cm);
        }
    fprintf(m, "Final runs made at commit %s; report written at commit `%s`.  \n", runs_at,
            commit);
    fprintf(m, "Command: `%s`  \nWall time: %.0f s for the runs (sum of "
            "every run's wall time, tuning included), %.0f s in this invocation.\n\n",
            o->command ? o->command : "?", wall_runs, wall_this);
    fprintf(m, "## Final validation loss (median and range over seeds)\n\n"
            "| optimizer | tuned lr | final val loss, median [min, max] |");
    if (t->extra_name) fprintf(m, " %s, median [min, max] |", t->extra_name);
    for (int k = 0; k < nt; k++) fprintf(m, " %s to %.3f |", t->unit, targets[k]);
    fprintf(m, " wall s per run | %s/s |\n|---|---|---|", t->unit);
    if (t->extra_name) fprintf(m, "---|");
    for (int k = 0; k < nt; k++) fprintf(m, "---|");
    fprintf(m, "---|---|\n");
    for (int i = 0; i < nm; i++) {
        method_state *s = &ms[i];
        fprintf(m, "| %s | %.3g%s | ", s->m->label, s->lr,
                s->best < 0 ? " (all diverged)" : s->edge_lo ? " (low edge!)"
                                                 : s->edge_hi ? " (high edge!)" : "");
        if (isfinite(s->final_med))
            fprintf(m, "%.4f [%.4f, %.4f]", s->final_med, s->final_lo, s->final_hi);
        else fprintf(m, "diverged");
        if (s->ndiverged) fprintf(m, " (%d of %d diverged)", s->ndiverged, s->nseeds);
        fprintf(m, " |");
        if (t->extra_name) fprintf(m, " %.4f [%.4f, %.4f] |", s->extra_med, s->extra_lo, s->extra_hi);
        for (int k = 0; k < nt; k++) {
            char b[32];
            fmt_units(reach[i][k], b, sizeof b);
            fprintf(m, " %s (%d/%d) |", b, nreach[i][k], s->nseeds);
        }
        fprintf(m, " %.0f | %.0f |\n", s->wall_med, s->ups_med);
    }
    fprintf(m, "\nTargets: %s. \"%s to X\": median over seeds of the first %s at which the "
            "validation loss is <= X (interpolated between evaluations; a seed that never "
            "gets there counts as infinite); (n/S) = seeds that got there.\n\n",
            o->ntargets ? "given on the command line"
                        : "automatic: the largest and smallest median final loss and their "
                          "midpoint",
            t->unit, t->unit);
    /* ranking by median final loss, computed */
    int order[STUDY_MAX_METHODS];
    for (int i = 0; i < nm; i++) order[i] = i;
    for (int i = 0; i < nm; i++)
        for (int j = i + 1; j < nm; j++) {
            double a = isfinite(ms[order[i]].final_med) ? ms[order[i]].final_med : INFINITY;
            double b = isfinite(ms[order[j]].final_med) ? ms[order[j]].final_med : INFINITY;
            if (b < a) {
                int tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
        }
    fprintf(m, "Ranking at the full budget (median final loss): ");
    for (int i = 0; i < nm; i++)
        fprintf(m, "%s%s", i ? " < " : "", ms[order[i]].m->label);
    if (nm >= 2) {
        const method_state *a = &ms[order[0]], *b = &ms[order[1]];
        int sep = isfinite(a->final_hi) && isfinite(b->final_lo) && a->final_hi < b->final_lo;
        fprintf(m, ". The first two ranges over seeds %s.\n\n",
                sep ? "do not overlap" : "overlap (no separation at this number of seeds)");
    } else {
        fprintf(m, ".\n\n");
    }
    fprintf(m, "Which optimizer is ahead at each budget (median validation loss over seeds "
            "at each evaluation):\n\n| %s | best | median val loss | second | median val loss |\n"
            "|---|---|---|---|---|\n", t->unit);
    {
        int ref = order[0];
        int stride = ms[ref].nval > 8 ? ms[ref].nval / 8 : 1;
        for (int p = stride; p < ms[ref].nval; p += stride) {
            double u = ms[ref].val_x[p];
            int b1 = -1, b2 = -1;
            double l1 = INFINITY, l2 = INFINITY;
            for (int i = 0; i < nm; i++) {
                double l = NAN;
                for (int k = 0; k < ms[i].nval; k++)
                    if (ms[i].val_x[k] == u) l = ms[i].val_med[k];
                if (!isfinite(l)) continue;
                if (l < l1) {
                    b2 = b1, l2 = l1;
                    b1 = i, l1 = l;
                } else if (l < l2) {
                    b2 = i, l2 = l;
                }
            }
            if (b1 < 0) continue;
            fprintf(m, "| %.0f | %s | %.4f | %s | %.4f |\n", u, ms[b1].m->label, l1,
                    b2 >= 0 ? ms[b2].m->label : "-", l2);
            if (p + stride >= ms[ref].nval && p != ms[ref].nval - 1) p = ms[ref].nval - 1 - stride;
        }
    }
    fprintf(m, "\n## Learning-rate tuning (%d updates, seed %llu)\n\n"
            "| optimizer | lr: final val loss | best | edge |\n|---|---|---|---|\n",
            o->tune_steps, (unsigned long long)o->seed0);
    for (int i = 0; i < nm; i++) {
        method_state *s = &ms[i];
        /* in increasing lr */
        int idx[32];
        for (int k = 0; k < s->ntune; k++) idx[k] = k;
        for (int a = 0; a < s->ntune; a++)
            for (int b = a + 1; b < s->ntune; b++)
                if (s->tune_lr[idx[b]] < s->tune_lr[idx[a]]) {
                    int tmp = idx[a];
                    idx[a] = idx[b];
                    idx[b] = tmp;
                }
        fprintf(m, "| %s | ", s->m->label);
        for (int k = 0; k < s->ntune; k++) {
            double l = s->tune_loss[idx[k]];
            if (isfinite(l)) fprintf(m, "%s%.3g: %.3f", k ? ", " : "", s->tune_lr[idx[k]], l);
            else fprintf(m, "%s%.3g: diverged", k ? ", " : "", s->tune_lr[idx[k]]);
        }
        fprintf(m, " | %.3g | %s |\n", s->lr,
                s->edge_lo ? "**low edge**" : s->edge_hi ? "**high edge**" : "interior");
    }
    int nedge = 0;
    for (int i = 0; i < nm; i++) nedge += ms[i].edge_lo || ms[i].edge_hi;
    fprintf(m, "\n%d of %d tuned learning rates on a grid edge%s.\n\n", nedge, nm,
            nedge ? " (warning: those optima are not bracketed)" : "");

    fprintf(m, "## Noise density phi through training\n\n"
            "phi = ||sigma||_1^2 / (d ||sigma||_2^2) over K mini-batch gradients on held-out "
            "batches, measured every few updates (plots `phi_<group>.png`). Trend: least-squares "
            "slope of ln phi against the fraction of training done, per seed; median [min, max] "
            "over seeds; verdict on the claim \"phi falls\" (slope < 0) from that range: \"falls\" "
            "when every seed's slope is below 0, \"does not fall\" when none is, else "
            "\"mixed\".\n\n| optimizer |");
    for (int g = 0; g < t->ngroups; g++) fprintf(m, " %s: start -> end, slope, verdict |", t->groups[g]);
    fprintf(m, "\n|---|");
    for (int g = 0; g < t->ngroups; g++) fprintf(m, "---|");
    fprintf(m, "\n");
    int nfall = 0, nrise = 0, nmix = 0;
    for (int i = 0; i < nm; i++) {
        fprintf(m, "| %s |", ms[i].m->label);
        int np = max_phi_points(&ms[i]);
        for (int g = 0; g < t->ngroups; g++) {
            double lo, hi, u, p0 = np ? phi_at(&ms[i], 0, g, &lo, &hi, &u) : NAN;
            double p1 = np ? phi_at(&ms[i], np - 1, g, &lo, &hi, &u) : NAN;
            fprintf(m, " %.3g -> %.3g, %+.2f [%+.2f, %+.2f], %s |", p0, p1, slope_med[i][g],
                    slope_lo[i][g], slope_hi[i][g], verdict[i][g]);
            if (g == 0) {
                nfall += !strcmp(verdict[i][g], "falls");
                nrise += !strcmp(verdict[i][g], "does not fall");
                nmix += !strcmp(verdict[i][g], "mixed");
            }
        }
        fprintf(m, "\n");
    }
    (void)slope_n;
    fprintf(m, "\nOverall phi (all parameters): falls for %d, does not fall for %d, mixed for %d of %d "
            "optimizers.\n\n", nfall, nrise, nmix, nm);

    fprintf(m, "## Prediction against outcome: SGD / SignSGD\n\n");
    if (isgd < 0 || isign < 0) {
        fprintf(m, "Needs both sgd and signsgd in the study.\n");
    } else {
        fprintf(m, "Predicted: the noise term of the bounds, d ||sigma||_2^2 / ||sigma||_1^2 = "
                "1/phi (phi: median over the SGD and SignSGD seeds at that point, range in "
                "brackets as 1/phi). Measured: %s SGD needs to reach the loss SignSGD has at "
                "that point, divided by SignSGD's %s (median curves over seeds; > 1: SignSGD "
                "ahead), and the loss gap SGD - SignSGD at equal %s. snr = ||mean "
                "gradient||^2 / sum of variances: the bound's noise term dominates when it "
                "is small.\n\n| %s | phi | predicted 1/phi | measured ratio | loss gap | snr "
                "| ranks right | size right |\n|---|---|---|---|---|---|---|---|\n",
                t->unit, t->unit, t->unit, t->unit);
        for (int i = 0; i < npred; i++) {
            int have = isfinite(pr_meas[i]) && isfinite(pr_pred[i]);
            double q = have ? pr_meas[i] / pr_pred[i] : NAN;
            char mb[48];
            if (isfinite(pr_meas[i])) snprintf(mb, sizeof mb, "%.3g", pr_meas[i]);
            else snprintf(mb, sizeof mb, "> %.3g (SGD never got there)", total_units / pr_u[i]);
            double lb = total_units / pr_u[i];
            fprintf(m, "| %.0f | %.3g | %.3g [%.3g, %.3g] | %s | %+.3f | %.3g | %s | %s |\n",
                    pr_u[i], pr_phi[i], pr_pred[i], pr_lo[i], pr_hi[i], mb, pr_gap[i],
                    pr_snr[i], have ? ((pr_meas[i] > 1) == (pr_pred[i] > 1) ? "yes" : "no")
                                    : (pr_pred[i] > 1 ? "yes" : "no"),
                    have ? (q >= 0.5 && q <= 2 ? "yes" : "no")
                         : lb > 2 * pr_pred[i] ? "no (too small)" : "undecided");
        }
        fprintf(m, "\nThe prediction ranks SGD and SignSGD right at %d of %d points. The "
                "measured ratio is known at %d of them: the predicted size is within a "
                "factor of 2 at %d of those. At the other %d SGD never reached SignSGD's loss "
                "within the budget, so the ratio is only a lower bound (budget / %s): the "
                "prediction is too small at %d of them and undecided at the rest.\n",
                rank_ok, nmeasured + ncensored, nmeasured, size_ok, ncensored, t->unit,
                size_no);
    }
    if (lab_file_commit(&f)) goto io;

    /* plots */
    {
        lab_series s[STUDY_MAX_METHODS];
        char names[STUDY_MAX_METHODS][96];
        int ns = 0;
        for (int i = 0; i < nm; i++) {
            if (!ms[i].nval) continue;
            snprintf(names[ns], sizeof names[ns], "%s (lr %.3g)", ms[i].m->label, ms[i].lr);
            s[ns] = (lab_series){names[ns], ms[i].nval, ms[i].val_x, ms[i].val_med,
                                 ms[i].val_lo, ms[i].val_hi};
            ns++;
        }
        char title[200];
        snprintf(title, sizeof title, "%s: validation loss, median and range over %d seeds",
                 t->name, o->seeds);
        lab_plot p = {title, t->unit, "validation loss", 0, 0, ns, s};
        plot_out(&p, out, "val_loss");
    }
    for (int g = 0; g < t->ngroups; g++) {
        lab_series s[STUDY_MAX_METHODS];
        static double px[STUDY_MAX_METHODS][STUDY_MAX_POINTS], py[STUDY_MAX_METHODS][STUDY_MAX_POINTS],
            plo[STUDY_MAX_METHODS][STUDY_MAX_POINTS], phi_[STUDY_MAX_METHODS][STUDY_MAX_POINTS];
        int ns = 0;
        for (int i = 0; i < nm; i++) {
            int np = max_phi_points(&ms[i]);
            if (!np) continue;
            for (int p = 0; p < np; p++)
                py[ns][p] = phi_at(&ms[i], p, g, &plo[ns][p], &phi_[ns][p], &px[ns][p]);
            s[ns] = (lab_series){ms[i].m->label, np, px[ns], py[ns], plo[ns], phi_[ns]};
            ns++;
        }
        char title[200], name[64];
        snprintf(title, sizeof title, "%s: noise density phi (%s), median and range over seeds",
                 t->name, t->groups[g]);
        snprintf(name, sizeof name, "phi_%s", t->groups[g]);
        lab_plot p = {title, t->unit, "phi", 0, 1, ns, s};
        plot_out(&p, out, name);
    }
    if (npred) {
        lab_series s[2] = {{"predicted 1/phi", npred, pr_u, pr_pred, pr_lo, pr_hi},
                           {"measured SGD/SignSGD ratio", npred, pr_u, pr_meas, NULL, NULL}};
        char title[200];
        snprintf(title, sizeof title, "%s: SGD/SignSGD, predicted against measured", t->name);
        lab_plot p = {title, t->unit, "SGD / SignSGD", 0, 1, 2, s};
        plot_out(&p, out, "prediction");
    }
    return 0;
io:
    lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
}

int study_run(const study_task *t, const study_method *methods, int nmethods,
              const study_opts *o, char *err, size_t errlen)
{
    if (o->seeds < 1 || o->seeds > STUDY_MAX_SEEDS || o->steps < 1 || o->tune_steps < 1 ||
        o->per_decade < 3 || nmethods < 1 || nmethods > STUDY_MAX_METHODS ||
        t->ngroups < 1 || t->ngroups > STUDY_MAX_GROUPS) {
        lab_set_err(err, errlen, "study: need 1..%d seeds, steps and tune steps >= 1, >= 3 points "
                "per decade, 1..%d methods", STUDY_MAX_SEEDS, STUDY_MAX_METHODS);
        return -1;
    }
    if (lab_mkdirs(o->out)) {
        lab_set_err(err, errlen, "%s: %s", o->out, strerror(errno));
        return -1;
    }
    method_state ms[STUDY_MAX_METHODS];
    memset(ms, 0, sizeof ms);
    int nm = 0;
    for (int i = 0; i < nmethods; i++) {
        if (o->methods) {
            /* whole names in the comma list */
            const char *p = o->methods;
            size_t L = strlen(methods[i].name);
            int in = 0;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (n == L && !strncmp(p, methods[i].name, L)) in = 1;
                p += n;
                if (*p == ',') p++;
            }
            if (!in) continue;
        }
        ms[nm++].m = &methods[i];
    }
    if (!nm) {
        lab_set_err(err, errlen, "study: --methods selects no optimizer");
        return -1;
    }
    start_commit[0] = 0;
    git_commit(start_commit, sizeof start_commit);
    double t0 = now_s(), ran_wall = 0, all_wall = 0;
    double adamw_lr = 3e-3; /* the split's rest when the study has no adamw */
    int rc = 0;
    /* a split selected without adamw (--methods muon) still takes AdamW's
     * tuned rate for its rest: tune adamw (or read its tuning back) first,
     * without its final runs */
    int need_adamw = 0, have_adamw = 0, adamw_at = -1;
    for (int i = 0; i < nm; i++) {
        need_adamw |= ms[i].m->matrix;
        have_adamw |= !strcmp(ms[i].m->name, "adamw");
    }
    for (int i = 0; i < nmethods; i++)
        if (!strcmp(methods[i].name, "adamw")) adamw_at = i;
    if (need_adamw && !have_adamw && adamw_at >= 0) {
        method_state a;
        memset(&a, 0, sizeof a);
        a.m = &methods[adamw_at];
        rc = tune_method(t, o, &a, adamw_lr, &ran_wall, err, errlen);
        if (!rc && a.best >= 0) adamw_lr = a.lr;
    }
    /* tuning, in order (AdamW before the split that uses its rate) */
    for (int i = 0; i < nm && !rc; i++) {
        rc = tune_method(t, o, &ms[i], adamw_lr, &ran_wall, err, errlen);
        if (!rc && !strcmp(ms[i].m->name, "adamw") && ms[i].best >= 0) adamw_lr = ms[i].lr;
        if (!rc && ms[i].best < 0 && o->progress)
            fprintf(stderr, "[study] %s: every tuning run diverged\n", ms[i].m->name);
        resolve(ms[i].m, ms[i].lr, adamw_lr, ms[i].spec, sizeof ms[i].spec, ms[i].matrix_spec,
                sizeof ms[i].matrix_spec);
    }
    /* final runs: seed by seed across methods, so an interrupted study has
     * every method at the same number of seeds */
    for (int i = 0; i < nm && !rc; i++) {
        ms[i].runs = calloc((size_t)o->seeds, sizeof(study_curve));
        if (!ms[i].runs) {
            lab_set_err(err, errlen, "out of memory");
            rc = -1;
        }
    }
    for (int s = 0; s < o->seeds && !rc; s++)
        for (int i = 0; i < nm && !rc; i++) {
            method_state *m = &ms[i];
            if (m->best < 0) continue;
            if (o->only_seed > 0 && s + 1 != o->only_seed) continue;
            char dir[1200], label[96];
            snprintf(dir, sizeof dir, "%s/runs/%s/seed_%llu", o->out, m->m->name,
                     (unsigned long long)(o->seed0 + 1 + (uint64_t)s));
            snprintf(label, sizeof label, "%s seed %d/%d", m->m->name, s + 1, o->seeds);
            study_job job = {m->spec, m->matrix_spec[0] ? m->matrix_spec : NULL, m->lr,
                             o->seed0 + 1 + (uint64_t)s, o->steps, dir, label, 0};
            int ran = 0;
            rc = do_job(t, &job, &m->runs[s], &ran, err, errlen);
            if (!rc) {
                m->nseeds = s + 1;
                if (o->progress)
                    fprintf(stderr, "[%s] final val loss %.4f%s\n", label,
                            m->runs[s].final_val, ran ? "" : " (done before)");
            }
        }
    if (!rc && o->only_seed > 0) {
        /* a share of the runs: the report needs all of them */
        for (int i = 0; i < nm; i++) free(ms[i].runs);
        return 0;
    }
    if (!rc) {
        for (int i = 0; i < nm; i++) {
            method_state *m = &ms[i];
            double fv[STUDY_MAX_SEEDS], wv[STUDY_MAX_SEEDS], uv[STUDY_MAX_SEEDS],
                ev[STUDY_MAX_SEEDS];
            for (int s = 0; s < m->nseeds; s++) {
                fv[s] = m->runs[s].final_val;
                wv[s] = m->runs[s].wall_s;
                uv[s] = m->runs[s].units_per_s;
                ev[s] = m->runs[s].extra;
                m->ndiverged += m->runs[s].diverged;
            }
            m->final_med = med_range(fv, m->nseeds, &m->final_lo, &m->final_hi);
            if (m->ndiverged * 2 > m->nseeds) m->final_med = NAN;
            m->wall_med = med_range(wv, m->nseeds, NULL, NULL);
            m->ups_med = med_range(uv, m->nseeds, NULL, NULL);
            m->extra_med = med_range(ev, m->nseeds, &m->extra_lo, &m->extra_hi);
            median_curve(m);
        }
        /* every run's wall time, including those of earlier invocations */
        for (int i = 0; i < nm; i++)
            for (int s = 0; s < ms[i].nseeds; s++) all_wall += ms[i].runs[s].wall_s;
        rc = report(t, o, ms, nm, now_s() - t0, all_wall + ran_wall, err, errlen);
    }
    for (int i = 0; i < nm; i++) free(ms[i].runs);
    return rc;
}
