/* stability.c - see stability.h. Every arm sees the same data order, the
 * same initial weights and the same spikes (all drawn from fixed seeds), so
 * the only difference between arms is the optimizer. */
#include "stability.h"

#include "../classify/digits.h"
#include "../labfile.h"
#include "../plot.h"
#include "../rng.h"
#include "descent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

stability_config stability_default(void)
{
    stability_config c = {"out/stability", 1500, 32, 3, 100, 40, 1000.0, 0};
    return c;
}

typedef struct {
    const char *label;
    const char *spec;
    double clip;   /* global-norm clip, 0 = none */
} arm;

#define EVAL_EVERY 25

typedef struct {
    int points;
    double *step, *train_loss, *test_loss, *test_acc; /* per evaluation */
    size_t state_bytes;
    size_t params;
    int ok;
} run_out;

static void run_free(run_out *r)
{
    free(r->step);
    free(r->train_loss);
    free(r->test_loss);
    free(r->test_acc);
    memset(r, 0, sizeof *r);
}

/* One training run; returns 0 on success or 1 with a message printed. */
static int train_arm(const stability_config *cfg, const arm *a, const digits_set *train,
                     const digits_set *test, int spikes, uint64_t seed, run_out *out)
{
    memset(out, 0, sizeof *out);
    digits_mlp m;
    if (digits_mlp_init(&m, 128, cfg->batch, seed)) return 1;
    dsc_optimizer *opt = dsc_optimizer_new();
    int H = m.hidden;
    int64_t s1[2] = {H, DIGITS_FEATURES}, sb1[1] = {H}, s2[2] = {DIGITS_CLASSES, H},
            sb2[1] = {DIGITS_CLASSES};
    dsc_status st = dsc_optimizer_add_group(opt, "all", a->spec);
    if (!st) st = dsc_optimizer_add_param(opt, "fc1.w", m.w1, m.gw1, 2, s1, DSC_ROLE_MATRIX, NULL);
    if (!st) st = dsc_optimizer_add_param(opt, "fc1.b", m.b1, m.gb1, 1, sb1, DSC_ROLE_VECTOR, NULL);
    if (!st) st = dsc_optimizer_add_param(opt, "fc2.w", m.w2, m.gw2, 2, s2, DSC_ROLE_MATRIX, NULL);
    if (!st) st = dsc_optimizer_add_param(opt, "fc2.b", m.b2, m.gb2, 1, sb2, DSC_ROLE_VECTOR, NULL);
    if (!st && a->clip > 0) st = dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, a->clip);
    /* Spikes are the experiment's point: keep finite huge values. */
    if (st) {
        fprintf(stderr, "stability: %s: %s\n", a->label, dsc_optimizer_error(opt));
        dsc_optimizer_free(opt);
        digits_mlp_free(&m);
        return 1;
    }
    out->state_bytes = dsc_optimizer_state_bytes(opt);
    out->params = (size_t)H * DIGITS_FEATURES + H + (size_t)DIGITS_CLASSES * H + DIGITS_CLASSES;
    int npoints = cfg->steps / EVAL_EVERY + 1;
    out->step = calloc((size_t)npoints, sizeof(double));
    out->train_loss = calloc((size_t)npoints, sizeof(double));
    out->test_loss = calloc((size_t)npoints, sizeof(double));
    out->test_acc = calloc((size_t)npoints, sizeof(double));
    int *idx = malloc((size_t)cfg->batch * sizeof *idx);
    uint64_t data_rng = seed * 7919 + 1, spike_rng = seed * 104729 + 3;
    size_t n1 = (size_t)H * DIGITS_FEATURES, n2 = (size_t)DIGITS_CLASSES * H;
    for (int t = 0; t <= cfg->steps; t++) {
        if (t % EVAL_EVERY == 0) {
            double tl, ta, vl, va;
            digits_mlp_eval(&m, train, &tl, &ta);
            digits_mlp_eval(&m, test, &vl, &va);
            int k = out->points++;
            out->step[k] = t;
            out->train_loss[k] = tl;
            out->test_loss[k] = isfinite(vl) ? vl : NAN;
            out->test_acc[k] = va;
        }
        if (t == cfg->steps) break;
        for (int i = 0; i < cfg->batch; i++)
            idx[i] = (int)(lab_splitmix64(&data_rng) % (uint64_t)train->n);
        digits_mlp_grad(&m, train, idx, cfg->batch);
        if (spikes == 2 && t > 0 && t % cfg->spike_every == 0) {
            /* a whole-gradient spike, as a loss spike gives */
            for (size_t k = 0; k < n1; k++) m.gw1[k] *= (float)cfg->spike_scale;
            for (size_t k = 0; k < n2; k++) m.gw2[k] *= (float)cfg->spike_scale;
            for (int k = 0; k < H; k++) m.gb1[k] *= (float)cfg->spike_scale;
            for (int k = 0; k < DIGITS_CLASSES; k++) m.gb2[k] *= (float)cfg->spike_scale;
        }
        if (spikes == 1 && t > 0 && t % cfg->spike_every == 0) {
            for (int k = 0; k < cfg->spike_coords; k++) {
                uint64_t r = lab_splitmix64(&spike_rng) % (n1 + n2);
                if (r < n1) m.gw1[r] *= (float)cfg->spike_scale;
                else m.gw2[r - n1] *= (float)cfg->spike_scale;
            }
        }
        if (dsc_optimizer_step(opt) != DSC_OK) {
            fprintf(stderr, "stability: %s: %s\n", a->label, dsc_optimizer_error(opt));
            break;
        }
    }
    out->ok = out->points == npoints;
    free(idx);
    dsc_optimizer_free(opt);
    digits_mlp_free(&m);
    return out->ok ? 0 : 1;
}

