/*
 * model.c - GPT-2 forward and backward on the CPU (see model.h for the
 * contract). The layer math follows GPT-2 as llm.c's train_gpt2.c
 * describes it; the organisation differs: products go through one sliced
 * sgemm helper, biases and residual adds are folded into the products'
 * output (beta = 1), the LM head is fused with the softmax and the loss
 * tile by tile (head_forward, head_backward: the logits become their
 * exponentials in place while in cache, then their own gradient), and the backward pass keeps one
 * layer of activation gradients instead of a second full activation buffer.
 */
#include "gpt2/model.h"
#include "labfile.h"
#include "rng.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef DSC_HAVE_CBLAS
#include <cblas.h>
#endif

#if defined(DSC_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
#define GPT2_OPENBLAS 1
#endif

/* The exp and tanh below must inline into their loops to vectorize. */
#if defined(__GNUC__)
#define GPT2_INLINE static inline __attribute__((always_inline))
#else
#define GPT2_INLINE static inline
#endif

#define GPT2_MAGIC 20240326
#define GPT2_VERSION 3
#define GPT2_HEADER_INTS 256

/* ------------------------------------------------------------ utilities */

static int thread_setting = 0;

/* Also OpenBLAS's own thread count, which libdescent's products (Muon)
 * use outside our regions. */
void gpt2_set_threads(int n)
{
    thread_setting = n > 0 ? n : 0;
#ifdef GPT2_OPENBLAS
    if (n > 0) openblas_set_num_threads(n);
#endif
}

int gpt2_get_threads(void)
{
#ifdef _OPENMP
    return thread_setting > 0 ? thread_setting : omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int thread_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Thread `ith` of `nth` takes [*lo, *hi) of [0, n), in chunks that are
 * multiples of `align` so slices start on whole kernel tiles. */
static void split_range(int n, int ith, int nth, int align, int *lo, int *hi)
{
    int chunk = (n + nth - 1) / nth;
    chunk = (chunk + align - 1) / align * align;
    int a = ith * chunk, b = a + chunk;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/* OpenBLAS (pthread build) must run single-threaded inside our OpenMP
 * regions: each thread multiplies its own tile. The caller's setting is
 * restored afterwards, so libdescent's own products are unaffected. */

static int blas_begin(void)
{
#ifdef GPT2_OPENBLAS
    int n = openblas_get_num_threads();
    if (n != 1) openblas_set_num_threads(1);
    return n;
#else
    return 1;
#endif
}

static void blas_end(int saved)
{
#ifdef GPT2_OPENBLAS
    if (saved != 1) openblas_set_num_threads(saved);
#else
    (void)saved;
#endif
}

/* Single-threaded products on row-major slices, three shapes:
 *   nt: C(M,N) = A(M,K) B(N,K)^T + beta C
 *   nn: C(M,N) = A(M,K) B(K,N)   + beta C
 *   tn: C(M,N) = A(K,M)^T B(K,N) + beta C
 * The portable loops add over k in ascending order. */
static void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta,
                C, ldc);
#else
    for (int i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) {
            const float *b = B + (size_t)j * ldb;
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += a[k] * b[k];
            c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + s;
        }
    }
#endif
}

static void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
                beta, C, ldc);
#else
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int k = 0; k < K; k++) {
            float a = A[(size_t)i * lda + k];
            const float *b = B + (size_t)k * ldb;
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
#endif
}

static void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef DSC_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta,
                C, ldc);
#else
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int k = 0; k < K; k++) {
            float a = A[(size_t)k * lda + i];
            const float *b = B + (size_t)k * ldb;
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
#endif
}

/* -------------------------------------------------------------- config */

int gpt2_pad_vocab(int vocab_size) { return (vocab_size + 63) / 64 * 64; }

gpt2_config gpt2_config_make(int num_layers, int channels, int num_heads, int max_seq_len)
{
    gpt2_config c;
    c.max_seq_len = max_seq_len;
    c.vocab_size = 50257;
    c.padded_vocab_size = 50304;
    c.num_layers = num_layers;
    c.num_heads = num_heads;
    c.channels = channels;
    return c;
}

gpt2_config gpt2_config_124m(void) { return gpt2_config_make(12, 768, 12, 1024); }

int gpt2_config_check(const gpt2_config *c, char *err, size_t errlen)
{
    if (c->num_layers < 1 || c->num_layers > 1024) {
        lab_set_err(err, errlen, "layers %d: expected 1..1024", c->num_layers);
        return -1;
    }
    if (c->channels < 1 || c->channels > 65536 || c->num_heads < 1 ||
        c->channels % c->num_heads) {
        lab_set_err(err, errlen, "channels %d, heads %d: channels must be a positive multiple "
                "of heads", c->channels, c->num_heads);
        return -1;
    }
    if (c->max_seq_len < 1 || c->max_seq_len > 65536) {
        lab_set_err(err, errlen, "max sequence length %d: expected 1..65536", c->max_seq_len);
        return -1;
    }
    if (c->vocab_size < 2 || c->padded_vocab_size < c->vocab_size ||
        c->padded_vocab_size > (1 << 24)) {
        lab_set_err(err, errlen, "vocabulary %d padded to %d: need 2 <= V <= Vp <= 2^24",
                c->vocab_size, c->padded_vocab_size);
        return -1;
    }
    return 0;
}

static void tensor_sizes(const gpt2_config *c, size_t n[GPT2_NUM_TENSORS])
{
    size_t Vp = (size_t)c->padded_vocab_size, C = (size_t)c->channels;
    size_t L = (size_t)c->num_layers, maxT = (size_t)c->max_seq_len;
    n[GPT2_WTE] = Vp * C;
    n[GPT2_WPE] = maxT * C;
    n[GPT2_LN1W] = L * C;
    n[GPT2_LN1B] = L * C;
    n[GPT2_QKVW] = L * 3 * C * C;
    n[GPT2_QKVB] = L * 3 * C;
    n[GPT2_ATTPROJW] = L * C * C;
    n[GPT2_ATTPROJB] = L * C;
    n[GPT2_LN2W] = L * C;
    n[GPT2_LN2B] = L * C;
    n[GPT2_FCW] = L * 4 * C * C;
    n[GPT2_FCB] = L * 4 * C;
    n[GPT2_FCPROJW] = L * C * 4 * C;
    n[GPT2_FCPROJB] = L * C;
    n[GPT2_LNFW] = C;
    n[GPT2_LNFB] = C;
}

static const char *const tensor_names[GPT2_NUM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

const char *gpt2_tensor_name(int t)
{
    return t >= 0 && t < GPT2_NUM_TENSORS ? tensor_names[t] : "?";
}

/* Allocates params and grads (zeroed) and points the views. */
static int alloc_params(gpt2_model *m, const gpt2_config *cfg, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (gpt2_config_check(cfg, err, errlen)) return -1;
    m->cfg = *cfg;
    tensor_sizes(cfg, m->tensor_numel);
    size_t total = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) total += m->tensor_numel[i];
    m->num_params = total;
    m->params = calloc(total, sizeof(float));
    m->grads = calloc(total, sizeof(float));
    if (!m->params || !m->grads) {
        lab_set_err(err, errlen, "cannot allocate 2 x %zu parameters", total);
        gpt2_free(m);
        return -1;
    }
    size_t off = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        m->param[i] = m->params + off;
        m->grad[i] = m->grads + off;
        off += m->tensor_numel[i];
    }
    return 0;
}

void gpt2_free(gpt2_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->acts);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

