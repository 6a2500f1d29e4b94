/* test_gpt2.c - the C GPT-2 against PyTorch (tests/data/gpt2_ref_*, written by
 * tools/gen_gpt2_reference.py), against finite differences, across thread
 * counts, through llm.c checkpoints, and a resumed training run against an
 * uninterrupted one. Tiny configs only; no network, no data/ folder. */
#include "check.h"
#include "descent.h"
#include "gpt2/data.h"
#include "gpt2/model.h"
#include "gpt2/train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REF_MODEL "tests/data/gpt2_ref_model.bin"
#define REF_TOKENS "tests/data/gpt2_ref_tokens.bin"
#define REF_EXPECT "tests/data/gpt2_ref_expect.txt"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* The llm.c token file: 256 int32 header (magic 20240520, version 1, count), uint16s. */
static int read_tokens(const char *path, int *out, int max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int32_t h[256];
    int n = -1;
    if (fread(h, sizeof h, 1, f) == 1 && h[0] == 20240520 && h[2] <= max) {
        n = h[2];
        for (int i = 0; i < n; i++) {
            uint16_t t;
            if (fread(&t, 2, 1, f) != 1) {
                n = -1;
                break;
            }
            out[i] = t;
        }
    }
    fclose(f);
    return n;
}

static int tensor_index(const char *name)
{
    for (int t = 0; t < GPT2_NUM_TENSORS; t++)
        if (!strcmp(gpt2_tensor_name(t), name)) return t;
    return -1;
}

