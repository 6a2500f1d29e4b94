/* fashion.c - Fashion-MNIST, the MLP and `descent classify study`
 * (contracts in fashion.h). */
#include "classify/fashion.h"
#include "labfile.h"
#include "rng.h"

#include "descent.h"
#include "gpt2/study.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#ifdef DSC_HAVE_CBLAS
#include <cblas.h>
#endif

/* ------------------------------------------------------------ data */

const char *fashion_default_dir(void)
{
    const char *e = getenv("DESCENT_FASHION_MNIST");
    return e && *e ? e : "/usr/share/datasets/fashion-mnist";
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int fashion_read_idx(const char *path, int want_magic, uint8_t **data, int *n, int *item,
                     char *err, size_t errlen)
{
    *data = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        lab_set_err(err, errlen, "%s: %s (install the Debian package dataset-fashion-mnist, or "
                "give its folder)", path, errno ? strerror(errno) : "cannot open");
        return -1;
    }
    uint8_t h[16];
    int hl = want_magic == 0x803 ? 16 : 8;
    if (gzread(gz, h, (unsigned)hl) != hl || (int)be32(h) != want_magic) {
        gzclose(gz);
        lab_set_err(err, errlen, "%s: not an IDX %s file (magic 0x%x expected)", path,
                want_magic == 0x803 ? "image" : "label", want_magic);
        return -1;
    }
    uint32_t cnt = be32(h + 4);
    uint32_t sz = want_magic == 0x803 ? be32(h + 8) * be32(h + 12) : 1;
    if (cnt == 0 || cnt > 1000000 || sz == 0 || sz > 4096) {
        gzclose(gz);
        lab_set_err(err, errlen, "%s: implausible sizes (%u items of %u bytes)", path, cnt, sz);
        return -1;
    }
    size_t bytes = (size_t)cnt * sz;
    uint8_t *d = malloc(bytes);
    if (!d) {
        gzclose(gz);
        lab_set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t got = 0;
    while (got < bytes) {
        unsigned chunk = bytes - got > (1u << 30) ? (1u << 30) : (unsigned)(bytes - got);
        int r = gzread(gz, d + got, chunk);
        if (r <= 0) break;
        got += (size_t)r;
    }
    gzclose(gz);
    if (got != bytes) {
        free(d);
        lab_set_err(err, errlen, "%s: truncated (%zu of %zu bytes)", path, got, bytes);
        return -1;
    }
    *data = d;
    *n = (int)cnt;
    *item = (int)sz;
    return 0;
}

void fashion_free(fashion_set *s)
{
    if (!s) return;
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

#define FASHION_VAL 5000
#define FASHION_MEAN 0.2860f /* mean pixel of the 60,000 training images / 255 */

static int fill(fashion_set *s, const uint8_t *img, const uint8_t *lab, int from, int n)
{
    s->n = n;
    s->x = malloc(sizeof(float) * (size_t)n * FASHION_PIXELS);
    s->y = malloc(sizeof(int) * (size_t)n);
    if (!s->x || !s->y) return -1;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < FASHION_PIXELS; p++)
            s->x[(size_t)i * FASHION_PIXELS + p] =
                img[(size_t)(from + i) * FASHION_PIXELS + p] / 255.0f - FASHION_MEAN;
        s->y[i] = lab[from + i];
    }
    return 0;
}