static int have(const char *spec)
{
    char name[64];
    sscanf(spec, "%63[^:]", name);
    return dsc_optimizer_kind_find(name) != NULL;
}

/* Mean over seeds of the runs r[0..seeds) into a fresh run (same points). */
static void average(run_out *r, int seeds, run_out *mean)
{
    *mean = r[0];
    int n = r[0].points;
    mean->step = calloc((size_t)n, sizeof(double));
    mean->train_loss = calloc((size_t)n, sizeof(double));
    mean->test_loss = calloc((size_t)n, sizeof(double));
    mean->test_acc = calloc((size_t)n, sizeof(double));
    for (int k = 0; k < n; k++) {
        mean->step[k] = r[0].step[k];
        for (int s = 0; s < seeds; s++) {
            mean->train_loss[k] += r[s].train_loss[k] / seeds;
            mean->test_loss[k] += r[s].test_loss[k] / seeds;
            mean->test_acc[k] += r[s].test_acc[k] / seeds;
        }
    }
}

static void plot_runs(const char *dir, const char *base, const char *title, const char *ylabel,
                      const run_out *runs, const char *const *labels, int n, int which,
                      int logy, char *md, size_t mdlen)
{
    lab_series *s = calloc((size_t)n, sizeof *s);
    for (int i = 0; i < n; i++) {
        s[i].name = labels[i];
        s[i].n = runs[i].points;
        s[i].x = runs[i].step;
        s[i].y = which == 0 ? runs[i].train_loss : which == 1 ? runs[i].test_loss : runs[i].test_acc;
    }
    lab_plot p = {title, "step", ylabel, 0, logy, n, s};
    char path[1024], file[1024], msg[256];
    snprintf(path, sizeof path, "%s/%s", dir, base);
    lab_plot_format f = lab_plot_write(&p, path, LAB_PLOT_AUTO, file, sizeof file, msg, sizeof msg);
    size_t used = strlen(md);
    if (f == LAB_PLOT_NONE)
        snprintf(md + used, mdlen - used, "(plot %s skipped: %s)\n\n", base, msg);
    else
        snprintf(md + used, mdlen - used, "![%s](%s.%s)\n\n", title, base,
                 f == LAB_PLOT_PNG ? "png" : "svg");
    free(s);
}