int gpt2_init(gpt2_model *m, const gpt2_config *cfg, uint64_t seed, char *err, size_t errlen)
{
    if (alloc_params(m, cfg, err, errlen)) return -1;
    const gpt2_config *c = &m->cfg;
    uint64_t state = seed ^ 0x6770743264736321ull;
    /* GPT-2 (and nanoGPT): weights N(0, 0.02); the two projections into
     * the residual stream N(0, 0.02 / sqrt(2L)); biases 0; gains 1. */
    double std = 0.02, proj_std = 0.02 / sqrt(2.0 * c->num_layers);
    lab_fill_normal(m->param[GPT2_WTE], (size_t)c->vocab_size * c->channels, std, &state);
    lab_fill_normal(m->param[GPT2_WPE], m->tensor_numel[GPT2_WPE], std, &state);
    lab_fill_normal(m->param[GPT2_QKVW], m->tensor_numel[GPT2_QKVW], std, &state);
    lab_fill_normal(m->param[GPT2_ATTPROJW], m->tensor_numel[GPT2_ATTPROJW], proj_std, &state);
    lab_fill_normal(m->param[GPT2_FCW], m->tensor_numel[GPT2_FCW], std, &state);
    lab_fill_normal(m->param[GPT2_FCPROJW], m->tensor_numel[GPT2_FCPROJW], proj_std, &state);
    const int gains[3] = {GPT2_LN1W, GPT2_LN2W, GPT2_LNFW};
    for (int g = 0; g < 3; g++)
        for (size_t i = 0; i < m->tensor_numel[gains[g]]; i++) m->param[gains[g]][i] = 1.0f;
    return 0;
}

/* ------------------------------------------------------- speed ceiling */

double gpt2_step_flops(const gpt2_config *c, int B, int T, double *n_mm)
{
    double L = c->num_layers, C = c->channels, V = c->vocab_size;
    double nmm = L * 12.0 * C * C + V * C;
    if (n_mm) *n_mm = nmm;
    double tokens = (double)B * T;
    return 6.0 * nmm * tokens + 6.0 * L * C * tokens * ((double)T + 1.0);
}

static double clock_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* (inputs, outputs, how many per step) of each product y = x W^T */
typedef struct {
    int in, out, count;
} ref_mat;

struct gpt2_sgemm_ref {
    int N, threads;
    ref_mat mats[5];
    float *x, *w, *y;
};

gpt2_sgemm_ref *gpt2_sgemm_ref_new(const gpt2_config *c, int B, int T, int threads)
{
    gpt2_sgemm_ref *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    int N = B * T, C = c->channels, V = c->vocab_size, L = c->num_layers;
    const ref_mat mats[5] = {{C, 3 * C, L}, {C, C, L}, {C, 4 * C, L}, {4 * C, C, L}, {C, V, 1}};
    memcpy(r->mats, mats, sizeof mats);
    r->N = N;
    r->threads = threads > 0 ? threads : 1;
    size_t most = 0;
    for (int i = 0; i < 5; i++) {
        size_t a = (size_t)N * mats[i].in, w = (size_t)mats[i].in * mats[i].out;
        size_t y = (size_t)N * mats[i].out;
        most = a > most ? a : most;
        most = w > most ? w : most;
        most = y > most ? y : most;
    }
    r->x = malloc(most * sizeof(float));
    r->w = malloc(most * sizeof(float));
    r->y = malloc(most * sizeof(float));
    if (!r->x || !r->w || !r->y) {
        gpt2_sgemm_ref_free(r);
        return NULL;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < most; i++) {
        r->x[i] = (float)((lab_splitmix64(&s) >> 40) * 0x1.0p-24 - 0.5);
        r->w[i] = 0.02f * r->x[i];
        r->y[i] = 0.0f;
    }
    return r;
}

void gpt2_sgemm_ref_free(gpt2_sgemm_ref *r)
{
    if (!r) return;
    free(r->x);
    free(r->w);
    free(r->y);
    free(r);
}

double gpt2_sgemm_ref_flops(const gpt2_sgemm_ref *r)
{
    double flops = 0.0;
    for (int i = 0; i < 5; i++)
        flops += 3.0 * 2.0 * r->N * r->mats[i].in * (double)r->mats[i].out * r->mats[i].count;
    return flops;
}

/* One product of shape i: kind 0 forward nt, 1 the input gradient nn, 2
 * the weight gradient tn. */
static void ref_product(gpt2_sgemm_ref *r, int i, int kind)
{
    int N = r->N, K = r->mats[i].in, O = r->mats[i].out;
    if (kind == 0) gemm_nt(N, O, K, r->x, K, r->w, K, 0.0f, r->y, O);
    else if (kind == 1) gemm_nn(N, K, O, r->y, O, r->w, K, 0.0f, r->x, K);
    else gemm_tn(O, K, N, r->y, O, r->x, K, 0.0f, r->w, K);
}

/* Each of the 15 products called 1 + reps times back to back: the first
 * call's time and the best of the others, each multiplied by how often the
 * step runs the shape, summed into *first and *best (seconds of one step's
 * products). */
void gpt2_sgemm_ref_time(gpt2_sgemm_ref *r, int reps, double *first, double *best)
{
#ifdef GPT2_OPENBLAS
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(r->threads);
#endif
    *first = *best = 0.0;
    for (int i = 0; i < 5; i++)
        for (int kind = 0; kind < 3; kind++) {
            double lo = INFINITY;
            for (int k = 0; k <= reps; k++) {
                double t0 = clock_s();
                ref_product(r, i, kind);
                double dt = clock_s() - t0;
                if (k == 0) *first += dt * r->mats[i].count;
                else lo = dt < lo ? dt : lo;
            }
            *best += (reps > 0 ? lo : 0.0) * r->mats[i].count;
        }
#ifdef GPT2_OPENBLAS
    openblas_set_num_threads(saved);
#endif
}

/* ------------------------------------------------------------ checkpoints */

int gpt2_load(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    FILE *f = lab_open_input(path, "model file", err, errlen);
    if (!f) return -1;
    int32_t h[GPT2_HEADER_INTS];
    if (fread(h, sizeof(int32_t), GPT2_HEADER_INTS, f) != GPT2_HEADER_INTS) {
        lab_set_err(err, errlen, "%s: truncated header (not an llm.c GPT-2 checkpoint)", path);
        fclose(f);
        return -1;
    }
    if (h[0] != GPT2_MAGIC) {
        lab_set_err(err, errlen, "%s: bad magic %d (expected %d, llm.c GPT-2 checkpoint)", path,
                (int)h[0], GPT2_MAGIC);
        fclose(f);
        return -1;
    }
    if (h[1] != GPT2_VERSION) {
        lab_set_err(err, errlen, "%s: version %d not supported (expected %d: float32 weights, "
                "padded vocabulary)", path, (int)h[1], GPT2_VERSION);
        fclose(f);
        return -1;
    }
    gpt2_config c;
    c.max_seq_len = h[2];
    c.vocab_size = h[3];
    c.num_layers = h[4];
    c.num_heads = h[5];
    c.channels = h[6];
    c.padded_vocab_size = h[7];
    char why[200];
    if (gpt2_config_check(&c, why, sizeof why)) {
        lab_set_err(err, errlen, "%s: bad header: %s", path, why);
        fclose(f);
        return -1;
    }
    /* The file must hold exactly the parameters the header announces:
     * checked before allocating, so a 1 KB file cannot ask for gigabytes.
     * (The config bounds keep the count below 2^45: no overflow.) */
    size_t numel[GPT2_NUM_TENSORS], total = 0;
    tensor_sizes(&c, numel);
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) total += numel[i];
    uint64_t want = (uint64_t)sizeof h + (uint64_t)total * sizeof(float);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        lab_set_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if ((uint64_t)sb.st_size != want) {
        lab_set_err(err, errlen, "%s: %s: the header announces %zu parameters (%" PRIu64
                " bytes with the header), the file has %lld bytes", path,
                (uint64_t)sb.st_size < want ? "truncated" : "trailing bytes", total, want,
                (long long)sb.st_size);
        fclose(f);
        return -1;
    }
    if (alloc_params(m, &c, err, errlen)) {
        fclose(f);
        return -1;
    }
    size_t got = fread(m->params, sizeof(float), m->num_params, f);
    fclose(f);
    if (got != m->num_params) {
        lab_set_err(err, errlen, "%s: read failed after %zu of %zu parameters", path, got,
                m->num_params);
        gpt2_free(m);
        return -1;
    }
    /* A NaN or infinite weight would only surface later as a NaN loss. */
    for (size_t i = 0; i < m->num_params; i++)
        if (!isfinite(m->params[i])) {
            lab_set_err(err, errlen, "%s: parameter %zu is %s (the file is damaged or was saved "
                    "from a diverged run)", path, i, isnan(m->params[i]) ? "NaN" : "infinite");
            gpt2_free(m);
            return -1;
        }
    return 0;
}

