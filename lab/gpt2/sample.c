/*
 * sample.c - `descent gpt2 sample`: text from a GPT-2 checkpoint.
 *
 * Autoregressive sampling with temperature and top-k. Each new token
 * reruns the forward pass over the window of the last maxT tokens (no KV
 * cache: the models trained here are small, and 124M manages a few tokens
 * per second on two cores). The random stream is splitmix64 from --seed, so
 * a seed always gives the same text for the same checkpoint.
 */
#include "gpt2/model.h"
#include "gpt2/prepare.h"
#include "gpt2/tokenizer.h"
#include "gpt2/train.h"
#include "opts.h"
#include "rng.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char gpt2_sample_usage[] =
    "usage: descent gpt2 sample --model PATH [FLAGS]\n"
    "  Prints text sampled from a GPT-2 checkpoint.\n"
    "  --model PATH         llm.c checkpoint (model.bin), a checkpoint folder of\n"
    "                       `gpt2 train`, or its --out folder (the latest checkpoint)\n"
    "  --prompt TEXT        text to continue (default: start of a document)\n"
    "  --tokens N           tokens to generate (default 100)\n"
    "  --temperature X      softmax temperature, > 0 (default 1.0)\n"
    "  --top-k K            sample among the K likeliest tokens; 0: all (default 40)\n"
    "  --seed N             random seed (default 1337)\n"
    "  --vocab FILE         GPT-2 vocab.bpe (default: DATA/tokenizer/vocab.bpe, else\n"
    "                       the copy installed with descent)\n"
    "  --data DIR           data folder for the default vocab\n"
    "  --threads N          threads\n";

/* The model file a --model argument names. */
static void model_path(const char *arg, char *out, size_t n)
{
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(out, n, "%s", arg);
        return;
    }
    char p[1200], name[256] = "";
    snprintf(p, sizeof p, "%s/model.bin", arg);
    if (stat(p, &st) == 0) {
        snprintf(out, n, "%s", p);
        return;
    }
    snprintf(p, sizeof p, "%s/latest", arg);
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(name, sizeof name, f)) name[0] = 0;
        fclose(f);
    }
    name[strcspn(name, "\r\n")] = 0;
    if (!name[0]) { /* neither model.bin nor latest: the loader says it is a folder */
        snprintf(out, n, "%s", arg);
        return;
    }
    snprintf(out, n, "%s/%s/model.bin", arg, name);
}

typedef struct {
    float p;
    int id;
} cand;

