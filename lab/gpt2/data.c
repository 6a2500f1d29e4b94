/* data.c - llm.c token files: atomic write, checked read; the batch loader.
 *
 * Contract in data.h. Byte order is fixed (little-endian) whatever the host:
 * values are assembled byte by byte. Not here: sharded data sets (one file
 * per split is enough for the corpora descent uses), memory mapping (the
 * largest split, SOTU train, is 3.7 MB).
 */
#include "data.h"
#include "labfile.h"
#include "rng.h"

#include "tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int gpt2_tokens_write(const char *path, const uint16_t *tokens, size_t n, char *err,
                      size_t errlen)
{
    if (n > 0x7FFFFFFF) {
        lab_set_err(err, errlen, "%s: %zu tokens do not fit the int32 count of the header", path, n);
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        lab_set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        lab_set_err(err, errlen, "%s: cannot create a temporary file beside it: %s", path,
                strerror(errno));
        free(tmp);
        return -1;
    }
    unsigned char buf[1 << 15];
    memset(buf, 0, GPT2_TOKENS_HEADER_BYTES);
    put_u32(buf, GPT2_TOKENS_MAGIC);
    put_u32(buf + 4, GPT2_TOKENS_VERSION);
    put_u32(buf + 8, (uint32_t)n);
    int bad = write_all(fd, buf, GPT2_TOKENS_HEADER_BYTES);
    for (size_t i = 0; i < n && !bad;) {
        size_t k = 0;
        for (; i < n && k < sizeof buf; i++, k += 2) {
            buf[k] = (unsigned char)tokens[i];
            buf[k + 1] = (unsigned char)(tokens[i] >> 8);
        }
        bad = write_all(fd, buf, k);
    }
    if (!bad) bad = fsync(fd);
    if (close(fd) && !bad) bad = -1;
    if (!bad) bad = rename(tmp, path);
    if (bad) {
        lab_set_err(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* Make the rename itself durable: fsync the directory (best effort). */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        int dfd = open(slash ? (slash == dir ? "/" : dir) : ".", O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

int gpt2_tokens_read(const char *path, int vocab_size, uint16_t **tokens, size_t *n, char *err,
                     size_t errlen)
{
    FILE *f = lab_open_input(path, "token file", err, errlen);
    if (!f) return -1;
    struct stat st;
    unsigned char head[GPT2_TOKENS_HEADER_BYTES];
    uint16_t *tok = NULL;
    if (fstat(fileno(f), &st)) {
        lab_set_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    if (size < GPT2_TOKENS_HEADER_BYTES || fread(head, 1, sizeof head, f) != sizeof head) {
        lab_set_err(err, errlen, "%s: %zu bytes, shorter than the 1024-byte header (truncated?)",
                path, size);
        goto fail;
    }
    uint32_t magic = get_u32(head), version = get_u32(head + 4), count = get_u32(head + 8);
    if (magic != GPT2_TOKENS_MAGIC) {
        lab_set_err(err, errlen, "%s: magic %u, expected %d: not an llm.c token file", path, magic,
                GPT2_TOKENS_MAGIC);
        goto fail;
    }
    if (version != GPT2_TOKENS_VERSION) {
        lab_set_err(err, errlen, "%s: version %u, expected %d", path, version, GPT2_TOKENS_VERSION);
        goto fail;
    }
    if (count > 0x7FFFFFFF || size != GPT2_TOKENS_HEADER_BYTES + 2 * (size_t)count) {
        lab_set_err(err, errlen,
                "%s: header says %u tokens (%zu bytes) but the file has %zu bytes "
                "(truncated or corrupt; re-run `descent gpt2 prepare`)",
                path, count, GPT2_TOKENS_HEADER_BYTES + 2 * (size_t)count, size);
        goto fail;
    }
    tok = malloc(count ? 2 * (size_t)count : 1);
    if (!tok) {
        lab_set_err(err, errlen, "%s: out of memory for %u tokens", path, count);
        goto fail;
    }
    if (fread(tok, 2, count, f) != count) {
        lab_set_err(err, errlen, "%s: read error", path);
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *b = (const unsigned char *)&tok[i];
        tok[i] = (uint16_t)(b[0] | b[1] << 8);
        if (vocab_size > 0 && tok[i] >= vocab_size) {
            lab_set_err(err, errlen, "%s: token %zu is id %u, outside the vocabulary 0..%d (corrupt)",
                    path, i, tok[i], vocab_size - 1);
            goto fail;
        }
    }
    fclose(f);
    *tokens = tok;
    *n = count;
    return 0;
fail:
    free(tok);
    fclose(f);
    return -1;
}

/* ---------------------------------------------------------------- loader */

struct gpt2_loader {
    uint16_t *tokens;
    size_t n;
    int B, T;
    uint64_t seed;
};

gpt2_loader *gpt2_loader_open(const char *path, int B, int T, uint64_t seed, char *err,
                              size_t errlen)
{
    if (B < 1 || T < 1) {
        lab_set_err(err, errlen, "%s: batch shape B=%d T=%d: both must be at least 1", path, B, T);
        return NULL;
    }
    gpt2_loader *l = calloc(1, sizeof *l);
    if (!l) {
        lab_set_err(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (gpt2_tokens_read(path, GPT2_VOCAB_SIZE, &l->tokens, &l->n, err, errlen)) {
        free(l);
        return NULL;
    }
    if (l->n < (size_t)B * (size_t)T + 1) {
        lab_set_err(err, errlen, "%s: %zu tokens, fewer than one batch needs (B*T+1 = %zu)", path,
                l->n, (size_t)B * (size_t)T + 1);
        gpt2_loader_free(l);
        return NULL;
    }
    l->B = B;
    l->T = T;
    l->seed = seed;
    return l;
}

void gpt2_loader_free(gpt2_loader *l)
{
    if (!l) return;
    free(l->tokens);
    free(l);
}

size_t gpt2_loader_num_tokens(const gpt2_loader *l) { return l->n; }

size_t gpt2_loader_num_batches(const gpt2_loader *l)
{
    return (l->n - 1) / ((size_t)l->B * (size_t)l->T);
}

const uint16_t *gpt2_loader_tokens(const gpt2_loader *l) { return l->tokens; }

/* Copies the window of T+1 tokens at start into row b of inputs and targets. */
static void fill_row(const gpt2_loader *l, size_t start, int b, int *inputs, int *targets)
{
    const uint16_t *w = l->tokens + start;
    int *x = inputs + (size_t)b * (size_t)l->T, *y = targets + (size_t)b * (size_t)l->T;
    for (int t = 0; t < l->T; t++) {
        x[t] = w[t];
        y[t] = w[t + 1];
    }
}

void gpt2_loader_sequential(const gpt2_loader *l, uint64_t k, int *inputs, int *targets)
{
    size_t bt = (size_t)l->B * (size_t)l->T;
    size_t base = (size_t)(k % gpt2_loader_num_batches(l)) * bt;
    for (int b = 0; b < l->B; b++) fill_row(l, base + (size_t)b * (size_t)l->T, b, inputs, targets);
}

void gpt2_loader_random(const gpt2_loader *l, uint64_t k, int *inputs, int *targets)
{
    /* Starts 0..N-T-1 inclusive. The modulo bias is below range / 2^64, i.e.
     * under 1e-12 for any corpus descent reads. */
    uint64_t range = (uint64_t)(l->n - (size_t)l->T);
    uint64_t base = lab_mix64(lab_mix64(l->seed) + k);
    for (int b = 0; b < l->B; b++)
        fill_row(l, (size_t)(lab_mix64(base + (uint64_t)b) % range), b, inputs, targets);
}
