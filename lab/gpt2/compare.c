/*
 * compare.c - `descent gpt2 compare`: the same GPT-2, data and token budget
 * trained by each optimizer at each learning rate of a small grid; the best
 * rate per optimizer (lowest final validation loss) goes into a table and
 * one plot with every optimizer's validation curve.
 *
 * Fairness rules: identical initialisation (same seed), identical batches
 * (same seed: batches are pure functions of the step), the same schedule
 * shape (cosine with 5% warmup down to 0.1) and budget, no weight decay for
 * anyone (the runs are far too short to overfit, and decay strengths are
 * not comparable across update rules), no clipping. Muon runs the hidden
 * matrices; its embeddings, gains and biases use AdamW at the best AdamW
 * rate found just before (so AdamW runs first).
 */
#include "gpt2/train.h"

#include "labfile.h"
#include "opts.h"
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GRID 8

typedef struct {
    const char *name;   /* command-line name */
    const char *label;  /* table and legend */
    const char *spec;   /* printf format with one %g for the lr */
    int matrix;         /* 1: spec is the matrix optimizer, AdamW the rest */
    int nlr;
    double lr[MAX_GRID];
} method;

/* Grids for the default tiny model (4 layers, 64 channels, B=8, T=64,
 * 150 steps), around each method's best rate in a 5-point sweep (x3 steps)
 * on that setup: sgd 0.3 (1 and up diverged), signsgd 1e-2 (edge: 3e-2
 * added), signum, lion and adamw flat within 0.1 over 1e-3..3e-2, muon
 * 0.03 (0.01: 6.77, 0.1: 6.74). */
static method methods[] = {
    {"sgd", "SGD (momentum 0.9)", "sgd:lr=%g,momentum=0.9", 0, 3, {0.1, 0.3, 0.6}},
    {"signsgd", "SignSGD", "signsgd:lr=%g", 0, 3, {3e-3, 1e-2, 3e-2}},
    {"signum", "Signum (momentum 0.9)", "signum:lr=%g,momentum=0.9", 0, 3, {1e-3, 3e-3, 1e-2}},
    {"lion", "Lion", "lion:lr=%g,beta1=0.9,beta2=0.99", 0, 3, {1e-3, 3e-3, 1e-2}},
    {"adamw", "AdamW", "adamw:lr=%g,beta1=0.9,beta2=0.95,weight_decay=0", 0, 3,
     {3e-3, 1e-2, 3e-2}},
    {"muon", "Muon + AdamW", "muon:lr=%g", 1, 3, {0.01, 0.03, 0.1}},
};
#define NMETHODS ((int)(sizeof methods / sizeof methods[0]))

#define ADAMW_FALLBACK "adamw:lr=%g,beta1=0.9,beta2=0.95,weight_decay=0"

const char gpt2_compare_usage[] =
    "usage: descent gpt2 compare [FLAGS]\n"
    "  Trains the same GPT-2 on the same data and token budget with SGD, SignSGD,\n"
    "  Signum, Lion, AdamW and Muon + AdamW, each over a small learning-rate grid,\n"
    "  keeps each optimizer's best rate (lowest final validation loss), and writes\n"
    "  a table (final validation loss, tokens/s) and one plot with all curves.\n"
    "  The defaults (4 layers, 64 channels, B=8, T=64, 150 steps on moby-dick) take\n"
    "  about 7 minutes on 2 cores. Runs go to OUT/runs/<optimizer>_lr<lr>/.\n"
    "  --optimizers LIST    comma-separated subset of sgd,signsgd,signum,lion,adamw,muon\n"
    "  --grid NAME=LR,LR..  replace an optimizer's grid (repeatable)\n"
    "  --out DIR            output folder (default out/compare)\n"
    "  Noise density phi (dsc_noise_density over 4 mini-batch gradients, --phi K to\n"
    "  change, 0 for off) is measured at the start, middle and end of every run.\n"
    "  plus the model, data and schedule flags of `descent gpt2 train`:\n";

static method *find_method(const char *name)
{
    for (int i = 0; i < NMETHODS; i++)
        if (!strcmp(methods[i].name, name)) return &methods[i];
    return NULL;
}