static int by_prob_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* Draws a token from logits[0..V) with temperature and top-k. */
static int draw(const float *logits, int V, double temp, int topk, cand *c, uint64_t *rng)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) {
        c[i].p = expf((float)((logits[i] - mx) / temp));
        c[i].id = i;
    }
    int n = V;
    if (topk > 0 && topk < V) {
        qsort(c, (size_t)V, sizeof *c, by_prob_desc);
        n = topk;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += c[i].p;
    double u = lab_uniform53(rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}

int gpt2_cmd_sample(int argc, char **argv)
{
    const char *model_arg = NULL, *prompt = NULL, *vocab = NULL, *data = NULL;
    int ntok = 100, topk = 40, threads = 0;
    double temp = 1.0;
    unsigned long long seed = 1337;
    enum { S_MODEL = 1, S_PROMPT, S_VOCAB, S_DATA, S_TOKENS, S_TOPK, S_THREADS, S_TEMP, S_SEED };
    static const struct option lo[] = {
        {"model", required_argument, 0, S_MODEL}, {"prompt", required_argument, 0, S_PROMPT},
        {"vocab", required_argument, 0, S_VOCAB}, {"data", required_argument, 0, S_DATA},
        {"tokens", required_argument, 0, S_TOKENS}, {"top-k", required_argument, 0, S_TOPK},
        {"threads", required_argument, 0, S_THREADS},
        {"temperature", required_argument, 0, S_TEMP}, {"seed", required_argument, 0, S_SEED},
        {0, 0, 0, 0}};
    cli_opts_begin();
    int flag;
    while ((flag = cli_opts_next("gpt2 sample", argc, argv, lo)) != -1) {
        if (flag == CLI_OPTS_BAD) return 2;
        const char *v = optarg;
        char *end = NULL;
        errno = 0;
        if (flag == S_MODEL) model_arg = v;
        else if (flag == S_PROMPT) prompt = v;
        else if (flag == S_VOCAB) vocab = v;
        else if (flag == S_DATA) data = v;
        else if (flag == S_TOKENS || flag == S_TOPK || flag == S_THREADS) {
            long x = strtol(v, &end, 10);
            if (errno || *end || end == v || x < 0 || x > INT_MAX) {
                fprintf(stderr, "descent gpt2 sample: --%s: \"%s\" is not a count\n",
                        lo[flag - 1].name, v);
                return 2;
            }
            if (flag == S_TOKENS) ntok = (int)x;
            else if (flag == S_TOPK) topk = (int)x;
            else threads = (int)x;
        } else if (flag == S_TEMP) {
            temp = strtod(v, &end);
            if (errno || *end || end == v || !(temp > 0) || !isfinite(temp)) {
                fprintf(stderr, "descent gpt2 sample: --temperature: \"%s\" is not > 0\n", v);
                return 2;
            }
        } else if (flag == S_SEED) {
            seed = strtoull(v, &end, 10);
            if (errno || *end || end == v || v[0] == '-') {
                fprintf(stderr, "descent gpt2 sample: --seed: \"%s\" is not a number\n", v);
                return 2;
            }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 sample: unexpected argument \"%s\" (see descent gpt2 "
                "sample --help)\n", argv[optind]);
        return 2;
    }
    if (!model_arg) {
        fprintf(stderr, "descent gpt2 sample: --model PATH is required (see --help)\n");
        return 2;
    }
    if (threads > 0) gpt2_set_threads(threads);
    char err[1024] = "", path[1400], vbuf[1200];
    model_path(model_arg, path, sizeof path);
    gpt2_model m;
    if (gpt2_load(&m, path, err, sizeof err)) {
        fprintf(stderr, "descent gpt2 sample: %s\n", err);
        return 1;
    }
    if (!vocab) vocab = gpt2_default_vocab(data, vbuf, sizeof vbuf);
    gpt2_tokenizer *tok = gpt2_tokenizer_load(vocab, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "descent gpt2 sample: %s\n", err);
        gpt2_free(&m);
        return 1;
    }
    if (m.cfg.vocab_size != GPT2_VOCAB_SIZE)
        fprintf(stderr, "descent gpt2 sample: warning: the model's vocabulary has %d tokens, "
                "GPT-2's %d\n", m.cfg.vocab_size, GPT2_VOCAB_SIZE);
    gpt2_ids ids = {0};
    int eot = GPT2_EOT < m.cfg.vocab_size ? GPT2_EOT : m.cfg.vocab_size - 1;
    int rc = 0;
    if (prompt && *prompt) rc = gpt2_encode(tok, prompt, strlen(prompt), &ids);
    else {
        ids.ids = malloc(sizeof(int));
        if (ids.ids) {
            ids.ids[0] = eot;
            ids.len = ids.cap = 1;
        } else rc = -1;
    }
    int maxT = m.cfg.max_seq_len;
    int *ctx = malloc(sizeof(int) * (size_t)maxT);
    cand *c = malloc(sizeof(cand) * (size_t)m.cfg.vocab_size);
    int *all = malloc(sizeof(int) * (ids.len + (size_t)ntok));
    if (rc || !ctx || !c || !all) {
        fprintf(stderr, "descent gpt2 sample: out of memory\n");
        rc = 1;
        goto done;
    }
    memcpy(all, ids.ids, ids.len * sizeof(int));
    size_t len = ids.len;
    if (prompt && *prompt) fputs(prompt, stdout);
    uint64_t rng = seed;
    for (int k = 0; k < ntok; k++) {
        int T = len < (size_t)maxT ? (int)len : maxT;
        memcpy(ctx, all + len - (size_t)T, sizeof(int) * (size_t)T);
        for (int i = 0; i < T; i++)
            if (ctx[i] >= m.cfg.vocab_size) ctx[i] = eot;
        if (gpt2_forward(&m, ctx, NULL, 1, T, NULL, err, sizeof err)) {
            fprintf(stderr, "\ndescent gpt2 sample: %s\n", err);
            rc = 1;
            goto done;
        }
        int next = draw(gpt2_logits(&m, 0, T - 1), m.cfg.vocab_size, temp, topk, c, &rng);
        all[len++] = next;
        size_t nb;
        const char *bytes = gpt2_token_bytes(tok, next, &nb);
        if (bytes) fwrite(bytes, 1, nb, stdout);
        fflush(stdout);
    }
    fputc('\n', stdout);
done:
    free(ctx);
    free(c);
    free(all);
    gpt2_ids_free(&ids);
    gpt2_tokenizer_free(tok);
    gpt2_free(&m);
    return rc;
}
