/*
 * train.c - the GPT-2 training loop (contract in train.h) and `descent gpt2
 * train`. Uses libdescent through descent.h only.
 *
 * Resuming bit for bit rests on three facts: checkpoints are taken only
 * between updates (no half-accumulated gradient), batches are pure
 * functions of the micro-batch index (data.h), and the optimizer's whole
 * state, step counts and schedules included, travels in its safetensors
 * file. Timings are the only things that differ between the two runs.
 */
#include "gpt2/train.h"
#include "gpt2/train_dp.h"

#include "descent.h"
#include "gpt2/data.h"
#include "gpt2/model.h"
#include "gpt2/prepare.h"
#include "gpt2/retain.h"
#include "labfile.h"
#include "opts.h"
#include "plot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Micro-batch indices at and above this one feed phi, never training. */
#define PHI_BATCH_BASE (1ull << 40)
/* Most floats held for one phi measurement (k gradients); beyond it phi
 * is measured on every s-th coordinate. */
#define PHI_MAX_FLOATS ((size_t)64 << 20)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const dsc_comm *default_comm; /* descent-mpi's (mpi_glue.c) */

void gpt2_train_set_default_comm(const dsc_comm *comm) { default_comm = comm; }

void gpt2_train_opts_default(gpt2_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->comm = default_comm;
    o->layers = 4;
    o->channels = 64;
    o->heads = 4;
    o->max_seq_len = 1024;
    o->seed = 1337;
    o->corpus = "moby-dick";
    o->B = 8;
    o->T = 64;
    o->optimizer = "adamw:lr=3e-3,beta2=0.95,weight_decay=0.1";
    o->warmup = -1; /* 5% of the steps */
    o->accum = 1;
    o->steps = 200;
    o->eval_every = 25;
    o->eval_batches = 16;
    o->phi_samples = 4;
    o->metrics_format = "csv";
    o->save_final = 1;
    o->progress = 1;
    o->plot = 1;
    o->keep = GPT2_KEEP_DEFAULT;
}

void gpt2_train_result_free(gpt2_train_result *r)
{
    if (!r) return;
    free(r->train_step);
    free(r->val_step);
    free(r->train_loss);
    free(r->val_loss);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ pieces */

typedef struct {
    const gpt2_train_opts *o;
    gpt2_model model;
    gpt2_loader *train, *val;
    dsc_optimizer *opt;
    int *inputs, *targets;
    FILE *metrics;
    int jsonl;
    int start_step;
    char train_path[1024], val_path[1024];
    gpt2_dp *dp;          /* data-parallel (train_dp.h), else NULL */
    gpt2_train_opts od;   /* the options with dp's communicator */
    int writer;           /* 1 on the rank that writes files and progress */
} run_ctx;

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int gpt2_make_optimizer(dsc_optimizer **out, gpt2_model *m, const gpt2_train_opts *o,
                        char *err, size_t errlen)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    *out = opt;
    if (!opt) {
        lab_set_err(err, errlen, "out of memory (optimizer)");
        return -1;
    }
    dsc_status st;
    const char *group = NULL;
    if (o->matrix_optimizer) {
        st = dsc_optimizer_use_split(opt, o->matrix_optimizer, o->optimizer);
    } else {
        group = "all";
        st = dsc_optimizer_add_group(opt, group, o->optimizer);
    }
    if (st == DSC_OK && o->clip > 0) st = dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, o->clip);
    if (st == DSC_OK) st = dsc_optimizer_set_stats(opt, 1); /* grad norm in the metrics */
    /* data-parallel: the trainer forms the mean gradient itself (train_dp.c) */
    if (st == DSC_OK && o->accum > 1 && !o->comm)
        st = dsc_optimizer_set_accumulation(opt, o->accum);
    if (st == DSC_OK) {
        dsc_schedule s;
        char text[256], why[256] = "";
        if (o->schedule) {
            snprintf(text, sizeof text, "%s", o->schedule);
        } else {
            int warm = o->warmup >= 0 ? o->warmup : o->steps / 20;
            snprintf(text, sizeof text, "cosine:warmup=%d,total=%d,min_ratio=0.1", warm,
                     o->steps);
        }
        st = dsc_schedule_parse(text, &s, why, sizeof why);
        if (st != DSC_OK) {
            lab_set_err(err, errlen, "schedule \"%s\": %s", text, why);
            return -1;
        }
        st = dsc_optimizer_set_schedule(opt, NULL, "lr", &s);
    }
    for (int i = 0; st == DSC_OK && i < gpt2_view_count(m); i++) {
        gpt2_view v;
        gpt2_view_at(m, i, &v);
        st = dsc_optimizer_add_param(opt, v.name, v.data, v.grad, v.ndim, v.shape,
                                     DSC_ROLE_AUTO, group);
    }
    if (st == DSC_OK && o->comm) st = dsc_optimizer_set_comm(opt, o->comm); /* ZeRO-1 */
    if (st != DSC_OK) {
        lab_set_err(err, errlen, "optimizer: %s", dsc_optimizer_error(opt));
        return -1;
    }
    return 0;
}

/* Checkpoint folder of a --resume argument: the folder itself when it
 * holds trainer.txt, else the one its `latest` file names. */
static int resolve_resume(const char *arg, char *dir, size_t n, char *err, size_t errlen)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/trainer.txt", arg);
    if (is_file(p)) {
        snprintf(dir, n, "%s", arg);
        return 0;
    }
    snprintf(p, sizeof p, "%s/latest", arg);
    FILE *f = fopen(p, "r");
    char name[256] = "";
    if (f) {
        if (!fgets(name, sizeof name, f)) name[0] = 0;
        fclose(f);
    }
    name[strcspn(name, "\r\n")] = 0;
    if (!name[0]) {
        lab_set_err(err, errlen, "--resume %s: neither a checkpoint (no trainer.txt) nor an "
                "output folder with a `latest` file", arg);
        return -1;
    }
    if ((size_t)snprintf(dir, n, "%s/%s", arg, name) >= n) {
        lab_set_err(err, errlen, "--resume %s: path too long", arg);
        return -1;
    }
    return 0;
}