typedef struct {
    method *m;
    double lr[MAX_GRID], final[MAX_GRID];
    int best;               /* index into lr, -1 if every run diverged */
    gpt2_train_result best_r;
    char best_spec[256], best_matrix[256];
} outcome;

static int parse_grid(const char *arg)
{
    char name[32];
    const char *eq = strchr(arg, '=');
    if (!eq || eq - arg >= (long)sizeof name) return -1;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = 0;
    method *m = find_method(name);
    if (!m) return -1;
    int n = 0;
    const char *p = eq + 1;
    while (*p && n < MAX_GRID) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || !isfinite(v)) return -1;
        m->lr[n++] = v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    if (!n || *p) return -1;
    m->nlr = n;
    return 0;
}

static void write_outputs(const char *out, const gpt2_train_opts *base, outcome *res, int nres,
                          double wall)
{
    char path[1100];
    /* table: markdown and CSV */
    lab_file md, csv;
    snprintf(path, sizeof path, "%s/summary.md", out);
    if (lab_file_open(&md, path) == 0) {
        fprintf(md.fp, "GPT-2 L=%d C=%d H=%d, B=%d T=%d, %d steps (%.0f tokens), corpus %s\n\n",
                base->layers, base->channels, base->heads, base->B, base->T, base->steps,
                (double)base->steps * base->B * base->T * base->accum,
                base->train_path ? base->train_path : base->corpus);
        fprintf(md.fp, "| optimizer | best lr | final val loss | tokens/s | phi start / mid / end "
                "| grid (lr: final val loss) |\n|---|---|---|---|---|---|\n");
        for (int i = 0; i < nres; i++) {
            outcome *o = &res[i];
            fprintf(md.fp, "| %s | ", o->m->label);
            if (o->best >= 0)
                fprintf(md.fp, "%g%s | %.4f | %.0f | %.3f / %.3f / %.3f | ", o->lr[o->best],
                        o->best == 0 || o->best == o->m->nlr - 1 ? " (grid edge)" : "",
                        o->final[o->best], o->best_r.tokens_per_s, o->best_r.phi[0],
                        o->best_r.phi[1], o->best_r.phi[2]);
            else
                fprintf(md.fp, "- | diverged | - | - | ");
            for (int k = 0; k < o->m->nlr; k++)
                fprintf(md.fp, "%s%g: %.4f", k ? ", " : "", o->lr[k], o->final[k]);
            fprintf(md.fp, " |\n");
        }
        fprintf(md.fp, "\nwall time %.1f s. One seed and a %d-point grid per optimizer: a "
                "quick demonstration, not evidence; the study with tuned lrs, seeds and "
                "intervals is `descent gpt2 study` (committed in docs/results/gpt2/).\n",
                wall, nres ? res[0].m->nlr : 0);
        lab_file_commit(&md);
    }
    snprintf(path, sizeof path, "%s/summary.csv", out);
    if (lab_file_open(&csv, path) == 0) {
        fprintf(csv.fp, "optimizer,lr,final_val_loss,best,tokens_per_s,ms_per_step,"
                "phi_start,phi_mid,phi_end\n");
        for (int i = 0; i < nres; i++)
            for (int k = 0; k < res[i].m->nlr; k++) {
                const gpt2_train_result *b = &res[i].best_r;
                int best = k == res[i].best;
                fprintf(csv.fp, "%s,%g,%.9g,%d,%.1f,%.3f,%.6g,%.6g,%.6g\n", res[i].m->name,
                        res[i].lr[k], res[i].final[k], best, best ? b->tokens_per_s : NAN,
                        best ? b->ms_per_step : NAN, best ? b->phi[0] : NAN,
                        best ? b->phi[1] : NAN, best ? b->phi[2] : NAN);
            }
        lab_file_commit(&csv);
    }
    /* one plot: validation loss against tokens, best rate of each */
    lab_series s[NMETHODS];
    double *xs[NMETHODS], *ys[NMETHODS];
    char names[NMETHODS][96];
    int ns = 0;
    for (int i = 0; i < nres; i++) {
        gpt2_train_result *r = &res[i].best_r;
        if (res[i].best < 0 || r->nval == 0) continue;
        xs[ns] = malloc(sizeof(double) * (size_t)r->nval);
        ys[ns] = r->val_loss;
        if (!xs[ns]) continue;
        for (int k = 0; k < r->nval; k++) xs[ns][k] = r->val_step[k] * r->tokens_per_step;
        snprintf(names[ns], sizeof names[ns], "%s (lr %g)", res[i].m->label,
                 res[i].lr[res[i].best]);
        s[ns] = (lab_series){names[ns], r->nval, xs[ns], ys[ns], NULL, NULL};
        ns++;
    }
    char title[200], base_path[1100], got[1200], msg[256];
    snprintf(title, sizeof title, "GPT-2 L=%d C=%d on %s: validation loss, best lr each",
             base->layers, base->channels, base->corpus ? base->corpus : "tokens");
    lab_plot p = {title, "training tokens", "validation loss", 0, 0, ns, s};
    snprintf(base_path, sizeof base_path, "%s/compare", out);
    lab_plot_format f = lab_plot_write(&p, base_path, LAB_PLOT_AUTO, got, sizeof got, msg,
                                       sizeof msg);
    if (f == LAB_PLOT_NONE) fprintf(stderr, "compare: plot skipped: %s\n", msg);
    else printf("plot: %s\n", got);
    for (int i = 0; i < ns; i++) free(xs[i]);
}