int gpt2_save(const gpt2_model *m, const char *path, char *err, size_t errlen)
{
    int32_t h[GPT2_HEADER_INTS];
    memset(h, 0, sizeof h);
    h[0] = GPT2_MAGIC;
    h[1] = GPT2_VERSION;
    h[2] = m->cfg.max_seq_len;
    h[3] = m->cfg.vocab_size;
    h[4] = m->cfg.num_layers;
    h[5] = m->cfg.num_heads;
    h[6] = m->cfg.channels;
    h[7] = m->cfg.padded_vocab_size;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        lab_set_err(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lab_set_err(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fwrite(h, sizeof h, 1, f) == 1 &&
             fwrite(m->params, sizeof(float), m->num_params, f) == m->num_params &&
             fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        lab_set_err(err, errlen, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ activations */

/* Activation buffer layout for (B, T); sizes in floats. */
enum {
    A_ENCODED, /* (B,T,C) */
    A_LN1,     /* (L,B,T,C) */
    A_LN1_MEAN, A_LN1_RSTD, /* (L,B,T) */
    A_QKV,     /* (L,B,T,3C) */
    A_ATTY,    /* (L,B,T,C) */
    A_ATT,     /* (L,B,NH,T,T) softmax weights, 0 above the diagonal */
    A_RES2,    /* (L,B,T,C) residual after attention */
    A_LN2,     /* (L,B,T,C) */
    A_LN2_MEAN, A_LN2_RSTD, /* (L,B,T) */
    A_FCH,     /* (L,B,T,4C) before GELU */
    A_FCH_GELU, /* (L,B,T,4C) */
    A_RES3,    /* (L,B,T,C) residual after the MLP */
    A_LNF,     /* (B,T,C) */
    A_LNF_MEAN, A_LNF_RSTD, /* (B,T) */
    A_LOGITS,  /* (B,T,Vp) logits; with targets exp(z - tile max) (head_forward),
                  then their gradient (head_backward) */
    A_LOSSES,  /* (B,T) */
    A_HEADSTAT, /* per head tile, max and sum of exp over the tile, (tiles,2,B,T);
                   then per row the max and the sum over the whole row, (2,B,T) */
    A_COUNT
};

/* The LM head's tiles (columns of the logits, rows of wte) and the groups
 * of tiles the backward pass sums dlnf over (head_backward). */
static int tile_width(int n, int min_width);
static int head_tile_width(const gpt2_config *c) { return tile_width(c->vocab_size, 32); }
static int head_tiles(const gpt2_config *c)
{
    int tw = head_tile_width(c);
    return (c->vocab_size + tw - 1) / tw;
}
/* Enough groups to keep the threads busy, few enough that their partial
 * dlnf (B*T x C each) stay small next to the logits (a quarter at most). */
static int head_groups(const gpt2_config *c)
{
    int g = c->vocab_size / (4 * c->channels), nt = head_tiles(c);
    g = g < 1 ? 1 : g > 16 ? 16 : g;
    return g < nt ? g : nt;
}

static void act_sizes(const gpt2_config *c, int B, int T, size_t n[A_COUNT])
{
    size_t BT = (size_t)B * T, C = (size_t)c->channels, L = (size_t)c->num_layers;
    size_t NH = (size_t)c->num_heads;
    n[A_ENCODED] = BT * C;
    n[A_LN1] = L * BT * C;
    n[A_LN1_MEAN] = n[A_LN1_RSTD] = L * BT;
    n[A_QKV] = L * BT * 3 * C;
    n[A_ATTY] = L * BT * C;
    n[A_ATT] = L * (size_t)B * NH * T * T;
    n[A_RES2] = L * BT * C;
    n[A_LN2] = L * BT * C;
    n[A_LN2_MEAN] = n[A_LN2_RSTD] = L * BT;
    n[A_FCH] = n[A_FCH_GELU] = L * BT * 4 * C;
    n[A_RES3] = L * BT * C;
    n[A_LNF] = BT * C;
    n[A_LNF_MEAN] = n[A_LNF_RSTD] = BT;
    n[A_LOGITS] = BT * (size_t)c->padded_vocab_size;
    n[A_LOSSES] = BT;
    n[A_HEADSTAT] = ((size_t)head_tiles(c) + 1) * 2 * BT;
}

typedef struct {
    float *a[A_COUNT];
} act_views;

static void act_point(const gpt2_model *m, act_views *v)
{
    size_t n[A_COUNT], off = 0;
    act_sizes(&m->cfg, m->B, m->T, n);
    for (int i = 0; i < A_COUNT; i++) {
        v->a[i] = m->acts + off;
        off += n[i];
    }
}

/* Scratch: one layer of activation gradients for the backward pass, and
 * attention's per-head copies (S_HEADS, both passes: attention_forward). */
enum { S_DRES, S_DBUF, S_DQKV, S_DFCH, S_DATT, S_DLNF, S_HEADS, S_COUNT };

static void scratch_sizes(const gpt2_config *c, int B, int T, size_t n[S_COUNT])
{
    size_t BT = (size_t)B * T, C = (size_t)c->channels;
    n[S_DRES] = BT * C;
    n[S_DBUF] = BT * C;
    n[S_DQKV] = BT * 3 * C;
    n[S_DFCH] = BT * 4 * C;
    n[S_DATT] = (size_t)B * c->num_heads * T * T;
    n[S_DLNF] = ((size_t)head_groups(c) - 1) * BT * C; /* groups after the first */
    n[S_HEADS] = 6 * BT * C; /* per (b, h): q, k, v and their gradients, T x hs each */
}

/* Activations for (B, T): the buffers grow when needed and are reused for
 * any smaller batch (sampling calls with a growing T). */
static int ensure_acts(gpt2_model *m, int B, int T, char *err, size_t errlen)
{
    size_t n[A_COUNT], s[S_COUNT], total = 0, stotal = 0;
    act_sizes(&m->cfg, B, T, n);
    scratch_sizes(&m->cfg, B, T, s);
    for (int i = 0; i < A_COUNT; i++) total += n[i];
    for (int i = 0; i < S_COUNT; i++) stotal += s[i];
    if (m->acts && total <= m->num_acts && stotal <= m->num_scratch) {
        m->B = B;
        m->T = T;
        return 0;
    }
    free(m->acts);
    free(m->scratch);
    m->acts = calloc(total, sizeof(float));
    m->scratch = calloc(stotal, sizeof(float));
    m->B = m->T = 0;
    m->num_acts = m->num_scratch = 0;
    if (!m->acts || !m->scratch) {
        free(m->acts);
        free(m->scratch);
        m->acts = m->scratch = NULL;
        lab_set_err(err, errlen, "cannot allocate %zu activation floats for B=%d T=%d",
                total + stotal, B, T);
        return -1;
    }
    m->B = B;
    m->T = T;
    m->num_acts = total;
    m->num_scratch = stotal;
    return 0;
}

/* Points s[] at the scratch buffers. */
static void scratch_point(const gpt2_model *m, float *s[S_COUNT])
{
    size_t n[S_COUNT], off = 0;
    scratch_sizes(&m->cfg, m->B, m->T, n);
    for (int i = 0; i < S_COUNT; i++) {
        s[i] = m->scratch + off;
        off += n[i];
    }
}

/* ------------------------------------------------------------ layers */

/* out(N,C) = normalize(inp) * w + b, per row; mean and rstd (N) kept. */
static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C)
{
    const float eps = 1e-5f;
#pragma omp parallel for schedule(static) num_threads(gpt2_get_threads())
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += x[c];
        float mu = s / C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - mu;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / C + eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - mu) * r * w[c] + b[c];
        mean[n] = mu;
        rstd[n] = r;
    }
}

/* dinp (+)= layernorm input gradient; dw, db = gain and bias gradients
 * (overwritten). dinp_accumulate 0 overwrites dinp. */
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C, int dinp_accumulate)
{
#pragma omp parallel num_threads(gpt2_get_threads())
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float mu = mean[n], r = rstd[n];
            /* mean of dnorm and of dnorm * norm, where dnorm = g * w */
            float m1 = 0.0f, m2 = 0.0f;
            for (int c = 0; c < C; c++) {
                float dn = g[c] * w[c];
                m1 += dn;
                m2 += dn * (x[c] - mu) * r;
            }
            m1 /= C;
            m2 /= C;
            float *d = dinp + (size_t)n * C;
            for (int c = 0; c < C; c++) {
                float dn = g[c] * w[c], nrm = (x[c] - mu) * r;
                float v = (dn - m1 - nrm * m2) * r;
                d[c] = dinp_accumulate ? d[c] + v : v;
            }
        }
        /* Gain and bias: each thread owns a slice of channels and adds the
         * rows in order, so the sums do not depend on the thread count. */
        int c0, c1;
        split_range(C, thread_id(), thread_count(), 16, &c0, &c1);
        for (int c = c0; c < c1; c++) dw[c] = db[c] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float mu = mean[n], r = rstd[n];
            for (int c = c0; c < c1; c++) {
                dw[c] += g[c] * ((x[c] - mu) * r);
                db[c] += g[c];
            }
        }
    }
}