static void test_reference(void)
{
    char err[256] = "";
    gpt2_model m;
    int rc = gpt2_load(&m, REF_MODEL, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    int tok[64];
    int n = read_tokens(REF_TOKENS, tok, 64);
    FILE *f = fopen(REF_EXPECT, "r");
    CHECK(f != NULL);
    if (!f) return;
    int B = 0, T = 0;
    CHECK(fscanf(f, "config %d %d\n", &B, &T) == 2);
    CHECK_EQ_INT(n, B * T + 1);
    CHECK_EQ_INT(m.cfg.vocab_size, 61);
    CHECK_EQ_INT(m.cfg.padded_vocab_size, 64);

    /* logits first (a forward without targets keeps them) */
    CHECK_EQ_INT(gpt2_forward(&m, tok, NULL, B, T, NULL, err, sizeof err), 0);
    char line[256];
    double expect_loss = 0;
    int nlogit = 0, ngrad = 0;
    long pos = ftell(f);
    while (fgets(line, sizeof line, f)) {
        int b, t, i;
        double x;
        if (sscanf(line, "loss %lf", &x) == 1) expect_loss = x;
        if (sscanf(line, "logit %d %d %d %lf", &b, &t, &i, &x) == 4) {
            CHECK_NEAR(gpt2_logits(&m, b, t)[i], x, 1e-5 + 1e-5 * fabs(x));
            nlogit++;
        }
    }
    CHECK_EQ_INT(nlogit, 4);
    double loss = 0;
    CHECK_EQ_INT(gpt2_forward(&m, tok, tok + 1, B, T, &loss, err, sizeof err), 0);
    CHECK_NEAR(loss, expect_loss, 1e-5);
    CHECK_EQ_INT(gpt2_backward(&m), 0);
    fseek(f, pos, SEEK_SET);
    while (fgets(line, sizeof line, f)) {
        char name[32];
        long j;
        double x;
        if (sscanf(line, "grad %31s %ld %lf", name, &j, &x) == 3) {
            int t = tensor_index(name);
            CHECK(t >= 0);
            if (t < 0) continue;
            CHECK_NEAR(m.grad[t][j], x, 1e-5 + 1e-4 * fabs(x));
            ngrad++;
        }
    }
    fclose(f);
    CHECK(ngrad >= 16 * 4);
    /* the padded rows of wte hold random values and must get no gradient */
    for (size_t i = (size_t)61 * 32; i < (size_t)64 * 32; i++) CHECK(m.grad[GPT2_WTE][i] == 0.0f);
    gpt2_free(&m);
}

/* Central differences on the reference model, a few entries of every
 * tensor: the three largest gradients and two random ones. */
static void test_finite_differences(void)
{
    char err[256] = "";
    gpt2_model m;
    CHECK_EQ_INT(gpt2_load(&m, REF_MODEL, err, sizeof err), 0);
    int tok[64];
    int n = read_tokens(REF_TOKENS, tok, 64);
    int B = 2, T = (n - 1) / 2;
    double loss0;
    gpt2_forward(&m, tok, tok + 1, B, T, &loss0, err, sizeof err);
    gpt2_backward(&m);
    float *g = malloc(m.num_params * sizeof(float));
    memcpy(g, m.grads, m.num_params * sizeof(float));
    uint64_t rng = 99;
    int checked = 0;
    double worst = 0;
    for (int t = 0; t < GPT2_NUM_TENSORS; t++) {
        size_t off = (size_t)(m.param[t] - m.params), cnt = m.tensor_numel[t];
        size_t pick[5];
        for (int k = 0; k < 3; k++) { /* the k-th largest |g| */
            size_t best = 0;
            float bv = -1;
            for (size_t i = 0; i < cnt; i++) {
                float a = fabsf(g[off + i]);
                int used = 0;
                for (int q = 0; q < k; q++) used |= pick[q] == i;
                if (!used && a > bv) bv = a, best = i;
            }
            pick[k] = best;
        }
        for (int k = 3; k < 5; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            pick[k] = (size_t)(rng >> 33) % cnt;
        }
        for (int k = 0; k < 5; k++) {
            float *p = m.params + off + pick[k];
            float saved = *p, h = 1e-2f;
            double lp, lm;
            *p = saved + h;
            gpt2_forward(&m, tok, tok + 1, B, T, &lp, err, sizeof err);
            *p = saved - h;
            gpt2_forward(&m, tok, tok + 1, B, T, &lm, err, sizeof err);
            *p = saved;
            double fd = (lp - lm) / (2.0 * h), an = g[off + pick[k]];
            double e = fabs(fd - an) / (1e-3 + fabs(an));
            if (e > worst) worst = e;
            if (!(fabs(fd - an) <= 2e-4 + 2e-2 * fabs(an)))
                fprintf(stderr, "fd %s[%zu]: analytic %.6g, numeric %.6g\n",
                        gpt2_tensor_name(t), pick[k], an, fd);
            CHECK_NEAR(fd, an, 2e-4 + 2e-2 * fabs(an));
            checked++;
        }
    }
    printf("finite differences: %d entries, worst relative error %.2e\n", checked, worst);
    free(g);
    gpt2_free(&m);
}

/* The LM head with many tiles and several groups (V = 2000, C = 32: 16
 * tiles of 128 ids, 15 groups for dlnf): the fused loss against the
 * cross-entropy of the raw logits in double, and the gradients of wte
 * entries spread over the tiles and of ln_f (which dlnf reaches only
 * through the groups' partial sums) against central differences. */
static void test_head_tiles(void)
{
    char err[256] = "";
    gpt2_config c = gpt2_config_make(1, 32, 2, 16);
    c.vocab_size = 2000;
    c.padded_vocab_size = gpt2_pad_vocab(2000);
    gpt2_model m;
    CHECK_EQ_INT(gpt2_init(&m, &c, 11, err, sizeof err), 0);
    /* larger head weights than GPT-2's 0.02, so the softmax is far from flat */
    for (size_t i = 0; i < (size_t)2000 * 32; i++) m.param[GPT2_WTE][i] *= 50.0f;
    int B = 2, T = 16, tok[2 * 16 + 1];
    uint64_t s = 3;
    for (int i = 0; i < B * T + 1; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int)((s >> 33) % 2000);
    }
    CHECK_EQ_INT(gpt2_forward(&m, tok, NULL, B, T, NULL, err, sizeof err), 0);
    double want = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *z = gpt2_logits(&m, b, t);
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < 2000; i++) mx = z[i] > mx ? z[i] : mx;
            for (int i = 0; i < 2000; i++) sum += exp((double)z[i] - mx);
            want += log(sum) + mx - z[tok[b * T + t + 1]];
        }
    want /= B * T;
    double loss = 0;
    CHECK_EQ_INT(gpt2_forward(&m, tok, tok + 1, B, T, &loss, err, sizeof err), 0);
    CHECK_NEAR(loss, want, 1e-5 * fabs(want));
    CHECK_EQ_INT(gpt2_backward(&m), 0);
    float *g = malloc(m.num_params * sizeof(float));
    memcpy(g, m.grads, m.num_params * sizeof(float));
    /* wte: the target rows of a few positions (largest gradients) and rows
     * in other tiles; ln_f: gain and bias */
    size_t pick[12];
    int np = 0;
    for (int k = 0; k < 4; k++) pick[np++] = (size_t)tok[1 + 7 * k] * 32 + (size_t)(5 * k);
    for (int k = 0; k < 4; k++) pick[np++] = (size_t)(130 + 470 * k) * 32 + (size_t)(3 * k);
    for (int k = 0; k < 2; k++) pick[np++] = (size_t)(m.param[GPT2_LNFW] - m.params) + 7 * k;
    for (int k = 0; k < 2; k++) pick[np++] = (size_t)(m.param[GPT2_LNFB] - m.params) + 9 * k;
    for (int k = 0; k < np; k++) {
        float *p = m.params + pick[k];
        float saved = *p, h = 1e-2f;
        double lp, lm;
        *p = saved + h;
        gpt2_forward(&m, tok, tok + 1, B, T, &lp, err, sizeof err);
        *p = saved - h;
        gpt2_forward(&m, tok, tok + 1, B, T, &lm, err, sizeof err);
        *p = saved;
        double fd = (lp - lm) / (2.0 * h), an = g[pick[k]];
        if (!(fabs(fd - an) <= 2e-4 + 2e-2 * fabs(an)))
            fprintf(stderr, "head fd [%zu]: analytic %.6g, numeric %.6g\n", pick[k], an, fd);
        CHECK_NEAR(fd, an, 2e-4 + 2e-2 * fabs(an));
    }
    free(g);
    gpt2_free(&m);
}

