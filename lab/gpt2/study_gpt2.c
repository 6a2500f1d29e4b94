/*
 * study_gpt2.c - `descent gpt2 study`: the optimizer study (study.h) on
 * GPT-2 and the State of the Union corpus.
 *
 * Compact vocabulary: the corpus is the real GPT-2 tokenizer's output, but
 * of GPT-2's 50,257 ids only those that occur in the corpus (25,139 for
 * SOTU, train and validation together) can ever be a target, so the study
 * renumbers them 0..V-1 (study_compact_corpus) and trains a model whose
 * embedding and tied output head have V rows. A full-vocabulary model
 * spends half of its head on logits whose targets never occur; here the
 * head, which is most of the compute at 128 channels, costs half as much.
 * The loss is a cross-entropy over those V tokens (slightly lower than over
 * 50,257 at the same predictions, once the model has learnt that the
 * others never occur).
 *
 * phi per layer type: embeddings (wte, wpe), attention (qkv and projection
 * weights and biases), MLP (fc and projection weights and biases), norms
 * (every LayerNorm gain and bias), and all parameters. Each measurement
 * takes K gradients at the current weights on random windows of the
 * VALIDATION file (training never sees those tokens), batch indices
 * 2^40 + step * K + i, so the measurement is the same whatever else runs.
 */
#include "gpt2/study.h"

#include "descent.h"
#include "gpt2/data.h"
#include "gpt2/model.h"
#include "gpt2/prepare.h"
#include "gpt2/train.h"
#include "labfile.h"
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ compact corpus */

static int newer_or_same(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) || stat(b, &sb)) return 0;
    return sa.st_mtime >= sb.st_mtime;
}

static const uint32_t *sort_counts; /* qsort's context (one thread) */

static int by_count(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_counts[x] != sort_counts[y]) return sort_counts[x] > sort_counts[y] ? -1 : 1;
    return (x > y) - (x < y);
}