/* Products are cut into tiles whose size depends only on the matrix
 * shape, never on the thread count: an element is then always computed by
 * the same sgemm call geometry, so the bits match for any number of
 * threads (OpenBLAS computes the edges of a call with other kernels, which
 * sum in another order). About 16 tiles per product, a multiple of 32
 * wide, at most 1024. Each call packs the operand it shares with the other
 * tiles again; `min_width` can keep that repacking small where the shared
 * operand is large. */
static int tile_width(int n, int min_width)
{
    int w = (n + 15) / 16;
    w = (w + 31) / 32 * 32;
    if (w < min_width) w = min_width;
    return w < 32 ? 32 : w > 1024 ? 1024 : w;
}

/* The layers' products use the same rule below 768 columns. From 768 on
 * (GPT-2 small and up) they take 4 tiles (a multiple of 32 wide, at most
 * 1024): there the operand every tile packs again is large (the 256 x 3072
 * MLP activations of GPT-2 small at B*T = 256, against a 64-wide weight
 * slice), and 12 to 16 tiles spent an eighth of the step packing it. 4
 * equal tiles still keep 2 and 4 threads evenly busy. Below 768 the tiles
 * are left as they were, so the small models the committed GPT-2 study
 * trained (128 channels: products 128, 384 and 512 wide) keep their bits;
 * at any width the geometry depends on the shape only, never on the
 * thread count. */
static int layer_tile_width(int n)
{
    if (n < 768) return tile_width(n, 32);
    int w = (n + 3) / 4;
    w = (w + 31) / 32 * 32;
    return w > 1024 ? 1024 : w;
}

/* out(N,OC) [ldo] = inp(N,C) w(OC,C)^T + bias(OC) + resid(N,OC), with bias
 * and resid optional. Threads take column tiles of OC. */
static void matmul_forward(float *out, int ldo, const float *inp, const float *w,
                           const float *bias, const float *resid, int N, int C, int OC)
{
    int tw = layer_tile_width(OC), ntiles = (OC + tw - 1) / tw;
#pragma omp parallel for schedule(dynamic, 1) num_threads(gpt2_get_threads())
    for (int tile = 0; tile < ntiles; tile++) {
        int o0 = tile * tw, o1 = o0 + tw < OC ? o0 + tw : OC;
        float beta = 0.0f;
        if (bias || resid) {
            beta = 1.0f;
            for (int n = 0; n < N; n++) {
                float *o = out + (size_t)n * ldo;
                const float *r = resid ? resid + (size_t)n * OC : NULL;
                for (int j = o0; j < o1; j++) o[j] = (r ? r[j] : 0.0f) + (bias ? bias[j] : 0.0f);
            }
        }
        gemm_nt(N, o1 - o0, C, inp, C, w + (size_t)o0 * C, C, beta, out + o0, ldo);
    }
}

/* For out = inp w^T + bias: dinp(N,C) (+)= dout w; dw(OC,C) = dout^T inp;
 * dbias(OC) = column sums of dout (optional). dout is (N,OC) with row
 * stride lddo. Tiles: columns of C for dinp, rows of OC for dw and dbias. */
static void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, int lddo,
                            const float *inp, const float *w, int N, int C, int OC,
                            int dinp_accumulate)
{
    /* Tiles are unequal, so threads take them as they go. */
    int cw = layer_tile_width(C), nc = dinp ? (C + cw - 1) / cw : 0;
    int ow = layer_tile_width(OC), no = (OC + ow - 1) / ow;
#pragma omp parallel for schedule(dynamic, 1) num_threads(gpt2_get_threads())
    for (int tile = 0; tile < nc + no; tile++) {
        if (tile < nc) {
            int c0 = tile * cw, c1 = c0 + cw < C ? c0 + cw : C;
            gemm_nn(N, c1 - c0, OC, dout, lddo, w + c0, C, dinp_accumulate ? 1.0f : 0.0f,
                    dinp + c0, C);
            continue;
        }
        int o0 = (tile - nc) * ow, o1 = o0 + ow < OC ? o0 + ow : OC;
        gemm_tn(o1 - o0, C, N, dout + o0, lddo, inp, C, 0.0f, dw + (size_t)o0 * C, C);
        if (dbias) {
            for (int j = o0; j < o1; j++) dbias[j] = 0.0f;
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * lddo;
                for (int j = o0; j < o1; j++) dbias[j] += g[j];
            }
        }
    }
}

/* Attention's inner products q.k and dy.v are short (hs = 64 in GPT-2),
 * and a plain loop adds each one's terms in a single chain, one add
 * waiting for the one before: latency-bound, most of attention's time. So
 * they are taken DOT_BLOCK keys (or values) at a time from a transposed
 * copy of the head, each summed over i in the same order as the plain
 * loop, one vector lane per key: the same bits, several times faster.
 * GPT2_WIDE compiles the per-head bodies for AVX-512F and AVX2 as well as
 * the baseline and picks one when the program loads (GCC on x86-64 Linux),
 * as libdescent's kernels do; the build is ISO C, so no FMA contraction:
 * every width gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(DESCENT_NO_CLONES)
#define GPT2_WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GPT2_WIDE
#endif
#define DOT_BLOCK 16

/* s[j] = sum over i < n, in order, of x[i] * cols[i * ld + j], for
 * j < DOT_BLOCK: dot products of x with DOT_BLOCK adjacent columns (the
 * sums in locals: s may point into memory the compiler cannot tell apart
 * from the inputs, and would otherwise store every partial sum). */
GPT2_INLINE void dot_cols(float *s, const float *x, const float *cols, size_t ld, int n)
{
    float acc[DOT_BLOCK] = {0};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < DOT_BLOCK; j++) acc[j] += x[i] * cols[(size_t)i * ld + j];
    for (int j = 0; j < DOT_BLOCK; j++) s[j] = acc[j];
}

/* The same for one column. */
GPT2_INLINE float dot_col(const float *x, const float *col, size_t ld, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += x[i] * col[(size_t)i * ld];
    return s;
}

/* s[u] = x . (column u of the hs x T block xt) for u <= t: whole blocks of
 * DOT_BLOCK columns while they fit in T (entries past t are computed and
 * dropped), single columns after. */