/* Same bits at 1, 2 and 3 threads, on models with several thread slices
 * (the second with a head of 16 tiles in 15 groups, the third with layer
 * products 768 and 1024 wide, which take the 4 wide tiles). */
static void test_threads_config(int L, int C, int NH, int V)
{
    char err[256] = "";
    gpt2_config c = gpt2_config_make(L, C, NH, 32);
    c.vocab_size = V;
    c.padded_vocab_size = gpt2_pad_vocab(V);
    gpt2_model m;
    CHECK_EQ_INT(gpt2_init(&m, &c, 5, err, sizeof err), 0);
    int B = 3, T = 32, tok[3 * 32 + 1];
    uint64_t s = 7;
    for (int i = 0; i < B * T + 1; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int)((s >> 33) % (uint64_t)V);
    }
    double l1, l2;
    gpt2_set_threads(1);
    gpt2_forward(&m, tok, tok + 1, B, T, &l1, err, sizeof err);
    gpt2_backward(&m);
    float *g1 = malloc(m.num_params * sizeof(float));
    memcpy(g1, m.grads, m.num_params * sizeof(float));
    for (int threads = 2; threads <= 3; threads++) {
        gpt2_set_threads(threads);
        gpt2_forward(&m, tok, tok + 1, B, T, &l2, err, sizeof err);
        gpt2_backward(&m);
        CHECK(l1 == l2);
        CHECK(memcmp(g1, m.grads, m.num_params * sizeof(float)) == 0);
    }
    gpt2_set_threads(0);
    free(g1);
    gpt2_free(&m);
}