int stability_run(const stability_config *cfg, stability_result *res)
{
    for (double *d = &res->adam_spiked_acc; d <= &res->fp32_bytes_per_param; d++) *d = NAN;
    digits_set train, test;
    char err[512];
    if (digits_load(NULL, 360, 2024, &train, &test, err, sizeof err)) {
        fprintf(stderr, "stability: %s\n", err);
        return 1;
    }
    if (lab_mkdirs(cfg->out_dir)) {
        fprintf(stderr, "stability: cannot create %s\n", cfg->out_dir);
        digits_free(&train);
        digits_free(&test);
        return 1;
    }
    static char md[32768];
    md[0] = '\0';
    size_t used = 0;
    used += (size_t)snprintf(md + used, sizeof md - used,
        "# Stability and memory on a real task\n\n"
        "MLP 64-128-10 (ReLU, softmax cross-entropy) on scikit-learn's 8x8 digits "
        "(1437 train / 360 test images), batch %d, %d steps, mean over %d seeds; every arm "
        "sees the same data order, initial weights and spikes.\n\n",
        cfg->batch, cfg->steps, cfg->seeds);

    /* ---------------------------------------------------- 1. spikes */
    const arm arms[] = {
        {"adam", "adam:lr=0.003", 0},
        {"adamw", "adamw:lr=0.003,weight_decay=0.01", 0},
        {"adam+clip1", "adam:lr=0.003", 1.0},
        {"spam", "spam:lr=0.003,warmup_steps=50,delta_t=250,grad_accu_steps=5", 0},
        {"stable_spam", "stable_spam:lr=0.003", 0},
    };
    int narms = (int)(sizeof arms / sizeof arms[0]);
    run_out means[2 * 8];
    const char *labels[2 * 8];
    char labelbuf[2 * 8][48];
    int nmeans = 0;
    used = strlen(md);
    used += (size_t)snprintf(md + used, sizeof md - used,
        "## 1. Gradient spikes\n\nEvery %d steps the gradient is multiplied by %g, either on "
        "%d random coordinates of the weight matrices (*few*) or everywhere (*all*, as a "
        "loss spike does).\n\n| optimizer | test acc clean | test acc few | test acc all | "
        "test loss clean | test loss few | test loss all |\n|---|---|---|---|---|---|---|\n",
        cfg->spike_every, cfg->spike_scale, cfg->spike_coords);
    if (!cfg->quiet)
        printf("\n1. gradient spikes x%g every %d steps on %d coordinates (few) or on all "
               "(all), %d seeds\n%-12s %10s %10s %10s %10s %10s %10s\n", cfg->spike_scale,
               cfg->spike_every, cfg->spike_coords, cfg->seeds, "optimizer", "acc clean",
               "acc few", "acc all", "loss clean", "loss few", "loss all");
    lab_file csv;
    char path[1024];
    snprintf(path, sizeof path, "%s/spikes.csv", cfg->out_dir);
    int csv_ok = lab_file_open(&csv, path) == 0;
    if (csv_ok) fprintf(csv.fp, "optimizer,spikes,step,train_loss,test_loss,test_acc\n");
    for (int a = 0; a < narms; a++) {
        if (!have(arms[a].spec)) {
            if (!cfg->quiet) printf("%-12s (not in this build)\n", arms[a].label);
            continue;
        }
        run_out agg[3];
        int fine = 1;
        for (int sp = 0; sp < 3; sp++) {
            run_out *r = calloc((size_t)cfg->seeds, sizeof *r);
            for (int s = 0; s < cfg->seeds; s++)
                fine &= train_arm(cfg, &arms[a], &train, &test, sp, 1000 + (uint64_t)s, &r[s]) == 0;
            if (fine) average(r, cfg->seeds, &agg[sp]);
            for (int s = 0; s < cfg->seeds; s++) run_free(&r[s]);
            free(r);
            if (!fine) break;
        }
        if (!fine) continue;
        int last = agg[0].points - 1;
        if (!cfg->quiet)
            printf("%-12s %10.4f %10.4f %10.4f %10.4f %10.4f %10.4f\n", arms[a].label,
                   agg[0].test_acc[last], agg[1].test_acc[last], agg[2].test_acc[last],
                   agg[0].test_loss[last], agg[1].test_loss[last], agg[2].test_loss[last]);
        used = strlen(md);
        snprintf(md + used, sizeof md - used, "| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n",
                 arms[a].label, agg[0].test_acc[last], agg[1].test_acc[last],
                 agg[2].test_acc[last], agg[0].test_loss[last], agg[1].test_loss[last],
                 agg[2].test_loss[last]);
        if (!strcmp(arms[a].label, "adam")) {
            res->adam_spiked_acc = agg[2].test_acc[last];
            res->adam_clean_acc = agg[0].test_acc[last];
        }
        if (!strcmp(arms[a].label, "spam")) res->spam_spiked_acc = agg[2].test_acc[last];
        if (!strcmp(arms[a].label, "stable_spam")) res->stable_spam_spiked_acc = agg[2].test_acc[last];
        for (int sp = 0; sp < 3; sp++) {
            if (csv_ok)
                for (int k = 0; k <= last; k++)
                    fprintf(csv.fp, "%s,%d,%.0f,%.6g,%.6g,%.6g\n", arms[a].label, sp,
                            agg[sp].step[k], agg[sp].train_loss[k], agg[sp].test_loss[k],
                            agg[sp].test_acc[k]);
            if (sp == 2 && nmeans < 16) {
                snprintf(labelbuf[nmeans], sizeof labelbuf[nmeans], "%s", arms[a].label);
                labels[nmeans] = labelbuf[nmeans];
                means[nmeans++] = agg[2];
            } else {
                run_free(&agg[sp]);
            }
        }
    }
    if (csv_ok) lab_file_commit(&csv);
    used = strlen(md);
    snprintf(md + used, sizeof md - used, "\n");
    if (nmeans)
        plot_runs(cfg->out_dir, "spikes", "test loss under whole-gradient spikes", "test loss", means,
                  labels, nmeans, 1, 1, md, sizeof md);
    for (int i = 0; i < nmeans; i++) run_free(&means[i]);

    /* ------------------------------------------------- 2. eight-bit */
    const arm pair[2] = {{"adamw (float32 states)", "adamw:lr=0.003,weight_decay=0.01", 0},
                         {"adamw8bit", "adamw8bit:lr=0.003,weight_decay=0.01", 0}};
    used = strlen(md);
    snprintf(md + used, sizeof md - used, "## 2. 8-bit AdamW against float32 AdamW\n\n");
    if (have(pair[0].spec) && have(pair[1].spec)) {
        run_out agg[2];
        int fine = 1;
        for (int i = 0; i < 2 && fine; i++) {
            run_out *r = calloc((size_t)cfg->seeds, sizeof *r);
            for (int s = 0; s < cfg->seeds; s++)
                fine &= train_arm(cfg, &pair[i], &train, &test, 0, 1000 + (uint64_t)s, &r[s]) == 0;
            if (fine) average(r, cfg->seeds, &agg[i]);
            agg[i].state_bytes = r[0].state_bytes;
            agg[i].params = r[0].params;
            for (int s = 0; s < cfg->seeds; s++) run_free(&r[s]);
            free(r);
        }
        if (fine) {
            double gap = 0;
            int last = agg[0].points - 1;
            for (int k = 0; k <= last; k++) {
                if (agg[0].step[k] < 0.1 * cfg->steps) continue;
                double g = fabs(agg[1].train_loss[k] - agg[0].train_loss[k]) / agg[0].train_loss[k];
                if (g > gap) gap = g;
            }
            res->eightbit_max_rel_gap = gap;
            res->fp32_bytes_per_param = (double)agg[0].state_bytes / (double)agg[0].params;
            res->eightbit_bytes_per_param = (double)agg[1].state_bytes / (double)agg[1].params;
            if (!cfg->quiet)
                printf("\n2. adamw8bit vs adamw: final train loss %.4f vs %.4f, test acc %.4f vs "
                       "%.4f,\n   largest relative gap of the train loss after 10%% of the run "
                       "%.2f%%, state %.2f vs %.2f bytes/param\n", agg[1].train_loss[last],
                       agg[0].train_loss[last], agg[1].test_acc[last], agg[0].test_acc[last],
                       100 * gap, res->eightbit_bytes_per_param, res->fp32_bytes_per_param);
            used = strlen(md);
            snprintf(md + used, sizeof md - used,
                     "| optimizer | final train loss | final test acc | state bytes/param |\n"
                     "|---|---|---|---|\n| adamw | %.4f | %.4f | %.2f |\n"
                     "| adamw8bit | %.4f | %.4f | %.2f |\n\nLargest relative gap between the "
                     "two train-loss curves after the first 10%% of the run: %.2f%%. (On this "
                     "small model the tensors under 4096 elements keep float32 states, as in "
                     "bitsandbytes; on GPT-2-small 8-bit AdamW holds about 2 bytes per "
                     "parameter: `descent list --memory`.)\n\n",
                     agg[0].train_loss[last], agg[0].test_acc[last], res->fp32_bytes_per_param,
                     agg[1].train_loss[last], agg[1].test_acc[last],
                     res->eightbit_bytes_per_param, 100 * gap);
            snprintf(path, sizeof path, "%s/eightbit.csv", cfg->out_dir);
            if (lab_file_open(&csv, path) == 0) {
                fprintf(csv.fp, "step,adamw_train_loss,adamw8bit_train_loss\n");
                for (int k = 0; k <= last; k++)
                    fprintf(csv.fp, "%.0f,%.6g,%.6g\n", agg[0].step[k], agg[0].train_loss[k],
                            agg[1].train_loss[k]);
                lab_file_commit(&csv);
            }
            const char *l2[2] = {"adamw (float32 states)", "adamw8bit"};
            plot_runs(cfg->out_dir, "eightbit", "8-bit vs float32 AdamW", "train loss", agg, l2,
                      2, 0, 1, md, sizeof md);
            run_free(&agg[0]);
            run_free(&agg[1]);
        }
    } else {
        used = strlen(md);
        snprintf(md + used, sizeof md - used, "(adamw8bit is not in this build)\n\n");
    }
    snprintf(path, sizeof path, "%s/report.md", cfg->out_dir);
    int rc = lab_file_write_text(path, md);
    if (!cfg->quiet) printf("\nreport: %s\n", path);
    digits_free(&train);
    digits_free(&test);
    return rc ? 1 : 0;
}