int study_compact_corpus(const char *src_dir, const char *dst_dir, int top, int *vocab,
                         char *err, size_t errlen)
{
    char st[1100], sv[1100], dt[1100], dv[1100], dm[1100];
    snprintf(st, sizeof st, "%s/train.bin", src_dir);
    snprintf(sv, sizeof sv, "%s/val.bin", src_dir);
    snprintf(dt, sizeof dt, "%s/train.bin", dst_dir);
    snprintf(dv, sizeof dv, "%s/val.bin", dst_dir);
    snprintf(dm, sizeof dm, "%s/vocab.txt", dst_dir);
    uint16_t *tr = NULL, *va = NULL;
    size_t ntr = 0, nva = 0;
    int rc = -1;
    int *map = NULL, *order = NULL;
    uint32_t *count = NULL;
    if (gpt2_tokens_read(st, 50257, &tr, &ntr, err, errlen)) goto done;
    if (gpt2_tokens_read(sv, 50257, &va, &nva, err, errlen)) goto done;
    map = malloc(sizeof(int) * 65536);
    order = malloc(sizeof(int) * 65536);
    count = calloc(65536, sizeof(uint32_t));
    if (!map || !order || !count) {
        lab_set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < 65536; i++) map[i] = -1;
    int V = 0;
    if (top <= 0) {
        /* every id that occurs, in GPT-2 order */
        for (size_t i = 0; i < ntr; i++) map[tr[i]] = 0;
        for (size_t i = 0; i < nva; i++) map[va[i]] = 0;
        for (int i = 0; i < 65536; i++)
            if (map[i] == 0) map[i] = V++;
    } else {
        /* the top-1 most frequent training ids keep an id of their own (in
         * GPT-2 order); every other id, in training or validation, becomes
         * the last id, "rare" */
        for (size_t i = 0; i < ntr; i++) count[tr[i]]++;
        int n = 0;
        for (int i = 0; i < 65536; i++)
            if (count[i]) order[n++] = i;
        sort_counts = count;
        qsort(order, (size_t)n, sizeof(int), by_count);
        int keep = n < top - 1 ? n : top - 1;
        for (int i = 0; i < keep; i++) map[order[i]] = 0;
        for (int i = 0; i < 65536; i++)
            if (map[i] == 0) map[i] = V++;
        for (int i = 0; i < 65536; i++)
            if (map[i] < 0) map[i] = V;
        V++;
    }
    *vocab = V;
    /* up to date: vocab.txt written last and newer than both sources */
    if (newer_or_same(dm, st) && newer_or_same(dm, sv) && newer_or_same(dt, st)) {
        FILE *f = fopen(dm, "r");
        int lines = 0, c;
        if (f) {
            while ((c = fgetc(f)) != EOF) lines += c == '\n';
            fclose(f);
        }
        if (lines == V) {
            rc = 0;
            goto done;
        }
    }
    for (size_t i = 0; i < ntr; i++) tr[i] = (uint16_t)map[tr[i]];
    for (size_t i = 0; i < nva; i++) va[i] = (uint16_t)(map[va[i]] >= 0 ? map[va[i]] : V - 1);
    if (lab_mkdirs(dst_dir)) {
        lab_set_err(err, errlen, "%s: %s", dst_dir, strerror(errno));
        goto done;
    }
    if (gpt2_tokens_write(dt, tr, ntr, err, errlen)) goto done;
    if (gpt2_tokens_write(dv, va, nva, err, errlen)) goto done;
    lab_file f;
    if (lab_file_open(&f, dm)) {
        lab_set_err(err, errlen, "%s: %s", dm, strerror(errno));
        goto done;
    }
    /* line i: the GPT-2 id of compact id i ("rare": every other id) */
    {
        int line = 0;
        for (int i = 0; i < 65536 && line < V; i++)
            if (map[i] == line && (top <= 0 || line < V - 1)) {
                fprintf(f.fp, "%d\n", i);
                line++;
            }
        if (top > 0) fprintf(f.fp, "rare\n");
    }
    if (lab_file_commit(&f)) {
        lab_set_err(err, errlen, "%s: %s", dm, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(tr);
    free(va);
    free(map);
    free(order);
    free(count);
    return rc;
}

/* ------------------------------------------------------------ the task */

typedef struct {
    gpt2_train_opts base;
    int phi_k, phi_every;
    /* per run */
    study_curve *cur;
    float *buf;       /* phi_k gradient copies */
    size_t buf_d;
    double units_per_step;
} gpt2_task;

#define PHI_HELD_OUT_BASE (1ull << 40)

static int phi_hook(void *user, int step, gpt2_model *m, struct gpt2_loader *train,
                    struct gpt2_loader *val, int B, int T, char *err, size_t errlen)
{
    (void)train;
    gpt2_task *g = user;
    study_curve *c = g->cur;
    if (c->nphi >= STUDY_MAX_POINTS) return 0;
    size_t d = m->num_params;
    if (!g->buf || g->buf_d != d) {
        free(g->buf);
        g->buf = malloc(sizeof(float) * d * (size_t)g->phi_k);
        g->buf_d = d;
        if (!g->buf) {
            lab_set_err(err, errlen, "phi: cannot allocate %d x %zu floats", g->phi_k, d);
            return -1;
        }
    }
    int *in = malloc(sizeof(int) * (size_t)B * T), *tg = malloc(sizeof(int) * (size_t)B * T);
    const float **rows = malloc(sizeof(float *) * (size_t)g->phi_k);
    int rc = 0;
    if (!in || !tg || !rows) {
        lab_set_err(err, errlen, "phi: out of memory");
        rc = -1;
    }
    for (int i = 0; i < g->phi_k && !rc; i++) {
        uint64_t idx = PHI_HELD_OUT_BASE + (uint64_t)step * (uint64_t)g->phi_k + (uint64_t)i;
        gpt2_loader_random(val, idx, in, tg);
        if (gpt2_forward(m, in, tg, B, T, NULL, err, errlen) || gpt2_backward(m)) {
            rc = -1;
            break;
        }
        memcpy(g->buf + (size_t)i * d, m->grads, sizeof(float) * d);
        rows[i] = g->buf + (size_t)i * d;
    }
    if (!rc) {
        /* segments per layer type, in the parameter buffer's tensor order */
        study_seg segs[GPT2_NUM_TENSORS];
        size_t off = 0;
        for (int t = 0; t < GPT2_NUM_TENSORS; t++) {
            int grp;
            switch (t) {
            case GPT2_WTE: case GPT2_WPE: grp = 1; break;
            case GPT2_QKVW: case GPT2_QKVB: case GPT2_ATTPROJW: case GPT2_ATTPROJB: grp = 2; break;
            case GPT2_FCW: case GPT2_FCB: case GPT2_FCPROJW: case GPT2_FCPROJB: grp = 3; break;
            default: grp = 4; break;
            }
            segs[t] = (study_seg){off, m->tensor_numel[t], grp};
            off += m->tensor_numel[t];
        }
        int p = c->nphi;
        if (study_phi_groups(rows, g->phi_k, d, segs, GPT2_NUM_TENSORS, 5, c->phi[p],
                             &c->snr[p], err, errlen) == 0) {
            c->phi_units[p] = step * g->units_per_step;
            c->nphi++;
        } else {
            rc = -1;
        }
    }
    free(in);
    free(tg);
    free(rows);
    return rc;
}

static int gpt2_task_run(void *ctx, const study_job *job, study_curve *out, char *err,
                         size_t errlen)
{
    gpt2_task *g = ctx;
    gpt2_train_opts o = g->base;
    o.optimizer = job->spec;
    o.matrix_optimizer = job->matrix_spec;
    o.seed = job->seed;
    o.steps = job->steps;
    o.out_dir = job->dir;
    o.label = job->label;
    o.save_final = 0;
    o.plot = 0;
    o.phi_samples = 0;
    o.eval_every = g->phi_every;
    if (!job->tuning && g->phi_k >= 2) {
        o.hook = phi_hook;
        o.hook_user = g;
        o.hook_every = g->phi_every;
    } else {
        /* tuning runs: validation at the end only */
        o.eval_every = 0;
    }
    g->cur = out;
    gpt2_train_result r;
    if (gpt2_train(&o, &r, err, errlen)) return -1;
    for (int i = 0; i < r.nval && out->nval < STUDY_MAX_POINTS; i++) {
        out->val_units[out->nval] = r.val_step[i] * r.tokens_per_step;
        out->val_loss[out->nval] = r.val_loss[i];
        out->nval++;
    }
    out->final_val = r.final_val_loss;
    out->diverged = r.diverged;
    out->wall_s = r.wall_s;
    out->units_per_s = r.tokens_per_s;
    out->extra = NAN;
    gpt2_train_result_free(&r);
    return 0;
}

/* ------------------------------------------------------------ command */

typedef struct {
    const char *name;
    int layers, channels, heads, B, T, steps, tune_steps, phi_k, phi_every, eval_batches,
        seeds, vocab_top;
    const char *what;
} preset;

/* full: the size the study was specified at (several layers, 128 channels,
 * T = 128, >= 1M tokens per run): what docs/results/gpt2 holds. Its output
 * layer keeps the 8,191 most frequent ids of the training text plus one id for
 * every other token (96.6% of the State of the Union's training tokens are
 * kept): with all 24,615 ids that occur, the head is 80% of the parameters and
 * the study would take twice as long on 2 cores. small: a quicker look
 * (102k tokens per run). tiny: tests. */
static const preset presets[] = {
    {"full", 4, 128, 4, 16, 128, 500, 125, 8, 50, 16, 3, 8192,
     "4 layers, 128 channels, B=16, T=128, 8,192-token output vocabulary: 500 updates = "
     "1,024,000 tokens per run"},
    {"small", 2, 128, 4, 8, 128, 100, 50, 4, 20, 8, 3, 4096,
     "2 layers, 128 channels, B=8, T=128: 100 updates = 102,400 tokens per run"},
    {"tiny", 1, 16, 2, 2, 16, 12, 4, 4, 4, 2, 2, 0, "1 layer, 16 channels (tests)"},
};

const char gpt2_study_usage[] =
    "usage: descent gpt2 study [FLAGS]\n"
    "  The optimizer study on GPT-2 and the State of the Union corpus: SGD (with\n"
    "  and without momentum), SignSGD, Signum, Lion, AdamW and Muon + AdamW, each\n"
    "  with its lr tuned on a short budget (a grid of --per-decade points per\n"
    "  decade, extended until the best lr is interior; edges flagged), then\n"
    "  --seeds seeds at the tuned lr on the full budget, with the noise density phi\n"
    "  measured every --phi-every updates per layer type on held-out batches.\n"
    "  Writes OUT/summary.md (+ CSV tables, PNG plots); finished runs are kept\n"
    "  under OUT/tune and OUT/runs and skipped when the study is started again.\n"
    "  The vocabulary is compacted to the GPT-2 ids that occur in the corpus\n"
    "  (written to DATA/<corpus>-compact/); the corpus is prepared when missing.\n"
    "  --preset NAME        full (default: 4 layers, 128 channels, B=16, T=128,\n"
    "                       8,192-token output vocabulary, 500 updates = 1.02M\n"
    "                       tokens per run, tuning on 125: the committed results),\n"
    "                       small (2 layers, B=8, 4,096-token output vocabulary, 100\n"
    "                       updates = 102k tokens, tuning on 50, phi K=4 every 20),\n"
    "                       tiny (tests)\n"
    "  --out DIR            output folder (default out/study-gpt2)\n"
    "  --seeds N            final runs per optimizer (default 3)\n"
    "  --steps N            updates per final run; --tune-steps N per tuning run\n"
    "  --per-decade N       tuning grid points per decade (default 3, >= 3)\n"
    "  --max-tune-runs N    tuning runs per optimizer at most (default 9)\n"
    "  --methods LIST       subset of sgd,sgdm,signsgd,signum,lion,adamw,muon\n"
    "  --only-seed N        only the N-th final seed, no report: to share the runs\n"
    "                       among processes (--methods too); then run without it\n"
    "  --phi K              gradients per phi measurement (default 8, >= 2)\n"
    "  --phi-every N        updates between phi measurements and evaluations\n"
    "  --targets A,B,..     validation-loss targets (default: automatic)\n"
    "  --layers N --channels N --heads N -B N -T N --eval-batches N   model, batch\n"
    "  --data DIR --corpus NAME   token files DIR/NAME (default sotu)\n"
    "  --train FILE --val FILE    GPT-2 token files to use instead (compacted into\n"
    "                       OUT/data)\n"
    "  --threads N          threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --quiet              no progress output\n";

static int to_int(const char *flag, const char *s, int lo, int *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > INT_MAX) {
        fprintf(stderr, "descent gpt2 study: %s: \"%s\" is not an integer >= %d\n", flag, s,
                lo);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int gpt2_cmd_study(int argc, char **argv)
{
    enum { O_PRESET = 256, O_OUT, O_SEEDS, O_STEPS, O_TUNE, O_PERDEC, O_MAXTUNE, O_METHODS,
           O_PHI, O_PHIEVERY, O_TARGETS, O_LAYERS, O_CHANNELS, O_HEADS, O_EVALB, O_DATA,
           O_CORPUS, O_TRAIN, O_VAL, O_THREADS, O_QUIET, O_HELP, O_VTOP, O_ONLY };
    static const struct option lo[] = {
        {"preset", required_argument, 0, O_PRESET}, {"out", required_argument, 0, O_OUT},
        {"seeds", required_argument, 0, O_SEEDS}, {"steps", required_argument, 0, O_STEPS},
        {"tune-steps", required_argument, 0, O_TUNE},
        {"per-decade", required_argument, 0, O_PERDEC},
        {"max-tune-runs", required_argument, 0, O_MAXTUNE},
        {"methods", required_argument, 0, O_METHODS}, {"phi", required_argument, 0, O_PHI},
        {"phi-every", required_argument, 0, O_PHIEVERY},
        {"targets", required_argument, 0, O_TARGETS},
        {"layers", required_argument, 0, O_LAYERS},
        {"channels", required_argument, 0, O_CHANNELS},
        {"heads", required_argument, 0, O_HEADS},
        {"eval-batches", required_argument, 0, O_EVALB}, {"data", required_argument, 0, O_DATA},
        {"corpus", required_argument, 0, O_CORPUS}, {"train", required_argument, 0, O_TRAIN},
        {"val", required_argument, 0, O_VAL}, {"threads", required_argument, 0, O_THREADS},
        {"vocab-top", required_argument, 0, O_VTOP},
        {"only-seed", required_argument, 0, O_ONLY}, {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    /* first pass: the preset, so explicit flags override it wherever they
     * are (the same parser, so "--preset=tiny" and prefixes work alike) */
    const preset *pr = &presets[0];
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next_short("gpt2 study", argc, argv, "B:T:", lo)) != -1) {
        if (c == CLI_OPTS_BAD) return 2;
        if (c != O_PRESET) continue;
        pr = NULL;
        for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++)
            if (!strcmp(presets[k].name, optarg)) pr = &presets[k];
        if (!pr) {
            fprintf(stderr, "descent gpt2 study: --preset \"%s\" (expected full, small or "
                    "tiny)\n", optarg);
            return 2;
        }
    }
    gpt2_task g;
    memset(&g, 0, sizeof g);
    gpt2_train_opts *b = &g.base;
    gpt2_train_opts_default(b);
    b->layers = pr->layers;
    b->channels = pr->channels;
    b->heads = pr->heads;
    b->B = pr->B;
    b->T = pr->T;
    b->eval_batches = pr->eval_batches;
    b->corpus = "sotu";
    b->log_every = 0;
    g.phi_k = pr->phi_k;
    g.phi_every = pr->phi_every;
    study_opts so;
    study_opts_default(&so);
    so.out = "out/study-gpt2";
    so.steps = pr->steps;
    so.tune_steps = pr->tune_steps;
    so.seeds = pr->seeds;
    const char *train = NULL, *val = NULL;
    int vtop = pr->vocab_top;
    cli_opts_begin();
    while ((c = cli_opts_next_short("gpt2 study", argc, argv, "B:T:", lo)) != -1) {
        int rc = 0;
        switch (c) {
        case O_PRESET: break;
        case O_OUT: so.out = optarg; break;
        case O_SEEDS: rc = to_int("--seeds", optarg, 1, &so.seeds); break;
        case O_STEPS: rc = to_int("--steps", optarg, 1, &so.steps); break;
        case O_TUNE: rc = to_int("--tune-steps", optarg, 1, &so.tune_steps); break;
        case O_PERDEC: rc = to_int("--per-decade", optarg, 3, &so.per_decade); break;
        case O_MAXTUNE: rc = to_int("--max-tune-runs", optarg, 3, &so.max_tune_runs); break;
        case O_METHODS: so.methods = optarg; break;
        case O_PHI: rc = to_int("--phi", optarg, 2, &g.phi_k); break;
        case O_PHIEVERY: rc = to_int("--phi-every", optarg, 1, &g.phi_every); break;
        case O_TARGETS:
            if (study_parse_targets(optarg, &so, "descent gpt2 study")) return 2;
            break;
        case O_LAYERS: rc = to_int("--layers", optarg, 1, &b->layers); break;
        case O_CHANNELS: rc = to_int("--channels", optarg, 1, &b->channels); break;
        case O_HEADS: rc = to_int("--heads", optarg, 1, &b->heads); break;
        case 'B': rc = to_int("-B", optarg, 1, &b->B); break;
        case 'T': rc = to_int("-T", optarg, 1, &b->T); break;
        case O_EVALB: rc = to_int("--eval-batches", optarg, 1, &b->eval_batches); break;
        case O_DATA: b->data_dir = optarg; break;
        case O_CORPUS: b->corpus = optarg; break;
        case O_TRAIN: train = optarg; break;
        case O_VAL: val = optarg; break;
        case O_THREADS: rc = to_int("--threads", optarg, 1, &b->threads); break;
        case O_QUIET: b->progress = 0, so.progress = 0; break;
        case O_VTOP: rc = to_int("--vocab-top", optarg, 0, &vtop); break;
        case O_ONLY: rc = to_int("--only-seed", optarg, 1, &so.only_seed); break;
        case O_HELP: fputs(gpt2_study_usage, stdout); return 0;
        default: return 2; /* CLI_OPTS_BAD: the message is printed */
        }
        if (rc) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 study: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (so.only_seed > so.seeds) {
        fprintf(stderr, "descent gpt2 study: --only-seed %d: only %d seeds\n", so.only_seed,
                so.seeds);
        return 2;
    }
    if (!train != !val) {
        fprintf(stderr, "descent gpt2 study: --train and --val go together\n");
        return 2;
    }
    b->max_seq_len = b->T; /* no position rows that never get a gradient */
    char err[1024] = "", src[1100], dst[1100];
    if (train) {
        /* the given files, compacted into OUT/data */
        char d[1100];
        snprintf(d, sizeof d, "%s/data/src", so.out);
        if (lab_mkdirs(d)) {
            fprintf(stderr, "descent gpt2 study: %s: %s\n", d, strerror(errno));
            return 1;
        }
        uint16_t *tk;
        size_t n;
        const char *files[2] = {train, val}, *names[2] = {"train.bin", "val.bin"};
        for (int k = 0; k < 2; k++) {
            char p[1200];
            if (gpt2_tokens_read(files[k], 50257, &tk, &n, err, sizeof err)) {
                fprintf(stderr, "descent gpt2 study: %s\n", err);
                return 1;
            }
            snprintf(p, sizeof p, "%s/%s", d, names[k]);
            int rc = gpt2_tokens_write(p, tk, n, err, sizeof err);
            free(tk);
            if (rc) {
                fprintf(stderr, "descent gpt2 study: %s\n", err);
                return 1;
            }
        }
        snprintf(src, sizeof src, "%s", d);
        snprintf(dst, sizeof dst, "%s/data/compact-%d", so.out, vtop);
    } else {
        const char *dir = gpt2_data_dir(b->data_dir);
        snprintf(src, sizeof src, "%s/%s", dir, b->corpus);
        if (vtop > 0) snprintf(dst, sizeof dst, "%s/%s-top%d", dir, b->corpus, vtop);
        else snprintf(dst, sizeof dst, "%s/%s-compact", dir, b->corpus);
        char t[1200];
        snprintf(t, sizeof t, "%s/train.bin", src);
        if (!file_exists(t)) {
            fprintf(stderr, "study: %s missing: running `descent gpt2 prepare --corpus %s`\n",
                    t, b->corpus);
            char *pargv[] = {"prepare", "--data", (char *)dir, "--corpus", (char *)b->corpus,
                             NULL};
            int rc = gpt2_cmd_prepare(5, pargv);
            if (rc) return rc;
        }
    }
    int V = 0;
    if (vtop == 1) {
        fprintf(stderr, "descent gpt2 study: --vocab-top: 0 (every id that occurs) or >= 2\n");
        return 2;
    }
    if (study_compact_corpus(src, dst, vtop, &V, err, sizeof err)) {
        fprintf(stderr, "descent gpt2 study: %s\n", err);
        return 1;
    }
    static char tpath[1200], vpath[1200];
    snprintf(tpath, sizeof tpath, "%s/train.bin", dst);
    snprintf(vpath, sizeof vpath, "%s/val.bin", dst);
    b->train_path = tpath;
    b->val_path = vpath;
    b->vocab_size = V;
    g.units_per_step = (double)b->B * b->T;

    /* the command line, for the report */
    static char cmdline[2048];
    size_t off = (size_t)snprintf(cmdline, sizeof cmdline, "descent gpt2 study");
    for (int i = 1; i < argc && off < sizeof cmdline; i++)
        off += (size_t)snprintf(cmdline + off, sizeof cmdline - off, " %s", argv[i]);
    so.command = cmdline;

    study_task t;
    memset(&t, 0, sizeof t);
    t.name = "GPT-2 on State of the Union";
    if (train) t.name = "GPT-2 on the given token files";
    t.unit = "tokens";
    t.units_per_step = g.units_per_step;
    t.ngroups = 5;
    t.groups[0] = "all";
    t.groups[1] = "embeddings";
    t.groups[2] = "attention";
    t.groups[3] = "mlp";
    t.groups[4] = "norms";
    t.run = gpt2_task_run;
    t.ctx = &g;
    gpt2_model probe;
    size_t nparams = 0;
    {
        gpt2_config cfg = gpt2_config_make(b->layers, b->channels, b->heads, b->max_seq_len);
        cfg.vocab_size = V;
        cfg.padded_vocab_size = gpt2_pad_vocab(V);
        if (gpt2_init(&probe, &cfg, 1, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 study: %s\n", err);
            return 2;
        }
        nparams = probe.num_params;
        gpt2_free(&probe);
    }
    char vocab_text[256];
    if (vtop > 0) {
        /* how much of the text the "rare" id stands for */
        uint16_t *tk;
        size_t n, rare = 0;
        if (gpt2_tokens_read(tpath, 0, &tk, &n, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 study: %s\n", err);
            return 1;
        }
        for (size_t i = 0; i < n; i++) rare += tk[i] == V - 1;
        free(tk);
        snprintf(vocab_text, sizeof vocab_text,
                 "output vocabulary: the %d most frequent GPT-2 ids of the training text and "
                 "one id for every other token (%.1f%% of the training tokens)", V - 1,
                 n ? 100.0 * (double)rare / (double)n : 0.0);
    } else {
        snprintf(vocab_text, sizeof vocab_text,
                 "vocabulary compacted to the %d GPT-2 ids that occur in the corpus", V);
    }
    snprintf(t.setup, sizeof t.setup,
             "GPT-2 with %d layers, %d channels, %d heads, context %d, GPT-2 tokenizer, %s "
             "(%zu parameters); batches of %d x %d tokens, cosine schedule with 5%% warmup "
             "down to 0.1, no weight decay, no clipping; validation loss on %d fixed "
             "validation batches; phi from %d held-out gradients every %d updates. Preset "
             "`%s`.",
             b->layers, b->channels, b->heads, b->T, vocab_text, nparams, b->B, b->T,
             b->eval_batches, g.phi_k, g.phi_every, pr->name);
    int rc = study_run(&t, study_methods, study_nmethods, &so, err, sizeof err);
    free(g.buf);
    if (rc) {
        fprintf(stderr, "descent gpt2 study: %s\n", err);
        return 1;
    }
    if (so.only_seed) printf("seed %d done in %s\n", so.only_seed, so.out);
    else printf("study done: %s/summary.md\n", so.out);
    return 0;
}