GPT2_INLINE void dot_upto(float *s, const float *x, const float *xt, int t, int T, int hs)
{
    int u = 0;
    for (; u <= t && u + DOT_BLOCK <= T; u += DOT_BLOCK) {
        float blk[DOT_BLOCK];
        dot_cols(blk, x, xt + u, (size_t)T, hs);
        int n = t + 1 - u < DOT_BLOCK ? t + 1 - u : DOT_BLOCK;
        for (int j = 0; j < n; j++) s[u + j] = blk[j];
    }
    for (; u <= t; u++) s[u] = dot_col(x, xt + u, (size_t)T, hs);
}

/* y += a x, and the two updates of attention's backward pass; restrict on
 * parameters (kept through inlining) spares GCC its runtime overlap checks
 * in these short loops. */
GPT2_INLINE void axpy(float *restrict y, const float *restrict x, float a, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

GPT2_INLINE void axpy2(float *restrict y1, const float *restrict x1, float *restrict y2,
                       const float *restrict x2, float a, int n)
{
    for (int i = 0; i < n; i++) {
        y1[i] += a * x1[i];
        y2[i] += a * x2[i];
    }
}

/* A head's T rows of hs columns (row stride ld) to or from a dense T x hs
 * block. In qkv the rows of one head lie 3C floats apart: 9 KB in GPT-2
 * small, a stride that maps every row to the same few sets of the L1
 * cache, so the head's q, k and v (48 KB) kept evicting each other. Dense
 * copies fit, and the arithmetic on them is unchanged. */
static void head_gather(float *dst, const float *src, size_t ld, int T, int hs)
{
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * hs, src + (size_t)t * ld, hs * sizeof(float));
}

/* The same block transposed: dst (hs x T), dst[i T + t] = src[t ld + i]. */
static void head_gather_t(float *dst, const float *src, size_t ld, int T, int hs)
{
    for (int t = 0; t < T; t++)
        for (int i = 0; i < hs; i++) dst[(size_t)i * T + t] = src[(size_t)t * ld + i];
}

static void head_scatter(float *dst, size_t ld, const float *src, int T, int hs)
{
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * ld, src + (size_t)t * hs, hs * sizeof(float));
}

/* One sequence b and head h of attention_forward; work holds 2 T hs floats. */
GPT2_WIDE static void attention_forward_head(float *out, float *att, const float *qkv,
                                             float *work, int b, int h, int T, int C, int NH)
{
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
    const float *base = qkv + (size_t)b * T * C3;
    float *kt = work, *vb = work + (size_t)T * hs; /* this head's k transposed, v dense */
    head_gather_t(kt, base + C + h * hs, C3, T, hs);
    head_gather(vb, base + 2 * C + h * hs, C3, T, hs);
    for (int t = 0; t < T; t++) {
        const float *q = base + (size_t)t * C3 + h * hs;
        float *a = att + (((size_t)b * NH + h) * T + t) * T;
        float mx = -INFINITY;
        int u;
        dot_upto(a, q, kt, t, T, hs);
        for (u = 0; u <= t; u++) {
            float x = a[u] * scale;
            a[u] = x;
            if (x > mx) mx = x;
        }
        float sum = 0.0f;
        for (u = 0; u <= t; u++) {
            a[u] = expf(a[u] - mx);
            sum += a[u];
        }
        float inv = 1.0f / sum;
        for (u = 0; u <= t; u++) a[u] *= inv;
        for (u = t + 1; u < T; u++) a[u] = 0.0f;
        float *y = out + ((size_t)b * T + t) * C + h * hs;
        for (int i = 0; i < hs; i++) y[i] = 0.0f;
        for (u = 0; u <= t; u++) axpy(y, vb + (size_t)u * hs, a[u], hs);
    }
}

/* Causal self-attention. qkv (B,T,3C) holds q | k | v per position, head h
 * in columns h*hs .. (h+1)*hs of each; out (B,T,C); att (B,NH,T,T); work
 * (S_HEADS) gives each (b, h) its own 6 T hs floats, whichever thread takes
 * it. */
static void attention_forward(float *out, float *att, const float *qkv, float *work, int B,
                              int T, int C, int NH)
{
    size_t per = (size_t)6 * T * (C / NH);
#pragma omp parallel for collapse(2) schedule(static) num_threads(gpt2_get_threads())
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            attention_forward_head(out, att, qkv, work + ((size_t)b * NH + h) * per, b, h, T, C,
                                   NH);
}

/* One sequence b and head h of attention_backward; work holds 6 T hs
 * floats: q and k dense, v transposed, and the sums of their gradients,
 * which start at 0 and are copied into dqkv at the end. */
GPT2_WIDE static void attention_backward_head(float *dqkv, float *datt, const float *dout,
                                              const float *att, const float *qkv, float *work,
                                              int b, int h, int T, int C, int NH)
{
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C, Th = (size_t)T * hs;
    const float *base = qkv + (size_t)b * T * C3;
    float *qb = work, *kb = qb + Th, *vt = kb + Th, *dqb = vt + Th, *dkb = dqb + Th,
          *dvb = dkb + Th;
    head_gather(qb, base + h * hs, C3, T, hs);
    head_gather(kb, base + C + h * hs, C3, T, hs);
    head_gather_t(vt, base + 2 * C + h * hs, C3, T, hs);
    memset(dqb, 0, 3 * Th * sizeof(float));
    for (int t = 0; t < T; t++) {
        const float *a = att + (((size_t)b * NH + h) * T + t) * T;
        float *da = datt + (((size_t)b * NH + h) * T + t) * T;
        const float *dy = dout + ((size_t)b * T + t) * C + h * hs;
        /* y = sum_u a[u] v[u]: da[u] = dy . v[u], dv[u] += a[u] dy */
        int u;
        dot_upto(da, dy, vt, t, T, hs);
        float dot = 0.0f;
        for (u = 0; u <= t; u++) {
            axpy(dvb + (size_t)u * hs, dy, a[u], hs);
            dot += a[u] * da[u];
        }
        /* softmax: dpre[u] = a[u] (da[u] - sum_j a[j] da[j]), then
         * pre[u] = scale q . k[u] */
        const float *q = qb + (size_t)t * hs;
        float *dq = dqb + (size_t)t * hs;
        for (u = 0; u <= t; u++) {
            float dp = a[u] * (da[u] - dot) * scale;
            axpy2(dq, kb + (size_t)u * hs, dkb + (size_t)u * hs, q, dp, hs);
        }
    }
    float *dbase = dqkv + (size_t)b * T * C3;
    head_scatter(dbase + h * hs, C3, dqb, T, hs);
    head_scatter(dbase + C + h * hs, C3, dkb, T, hs);
    head_scatter(dbase + 2 * C + h * hs, C3, dvb, T, hs);
}

/* dqkv (overwritten) from dout (B,T,C), att and qkv; datt is (B,NH,T,T)
 * scratch, work as for attention_forward. Each (b, h) writes only its own
 * columns, so threads never share. */
static void attention_backward(float *dqkv, float *datt, const float *dout, const float *att,
                               const float *qkv, float *work, int B, int T, int C, int NH)
{
    size_t per = (size_t)6 * T * (C / NH);
#pragma omp parallel for collapse(2) schedule(static) num_threads(gpt2_get_threads())
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            attention_backward_head(dqkv, datt, dout, att, qkv, work + ((size_t)b * NH + h) * per,
                                    b, h, T, C, NH);
}

/* The softmax over the vocabulary is the one place where a transcendental
 * runs per logit (B*T*V of them), so it gets a vectorizable exp and
 * reductions with 8 fixed lanes (same bits at any thread count: one row
 * is one thread's). GELU reuses the exp for its tanh. */

GPT2_WIDE static float row_max(const float *z, int n)
{
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = z[i + j] > m[j] ? z[i + j] : m[j];
    for (; i < n; i++) m[0] = z[i] > m[0] ? z[i] : m[0];
    float r = m[0];
    for (int j = 1; j < 8; j++) r = m[j] > r ? m[j] : r;
    return r;
}