int fashion_load(const char *dir, fashion_set *train, fashion_set *val, fashion_set *test,
                 char *err, size_t errlen)
{
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    if (!dir) dir = fashion_default_dir();
    static const char *names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    uint8_t *d[4] = {0};
    int n[4], item[4], rc = -1;
    for (int k = 0; k < 4; k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, names[k]);
        if (fashion_read_idx(p, k % 2 ? 0x801 : 0x803, &d[k], &n[k], &item[k], err, errlen))
            goto done;
    }
    if (item[0] != FASHION_PIXELS || item[2] != FASHION_PIXELS || n[0] != n[1] ||
        n[2] != n[3] || n[0] <= FASHION_VAL) {
        lab_set_err(err, errlen, "%s: the IDX files do not match (28x28 images, as many labels "
                "as images, more than %d training images)", dir, FASHION_VAL);
        goto done;
    }
    for (int k = 1; k < 4; k += 2)
        for (int i = 0; i < n[k]; i++)
            if (d[k][i] >= FASHION_CLASSES) {
                lab_set_err(err, errlen, "%s/%s: label %d at %d is not 0..9", dir, names[k],
                        d[k][i], i);
                goto done;
            }
    if (fill(train, d[0], d[1], 0, n[0] - FASHION_VAL) ||
        fill(val, d[0], d[1], n[0] - FASHION_VAL, FASHION_VAL) || fill(test, d[2], d[3], 0, n[2])) {
        lab_set_err(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; k < 4; k++) free(d[k]);
    if (rc) {
        fashion_free(train);
        fashion_free(val);
        fashion_free(test);
    }
    return rc;
}

/* ------------------------------------------------------------ the MLP */

/* C(M,N) = A(M,K) B^T (B is (N,K)) + beta C, row-major */
static void mm_nt(int M, int N, int K, const float *A, const float *B, float beta, float *C)
{
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, beta, C, N);
#else
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += A[(size_t)i * K + k] * B[(size_t)j * K + k];
            C[(size_t)i * N + j] = (beta == 0.0f ? 0.0f : beta * C[(size_t)i * N + j]) + s;
        }
#endif
}

/* C(M,N) = A(M,K) B(K,N), row-major */
static void mm_nn(int M, int N, int K, const float *A, const float *B, float *C)
{
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
#else
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * N;
        for (int j = 0; j < N; j++) c[j] = 0;
        for (int k = 0; k < K; k++) {
            float a = A[(size_t)i * K + k];
            const float *b = B + (size_t)k * N;
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
#endif
}

/* C(M,N) = A^T B with A (K,M), B (K,N), row-major */
static void mm_tn(int M, int N, int K, const float *A, const float *B, float *C)
{
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, M, B, N, 0.0f, C, N);
#else
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * N;
        for (int j = 0; j < N; j++) c[j] = 0;
        for (int k = 0; k < K; k++) {
            float a = A[(size_t)k * M + i];
            const float *b = B + (size_t)k * N;
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
#endif
}

void fashion_mlp_tensors(const fashion_mlp *m, size_t off[6], size_t len[6])
{
    len[0] = (size_t)m->h1 * FASHION_PIXELS;
    len[1] = (size_t)m->h1;
    len[2] = (size_t)m->h2 * m->h1;
    len[3] = (size_t)m->h2;
    len[4] = (size_t)FASHION_CLASSES * m->h2;
    len[5] = FASHION_CLASSES;
    size_t o = 0;
    for (int k = 0; k < 6; k++) {
        off[k] = o;
        o += len[k];
    }
}

int fashion_mlp_init(fashion_mlp *m, int h1, int h2, int max_batch, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    if (h1 < 1 || h1 > 4096 || h2 < 1 || h2 > 4096 || max_batch < 1 || max_batch > 65536)
        return -1;
    m->h1 = h1, m->h2 = h2, m->max_batch = max_batch;
    size_t off[6], len[6];
    fashion_mlp_tensors(m, off, len);
    m->num_params = off[5] + len[5];
    m->params = calloc(m->num_params, sizeof(float));
    m->grads = calloc(m->num_params, sizeof(float));
    /* per batch row: h1, h2 and logits, and their gradients */
    m->act = malloc(sizeof(float) * (size_t)max_batch * 2 * (size_t)(h1 + h2 + FASHION_CLASSES));
    if (!m->params || !m->grads || !m->act) {
        fashion_mlp_free(m);
        return -1;
    }
    float **v[6] = {&m->w1, &m->b1, &m->w2, &m->b2, &m->w3, &m->b3};
    float **gv[6] = {&m->gw1, &m->gb1, &m->gw2, &m->gb2, &m->gw3, &m->gb3};
    for (int k = 0; k < 6; k++) {
        *v[k] = m->params + off[k];
        *gv[k] = m->grads + off[k];
    }
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 17;
    int fan[3] = {FASHION_PIXELS, h1, h2};
    for (int k = 0; k < 3; k++) {
        float *w = m->params + off[2 * k];
        double sd = sqrt(2.0 / fan[k]);
        for (size_t i = 0; i < len[2 * k]; i++) w[i] = (float)(sd * lab_normal(&s));
    }
    return 0;
}

void fashion_mlp_free(fashion_mlp *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->act);
    memset(m, 0, sizeof *m);
}