static void test_threads(void)
{
    test_threads_config(2, 96, 4, 500);
    test_threads_config(1, 32, 2, 2000);
    test_threads_config(1, 256, 4, 300);
}

static void test_checkpoint(void)
{
    char err[256] = "";
    gpt2_config c = gpt2_config_make(2, 32, 4, 16);
    c.vocab_size = 100;
    c.padded_vocab_size = gpt2_pad_vocab(100);
    CHECK_EQ_INT(c.padded_vocab_size, 128);
    CHECK_EQ_INT(gpt2_pad_vocab(50257), 50304);
    gpt2_model a, b;
    CHECK_EQ_INT(gpt2_init(&a, &c, 3, err, sizeof err), 0);
    const char *path = tmp_path("ckpt.bin");
    CHECK_EQ_INT(gpt2_save(&a, path, err, sizeof err), 0);
    CHECK_EQ_INT(gpt2_load(&b, path, err, sizeof err), 0);
    CHECK(memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0);
    CHECK_EQ_INT(a.num_params, b.num_params);
    CHECK(memcmp(a.params, b.params, a.num_params * sizeof(float)) == 0);
    gpt2_free(&b);
    /* the file is exactly header + parameters */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    CHECK_EQ_INT(ftell(f), 1024 + (long)a.num_params * 4);
    fclose(f);
    /* truncated, and bad magic */
    CHECK_EQ_INT(truncate(path, 1024 + 100), 0);
    CHECK_EQ_INT(gpt2_load(&b, path, err, sizeof err), -1);
    CHECK(strstr(err, "truncated") != NULL);
    f = fopen(path, "r+b");
    int32_t bad = 1;
    fwrite(&bad, 4, 1, f);
    fclose(f);
    CHECK_EQ_INT(gpt2_load(&b, path, err, sizeof err), -1);
    CHECK(strstr(err, "magic") != NULL);
    CHECK_EQ_INT(gpt2_load(&b, tmp_path("missing.bin"), err, sizeof err), -1);
    remove(path);
    gpt2_free(&a);
}

/* The columns of a metrics row that must repeat exactly (kind, step,
 * tokens, loss, lr, grad_norm, phi): all but the timings. */
static void row_key(const char *line, char *out, size_t n)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    size_t k = 0;
    int col = 0;
    for (char *p = buf; *p && k + 1 < n; p++) {
        if (*p == ',') col++;
        if (col == 6 || col == 7) continue; /* ms, tokens_per_s */
        out[k++] = *p;
    }
    out[k] = 0;
}

static int metrics_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    int same = fa && fb, rows = 0;
    char la[512], lb[512], ka[512], kb[512];
    while (same) {
        char *ra = fgets(la, sizeof la, fa), *rb = fgets(lb, sizeof lb, fb);
        if (!ra || !rb) {
            same = !ra && !rb;
            break;
        }
        row_key(la, ka, sizeof ka);
        row_key(lb, kb, sizeof kb);
        if (strcmp(ka, kb)) {
            fprintf(stderr, "metrics differ:\n  %s  %s", la, lb);
            same = 0;
        }
        rows++;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same && rows > 10;
}

/* Train 12 updates in one go; then 7, stop, resume to 12. Same metrics
 * (but timings) and same final weights, bit for bit. Exercises the split
 * (two groups), accumulation, clipping, the schedule, phi and evaluation. */