/* exp(x) for x <= 0 (x - max of a row): x = k ln2 + f with |f| <= ln2/2,
 * exp(f) by its degree-6 Taylor polynomial (relative error < 3e-7 here),
 * 2^k by building the exponent bits. Below x = -87, k stops at -126 and
 * the result is some positive number under 1e-28 instead of exp(x) (an
 * even Taylor polynomial of exp has no real root): a probability that
 * small is 0 for every purpose here. Integer clamping and no float
 * comparison keep the loop vectorizable (float compares may trap, so the
 * compiler will not if-convert them). */
GPT2_INLINE float exp_nonpos(float x)
{
    /* Clamp before anything is converted to an integer: a float -> int32
     * conversion of a value out of range (huge activations) or of a NaN is
     * undefined behaviour in C. Below -87, exp(x) < 2^-125 is returned as
     * exp(-87) ~ 1.6e-38, as good as 0 next to the other terms; the
     * comparisons are false for NaN, so a NaN stays a NaN (through p) and
     * reaches the loss, where the trainer sees it. */
    x = x < -87.0f ? -87.0f : x;
    x = x > 0.0f ? 0.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float k = t - shifter;
    float f = x - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
    float p = 1.0f + f * (1.0f + f * (0.5f + f * (1.0f / 6 + f * (1.0f / 24 +
              f * (1.0f / 120 + f * (1.0f / 720))))));
    int32_t ki = k >= -126.0f ? (int32_t)k : -126; /* k in [-126, 0], or NaN */
    int32_t bits = (ki + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */

/* tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|) <= 1, through
 * exp_nonpos so the GELU loops vectorize (glibc's tanhf is a call per
 * element). Absolute error below 1e-7, which is what GELU needs: it adds
 * tanh to 1. */
GPT2_INLINE float tanh_fast(float u)
{
    uint32_t ub, sign, ab;
    memcpy(&ub, &u, sizeof ub);
    sign = ub & 0x80000000u;
    ab = ub & 0x7fffffffu;
    float a;
    memcpy(&a, &ab, sizeof a);
    float e = exp_nonpos(-2.0f * a);
    float r = (1.0f - e) / (1.0f + e);
    uint32_t rb;
    memcpy(&rb, &r, sizeof rb);
    rb |= sign;
    memcpy(&r, &rb, sizeof r);
    return r;
}

/* GELU is compute-bound (a polynomial and a divide per element), so its
 * loops are GPT2_WIDE functions over a range, run outside the OpenMP region
 * (inside an outlined region GCC would vectorize them for the baseline
 * only); each thread takes one contiguous range. */
GPT2_WIDE static void gelu_forward_range(float *restrict out, const float *restrict inp,
                                         size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_fast(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

/* d (in place: dout on entry, dinp on exit) times GELU'(inp). */
GPT2_WIDE static void gelu_backward_range(float *restrict d, const float *restrict inp,
                                          size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float th = tanh_fast(u);
        float sech2 = 1.0f - th * th;
        float grad = 0.5f * (1.0f + th) +
                     0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        d[i] *= grad;
    }
}

/* This thread's share of [0, n), in multiples of 16 floats (whole cache
 * lines). Element-wise results do not depend on the cut. */
static void thread_share(size_t n, size_t *lo, size_t *hi)
{
    size_t nth = (size_t)thread_count(), share = (n + nth - 1) / nth;
    share = (share + 15) / 16 * 16;
    size_t a = (size_t)thread_id() * share;
    *lo = a < n ? a : n;
    *hi = a + share < n ? a + share : n;
}

static void gelu_forward(float *out, const float *inp, size_t n)
{
#pragma omp parallel num_threads(gpt2_get_threads())
    {
        size_t lo, hi;
        thread_share(n, &lo, &hi);
        gelu_forward_range(out, inp, lo, hi);
    }
}

static void gelu_backward(float *d, const float *inp, size_t n)
{
#pragma omp parallel num_threads(gpt2_get_threads())
    {
        size_t lo, hi;
        thread_share(n, &lo, &hi);
        gelu_backward_range(d, inp, lo, hi);
    }
}

/* ------------------------------------------------------------ LM head */

/* z[i] = exp(z[i] - mx) for i < n; returns their sum (8 lanes, then in order). */
GPT2_WIDE static float exp_shift_sum(float *z, int n, float mx)
{
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            z[i + j] = exp_nonpos(z[i + j] - mx);
            s[j] += z[i + j];
        }
    for (; i < n; i++) {
        z[i] = exp_nonpos(z[i] - mx);
        s[0] += z[i];
    }
    float r = 0.0f;
    for (int j = 0; j < 8; j++) r += s[j];
    return r;
}

/* logits(N, V) [ld Vp] = lnf(N, C) wte(V, C)^T, fused with the softmax.
 * The logits are the largest activation (B*T x V: 51 MB for GPT-2 at
 * B*T = 256), so each is touched as few times as possible: threads take
 * column tiles, and right after a tile's sgemm, while it is in cache, each
 * row's target logit is kept (tlogit, for the loss), the tile's max m is
 * found and the logits are replaced by e = exp(z - m), with their sum; the
 * maxima and sums go to stat ((tile, 2, N): maxima, then sums). One exp per
 * logit, as a plain softmax; the normalisation waits for the backward pass
 * (head_backward), which needs the row's max and sum over all tiles first.
 * Without targets the logits stay raw (gpt2_logits). Each tile is one
 * thread's, rows in order: the same bits at any thread count. */
static void head_forward(float *logits, float *stat, float *tlogit, const float *lnf,
                         const float *wte, const int *targets, int N, int C, int V, int Vp)
{
    int tw = tile_width(V, 32), ntiles = (V + tw - 1) / tw;
#pragma omp parallel for schedule(dynamic, 1) num_threads(gpt2_get_threads())
    for (int tile = 0; tile < ntiles; tile++) {
        int o0 = tile * tw, w = (o0 + tw < V ? o0 + tw : V) - o0;
        gemm_nt(N, w, C, lnf, C, wte + (size_t)o0 * C, C, 0.0f, logits + o0, Vp);
        if (!targets) continue;
        float *tmax = stat + (size_t)tile * 2 * N, *tsum = tmax + N;
        for (int n = 0; n < N; n++) {
            float *z = logits + (size_t)n * Vp + o0;
            int t = targets[n] - o0;
            if (t >= 0 && t < w) tlogit[n] = z[t]; /* the one tile holding the target */
            tmax[n] = row_max(z, w);
            tsum[n] = exp_shift_sum(z, w, tmax[n]);
        }
    }
}

/* The head's backward pass, tile by tile, so each tile is read from memory
 * once and written once: while it is in cache, e = exp(z - m_tile) becomes
 * d loss / d logits = (p - onehot) / N with p = e exp(m_tile - M) / S (M,
 * S: the row's max and sum of exp(z - M) over all tiles, from the forward
 * pass), then feeds dwte's rows of the tile (dlogits^T lnf) and its share
 * of dlnf (dlogits wte). dlnf sums over all tiles: a fixed number of groups
 * of consecutive tiles (head_groups, never the thread count) each add their
 * tiles in order into their own partial (the first into dlnf itself, the
 * others into parts), and the partials are added in group order, so the
 * bits do not depend on how many threads took the groups. */
static void head_backward(float *logits, float *dlnf, float *parts, float *dwte,
                          const float *lnf, const float *wte, const float *stat,
                          const int *targets, const gpt2_config *c, int N)
{
    int C = c->channels, V = c->vocab_size, Vp = c->padded_vocab_size;
    int tw = head_tile_width(c), ntiles = head_tiles(c), groups = head_groups(c);
    const float *rowmax = stat + (size_t)ntiles * 2 * N, *rowsum = rowmax + N;
    float invN = 1.0f / (float)N;
#pragma omp parallel for schedule(dynamic, 1) num_threads(gpt2_get_threads())
    for (int g = 0; g < groups; g++) {
        int t0 = g * ntiles / groups, t1 = (g + 1) * ntiles / groups;
        float *part = g == 0 ? dlnf : parts + (size_t)(g - 1) * N * C;
        for (int tile = t0; tile < t1; tile++) {
            int o0 = tile * tw, w = (o0 + tw < V ? o0 + tw : V) - o0;
            const float *tmax = stat + (size_t)tile * 2 * N;
            for (int n = 0; n < N; n++) {
                float *z = logits + (size_t)n * Vp + o0;
                float scale = exp_nonpos(tmax[n] - rowmax[n]) * (invN / rowsum[n]);
                for (int i = 0; i < w; i++) z[i] *= scale;
                int t = targets[n] - o0;
                if (t >= 0 && t < w) z[t] -= invN;
            }
            gemm_tn(w, C, N, logits + o0, Vp, lnf, C, 0.0f, dwte + (size_t)o0 * C, C);
            gemm_nn(N, C, w, logits + o0, Vp, wte + (size_t)o0 * C, C, tile == t0 ? 0.0f : 1.0f,
                    part, C);
        }
    }
    if (groups < 2) return;
    size_t NC = (size_t)N * C;
#pragma omp parallel for schedule(static) num_threads(gpt2_get_threads())
    for (size_t i = 0; i < NC; i++) {
        float sum = dlnf[i];
        for (int g = 1; g < groups; g++) sum += parts[(size_t)(g - 1) * NC + i];
        dlnf[i] = sum;
    }
}

/* ------------------------------------------------------------ forward */

int gpt2_forward(gpt2_model *m, const int *inputs, const int *targets, int B, int T,
                 double *loss, char *err, size_t errlen)
{
    const gpt2_config *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->max_seq_len) {
        lab_set_err(err, errlen, "batch %d x %d: need B >= 1 and 1 <= T <= %d", B, T,
                c->max_seq_len);
        return -1;
    }
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size ||
            (targets && (targets[i] < 0 || targets[i] >= c->vocab_size))) {
            lab_set_err(err, errlen, "token %d at position %zu is outside [0, %d)",
                    inputs[i] < 0 || inputs[i] >= c->vocab_size ? inputs[i] : targets[i], i,
                    c->vocab_size);
            return -1;
        }
    }
    if (ensure_acts(m, B, T, err, errlen)) return -1;
    m->inputs = inputs;
    m->targets = targets;
    m->have_targets = targets != NULL;
    act_views v;
    act_point(m, &v);
    int C = c->channels, L = c->num_layers, NH = c->num_heads, V = c->vocab_size;
    int Vp = c->padded_vocab_size, N = (int)BT;
    float *sc[S_COUNT];
    scratch_point(m, sc);
    float *heads = sc[S_HEADS];
    int saved = blas_begin();

    /* embeddings */