/* Forward over b rows gathered into x; returns the summed loss, counts
 * the correct ones, leaves the activations (and probabilities) in act. */
static double forward(fashion_mlp *m, const float *x, const int *y, int b, int *correct)
{
    int H1 = m->h1, H2 = m->h2, K = FASHION_CLASSES;
    float *a1 = m->act, *a2 = a1 + (size_t)b * H1, *lg = a2 + (size_t)b * H2;
    for (int i = 0; i < b; i++) memcpy(a1 + (size_t)i * H1, m->b1, sizeof(float) * H1);
    mm_nt(b, H1, FASHION_PIXELS, x, m->w1, 1.0f, a1);
    for (size_t i = 0; i < (size_t)b * H1; i++) a1[i] = a1[i] > 0 ? a1[i] : 0;
    for (int i = 0; i < b; i++) memcpy(a2 + (size_t)i * H2, m->b2, sizeof(float) * H2);
    mm_nt(b, H2, H1, a1, m->w2, 1.0f, a2);
    for (size_t i = 0; i < (size_t)b * H2; i++) a2[i] = a2[i] > 0 ? a2[i] : 0;
    for (int i = 0; i < b; i++) memcpy(lg + (size_t)i * K, m->b3, sizeof(float) * K);
    mm_nt(b, K, H2, a2, m->w3, 1.0f, lg);
    double loss = 0;
    int ok = 0;
    for (int i = 0; i < b; i++) {
        float *z = lg + (size_t)i * K;
        int arg = 0;
        double mx = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > mx) mx = z[k], arg = k;
        double sum = 0;
        for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
        loss += log(sum) + mx - z[y[i]];
        ok += arg == y[i];
        for (int k = 0; k < K; k++) z[k] = (float)(exp(z[k] - mx) / sum); /* probabilities */
    }
    if (correct) *correct = ok;
    return loss;
}

double fashion_mlp_grad(fashion_mlp *m, const fashion_set *s, const int *idx, int b)
{
    int H1 = m->h1, H2 = m->h2, K = FASHION_CLASSES;
    /* the batch: gathered rows, labels */
    float *x = malloc(sizeof(float) * (size_t)b * FASHION_PIXELS);
    int *y = malloc(sizeof(int) * (size_t)b);
    if (!x || !y) {
        free(x);
        free(y);
        return NAN;
    }
    for (int i = 0; i < b; i++) {
        memcpy(x + (size_t)i * FASHION_PIXELS, s->x + (size_t)idx[i] * FASHION_PIXELS,
               sizeof(float) * FASHION_PIXELS);
        y[i] = s->y[idx[i]];
    }
    double loss = forward(m, x, y, b, NULL) / b;
    float *a1 = m->act, *a2 = a1 + (size_t)b * H1, *lg = a2 + (size_t)b * H2;
    float *d1 = lg + (size_t)b * K, *d2 = d1 + (size_t)b * H1, *dz = d2 + (size_t)b * H2;
    /* dL/dz = (p - onehot) / b */
    for (int i = 0; i < b; i++)
        for (int k = 0; k < K; k++)
            dz[(size_t)i * K + k] = (lg[(size_t)i * K + k] - (k == y[i])) / (float)b;
    mm_tn(K, H2, b, dz, a2, m->gw3);
    for (int k = 0; k < K; k++) {
        double t = 0;
        for (int i = 0; i < b; i++) t += dz[(size_t)i * K + k];
        m->gb3[k] = (float)t;
    }
    mm_nn(b, H2, K, dz, m->w3, d2);
    for (size_t i = 0; i < (size_t)b * H2; i++)
        if (a2[i] <= 0) d2[i] = 0;
    mm_tn(H2, H1, b, d2, a1, m->gw2);
    for (int j = 0; j < H2; j++) {
        double t = 0;
        for (int i = 0; i < b; i++) t += d2[(size_t)i * H2 + j];
        m->gb2[j] = (float)t;
    }
    mm_nn(b, H1, H2, d2, m->w2, d1);
    for (size_t i = 0; i < (size_t)b * H1; i++)
        if (a1[i] <= 0) d1[i] = 0;
    mm_tn(H1, FASHION_PIXELS, b, d1, x, m->gw1);
    for (int j = 0; j < H1; j++) {
        double t = 0;
        for (int i = 0; i < b; i++) t += d1[(size_t)i * H1 + j];
        m->gb1[j] = (float)t;
    }
    free(x);
    free(y);
    return loss;
}