static void test_resume(void)
{
    char err[1024] = "";
    uint16_t tok[3000];
    uint64_t s = 11;
    for (int i = 0; i < 3000; i++) { /* mostly t -> 5t+1 mod 64: learnable */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (uint16_t)(i % 7 && i ? (uint64_t)(tok[i - 1] * 5 + 1) % 64 : (s >> 33) % 64);
    }
    char train[512], val[512];
    snprintf(train, sizeof train, "%s", tmp_path("train.bin"));
    snprintf(val, sizeof val, "%s", tmp_path("val.bin"));
    CHECK_EQ_INT(gpt2_tokens_write(train, tok, 2000, err, sizeof err), 0);
    CHECK_EQ_INT(gpt2_tokens_write(val, tok + 2000, 1000, err, sizeof err), 0);
    gpt2_train_opts o;
    gpt2_train_opts_default(&o);
    o.layers = 2;
    o.channels = 32;
    o.heads = 4;
    o.max_seq_len = 16;
    o.vocab_size = 64;
    o.train_path = train;
    o.val_path = val;
    o.B = 4;
    o.T = 16;
    o.accum = 2;
    o.clip = 1.0;
    o.steps = 12;
    o.warmup = 2;
    o.eval_every = 4;
    o.eval_batches = 2;
    o.phi_samples = 3;
    o.progress = 0;
    o.plot = 0;
    int have_muon = dsc_optimizer_kind_find("muon") != NULL;
    o.matrix_optimizer = have_muon ? "muon:lr=0.02" : "signum:lr=1e-3";
    o.optimizer = "adamw:lr=3e-3,weight_decay=0.1";
    char a_dir[512], b_dir[512];
    snprintf(a_dir, sizeof a_dir, "%s", tmp_path("a"));
    snprintf(b_dir, sizeof b_dir, "%s", tmp_path("b"));

    gpt2_train_result ra, rb1, rb2;
    o.out_dir = a_dir;
    int rc = gpt2_train(&o, &ra, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) fprintf(stderr, "train: %s\n", err);
    o.out_dir = b_dir;
    o.stop_after = 7;
    CHECK_EQ_INT(gpt2_train(&o, &rb1, err, sizeof err), 0);
    CHECK_EQ_INT(rb1.steps_done, 7);
    o.stop_after = 0;
    o.resume = b_dir;
    rc = gpt2_train(&o, &rb2, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) fprintf(stderr, "resume: %s\n", err);
    CHECK_EQ_INT(rb2.steps_done, 12);
    CHECK_EQ_INT(rb2.ntrain, 5);
    CHECK(ra.ntrain == 12 && ra.final_val_loss < ra.initial_val_loss);
    for (int i = 0; i < rb2.ntrain && ra.ntrain == 12; i++)
        CHECK(rb2.train_loss[i] == ra.train_loss[7 + i]);
    CHECK(rb2.final_val_loss == ra.final_val_loss);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/metrics.csv", a_dir);
    snprintf(pb, sizeof pb, "%s/metrics.csv", b_dir);
    CHECK(metrics_equal(pa, pb));
    /* final weights */
    gpt2_model ma, mb;
    snprintf(pa, sizeof pa, "%s/ckpt_00000012/model.bin", a_dir);
    snprintf(pb, sizeof pb, "%s/ckpt_00000012/model.bin", b_dir);
    CHECK_EQ_INT(gpt2_load(&ma, pa, err, sizeof err), 0);
    CHECK_EQ_INT(gpt2_load(&mb, pb, err, sizeof err), 0);
    CHECK(ma.num_params == mb.num_params &&
          memcmp(ma.params, mb.params, ma.num_params * sizeof(float)) == 0);
    gpt2_free(&ma);
    gpt2_free(&mb);
    /* a resume with another batch size is refused, naming the key */
    gpt2_train_result_free(&rb1);
    o.B = 2;
    CHECK_EQ_INT(gpt2_train(&o, &rb1, err, sizeof err), -1);
    CHECK(strstr(err, "B is") != NULL);
    gpt2_train_result_free(&ra);
    gpt2_train_result_free(&rb1);
    gpt2_train_result_free(&rb2);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/descent_gpt2_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_reference();
    test_finite_differences();
    test_threads();
    test_head_tiles();
    test_checkpoint();
    test_resume();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK_EQ_INT(system(cmd), 0);
    return check_report("test_gpt2");
}