#pragma omp parallel for schedule(static) num_threads(gpt2_get_threads())
    for (int n = 0; n < N; n++) {
        const float *te = m->param[GPT2_WTE] + (size_t)inputs[n] * C;
        const float *pe = m->param[GPT2_WPE] + (size_t)(n % T) * C;
        float *o = v.a[A_ENCODED] + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = te[i] + pe[i];
    }
    for (int l = 0; l < L; l++) {
        size_t lc = (size_t)l * BT * C, lt = (size_t)l * BT;
        const float *resid = l == 0 ? v.a[A_ENCODED] : v.a[A_RES3] + lc - BT * C;
        float *ln1 = v.a[A_LN1] + lc, *qkv = v.a[A_QKV] + 3 * lc, *atty = v.a[A_ATTY] + lc;
        float *att = v.a[A_ATT] + (size_t)l * B * NH * T * T;
        float *res2 = v.a[A_RES2] + lc, *ln2 = v.a[A_LN2] + lc;
        float *fch = v.a[A_FCH] + 4 * lc, *fchg = v.a[A_FCH_GELU] + 4 * lc;
        float *res3 = v.a[A_RES3] + lc;
        layernorm_forward(ln1, v.a[A_LN1_MEAN] + lt, v.a[A_LN1_RSTD] + lt, resid,
                          m->param[GPT2_LN1W] + (size_t)l * C,
                          m->param[GPT2_LN1B] + (size_t)l * C, N, C);
        matmul_forward(qkv, 3 * C, ln1, m->param[GPT2_QKVW] + (size_t)l * 3 * C * C,
                       m->param[GPT2_QKVB] + (size_t)l * 3 * C, NULL, N, C, 3 * C);
        attention_forward(atty, att, qkv, heads, B, T, C, NH);
        matmul_forward(res2, C, atty, m->param[GPT2_ATTPROJW] + (size_t)l * C * C,
                       m->param[GPT2_ATTPROJB] + (size_t)l * C, resid, N, C, C);
        layernorm_forward(ln2, v.a[A_LN2_MEAN] + lt, v.a[A_LN2_RSTD] + lt, res2,
                          m->param[GPT2_LN2W] + (size_t)l * C,
                          m->param[GPT2_LN2B] + (size_t)l * C, N, C);
        matmul_forward(fch, 4 * C, ln2, m->param[GPT2_FCW] + (size_t)l * 4 * C * C,
                       m->param[GPT2_FCB] + (size_t)l * 4 * C, NULL, N, C, 4 * C);
        gelu_forward(fchg, fch, (size_t)N * 4 * C);
        matmul_forward(res3, C, fchg, m->param[GPT2_FCPROJW] + (size_t)l * 4 * C * C,
                       m->param[GPT2_FCPROJB] + (size_t)l * C, res2, N, 4 * C, C);
    }
    const float *last = v.a[A_RES3] + (size_t)(L - 1) * BT * C;
    layernorm_forward(v.a[A_LNF], v.a[A_LNF_MEAN], v.a[A_LNF_RSTD], last,
                      m->param[GPT2_LNFW], m->param[GPT2_LNFB], N, C);
    /* the tied head: logits over the V real tokens only, and with targets
     * each tile's softmax statistics while it is in cache */
    float *stat = v.a[A_HEADSTAT], *losses = v.a[A_LOSSES];
    head_forward(v.a[A_LOGITS], stat, losses, v.a[A_LNF], m->param[GPT2_WTE], targets, N, C, V,
                 Vp);
    blas_end(saved);

    if (!targets) {
        if (loss) *loss = 0.0;
        return 0;
    }
    /* per row: the max over the tiles' maxima, the tiles' sums rescaled to
     * it and added in tile order, and the cross-entropy log(sum) + max - z
     * (losses holds the target logits on entry) */
    int ntiles = head_tiles(c);
    float *rowmax = stat + (size_t)ntiles * 2 * N, *rowsum = rowmax + N;
#pragma omp parallel for schedule(static) num_threads(gpt2_get_threads())
    for (int n = 0; n < N; n++) {
        float mx = -INFINITY, sum = 0.0f;
        for (int t = 0; t < ntiles; t++) {
            float tm = stat[(size_t)t * 2 * N + n];
            mx = tm > mx ? tm : mx;
        }
        for (int t = 0; t < ntiles; t++)
            sum += stat[((size_t)t * 2 + 1) * N + n] * exp_nonpos(stat[(size_t)t * 2 * N + n] - mx);
        rowmax[n] = mx;
        rowsum[n] = sum;
        losses[n] = logf(sum) + mx - losses[n];
    }
    double total = 0.0;
    for (int n = 0; n < N; n++) total += losses[n];
    m->loss = total / N;
    if (loss) *loss = m->loss;
    return 0;
}

const float *gpt2_logits(const gpt2_model *m, int b, int t)
{
    act_views v;
    act_point(m, &v);
    return v.a[A_LOGITS] + ((size_t)b * m->T + t) * m->cfg.padded_vocab_size;
}

/* ------------------------------------------------------------ backward */