void fashion_mlp_eval(fashion_mlp *m, const fashion_set *s, int n, double *loss, double *acc)
{
    if (n <= 0 || n > s->n) n = s->n;
    double L = 0;
    int ok = 0;
    for (int i = 0; i < n; i += m->max_batch) {
        int b = n - i < m->max_batch ? n - i : m->max_batch, c = 0;
        L += forward(m, s->x + (size_t)i * FASHION_PIXELS, s->y + i, b, &c);
        ok += c;
    }
    *loss = L / n;
    *acc = (double)ok / n;
}

/* ------------------------------------------------------------ the study task */

typedef struct {
    fashion_set train, val, test;
    int h1, h2, B, phi_k, phi_every, eval_n;
    float *buf; /* phi_k gradient copies */
} fashion_task;

/* batch k of a seed: B training rows drawn with replacement (splitmix64 of
 * seed and k), a pure function like the GPT-2 loader's */
static void batch_rows(uint64_t seed, uint64_t k, int n, int B, int *idx)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull ^ (k + 1) * 0xd1b54a32d192ed03ull;
    for (int i = 0; i < B; i++) idx[i] = (int)(lab_splitmix64(&s) % (uint64_t)n);
}

#define HELD_OUT_BASE (1ull << 40)

static int fashion_phi(fashion_task *f, fashion_mlp *m, int step, study_curve *c, char *err,
                       size_t errlen)
{
    if (c->nphi >= STUDY_MAX_POINTS) return 0;
    size_t d = m->num_params;
    int idx[4096];
    const float *rows[64];
    for (int i = 0; i < f->phi_k; i++) {
        batch_rows(7, HELD_OUT_BASE + (uint64_t)step * f->phi_k + i, f->val.n, f->B, idx);
        fashion_mlp_grad(m, &f->val, idx, f->B);
        memcpy(f->buf + (size_t)i * d, m->grads, sizeof(float) * d);
        rows[i] = f->buf + (size_t)i * d;
    }
    size_t off[6], len[6];
    fashion_mlp_tensors(m, off, len);
    /* groups: 1 first layer (w1), 2 later layers (w2, w3), 3 biases */
    study_seg segs[6] = {{off[0], len[0], 1}, {off[1], len[1], 3}, {off[2], len[2], 2},
                         {off[3], len[3], 3}, {off[4], len[4], 2}, {off[5], len[5], 3}};
    int p = c->nphi;
    if (study_phi_groups(rows, f->phi_k, d, segs, 6, 4, c->phi[p], &c->snr[p], err, errlen))
        return -1;
    c->phi_units[p] = (double)step * f->B;
    c->nphi++;
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fashion_run(void *ctx, const study_job *job, study_curve *c, char *err,
                       size_t errlen)
{
    fashion_task *f = ctx;
    fashion_mlp m;
    if (fashion_mlp_init(&m, f->h1, f->h2, f->B > 500 ? f->B : 500, job->seed)) {
        lab_set_err(err, errlen, "MLP: out of memory");
        return -1;
    }
    dsc_optimizer *opt = dsc_optimizer_new();
    dsc_status st = opt ? DSC_OK : DSC_NO_MEMORY;
    const char *group = NULL;
    if (st == DSC_OK) {
        if (job->matrix_spec) st = dsc_optimizer_use_split(opt, job->matrix_spec, job->spec);
        else st = dsc_optimizer_add_group(opt, group = "all", job->spec);
    }
    if (st == DSC_OK) {
        /* the same schedule as the GPT-2 study: cosine, 5% warmup, down to 0.1 */
        char text[128], why[256] = "";
        dsc_schedule sc;
        snprintf(text, sizeof text, "cosine:warmup=%d,total=%d,min_ratio=0.1", job->steps / 20,
                 job->steps);
        st = dsc_schedule_parse(text, &sc, why, sizeof why);
        if (st == DSC_OK) st = dsc_optimizer_set_schedule(opt, NULL, "lr", &sc);
    }
    size_t off[6], len[6];
    fashion_mlp_tensors(&m, off, len);
    static const char *names[6] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                   "classifier.weight", "classifier.bias"};
    for (int k = 0; k < 6 && st == DSC_OK; k++) {
        int64_t shape[2];
        int nd = k % 2 ? 1 : 2;
        if (nd == 2) {
            shape[0] = k == 0 ? f->h1 : k == 2 ? f->h2 : FASHION_CLASSES;
            shape[1] = (int64_t)(len[k] / (size_t)shape[0]);
        } else {
            shape[0] = (int64_t)len[k];
        }
        st = dsc_optimizer_add_param(opt, names[k], m.params + off[k], m.grads + off[k], nd,
                                     shape, DSC_ROLE_AUTO, group);
    }
    if (st != DSC_OK) {
        lab_set_err(err, errlen, "optimizer: %s", opt ? dsc_optimizer_error(opt) : "out of memory");
        dsc_optimizer_free(opt);
        fashion_mlp_free(&m);
        return -1;
    }
    int idx[4096];
    double t0 = now_s(), train_time = 0;
    int rc = 0;
    for (int step = 0;; step++) {
        int measure = step == 0 || step == job->steps || step % f->phi_every == 0;
        if (measure && !job->tuning && f->phi_k >= 2 &&
            fashion_phi(f, &m, step, c, err, errlen)) {
            rc = -1;
            break;
        }
        if ((measure && !job->tuning) || step == job->steps) {
            double L, acc;
            fashion_mlp_eval(&m, &f->val, f->eval_n, &L, &acc);
            if (c->nval < STUDY_MAX_POINTS) {
                c->val_units[c->nval] = (double)step * f->B;
                c->val_loss[c->nval] = L;
                c->nval++;
            }
            c->final_val = L;
        }
        if (step == job->steps) break;
        double ts = now_s();
        batch_rows(job->seed, (uint64_t)step, f->train.n, f->B, idx);
        double loss = fashion_mlp_grad(&m, &f->train, idx, f->B);
        if (!isfinite(loss)) {
            c->diverged = 1;
            break;
        }
        if (dsc_optimizer_step(opt) != DSC_OK) {
            lab_set_err(err, errlen, "step %d: %s", step, dsc_optimizer_error(opt));
            rc = -1;
            break;
        }
        train_time += now_s() - ts;
    }
    if (!rc && !c->diverged) {
        double L, acc;
        fashion_mlp_eval(&m, &f->test, 0, &L, &acc);
        c->extra = acc;
        if (!isfinite(c->final_val)) c->diverged = 1;
    }
    c->wall_s = now_s() - t0;
    c->units_per_s = train_time > 0 ? (double)job->steps * f->B / train_time : NAN;
    dsc_optimizer_free(opt);
    fashion_mlp_free(&m);
    return rc;
}