int gpt2_cmd_compare(int argc, char **argv)
{
    gpt2_train_opts base;
    gpt2_train_opts_default(&base);
    base.steps = 150;
    base.eval_every = 15;
    base.eval_batches = 8;
    base.save_final = 0;
    base.plot = 0;
    base.phi_samples = 4;
    const char *out = "out/compare", *list = NULL;
    char err[1024] = "";
    enum { C_OPTIMIZERS = 1, C_GRID, C_OUT };
    static const struct option own[] = {{"optimizers", required_argument, 0, C_OPTIMIZERS},
                                         {"grid", required_argument, 0, C_GRID},
                                         {"out", required_argument, 0, C_OUT},
                                         {0, 0, 0, 0}};
    struct option lo[64];
    gpt2_flag_table(lo, 64, own, NULL);
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next_short("gpt2 compare", argc, argv, "B:T:", lo)) != -1) {
        if (c == CLI_OPTS_BAD) return 2;
        if (c == C_OPTIMIZERS) list = optarg;
        else if (c == C_OUT) out = optarg;
        else if (c == C_GRID) {
            if (parse_grid(optarg)) {
                fprintf(stderr, "descent gpt2 compare: --grid \"%s\": expected NAME=LR,LR,... "
                        "with NAME one of sgd,signsgd,signum,lion,adamw,muon and LR > 0\n",
                        optarg);
                return 2;
            }
        } else if (gpt2_set_flag(&base, c, optarg, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 compare: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 compare: unexpected argument \"%s\" (see descent gpt2 "
                "compare --help)\n", argv[optind]);
        return 2;
    }
    if (base.resume || base.matrix_optimizer) {
        fprintf(stderr, "descent gpt2 compare: --resume and --matrix-optimizer do not apply\n");
        return 2;
    }
    /* which methods, in the fixed order (AdamW before Muon) */
    int use[NMETHODS];
    for (int i = 0; i < NMETHODS; i++) use[i] = list == NULL;
    if (list) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", list);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            method *m = find_method(tok);
            if (!m) {
                fprintf(stderr, "descent gpt2 compare: unknown optimizer \"%s\" (expected "
                        "sgd,signsgd,signum,lion,adamw,muon)\n", tok);
                return 2;
            }
            use[m - methods] = 1;
        }
    }
    if (lab_mkdirs(out)) {
        fprintf(stderr, "descent gpt2 compare: %s: %s\n", out, strerror(errno));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    outcome res[NMETHODS];
    memset(res, 0, sizeof res);
    int nres = 0;
    double adamw_best = 3e-3; /* Muon's fallback when AdamW is not in the list */
    int rc = 0;
    for (int i = 0; i < NMETHODS && !rc; i++) {
        if (!use[i]) continue;
        method *m = &methods[i];
        outcome *o = &res[nres++];
        o->m = m;
        o->best = -1;
        for (int k = 0; k < m->nlr; k++) {
            char spec[256], fallback[256], dir[1100], label[64];
            gpt2_train_opts opt = base;
            snprintf(spec, sizeof spec, m->spec, m->lr[k]);
            if (m->matrix) {
                snprintf(fallback, sizeof fallback, ADAMW_FALLBACK, adamw_best);
                opt.matrix_optimizer = spec;
                opt.optimizer = fallback;
            } else {
                opt.optimizer = spec;
            }
            snprintf(dir, sizeof dir, "%s/runs/%s_lr%g", out, m->name, m->lr[k]);
            snprintf(label, sizeof label, "%s lr=%g", m->name, m->lr[k]);
            opt.out_dir = dir;
            opt.label = label;
            gpt2_train_result r;
            if (gpt2_train(&opt, &r, err, sizeof err)) {
                fprintf(stderr, "descent gpt2 compare: %s: %s\n", label, err);
                rc = 1;
                break;
            }
            o->lr[k] = m->lr[k];
            o->final[k] = r.diverged || !isfinite(r.final_val_loss) ? INFINITY
                                                                      : r.final_val_loss;
            if (o->best < 0 || o->final[k] < o->final[o->best]) {
                if (o->best >= 0) gpt2_train_result_free(&o->best_r);
                o->best = isfinite(o->final[k]) ? k : -1;
                if (o->best >= 0) {
                    o->best_r = r;
                    snprintf(o->best_spec, sizeof o->best_spec, "%s", opt.optimizer);
                } else {
                    gpt2_train_result_free(&r);
                }
            } else {
                gpt2_train_result_free(&r);
            }
            if (base.progress)
                fprintf(stderr, "[%s] final val loss %.4f\n", label, o->final[k]);
        }
        if (!strcmp(m->name, "adamw") && o->best >= 0) adamw_best = o->lr[o->best];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!rc) {
        printf("\nGPT-2 L=%d C=%d H=%d, B=%d T=%d, %d steps = %.0f tokens per run\n",
               base.layers, base.channels, base.heads, base.B, base.T, base.steps,
               (double)base.steps * base.B * base.T * base.accum);
        printf("%-22s %9s  %15s %10s  %s\n", "optimizer", "best lr", "final val loss",
               "tokens/s", "phi start/mid/end");
        for (int i = 0; i < nres; i++) {
            outcome *o = &res[i];
            const double *phi = o->best_r.phi;
            if (o->best >= 0)
                printf("%-22s %9g%s %15.4f %10.0f  %.3f/%.3f/%.3f\n", o->m->label,
                       o->lr[o->best],
                       o->best == 0 || o->best == o->m->nlr - 1 ? "*" : " ",
                       o->final[o->best], o->best_r.tokens_per_s, phi[0], phi[1], phi[2]);
            else
                printf("%-22s %9s  %15s %10s\n", o->m->label, "-", "diverged", "-");
        }
        int edges = 0;
        for (int i = 0; i < nres; i++)
            edges += res[i].best >= 0 && (res[i].best == 0 || res[i].best == res[i].m->nlr - 1);
        printf("wall time %.1f s; table in %s/summary.md\n", wall, out);
        printf("\nWhat this is: a %zu-parameter model, %.0f tokens per run, ONE seed, each "
               "lr the best\nof a %d-point grid (%d of %d best lrs on a grid edge, marked *). The "
               "differences above are\nwithin what another seed can change. For tuned lrs, "
               "3 seeds, intervals and phi\nthrough training see the committed study: "
               "docs/results/gpt2/summary.md\n(`descent gpt2 study`).\n",
               nres && res[0].best >= 0 ? res[0].best_r.num_params : (size_t)0,
               (double)base.steps * base.B * base.T * base.accum, nres ? res[0].m->nlr : 0,
               edges, nres);
        write_outputs(out, &base, res, nres, wall);
    }
    for (int i = 0; i < nres; i++)
        if (res[i].best >= 0) gpt2_train_result_free(&res[i].best_r);
    return rc;
}