int gpt2_backward(gpt2_model *m)
{
    if (!m->acts || !m->have_targets) return -1;
    m->have_targets = 0; /* the logits become their gradient below */
    const gpt2_config *c = &m->cfg;
    int B = m->B, T = m->T, C = c->channels, L = c->num_layers, NH = c->num_heads;
    int N = B * T;
    size_t BT = (size_t)N;
    act_views v;
    act_point(m, &v);
    float *s[S_COUNT];
    scratch_point(m, s);
    float *dres = s[S_DRES];
    int saved = blas_begin();

    /* tied head: dlogits, dlnf = dlogits wte, dwte[:V] = dlogits^T lnf (rows
     * V..Vp stay 0), tile by tile */
    head_backward(v.a[A_LOGITS], s[S_DBUF], s[S_DLNF], m->grad[GPT2_WTE], v.a[A_LNF],
                  m->param[GPT2_WTE], v.a[A_HEADSTAT], m->targets, c, N);
    layernorm_backward(dres, m->grad[GPT2_LNFW], m->grad[GPT2_LNFB], s[S_DBUF],
                       v.a[A_RES3] + (size_t)(L - 1) * BT * C, m->param[GPT2_LNFW],
                       v.a[A_LNF_MEAN], v.a[A_LNF_RSTD], N, C, 0);

    for (int l = L - 1; l >= 0; l--) {
        size_t lc = (size_t)l * BT * C, lt = (size_t)l * BT;
        const float *resid = l == 0 ? v.a[A_ENCODED] : v.a[A_RES3] + lc - BT * C;
        const float *ln1 = v.a[A_LN1] + lc, *qkv = v.a[A_QKV] + 3 * lc;
        const float *atty = v.a[A_ATTY] + lc;
        const float *att = v.a[A_ATT] + (size_t)l * B * NH * T * T;
        const float *res2 = v.a[A_RES2] + lc, *ln2 = v.a[A_LN2] + lc;
        const float *fch = v.a[A_FCH] + 4 * lc, *fchg = v.a[A_FCH_GELU] + 4 * lc;
        size_t lC = (size_t)l * C;
        /* res3 = res2 + fchg fcprojw^T + b: dres flows on to res2 unchanged */
        matmul_backward(s[S_DFCH], m->grad[GPT2_FCPROJW] + lC * 4 * C,
                        m->grad[GPT2_FCPROJB] + lC, dres, C, fchg,
                        m->param[GPT2_FCPROJW] + lC * 4 * C, N, 4 * C, C, 0);
        gelu_backward(s[S_DFCH], fch, BT * 4 * C);
        matmul_backward(s[S_DBUF], m->grad[GPT2_FCW] + lC * 4 * C, m->grad[GPT2_FCB] + 4 * lC,
                        s[S_DFCH], 4 * C, ln2, m->param[GPT2_FCW] + lC * 4 * C, N, C, 4 * C, 0);
        layernorm_backward(dres, m->grad[GPT2_LN2W] + lC, m->grad[GPT2_LN2B] + lC, s[S_DBUF],
                           res2, m->param[GPT2_LN2W] + lC, v.a[A_LN2_MEAN] + lt,
                           v.a[A_LN2_RSTD] + lt, N, C, 1);
        /* res2 = resid + atty attprojw^T + b */
        matmul_backward(s[S_DBUF], m->grad[GPT2_ATTPROJW] + lC * C,
                        m->grad[GPT2_ATTPROJB] + lC, dres, C, atty,
                        m->param[GPT2_ATTPROJW] + lC * C, N, C, C, 0);
        attention_backward(s[S_DQKV], s[S_DATT], s[S_DBUF], att, qkv, s[S_HEADS], B, T, C,
                           NH);
        matmul_backward(s[S_DBUF], m->grad[GPT2_QKVW] + lC * 3 * C,
                        m->grad[GPT2_QKVB] + 3 * lC, s[S_DQKV], 3 * C, ln1,
                        m->param[GPT2_QKVW] + lC * 3 * C, N, C, 3 * C, 0);
        layernorm_backward(dres, m->grad[GPT2_LN1W] + lC, m->grad[GPT2_LN1B] + lC, s[S_DBUF],
                           resid, m->param[GPT2_LN1W] + lC, v.a[A_LN1_MEAN] + lt,
                           v.a[A_LN1_RSTD] + lt, N, C, 1);
    }
    blas_end(saved);

    /* embeddings: dres is d encoded. Threads own channel slices and add the
     * positions in order, so repeated tokens sum the same way every time. */
    const int *inputs = m->inputs;
    float *dwte = m->grad[GPT2_WTE], *dwpe = m->grad[GPT2_WPE];
    memset(dwpe + (size_t)T * C, 0, (size_t)(c->max_seq_len - T) * C * sizeof(float));
#pragma omp parallel num_threads(gpt2_get_threads())
    {
        int c0, c1;
        split_range(C, thread_id(), thread_count(), 16, &c0, &c1);
        for (int t = 0; t < T; t++)
            for (int i = c0; i < c1; i++) dwpe[(size_t)t * C + i] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *g = dres + (size_t)n * C;
            float *te = dwte + (size_t)inputs[n] * C, *pe = dwpe + (size_t)(n % T) * C;
            for (int i = c0; i < c1; i++) {
                te[i] += g[i];
                pe[i] += g[i];
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ views */

/* Per-layer tensors, in the order views list them within a layer. */
static const struct {
    int tensor;
    const char *suffix;
    int rows_mult, cols_mult; /* shape in units of C: (rows_mult C, cols_mult C); 0 cols: 1-D */
} layer_views[] = {
    {GPT2_LN1W, "ln_1.weight", 1, 0},          {GPT2_LN1B, "ln_1.bias", 1, 0},
    {GPT2_QKVW, "attn.c_attn.weight", 3, 1},   {GPT2_QKVB, "attn.c_attn.bias", 3, 0},
    {GPT2_ATTPROJW, "attn.c_proj.weight", 1, 1}, {GPT2_ATTPROJB, "attn.c_proj.bias", 1, 0},
    {GPT2_LN2W, "ln_2.weight", 1, 0},          {GPT2_LN2B, "ln_2.bias", 1, 0},
    {GPT2_FCW, "mlp.c_fc.weight", 4, 1},       {GPT2_FCB, "mlp.c_fc.bias", 4, 0},
    {GPT2_FCPROJW, "mlp.c_proj.weight", 1, 4}, {GPT2_FCPROJB, "mlp.c_proj.bias", 1, 0},
};
#define NLAYER_VIEWS ((int)(sizeof layer_views / sizeof layer_views[0]))

int gpt2_view_count(const gpt2_model *m) { return 4 + NLAYER_VIEWS * m->cfg.num_layers; }

void gpt2_view_at(const gpt2_model *m, int i, gpt2_view *v)
{
    const gpt2_config *c = &m->cfg;
    int64_t C = c->channels;
    memset(v, 0, sizeof *v);
    v->layer = -1;
    int last = gpt2_view_count(m) - 2;
    if (i == 0 || i == 1) {
        v->tensor = i == 0 ? GPT2_WTE : GPT2_WPE;
        snprintf(v->name, sizeof v->name, "%s", i == 0 ? "wte" : "wpe");
        v->ndim = 2;
        v->shape[0] = i == 0 ? c->padded_vocab_size : c->max_seq_len;
        v->shape[1] = C;
        v->data = m->param[v->tensor];
        v->grad = m->grad[v->tensor];
        return;
    }
    if (i >= last) {
        v->tensor = i == last ? GPT2_LNFW : GPT2_LNFB;
        snprintf(v->name, sizeof v->name, "%s", i == last ? "ln_f.weight" : "ln_f.bias");
        v->ndim = 1;
        v->shape[0] = C;
        v->data = m->param[v->tensor];
        v->grad = m->grad[v->tensor];
        return;
    }
    int k = i - 2, l = k / NLAYER_VIEWS, j = k % NLAYER_VIEWS;
    v->tensor = layer_views[j].tensor;
    v->layer = l;
    snprintf(v->name, sizeof v->name, "h.%d.%s", l, layer_views[j].suffix);
    int64_t rows = layer_views[j].rows_mult * C;
    int64_t cols = layer_views[j].cols_mult * C;
    size_t per_layer = (size_t)(rows * (cols ? cols : 1));
    v->ndim = cols ? 2 : 1;
    v->shape[0] = rows;
    v->shape[1] = cols;
    v->data = m->param[v->tensor] + (size_t)l * per_layer;
    v->grad = m->grad[v->tensor] + (size_t)l * per_layer;
}