/* ------------------------------------------------------------ command */

const char classify_study_usage[] =
    "usage: descent classify study [FLAGS]\n"
    "  The optimizer study (as `descent gpt2 study`) on Fashion-MNIST with an MLP\n"
    "  784-256-128-10: SGD (with and without momentum), SignSGD, Signum, Lion,\n"
    "  AdamW and Muon + AdamW (Muon on the two hidden weight matrices), lr tuned on\n"
    "  a short budget, then --seeds seeds; phi per layer type (first layer, later\n"
    "  layers, biases) on held-out validation batches through training; test\n"
    "  accuracy at the end. Writes OUT/summary.md, CSV tables and plots; finished\n"
    "  runs are skipped when started again.\n"
    "  --data DIR           folder of the four IDX .gz files (default\n"
    "                       $DESCENT_FASHION_MNIST or /usr/share/datasets/fashion-mnist)\n"
    "  --out DIR            output folder (default out/study-fashion)\n"
    "  --preset NAME        default (B=64, 1500 updates, tuning on 400) or tiny\n"
    "  --seeds N --steps N --tune-steps N --per-decade N --max-tune-runs N\n"
    "  --methods LIST --phi K --phi-every N --targets A,B,..   as gpt2 study\n"
    "  --hidden H1,H2 -B N --eval N (validation images per evaluation, default 2000)\n"
    "  --quiet\n";