/* trainer.txt: what must match for an exact resume, and the step. */
static int write_trainer_txt(const run_ctx *c, const char *dir, int step, char *err,
                             size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    char text[4096], path[1200];
    snprintf(text, sizeof text,
             "format descent-gpt2-trainer 1\nstep %d\nseed %llu\nB %d\nT %d\naccum %d\n"
             "steps %d\noptimizer %s\nmatrix_optimizer %s\ntrain %s\n",
             step, (unsigned long long)o->seed, o->B, o->T, o->accum, o->steps, o->optimizer,
             o->matrix_optimizer ? o->matrix_optimizer : "-", c->train_path);
    snprintf(path, sizeof path, "%s/trainer.txt", dir);
    if (lab_file_write_text(path, text)) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int check_trainer_txt(const run_ctx *c, const char *dir, int *step, char *err,
                             size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    char path[1200], line[1200];
    snprintf(path, sizeof path, "%s/trainer.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int got_step = -1, bad = 0;
    char what[64] = "", have[1200] = "", want[1024] = "";
    while (fgets(line, sizeof line, f) && !bad) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        const char *key = line, *val = sp + 1;
        char mine[1024] = "";
        if (!strcmp(key, "step")) { /* strtol: atoi is undefined on overflow */
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            got_step = errno || *end || end == val || v < 0 || v > INT_MAX ? -1 : (int)v;
        }
        else if (!strcmp(key, "seed")) snprintf(mine, sizeof mine, "%llu", (unsigned long long)o->seed);
        else if (!strcmp(key, "B")) snprintf(mine, sizeof mine, "%d", o->B);
        else if (!strcmp(key, "T")) snprintf(mine, sizeof mine, "%d", o->T);
        else if (!strcmp(key, "accum")) snprintf(mine, sizeof mine, "%d", o->accum);
        else if (!strcmp(key, "optimizer")) snprintf(mine, sizeof mine, "%s", o->optimizer);
        else if (!strcmp(key, "matrix_optimizer"))
            snprintf(mine, sizeof mine, "%s", o->matrix_optimizer ? o->matrix_optimizer : "-");
        else continue;
        if (mine[0] && strcmp(mine, val)) {
            bad = 1;
            snprintf(what, sizeof what, "%.60s", key);
            snprintf(have, sizeof have, "%s", val);
            snprintf(want, sizeof want, "%s", mine);
        }
    }
    fclose(f);
    if (bad) {
        lab_set_err(err, errlen, "%s: %s is \"%s\" in the checkpoint but \"%s\" here; an exact "
                "resume needs the same value", path, what, have, want);
        return -1;
    }
    if (got_step < 0) {
        lab_set_err(err, errlen, "%s: no step", path);
        return -1;
    }
    *step = got_step;
    return 0;
}

static int save_checkpoint(run_ctx *c, int step, char *err, size_t errlen)
{
    const char *out = c->o->out_dir;
    char name[64], dir[1100], path[1200];
    snprintf(name, sizeof name, "ckpt_%08d", step);
    snprintf(dir, sizeof dir, "%s/%s", out, name);
    int failed = 0;
    if (c->writer && lab_mkdirs(dir)) {
        lab_set_err(err, errlen, "%s: %s", dir, strerror(errno));
        failed = 1;
    }
    /* Temporary files of writers killed mid-save (kill -9, power loss);
     * by the writing rank only, before any rank starts writing this step. */
    if (c->writer && !failed) {
        lab_remove_stale_tmp(out);
        lab_remove_stale_tmp(dir);
    }
    snprintf(path, sizeof path, "%s/model.bin", dir);
    if (c->writer && !failed && gpt2_save(&c->model, path, err, errlen)) failed = 1;
    /* data-parallel: every rank saves its optimizer shard, once the folder exists */
    if (c->dp && gpt2_dp_agree(c->dp, failed) != 0) {
        if (!failed) lab_set_err(err, errlen, "%s: rank 0 could not write the model", dir);
        return -1;
    }
    if (failed) return -1;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (dsc_optimizer_save(c->opt, path) != DSC_OK) {
        lab_set_err(err, errlen, "%s: %s", path, dsc_optimizer_error(c->opt));
        return -1;
    }
    if (!c->writer) return 0;
    /* trainer.txt last: a folder without it is not a checkpoint */
    if (write_trainer_txt(c, dir, step, err, errlen)) return -1;
    char text[80];
    snprintf(text, sizeof text, "%s\n", name);
    snprintf(path, sizeof path, "%s/latest", out);
    if (lab_file_write_text(path, text)) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    gpt2_ckpt_retain(out, c->o->keep); /* best effort: a failure loses nothing */
    return 0;
}

/* The step of a metrics row, or -1 for the header. */
static long row_step(const char *line, int jsonl)
{
    if (jsonl) {
        const char *p = strstr(line, "\"step\":");
        return p ? strtol(p + 7, NULL, 10) : -1;
    }
    const char *p = strchr(line, ',');
    if (!p || !strncmp(line, "kind,", 5)) return -1;
    return strtol(p + 1, NULL, 10);
}

/* Opens the metrics file: new, or on resume the old rows up to `step`
 * (rewritten atomically), then appends. */
static int open_metrics(run_ctx *c, int resumed, char *err, size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.%s", o->out_dir, c->jsonl ? "jsonl" : "csv");
    lab_file lf;
    if (lab_file_open(&lf, path)) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    FILE *old = resumed ? fopen(path, "r") : NULL;
    if (old) {
        char line[2048];
        while (fgets(line, sizeof line, old)) {
            long s = row_step(line, c->jsonl);
            if (s <= c->start_step) fputs(line, lf.fp);
        }
        fclose(old);
    } else if (!c->jsonl) {
        fprintf(lf.fp, "kind,step,tokens,loss,lr,grad_norm,ms,tokens_per_s,phi,update_norm,"
                "clipped,skipped\n");
    }
    if (lab_file_commit(&lf)) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    c->metrics = fopen(path, "a");
    if (!c->metrics) {
        lab_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A train row: the step's stats from the library, among them the l2 norm of
 * the parameter change (update_norm) and whether norm clipping scaled the
 * gradient (clipped) or a non-finite gradient skipped the update (skipped),
 * 0 or 1 per update: their running sums are the clip and skip counts, and a
 * resumed run writes the same rows. */
static void metrics_train(run_ctx *c, int step, double tokens, double loss,
                          const dsc_step_stats *st, double ms, double tps)
{
    if (!c->metrics) return;
    int clipped = st->clip_scale < 1.0, skipped = st->skipped;
    if (c->jsonl)
        fprintf(c->metrics, "{\"kind\":\"train\",\"step\":%d,\"tokens\":%.0f,\"loss\":%.17g,"
                "\"lr\":%.9g,\"grad_norm\":%.9g,\"ms\":%.3f,\"tokens_per_s\":%.1f,"
                "\"update_norm\":%.9g,\"clipped\":%d,\"skipped\":%d}\n",
                step, tokens, loss, st->lr, st->grad_l2, ms, tps, st->update_l2, clipped, skipped);
    else
        fprintf(c->metrics, "train,%d,%.0f,%.17g,%.9g,%.9g,%.3f,%.1f,,%.9g,%d,%d\n", step, tokens,
                loss, st->lr, st->grad_l2, ms, tps, st->update_l2, clipped, skipped);
    fflush(c->metrics);
}

static void metrics_val(run_ctx *c, int step, double tokens, double loss)
{
    if (!c->metrics) return;
    if (c->jsonl)
        fprintf(c->metrics, "{\"kind\":\"val\",\"step\":%d,\"tokens\":%.0f,\"loss\":%.17g}\n",
                step, tokens, loss);
    else
        fprintf(c->metrics, "val,%d,%.0f,%.17g,,,,,,,,\n", step, tokens, loss);
    fflush(c->metrics);
}

static void metrics_phi(run_ctx *c, int step, double tokens, double phi)
{
    if (!c->metrics) return;
    if (c->jsonl)
        fprintf(c->metrics, "{\"kind\":\"phi\",\"step\":%d,\"tokens\":%.0f,\"phi\":%.9g}\n", step,
                tokens, phi);
    else
        fprintf(c->metrics, "phi,%d,%.0f,,,,,,%.9g,,,\n", step, tokens, phi);
    fflush(c->metrics);
}

static int evaluate(run_ctx *c, double *loss, char *err, size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    size_t nb = gpt2_loader_num_batches(c->val);
    if (o->eval_batches > 0 && (size_t)o->eval_batches < nb) nb = (size_t)o->eval_batches;
    double sum = 0;
    for (size_t k = 0; k < nb; k++) {
        double l;
        gpt2_loader_sequential(c->val, k, c->inputs, c->targets);
        if (gpt2_forward(&c->model, c->inputs, c->targets, o->B, o->T, &l, err, errlen))
            return -1;
        sum += l;
    }
    *loss = sum / (double)nb;
    return 0;
}

/* phi over `phi_samples` mini-batch gradients at the current weights
 * (every s-th coordinate when they would not fit PHI_MAX_FLOATS). */
static int measure_phi(run_ctx *c, int step, double *phi, char *err, size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    int k = o->phi_samples;
    size_t d = c->model.num_params, stride = 1;
    while ((d + stride - 1) / stride * (size_t)k > PHI_MAX_FLOATS) stride++;
    size_t dd = (d + stride - 1) / stride;
    float *buf = malloc(dd * (size_t)k * sizeof(float));
    const float **g = malloc((size_t)k * sizeof *g);
    if (!buf || !g) {
        free(buf);
        free(g);
        lab_set_err(err, errlen, "phi: cannot allocate %d x %zu floats", k, dd);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < k && !rc; i++) {
        uint64_t idx = PHI_BATCH_BASE + (uint64_t)step * (uint64_t)k + (uint64_t)i;
        gpt2_loader_random(c->train, idx, c->inputs, c->targets);
        if (gpt2_forward(&c->model, c->inputs, c->targets, o->B, o->T, NULL, err, errlen) ||
            gpt2_backward(&c->model)) {
            rc = -1;
            break;
        }
        float *dst = buf + (size_t)i * dd;
        for (size_t j = 0; j < dd; j++) dst[j] = c->model.grads[j * stride];
        g[i] = dst;
    }
    if (!rc) {
        dsc_status st = dsc_noise_density(g, k, dd, phi);
        if (st != DSC_OK) {
            lab_set_err(err, errlen, "phi: %s", dsc_status_string(st));
            rc = -1;
        }
    }
    free(buf);
    free(g);
    return rc;
}

static void fmt_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static int push(int **steps, double **vals, int *n, int step, double v)
{
    int *s = realloc(*steps, (size_t)(*n + 1) * sizeof **steps);
    if (!s) return -1;
    *steps = s;
    double *x = realloc(*vals, (size_t)(*n + 1) * sizeof **vals);
    if (!x) return -1;
    *vals = x;
    s[*n] = step;
    x[*n] = v;
    (*n)++;
    return 0;
}

static void write_plot(const run_ctx *c, const gpt2_train_result *r)
{
    double *tx = malloc(sizeof(double) * (size_t)(r->ntrain + 1));
    double *vx = malloc(sizeof(double) * (size_t)(r->nval + 1));
    if (!tx || !vx) {
        free(tx);
        free(vx);
        return;
    }
    for (int i = 0; i < r->ntrain; i++) tx[i] = r->train_step[i];
    for (int i = 0; i < r->nval; i++) vx[i] = r->val_step[i];
    lab_series s[2] = {{"train", r->ntrain, tx, r->train_loss, NULL, NULL},
                       {"validation", r->nval, vx, r->val_loss, NULL, NULL}};
    char title[256], base[1100], path[1200], msg[256];
    snprintf(title, sizeof title, "GPT-2 L=%d C=%d, %s%s%s", c->model.cfg.num_layers,
             c->model.cfg.channels, c->o->matrix_optimizer ? c->o->matrix_optimizer : "",
             c->o->matrix_optimizer ? " + " : "", c->o->optimizer);
    lab_plot p = {title, "step", "loss", 0, 0, 2, s};
    snprintf(base, sizeof base, "%s/loss", c->o->out_dir);
    if (lab_plot_write(&p, base, LAB_PLOT_AUTO, path, sizeof path, msg, sizeof msg) ==
        LAB_PLOT_NONE && c->o->progress)
        fprintf(stderr, "plot skipped: %s\n", msg);
    free(tx);
    free(vx);
}

/* ------------------------------------------------------------ the run */

static int setup(run_ctx *c, char *ckpt_dir, size_t ckn, char *err, size_t errlen)
{
    const gpt2_train_opts *o = c->o;
    if (o->out_dir && !o->out_dir[0]) {
        lab_set_err(err, errlen, "--out: the folder name is empty");
        return -1;
    }
    if (o->B < 1 || o->T < 1 || o->accum < 1 || o->steps < 0) {
        lab_set_err(err, errlen, "need B, T, accum >= 1 and steps >= 0");
        return -1;
    }
    if (o->phi_samples == 1 || o->phi_samples < 0) {
        lab_set_err(err, errlen, "phi needs at least 2 samples (got %d)", o->phi_samples);
        return -1;
    }
    const char *data = gpt2_data_dir(o->data_dir);
    if (o->train_path) snprintf(c->train_path, sizeof c->train_path, "%s", o->train_path);
    else snprintf(c->train_path, sizeof c->train_path, "%s/%s/train.bin", data, o->corpus);
    if (o->val_path) snprintf(c->val_path, sizeof c->val_path, "%s", o->val_path);
    else snprintf(c->val_path, sizeof c->val_path, "%s/%s/val.bin", data, o->corpus);
    struct stat tst;
    if (!o->train_path && stat(c->train_path, &tst) != 0 && errno == ENOENT) {
        lab_set_err(err, errlen, "%s: no such file (run `descent gpt2 prepare --corpus %s`)",
                c->train_path, o->corpus ? o->corpus : "moby-dick");
        return -1;
    }
    if (!is_file(c->train_path)) { /* says why: missing, a folder, a device... */
        FILE *tf = lab_open_input(c->train_path, "training tokens", err, errlen);
        if (tf) fclose(tf);
        return -1;
    }
    ckpt_dir[0] = 0;
    if (o->resume && resolve_resume(o->resume, ckpt_dir, ckn, err, errlen)) return -1;

    /* the model: resumed, loaded, or fresh */
    if (ckpt_dir[0]) {
        char p[1200];
        snprintf(p, sizeof p, "%s/model.bin", ckpt_dir);
        if (gpt2_load(&c->model, p, err, errlen)) return -1;
    } else if (o->init_from) {
        if (gpt2_load(&c->model, o->init_from, err, errlen)) return -1;
    } else {
        gpt2_config cfg = gpt2_config_make(o->layers, o->channels, o->heads, o->max_seq_len);
        if (o->vocab_size > 0) {
            cfg.vocab_size = o->vocab_size;
            cfg.padded_vocab_size = gpt2_pad_vocab(o->vocab_size);
        }
        if (gpt2_init(&c->model, &cfg, o->seed, err, errlen)) return -1;
    }
    if (o->T > c->model.cfg.max_seq_len) {
        lab_set_err(err, errlen, "T=%d exceeds the model's maximum sequence length %d", o->T,
                c->model.cfg.max_seq_len);
        return -1;
    }
    c->train = gpt2_loader_open(c->train_path, o->B, o->T, o->seed, err, errlen);
    if (!c->train) return -1;
    c->val = gpt2_loader_open(c->val_path, o->B, o->T, o->seed, err, errlen);
    if (!c->val) return -1;
    size_t bt = (size_t)o->B * o->T;
    c->inputs = malloc(bt * sizeof(int));
    c->targets = malloc(bt * sizeof(int));
    if (!c->inputs || !c->targets) {
        lab_set_err(err, errlen, "out of memory");
        return -1;
    }
    if (o->comm) { /* data-parallel: a slice of each batch per rank (train_dp.h) */
        c->dp = gpt2_dp_new(o->comm, c->model.num_params, o->accum, err, errlen);
        if (!c->dp) return -1;
        c->od = *o;
        c->od.comm = gpt2_dp_comm(c->dp);
        c->writer = gpt2_dp_rank(c->dp) == 0;
        if (!c->writer) c->od.progress = c->od.plot = 0;
        c->o = o = &c->od;
    }
    if (gpt2_make_optimizer(&c->opt, &c->model, o, err, errlen)) return -1;
    if (ckpt_dir[0]) {
        char p[1200];
        if (check_trainer_txt(c, ckpt_dir, &c->start_step, err, errlen)) return -1;
        snprintf(p, sizeof p, "%s/optimizer.safetensors", ckpt_dir);
        if (dsc_optimizer_load(c->opt, p) != DSC_OK) {
            lab_set_err(err, errlen, "%s: %s", p, dsc_optimizer_error(c->opt));
            return -1;
        }
        if (c->start_step > o->steps) {
            lab_set_err(err, errlen, "checkpoint is at step %d, past --steps %d", c->start_step,
                    o->steps);
            return -1;
        }
    }
    if (o->out_dir && c->writer) {
        struct stat ost;
        if (stat(o->out_dir, &ost) == 0 && !S_ISDIR(ost.st_mode)) {
            lab_set_err(err, errlen, "--out %s: exists and is not a folder", o->out_dir);
            return -1;
        }
        if (lab_mkdirs(o->out_dir)) {
            lab_set_err(err, errlen, "--out %s: cannot create the folder: %s", o->out_dir,
                    strerror(errno));
            return -1;
        }
        c->jsonl = o->metrics_format && !strcmp(o->metrics_format, "jsonl");
        if (open_metrics(c, ckpt_dir[0] != 0, err, errlen)) return -1;
    }
    if (c->dp && gpt2_dp_metrics_open(c->dp, o->out_dir, c->opt, ckpt_dir[0] != 0, err, errlen))
        return -1;
    return 0;
}

static void teardown(run_ctx *c)
{
    gpt2_free(&c->model);
    gpt2_loader_free(c->train);
    gpt2_loader_free(c->val);
    dsc_optimizer_free(c->opt);
    gpt2_dp_free(c->dp);
    free(c->inputs);
    free(c->targets);
    if (c->metrics) fclose(c->metrics);
}

static int phi_due(const gpt2_train_opts *o, int step)
{
    if (o->phi_samples < 2) return -1;
    if (step == 0) return 0;
    if (step == o->steps / 2) return 1;
    if (step == o->steps) return 2;
    return -1;
}

int gpt2_train(const gpt2_train_opts *o, gpt2_train_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 3; i++) r->phi[i] = NAN;
    r->final_val_loss = r->final_train_loss = r->initial_val_loss = NAN;
    if (o->threads > 0) {
        gpt2_set_threads(o->threads);
        dsc_set_num_threads(o->threads);
    }
    double t_start = now_s();
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.writer = 1;
    char ckpt_dir[1100];
    int rc = setup(&c, ckpt_dir, sizeof ckpt_dir, err, errlen);
    if (rc) {
        teardown(&c);
        return -1;
    }
    o = c.o; /* data-parallel: progress and plot on rank 0 only */
    r->num_params = c.model.num_params;
    double tok_per_update = (double)o->B * o->T * o->accum * (c.dp ? gpt2_dp_size(c.dp) : 1);
    r->tokens_per_step = tok_per_update;
    int tty = isatty(2);
    int log_every = o->log_every > 0 ? o->log_every : (o->steps >= 20 ? o->steps / 20 : 1);
    double train_time = 0;
    int timed_steps = 0;
    const char *label = o->label ? o->label : "train";
    if (o->progress)
        fprintf(stderr, "[%s] %zu parameters, %s, B=%d T=%d accum=%d, %d steps%s\n", label,
                c.model.num_params, o->matrix_optimizer ? "split" : o->optimizer, o->B, o->T,
                o->accum, o->steps, c.start_step ? " (resumed)" : "");
    if (c.start_step)
        if (o->progress) fprintf(stderr, "[%s] resumed at step %d from %s\n", label,
                                 c.start_step, ckpt_dir);

    double last_loss = NAN;
    for (int step = c.start_step;; step++) {
        double tokens = step * tok_per_update;
        /* a resumed run did its measurements at start_step before saving */
        int resumed_here = step == c.start_step && step > 0;
        int pi = resumed_here ? -1 : phi_due(o, step);
        if (pi >= 0) {
            double phi;
            if (measure_phi(&c, step, &phi, err, errlen)) goto fail;
            r->phi[pi] = phi;
            r->phi_step[pi] = step;
            r->nphi++;
            metrics_phi(&c, step, tokens, phi);
        }
        if (o->hook && !resumed_here &&
            (step == 0 || step == o->steps || (o->hook_every > 0 && step % o->hook_every == 0)))
            if (o->hook(o->hook_user, step, &c.model, c.train, c.val, o->B, o->T, err, errlen))
                goto fail;
        int do_eval = !resumed_here && (step == o->steps || step == 0 ||
                                        (o->eval_every > 0 && step % o->eval_every == 0));
        if (do_eval) {
            double vl;
            if (evaluate(&c, &vl, err, errlen)) goto fail;
            if (push(&r->val_step, &r->val_loss, &r->nval, step, vl)) goto oom;
            if (step == 0) r->initial_val_loss = vl;
            r->final_val_loss = vl;
            metrics_val(&c, step, tokens, vl);
            if (o->progress && (tty || step == o->steps || step == 0 || step % log_every == 0))
                fprintf(stderr, "%s[%s] step %d/%d | val loss %.4f\n", tty ? "\r\033[K" : "",
                        label, step, o->steps, vl);
        }
        if (o->out_dir && step > c.start_step &&
            ((o->ckpt_every > 0 && step % o->ckpt_every == 0) ||
             (step == o->steps && o->save_final)))
            if (save_checkpoint(&c, step, err, errlen)) goto fail;
        if (step == o->steps) break;
        if (o->stop_after > 0 && step == o->stop_after && step > c.start_step) {
            if (o->out_dir && (o->ckpt_every <= 0 || step % o->ckpt_every))
                if (save_checkpoint(&c, step, err, errlen)) goto fail;
            if (o->progress) fprintf(stderr, "%s[%s] stopped at step %d (--stop-after)\n",
                                     tty ? "\n" : "", label, step);
            break;
        }

        double t0 = now_s(), loss = 0;
        if (c.dp && gpt2_dp_update(c.dp, &c.model, c.train, c.opt, c.inputs, c.targets, o->B,
                                   o->T, step, &loss, err, errlen))
            goto fail;
        for (int m = 0; m < o->accum && !c.dp; m++) {
            uint64_t k = (uint64_t)step * (uint64_t)o->accum + (uint64_t)m;
            double l;
            gpt2_loader_random(c.train, k, c.inputs, c.targets);
            if (gpt2_forward(&c.model, c.inputs, c.targets, o->B, o->T, &l, err, errlen))
                goto fail;
            gpt2_backward(&c.model);
            if (dsc_optimizer_step(c.opt) != DSC_OK) {
                lab_set_err(err, errlen, "step %d: %s", step, dsc_optimizer_error(c.opt));
                goto fail;
            }
            loss += l;
        }
        if (!c.dp) loss /= o->accum;
        else gpt2_dp_metrics_row(c.dp, step + 1);
        double dt = now_s() - t0;
        train_time += dt;
        timed_steps++;
        dsc_step_stats st;
        dsc_optimizer_stats(c.opt, &st);
        double tps = tok_per_update / dt;
        metrics_train(&c, step + 1, tokens + tok_per_update, loss, &st, 1e3 * dt, tps);
        if (push(&r->train_step, &r->train_loss, &r->ntrain, step + 1, loss)) goto oom;
        last_loss = loss;
        r->steps_done = step + 1;
        if (o->progress && (tty || (step + 1) % log_every == 0 || step + 1 == o->steps)) {
            double avg = train_time / timed_steps;
            char eta[32];
            fmt_duration(avg * (o->steps - step - 1), eta, sizeof eta);
            fprintf(stderr, "%s[%s] step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | "
                    "%.1f ms/step | ETA %s%s", tty ? "\r\033[K" : "", label, step + 1,
                    o->steps, loss, st.lr, tok_per_update / avg, 1e3 * avg, eta,
                    tty ? "" : "\n");
        }
        if (!isfinite(loss)) {
            if (!r->diverged) r->diverged_step = step + 1;
            r->diverged = 1;
            if (!o->continue_nonfinite) { /* no checkpoint after this: `latest` stays good */
                if (o->progress)
                    fprintf(stderr, "%s[%s] loss is not finite at step %d: stopping\n",
                            tty ? "\n" : "", label, step + 1);
                break;
            }
        }
    }
    if (o->progress && tty) fputc('\n', stderr);
    r->final_train_loss = last_loss;
    if (r->diverged) r->final_val_loss = NAN;
    r->ms_per_step = timed_steps ? 1e3 * train_time / timed_steps : NAN;
    r->tokens_per_s = timed_steps ? tok_per_update * timed_steps / train_time : NAN;
    if (o->out_dir && o->plot) write_plot(&c, r);
    teardown(&c);
    r->wall_s = now_s() - t_start;
    return 0;
oom:
    lab_set_err(err, errlen, "out of memory");
fail:
    teardown(&c);
    gpt2_train_result_free(r); /* a failed call leaves nothing to free */
    return -1;
}

/* ------------------------------------------------------------ flags */

const char gpt2_common_flags_help[] =
    "  model (a fresh GPT-2 with the GPT-2 vocabulary, or a checkpoint):\n"
    "    --layers N --channels N --heads N   size (default 4, 64, 4)\n"
    "    --max-seq-len N      rows of the position embedding (default 1024)\n"
    "    --124m               GPT-2 124M: 12 layers, 768 channels, 12 heads\n"
    "    --vocab-size N       vocabulary (default GPT-2's 50257; tokens must fit)\n"
    "    --init FILE          start from an llm.c GPT-2 checkpoint (version 3)\n"
    "    --seed N             initialisation and batch order (default 1337)\n"
    "  data (llm.c token files, see `descent gpt2 prepare`):\n"
    "    --data DIR           data folder (default $DESCENT_DATA or data)\n"
    "    --corpus NAME        moby-dick (default) or sotu: DIR/NAME/{train,val}.bin\n"
    "    --train FILE --val FILE   token files to use instead\n"
    "    -B N, -T N           batch size and sequence length (default 8, 64)\n"
    "  optimization:\n"
    "    --optimizer SPEC     every parameter, or with --matrix-optimizer the\n"
    "                         embeddings, gains and biases (default\n"
    "                         adamw:lr=3e-3,beta2=0.95,weight_decay=0.1)\n"
    "    --matrix-optimizer SPEC   hidden matrices (e.g. muon:lr=0.02)\n"
    "    --schedule TEXT      lr schedule (default cosine:warmup=W,total=STEPS,\n"
    "                         min_ratio=0.1), see descent.h dsc_schedule_parse\n"
    "    --warmup N           warmup steps of the default schedule (default 5%)\n"
    "    --clip X             clip the global gradient norm at X (default off)\n"
    "    --accum N            micro-batches per update (default 1)\n"
    "    --steps N            updates (default 200)\n"
    "    --stop-after N       stop at update N with a checkpoint, as if interrupted\n"
    "  evaluation and output:\n"
    "    --eval-every N       validate every N updates (default 25)\n"
    "    --eval-batches N     validation batches per evaluation (default 16)\n"
    "    --phi K              noise density phi from K mini-batch gradients at the\n"
    "                         start, middle and end (default 4; 0: off)\n"
    "    --out DIR            write metrics, plot and checkpoints under DIR\n"
    "    --metrics csv|jsonl  metrics format (default csv)\n"
    "    --ckpt-every N       checkpoint every N updates (default: at the end)\n"
    "    --no-final-ckpt      no checkpoint at the end\n"
    "    --resume PATH        continue from a checkpoint folder, or DIR's latest\n"
    "    --keep N             keep the newest N checkpoints and `latest` (default 3;\n"
    "                         0: all)\n"
    "    --continue-on-nonfinite   do not stop when the loss becomes NaN or Inf\n"
    "                         (default: stop, exit status 3, `latest` stays good)\n"
    "    --threads N          threads (default: OMP_NUM_THREADS or all cores)\n"
    "    --log-every N        progress lines when stderr is not a terminal\n"
    "    --quiet              no progress output\n"
    "    --no-plot            no loss plot\n";

static int parse_int(const char *flag, const char *s, int lo, int *out, char *err, size_t n)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > INT_MAX) {
        lab_set_err(err, n, "%s: \"%s\" is not an integer >= %d", flag, s, lo);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double *out, char *err, size_t n)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0) || !isfinite(v)) {
        lab_set_err(err, n, "%s: \"%s\" is not a number >= 0", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The trainer's long flags; -B and -T are the short options "B:T:". The
 * vals are GPT2_FLAG + the entry's index, so a merged table still finds
 * each entry's name (gpt2_flag_name). */
#define F(name, arg) {name, arg, 0, 0}
static const struct option train_flags[] = {
    F("124m", no_argument), F("quiet", no_argument), F("no-plot", no_argument),
    F("no-final-ckpt", no_argument), F("continue-on-nonfinite", no_argument),
    F("layers", required_argument), F("channels", required_argument),
    F("heads", required_argument), F("max-seq-len", required_argument),
    F("init", required_argument), F("seed", required_argument), F("data", required_argument),
    F("corpus", required_argument), F("train", required_argument), F("val", required_argument),
    F("optimizer", required_argument), F("matrix-optimizer", required_argument),
    F("schedule", required_argument), F("warmup", required_argument),
    F("clip", required_argument), F("accum", required_argument), F("steps", required_argument),
    F("eval-every", required_argument), F("eval-batches", required_argument),
    F("phi", required_argument), F("out", required_argument), F("metrics", required_argument),
    F("ckpt-every", required_argument), F("resume", required_argument),
    F("threads", required_argument), F("log-every", required_argument),
    F("vocab-size", required_argument), F("stop-after", required_argument),
    F("keep", required_argument),
};
#undef F
#define NTRAIN_FLAGS ((int)(sizeof train_flags / sizeof train_flags[0]))

int gpt2_flag_table(struct option *dst, int cap, const struct option *extra,
                    const char *const *only)
{
    int n = 0;
    for (; extra && extra[n].name; n++) {
        if (n + 1 >= cap) return -1;
        dst[n] = extra[n];
    }
    for (int i = 0; i < NTRAIN_FLAGS; i++) {
        int keep = 1;
        for (int k = 0; extra && extra[k].name; k++) keep &= strcmp(extra[k].name, train_flags[i].name) != 0;
        if (only) {
            int listed = 0;
            for (int k = 0; only[k]; k++) listed |= !strcmp(only[k], train_flags[i].name);
            keep &= listed;
        }
        if (!keep) continue;
        if (n + 1 >= cap) return -1;
        dst[n] = train_flags[i];
        dst[n].val = GPT2_FLAG + i;
        n++;
    }
    memset(&dst[n], 0, sizeof dst[n]);
    return n;
}

const char *gpt2_flag_name(int val)
{
    if (val == 'B') return "B";
    if (val == 'T') return "T";
    return val >= GPT2_FLAG && val < GPT2_FLAG + NTRAIN_FLAGS ? train_flags[val - GPT2_FLAG].name
                                                              : NULL;
}

int gpt2_set_flag(gpt2_train_opts *o, int val, const char *v, char *err, size_t errlen)
{
    const char *name = gpt2_flag_name(val);
    if (!name) {
        lab_set_err(err, errlen, "option %d is not a trainer flag", val);
        return -1;
    }
    char a[40]; /* the flag as written, for messages */
    snprintf(a, sizeof a, "%s%s", strlen(name) == 1 ? "-" : "--", name);
    name = a;
    /* flags without a value */
    if (!strcmp(a, "--124m")) {
        o->layers = 12;
        o->channels = 768;
        o->heads = 12;
        o->max_seq_len = 1024;
        return 0;
    }
    if (!strcmp(a, "--quiet")) o->progress = 0;
    else if (!strcmp(a, "--continue-on-nonfinite")) o->continue_nonfinite = 1;
    else if (!strcmp(a, "--no-plot")) o->plot = 0;
    else if (!strcmp(a, "--no-final-ckpt")) o->save_final = 0;
    if (!v) return 0;
    int rc = 0;
    if (!strcmp(a, "--layers")) rc = parse_int(a, v, 1, &o->layers, err, errlen);
    else if (!strcmp(a, "--channels")) rc = parse_int(a, v, 1, &o->channels, err, errlen);
    else if (!strcmp(a, "--heads")) rc = parse_int(a, v, 1, &o->heads, err, errlen);
    else if (!strcmp(a, "--max-seq-len")) rc = parse_int(a, v, 1, &o->max_seq_len, err, errlen);
    else if (!strcmp(a, "--init")) o->init_from = v;
    else if (!strcmp(a, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || *end || end == v || v[0] == '-') {
            lab_set_err(err, errlen, "--seed: \"%s\" is not a non-negative integer", v);
            rc = -1;
        }
        o->seed = s;
    } else if (!strcmp(a, "--data")) o->data_dir = v;
    else if (!strcmp(a, "--corpus")) o->corpus = v;
    else if (!strcmp(a, "--train")) o->train_path = v;
    else if (!strcmp(a, "--val")) o->val_path = v;
    else if (!strcmp(a, "-B")) rc = parse_int(a, v, 1, &o->B, err, errlen);
    else if (!strcmp(a, "-T")) rc = parse_int(a, v, 1, &o->T, err, errlen);
    else if (!strcmp(a, "--optimizer")) o->optimizer = v;
    else if (!strcmp(a, "--matrix-optimizer")) o->matrix_optimizer = v;
    else if (!strcmp(a, "--schedule")) o->schedule = v;
    else if (!strcmp(a, "--warmup")) rc = parse_int(a, v, 0, &o->warmup, err, errlen);
    else if (!strcmp(a, "--clip")) rc = parse_double(a, v, &o->clip, err, errlen);
    else if (!strcmp(a, "--accum")) rc = parse_int(a, v, 1, &o->accum, err, errlen);
    else if (!strcmp(a, "--steps")) rc = parse_int(a, v, 0, &o->steps, err, errlen);
    else if (!strcmp(a, "--eval-every")) rc = parse_int(a, v, 0, &o->eval_every, err, errlen);
    else if (!strcmp(a, "--eval-batches"))
        rc = parse_int(a, v, 1, &o->eval_batches, err, errlen);
    else if (!strcmp(a, "--phi")) {
        rc = parse_int(a, v, 0, &o->phi_samples, err, errlen);
        if (!rc && o->phi_samples == 1) {
            lab_set_err(err, errlen, "--phi: needs at least 2 gradients (or 0 for off)");
            rc = -1;
        }
    } else if (!strcmp(a, "--out")) o->out_dir = v;
    else if (!strcmp(a, "--metrics")) {
        if (strcmp(v, "csv") && strcmp(v, "jsonl")) {
            lab_set_err(err, errlen, "--metrics: \"%s\" (expected csv or jsonl)", v);
            rc = -1;
        }
        o->metrics_format = v;
    } else if (!strcmp(a, "--ckpt-every")) rc = parse_int(a, v, 0, &o->ckpt_every, err, errlen);
    else if (!strcmp(a, "--resume")) o->resume = v;
    else if (!strcmp(a, "--threads")) rc = parse_int(a, v, 1, &o->threads, err, errlen);
    else if (!strcmp(a, "--log-every")) rc = parse_int(a, v, 1, &o->log_every, err, errlen);
    else if (!strcmp(a, "--vocab-size")) rc = parse_int(a, v, 2, &o->vocab_size, err, errlen);
    else if (!strcmp(a, "--stop-after")) rc = parse_int(a, v, 1, &o->stop_after, err, errlen);
    else if (!strcmp(a, "--keep")) rc = parse_int(a, v, 0, &o->keep, err, errlen);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------ command */

const char gpt2_train_usage[] =
    "usage: descent gpt2 train [FLAGS]\n"
    "  Trains GPT-2 on llm.c token files with any libdescent optimizer, one for\n"
    "  all parameters or Muon-style split, and prints a progress line (step, loss,\n"
    "  lr, tokens/s, ms/step, ETA). With --out DIR: metrics (csv or jsonl), a loss\n"
    "  plot and checkpoints (model in llm.c's format, optimizer state, step), from\n"
    "  which --resume continues bit for bit. Exit status: 0 done, 1 error,\n"
    "  2 bad usage, 3 the loss became non-finite (the run stopped).\n"
    "  Examples:\n"
    "    descent gpt2 train --steps 500 --out out/adamw\n"
    "    descent gpt2 train --matrix-optimizer muon:lr=0.02 --optimizer adamw:lr=3e-3\n"
    "    descent gpt2 train --resume out/adamw --steps 1000\n";

int gpt2_cmd_train(int argc, char **argv)
{
    gpt2_train_opts o;
    gpt2_train_opts_default(&o);
    char err[1024] = "";
    struct option lo[64];
    gpt2_flag_table(lo, 64, NULL, NULL);
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next_short("gpt2 train", argc, argv, "B:T:", lo)) != -1) {
        if (c == CLI_OPTS_BAD) return 2;
        if (gpt2_set_flag(&o, c, optarg, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 train: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 train: unexpected argument \"%s\" (see descent gpt2 "
                "train --help)\n", argv[optind]);
        return 2;
    }
    gpt2_train_result r;
    if (gpt2_train(&o, &r, err, sizeof err)) {
        fprintf(stderr, "descent gpt2 train: %s\n", err);
        return 1;
    }
    printf("steps %d | final train loss %.4f | final val loss %.4f | %.0f tokens/s | "
           "%.1f ms/step | %.1f s\n", r.steps_done, r.final_train_loss, r.final_val_loss,
           r.tokens_per_s, r.ms_per_step, r.wall_s);
    for (int i = 0; i < 3; i++)
        if (!isnan(r.phi[i])) printf("phi at step %d: %.4f\n", r.phi_step[i], r.phi[i]);
    if (o.out_dir) printf("outputs in %s\n", o.out_dir);
    int diverged = r.diverged, at = r.diverged_step;
    gpt2_train_result_free(&r);
    if (diverged) {
        /* Scripts and CI must not take a diverged run for a success. */
        fprintf(stderr, "descent gpt2 train: diverged: the loss became non-finite at step %d%s\n",
                at, o.continue_nonfinite ? " (continued: --continue-on-nonfinite)"
                    : o.out_dir ? "; stopped, `latest` names the last checkpoint before it"
                                : "; stopped");
        if (!o.continue_nonfinite) return 3;
    }
    return 0;
}