static int to_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > hi) {
        fprintf(stderr, "descent classify study: %s: \"%s\" is not an integer in %d..%d\n",
                flag, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int classify_cmd_study(int argc, char **argv)
{
    enum { O_DATA = 256, O_OUT, O_PRESET, O_SEEDS, O_STEPS, O_TUNE, O_PERDEC, O_MAXTUNE,
           O_METHODS, O_PHI, O_PHIEVERY, O_TARGETS, O_HIDDEN, O_EVAL, O_QUIET, O_HELP };
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA}, {"out", required_argument, 0, O_OUT},
        {"preset", required_argument, 0, O_PRESET}, {"seeds", required_argument, 0, O_SEEDS},
        {"steps", required_argument, 0, O_STEPS}, {"tune-steps", required_argument, 0, O_TUNE},
        {"per-decade", required_argument, 0, O_PERDEC},
        {"max-tune-runs", required_argument, 0, O_MAXTUNE},
        {"methods", required_argument, 0, O_METHODS}, {"phi", required_argument, 0, O_PHI},
        {"phi-every", required_argument, 0, O_PHIEVERY},
        {"targets", required_argument, 0, O_TARGETS},
        {"hidden", required_argument, 0, O_HIDDEN}, {"eval", required_argument, 0, O_EVAL},
        {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    fashion_task f;
    memset(&f, 0, sizeof f);
    f.h1 = 256, f.h2 = 128, f.B = 64, f.phi_k = 16, f.phi_every = 100, f.eval_n = 2000;
    study_opts so;
    study_opts_default(&so);
    so.out = "out/study-fashion";
    so.steps = 1500;
    so.tune_steps = 400;
    const char *dir = NULL, *preset = "default";
    /* the preset first, so explicit flags override it */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
    if (!strcmp(preset, "tiny")) {
        f.h1 = 16, f.h2 = 8, f.B = 16, f.phi_k = 4, f.phi_every = 5, f.eval_n = 200;
        so.steps = 20, so.tune_steps = 5, so.seeds = 2;
    } else if (strcmp(preset, "default")) {
        fprintf(stderr, "descent classify study: --preset \"%s\" (expected default or tiny)\n",
                preset);
        return 2;
    }
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "B:", lo, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case O_DATA: dir = optarg; break;
        case O_OUT: so.out = optarg; break;
        case O_PRESET: break;
        case O_SEEDS: rc = to_int("--seeds", optarg, 1, STUDY_MAX_SEEDS, &so.seeds); break;
        case O_STEPS: rc = to_int("--steps", optarg, 1, INT_MAX, &so.steps); break;
        case O_TUNE: rc = to_int("--tune-steps", optarg, 1, INT_MAX, &so.tune_steps); break;
        case O_PERDEC: rc = to_int("--per-decade", optarg, 3, 100, &so.per_decade); break;
        case O_MAXTUNE: rc = to_int("--max-tune-runs", optarg, 3, 96, &so.max_tune_runs); break;
        case O_METHODS: so.methods = optarg; break;
        case O_PHI: rc = to_int("--phi", optarg, 2, 64, &f.phi_k); break;
        case O_PHIEVERY: rc = to_int("--phi-every", optarg, 1, INT_MAX, &f.phi_every); break;
        case O_TARGETS:
            if (study_parse_targets(optarg, &so, "descent classify study")) return 2;
            break;
        case O_HIDDEN:
            if (sscanf(optarg, "%d,%d", &f.h1, &f.h2) != 2 || f.h1 < 1 || f.h1 > 4096 ||
                f.h2 < 1 || f.h2 > 4096) {
                fprintf(stderr, "descent classify study: --hidden \"%s\": expected H1,H2 in "
                        "1..4096\n", optarg);
                return 2;
            }
            break;
        case 'B': rc = to_int("-B", optarg, 1, 4096, &f.B); break;
        case O_EVAL: rc = to_int("--eval", optarg, 1, 5000, &f.eval_n); break;
        case O_QUIET: so.progress = 0; break;
        case O_HELP: fputs(classify_study_usage, stdout); return 0;
        default:
            fprintf(stderr, "descent classify study: unknown or incomplete argument \"%s\" "
                    "(see --help)\n", argv[optind - 1]);
            return 2;
        }
        if (rc) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "descent classify study: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    char err[1024] = "";
    if (fashion_load(dir, &f.train, &f.val, &f.test, err, sizeof err)) {
        fprintf(stderr, "descent classify study: %s\n", err);
        return 1;
    }
    fashion_mlp probe;
    if (fashion_mlp_init(&probe, f.h1, f.h2, 1, 1)) {
        fprintf(stderr, "descent classify study: out of memory\n");
        return 1;
    }
    size_t d = probe.num_params;
    fashion_mlp_free(&probe);
    f.buf = malloc(sizeof(float) * d * (size_t)f.phi_k);
    if (!f.buf) {
        fprintf(stderr, "descent classify study: out of memory\n");
        return 1;
    }
    static char cmdline[2048];
    size_t off = (size_t)snprintf(cmdline, sizeof cmdline, "descent classify study");
    for (int i = 1; i < argc && off < sizeof cmdline; i++)
        off += (size_t)snprintf(cmdline + off, sizeof cmdline - off, " %s", argv[i]);
    so.command = cmdline;
    study_task t;
    memset(&t, 0, sizeof t);
    t.name = "MLP on Fashion-MNIST";
    t.unit = "images";
    t.units_per_step = f.B;
    t.ngroups = 4;
    t.groups[0] = "all";
    t.groups[1] = "first_layer";
    t.groups[2] = "later_layers";
    t.groups[3] = "biases";
    t.extra_name = "test accuracy";
    t.run = fashion_run;
    t.ctx = &f;
    snprintf(t.setup, sizeof t.setup,
             "MLP 784-%d-%d-10 (ReLU, %zu parameters) on Fashion-MNIST: %d training images, "
             "%d validation images (the last of the official training set; validation loss "
             "on the first %d of them, phi's held-out batches from all of them), %d test "
             "images (accuracy at the end). Batches of %d drawn with replacement, cosine "
             "schedule with 5%% warmup down to 0.1, no weight decay; Muon + AdamW runs Muon "
             "on the two hidden weight matrices and AdamW on the classifier and the biases. "
             "phi from %d held-out gradients every %d updates.",
             f.h1, f.h2, d, f.train.n, f.val.n, f.eval_n, f.test.n, f.B, f.phi_k, f.phi_every);
    /* the same optimizers, with centres for this model */
    study_method methods[STUDY_MAX_METHODS];
    int nm = study_nmethods;
    for (int i = 0; i < nm; i++) {
        methods[i] = study_methods[i];
        const char *n = methods[i].name;
        methods[i].lr0 = !strcmp(n, "sgd") ? 0.1 : !strcmp(n, "sgdm") ? 0.03
                         : !strcmp(n, "signsgd") || !strcmp(n, "signum") ? 1e-3
                         : !strcmp(n, "lion") ? 3e-4 : !strcmp(n, "adamw") ? 1e-3 : 0.03;
    }
    int rc = study_run(&t, methods, nm, &so, err, sizeof err);
    free(f.buf);
    fashion_free(&f.train);
    fashion_free(&f.val);
    fashion_free(&f.test);
    if (rc) {
        fprintf(stderr, "descent classify study: %s\n", err);
        return 1;
    }
    printf("study done: %s/summary.md\n", so.out);
    return 0;
}
