/* tensorfile.c - safetensors and .npz readers and writers (tensorfile.h;
 * formats in docs/convert.md); their JSON is read by util/json.c.
 *
 * Every reader is strict and defensive: the input may be anything (the
 * fuzz target feeds it arbitrary bytes), so each length and offset is
 * checked against what is left before it is used, sizes are multiplied
 * only after an overflow check, and a failure frees what was built. */
#include "tensorfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_TENSORS (1 << 20)
#define MAX_DATA ((uint64_t)1 << 40)

static void set_err(char *err, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void set_err(char *err, size_t n, const char *fmt, ...)
{
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ tf_str */

static void str_putn(tf_str *s, const char *text, size_t n)
{
    if (s->oom) return;
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        while (ncap < s->len + n + 1) ncap *= 2;
        char *b = realloc(s->buf, ncap);
        if (!b) {
            s->oom = 1;
            return;
        }
        s->buf = b;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

void tf_str_puts(tf_str *s, const char *text) { str_putn(s, text, strlen(text)); }

void tf_str_printf(tf_str *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        s->oom = 1; /* never with the formats used here; fail loudly if it happens */
        return;
    }
    str_putn(s, tmp, (size_t)n);
}

void tf_str_json(tf_str *s, const char *text)
{
    str_putn(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            str_putn(s, e, 2);
        } else if (*c < 0x20) {
            tf_str_printf(s, "\\u%04x", (unsigned)*c);
        } else {
            str_putn(s, (const char *)c, 1);
        }
    }
    str_putn(s, "\"", 1);
}

void tf_str_free(tf_str *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* ============================================================= tensors */

static const struct {
    const char *name;
    size_t size;
} dtypes[TF_NDTYPES] = {
    [TF_F64] = {"F64", 8}, [TF_F32] = {"F32", 4}, [TF_F16] = {"F16", 2},
    [TF_BF16] = {"BF16", 2}, [TF_I64] = {"I64", 8}, [TF_I32] = {"I32", 4},
    [TF_I16] = {"I16", 2}, [TF_I8] = {"I8", 1}, [TF_U8] = {"U8", 1}, [TF_BOOL] = {"BOOL", 1},
};

const char *tf_dtype_name(tf_dtype d) { return d < TF_NDTYPES ? dtypes[d].name : "?"; }
size_t tf_dtype_size(tf_dtype d) { return d < TF_NDTYPES ? dtypes[d].size : 0; }

static int dtype_from_name(const char *name, tf_dtype *out)
{
    for (int d = 0; d < TF_NDTYPES; d++)
        if (!strcmp(name, dtypes[d].name)) {
            *out = (tf_dtype)d;
            return 1;
        }
    return 0;
}

void tf_free(tf_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->t[i].name);
        free(s->t[i].data);
    }
    for (int i = 0; i < s->nmeta; i++) {
        free(s->meta_key[i]);
        free(s->meta_val[i]);
    }
    free(s->t);
    free(s->meta_key);
    free(s->meta_val);
    memset(s, 0, sizeof *s);
}

const tf_tensor *tf_find(const tf_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

const char *tf_meta(const tf_set *s, const char *key)
{
    for (int i = 0; i < s->nmeta; i++)
        if (!strcmp(s->meta_key[i], key)) return s->meta_val[i];
    return NULL;
}

/* count = product of the shape, with the byte size checked against the
 * limit before any multiplication can overflow. */
static int shape_count(tf_dtype dtype, int ndim, const int64_t *shape, size_t *count,
                       size_t *bytes)
{
    uint64_t c = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (uint64_t)shape[d] > MAX_DATA) return 0;
        if (shape[d] == 0) c = 0;
        else if (c > MAX_DATA / (uint64_t)shape[d]) return 0;
        else c *= (uint64_t)shape[d];
    }
    if (c > MAX_DATA / tf_dtype_size(dtype)) return 0;
    *count = (size_t)c;
    *bytes = (size_t)c * tf_dtype_size(dtype);
    return 1;
}

int tf_add(tf_set *s, const char *name, tf_dtype dtype, int ndim, const int64_t *shape,
           const void *data, char *err, size_t errlen)
{
    if (dtype >= TF_NDTYPES || ndim < 0 || ndim > TF_MAX_NDIM || !name[0]) {
        set_err(err, errlen, "tensor \"%s\": bad dtype, rank or name", name);
        return -1;
    }
    if (tf_find(s, name)) {
        set_err(err, errlen, "two tensors are named \"%s\"", name);
        return -1;
    }
    if (s->n >= MAX_TENSORS) {
        set_err(err, errlen, "more than %d tensors", MAX_TENSORS);
        return -1;
    }
    tf_tensor t = {0};
    t.dtype = dtype;
    t.ndim = ndim;
    for (int d = 0; d < ndim; d++) t.shape[d] = shape[d];
    if (!shape_count(dtype, ndim, shape, &t.count, &t.bytes)) {
        set_err(err, errlen, "tensor \"%s\": shape too large", name);
        return -1;
    }
    if (s->n == s->cap) {
        int ncap = s->cap ? s->cap * 2 : 16;
        tf_tensor *nt = realloc(s->t, (size_t)ncap * sizeof *nt);
        if (!nt) goto oom;
        s->t = nt;
        s->cap = ncap;
    }
    t.name = strdup(name);
    t.data = malloc(t.bytes ? t.bytes : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        goto oom;
    }
    if (t.bytes) memcpy(t.data, data, t.bytes);
    s->t[s->n++] = t;
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    return -1;
}

int tf_set_meta(tf_set *s, const char *key, const char *value, char *err, size_t errlen)
{
    for (int i = 0; i < s->nmeta; i++)
        if (!strcmp(s->meta_key[i], key)) {
            set_err(err, errlen, "metadata key \"%s\" twice", key);
            return -1;
        }
    if (s->nmeta == s->metacap) {
        int ncap = s->metacap ? s->metacap * 2 : 8;
        char **k = realloc(s->meta_key, (size_t)ncap * sizeof *k);
        if (!k) goto oom;
        s->meta_key = k;
        char **v = realloc(s->meta_val, (size_t)ncap * sizeof *v);
        if (!v) goto oom;
        s->meta_val = v;
        s->metacap = ncap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        goto oom;
    }
    s->meta_key[s->nmeta] = k;
    s->meta_val[s->nmeta++] = v;
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    return -1;
}

/* Names must be printable and reasonable: they become keys in JSON and
 * .npy member names. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 1024) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
    return 1;
}

/* A JSON object of string values into the set's metadata. */
static int meta_from_json(tf_set *s, const djson *m, const char *where, char *err, size_t errlen)
{
    if (m->type != DJSON_OBJECT) {
        set_err(err, errlen, "%s is not an object", where);
        return -1;
    }
    for (size_t i = 0; i < m->count; i++) {
        if (m->items[i].type != DJSON_STRING) {
            set_err(err, errlen, "%s: value of \"%.64s\" is not a string", where, m->keys[i]);
            return -1;
        }
        if (tf_set_meta(s, m->keys[i], m->items[i].string, err, errlen)) return -1;
    }
    return 0;
}

/* ========================================================= safetensors */

typedef struct {
    uint64_t begin, end;
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int json_u64(const djson *v, uint64_t max, uint64_t *out)
{
    if (!v || v->type != DJSON_NUMBER || v->number < 0 || v->number > (double)max ||
        v->number != floor(v->number))
        return 0;
    *out = (uint64_t)v->number;
    return 1;
}

int tf_read_safetensors(const unsigned char *buf, size_t len, tf_set *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 8) {
        set_err(err, errlen, "safetensors: %zu bytes, less than the 8-byte header length", len);
        return -1;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)buf[i] << (8 * i);
    if (hl < 2 || hl > len - 8) {
        set_err(err, errlen, "safetensors: header length %" PRIu64 " does not fit a %zu-byte "
                "file (truncated, or not a safetensors file)", hl, len);
        return -1;
    }
    const unsigned char *data = buf + 8 + hl;
    uint64_t data_size = len - 8 - hl;
    djson *root = djson_parse((const char *)buf + 8, (size_t)hl, NULL, err, errlen, NULL);
    if (!root) return -1;
    extent *ext = NULL;
    int rc = -1;
    if (root->type != DJSON_OBJECT) {
        set_err(err, errlen, "safetensors: the header is not a JSON object");
        goto done;
    }
    ext = calloc(root->count + 1, sizeof *ext);
    if (!ext) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    size_t next = 0;
    for (size_t i = 0; i < root->count; i++) {
        const char *name = root->keys[i];
        const djson *e = &root->items[i];
        if (!strcmp(name, "__metadata__")) {
            if (meta_from_json(out, e, "safetensors: __metadata__", err, errlen)) goto done;
            continue;
        }
        if (!name_ok(name)) {
            set_err(err, errlen, "safetensors: a tensor name is empty, too long or has "
                    "control characters");
            goto done;
        }
        const djson *dt = djson_get(e, "dtype"), *shape = djson_get(e, "shape");
        const djson *off = djson_get(e, "data_offsets");
        tf_dtype dtype;
        uint64_t b, en;
        if (e->type != DJSON_OBJECT || e->count != 3 || !dt || dt->type != DJSON_STRING || !shape ||
            shape->type != DJSON_ARRAY || !off || off->type != DJSON_ARRAY || off->count != 2 ||
            !json_u64(&off->items[0], MAX_DATA, &b) || !json_u64(&off->items[1], MAX_DATA, &en)) {
            set_err(err, errlen, "safetensors: entry \"%.200s\" is malformed (needs exactly "
                    "dtype, shape and data_offsets [begin, end])", name);
            goto done;
        }
        if (!dtype_from_name(dt->string, &dtype)) {
            set_err(err, errlen, "safetensors: tensor \"%.200s\" has dtype \"%.16s\", not one of "
                    "F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL", name, dt->string);
            goto done;
        }
        if (shape->count > TF_MAX_NDIM) {
            set_err(err, errlen, "safetensors: tensor \"%.200s\" has %zu dimensions (at most %d)",
                    name, shape->count, TF_MAX_NDIM);
            goto done;
        }
        int64_t dims[TF_MAX_NDIM];
        for (size_t d = 0; d < shape->count; d++) {
            uint64_t x;
            if (!json_u64(&shape->items[d], MAX_DATA, &x)) {
                set_err(err, errlen, "safetensors: tensor \"%.200s\": shape entry %zu is not a "
                        "non-negative integer", name, d);
                goto done;
            }
            dims[d] = (int64_t)x;
        }
        size_t count, bytes;
        if (!shape_count(dtype, (int)shape->count, dims, &count, &bytes)) {
            set_err(err, errlen, "safetensors: tensor \"%.200s\": shape too large", name);
            goto done;
        }
        if (en < b || en > data_size || en - b != bytes) {
            set_err(err, errlen, "safetensors: tensor \"%.200s\": data_offsets [%" PRIu64
                    ", %" PRIu64 "] do not hold %zu bytes inside the %" PRIu64 "-byte data",
                    name, b, en, bytes, data_size);
            goto done;
        }
        if (tf_add(out, name, dtype, (int)shape->count, dims, data + b, err, errlen)) goto done;
        ext[next].begin = b;
        ext[next++].end = en;
    }
    /* The tensors must tile the data section: no overlap, no gap. */
    qsort(ext, next, sizeof *ext, extent_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < next; i++) {
        if (ext[i].begin != at) {
            set_err(err, errlen, "safetensors: the tensors' data_offsets overlap or leave gaps");
            goto done;
        }
        at = ext[i].end;
    }
    if (at != data_size) {
        set_err(err, errlen, "safetensors: %" PRIu64 " bytes of data after the last tensor",
                data_size - at);
        goto done;
    }
    rc = 0;
done:
    djson_free(root, NULL);
    free(ext);
    if (rc) tf_free(out);
    return rc;
}

/* ================================================================= npz */

static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const unsigned char *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* The .npy header dictionary, a Python literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * read strictly: exactly these three keys, each once, in any order. */
typedef struct {
    const char *p, *end;
} lit;

static void lit_ws(lit *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n')) l->p++;
}

static int lit_char(lit *l, char c)
{
    lit_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted word (no escapes) into out. */
static int lit_word(lit *l, char *out, size_t n)
{
    lit_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return 0;
    char q = *l->p++;
    size_t k = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || k + 1 >= n) return 0;
        out[k++] = *l->p++;
    }
    if (l->p >= l->end) return 0;
    l->p++;
    out[k] = '\0';
    return 1;
}

static int npy_descr(const char *d, tf_dtype *out, char *err, size_t errlen)
{
    static const struct {
        const char *descr;
        tf_dtype dtype;
    } known[] = {{"<f8", TF_F64}, {"<f4", TF_F32}, {"<f2", TF_F16}, {"<i8", TF_I64},
                 {"<i4", TF_I32}, {"<i2", TF_I16}, {"|i1", TF_I8},  {"|u1", TF_U8},
                 {"|b1", TF_BOOL}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(d, known[i].descr)) {
            *out = known[i].dtype;
            return 1;
        }
    set_err(err, errlen, "dtype '%s' is not supported (little-endian float64/32/16, int64/32/16/8, "
            "uint8 or bool; big-endian '>' arrays must be converted first)", d);
    return 0;
}

/* One .npy file (a whole zip member) into the set under `name`. */
static int read_npy(const unsigned char *b, size_t n, const char *name, tf_set *out, char *err,
                    size_t errlen)
{
    char why[160] = "";
    if (n < 10 || memcmp(b, "\x93NUMPY", 6)) {
        set_err(err, errlen, "npz: member \"%s\" is not a .npy file (bad magic)", name);
        return -1;
    }
    unsigned major = b[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = rd16(b + 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) goto trunc;
        hlen = rd32(b + 8);
        start = 12;
    } else {
        set_err(err, errlen, "npz: member \"%s\": .npy version %u.%u is not supported", name,
                major, b[7]);
        return -1;
    }
    if (hlen > n - start) goto trunc;
    lit l = {(const char *)b + start, (const char *)b + start + hlen};
    char descr[16] = "", key[32];
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[TF_MAX_NDIM];
    if (!lit_char(&l, '{')) goto bad;
    while (!lit_char(&l, '}')) {
        if (!lit_word(&l, key, sizeof key) || !lit_char(&l, ':')) goto bad;
        if (!strcmp(key, "descr") && !have_descr) {
            if (!lit_word(&l, descr, sizeof descr)) goto bad;
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order") && !have_fortran) {
            lit_ws(&l);
            size_t left = (size_t)(l.end - l.p);
            if (left >= 4 && !memcmp(l.p, "True", 4)) fortran = 1, l.p += 4;
            else if (left >= 5 && !memcmp(l.p, "False", 5)) l.p += 5;
            else goto bad;
            have_fortran = 1;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if (!lit_char(&l, '(')) goto bad;
            while (!lit_char(&l, ')')) {
                lit_ws(&l);
                uint64_t v = 0;
                int digits = 0;
                while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
                    if (v > MAX_DATA) goto bad;
                    v = v * 10 + (uint64_t)(*l.p++ - '0');
                    digits++;
                }
                if (!digits || v > MAX_DATA) goto bad;
                if (ndim >= TF_MAX_NDIM) {
                    snprintf(why, sizeof why, "more than %d dimensions", TF_MAX_NDIM);
                    goto bad;
                }
                shape[ndim++] = (int64_t)v;
                if (lit_char(&l, ',')) continue; /* (3,) and (3, 4, ) */
                if (!lit_char(&l, ')')) goto bad;
                break;
            }
            have_shape = 1;
        } else {
            snprintf(why, sizeof why, "unexpected or repeated key '%s'", key);
            goto bad;
        }
        if (!lit_char(&l, ',')) {
            if (!lit_char(&l, '}')) goto bad;
            break;
        }
    }
    lit_ws(&l);
    if (l.p != l.end || !have_descr || !have_fortran || !have_shape) goto bad;
    if (fortran && ndim > 1) {
        set_err(err, errlen, "npz: member \"%s\" is in Fortran order; save "
                "np.ascontiguousarray(x) instead", name);
        return -1;
    }
    tf_dtype dtype;
    if (!npy_descr(descr, &dtype, why, sizeof why)) {
        set_err(err, errlen, "npz: member \"%s\": %s", name, why);
        return -1;
    }
    size_t count, bytes;
    if (!shape_count(dtype, ndim, shape, &count, &bytes)) {
        set_err(err, errlen, "npz: member \"%s\": shape too large", name);
        return -1;
    }
    if (bytes != n - start - hlen) {
        set_err(err, errlen, "npz: member \"%s\" holds %zu data bytes, its shape and dtype need %zu",
                name, n - start - hlen, bytes);
        return -1;
    }
    return tf_add(out, name, dtype, ndim, shape, b + start + hlen, err, errlen);
trunc:
    set_err(err, errlen, "npz: member \"%s\" is truncated", name);
    return -1;
bad:
    set_err(err, errlen, "npz: member \"%s\": malformed .npy header%s%s", name, why[0] ? ": " : "",
            why);
    return -1;
}

/* A deflated member into a new buffer of exactly `usize` bytes. */
static unsigned char *inflate_member(const unsigned char *src, size_t csize, size_t usize)
{
    unsigned char *dst = malloc(usize ? usize : 1);
    if (!dst) return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) { /* raw deflate, as zip stores it */
        free(dst);
        return NULL;
    }
    int ok = 1;
    size_t in_left = csize, out_left = usize;
    const unsigned char *in = src;
    unsigned char *outp = dst;
    int zr = Z_OK;
    while (zr == Z_OK) {
        /* zlib counts in uInt: feed at most 1 GiB at a time. */
        unsigned in_now = in_left > (1u << 30) ? (1u << 30) : (unsigned)in_left;
        unsigned out_now = out_left > (1u << 30) ? (1u << 30) : (unsigned)out_left;
        z.next_in = (unsigned char *)(uintptr_t)in;
        z.avail_in = in_now;
        z.next_out = outp;
        z.avail_out = out_now;
        zr = inflate(&z, Z_NO_FLUSH);
        size_t used = in_now - z.avail_in, made = out_now - z.avail_out;
        in += used;
        in_left -= used;
        outp += made;
        out_left -= made;
        if (zr == Z_OK && used == 0 && made == 0) {
            zr = Z_BUF_ERROR; /* no progress: the stream wants more than was declared */
            break;
        }
    }
    ok = zr == Z_STREAM_END && out_left == 0 && in_left == 0;
    inflateEnd(&z);
    if (!ok) {
        free(dst);
        return NULL;
    }
    return dst;
}

int tf_read_npz(const unsigned char *buf, size_t len, tf_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The end-of-central-directory record: 22 bytes plus a comment of up
     * to 65,535 bytes, at the very end. */
    size_t eocd = SIZE_MAX;
    if (len >= 22)
        for (size_t i = len - 22 + 1; i-- > 0 && len - i <= 22 + 65535;)
            if (rd32(buf + i) == 0x06054b50 && i + 22 + rd16(buf + i + 20) == len) {
                eocd = i;
                break;
            }
    if (eocd == SIZE_MAX) {
        set_err(err, errlen, "npz: not a zip archive (no end-of-central-directory record)");
        return -1;
    }
    uint32_t disk = rd16(buf + eocd + 4), cd_disk = rd16(buf + eocd + 6);
    uint32_t entries = rd16(buf + eocd + 10), total = rd16(buf + eocd + 8);
    uint64_t cd_size = rd32(buf + eocd + 12), cd_off = rd32(buf + eocd + 16);
    if (disk || cd_disk || entries != total) {
        set_err(err, errlen, "npz: multi-disk zip archives are not supported");
        return -1;
    }
    if (entries == 0xFFFF || cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) {
        set_err(err, errlen, "npz: zip64 archive directories (over 65,534 members or 4 GiB) are "
                "not supported");
        return -1;
    }
    if (cd_off > eocd || cd_size > eocd - cd_off) {
        set_err(err, errlen, "npz: the central directory lies outside the file");
        return -1;
    }
    const unsigned char *cd = buf + cd_off, *cd_end = buf + cd_off + cd_size;
    unsigned char *inflated = NULL;
    char *meta_text = NULL;
    size_t meta_len = 0;
    int rc = -1;
    for (uint32_t k = 0; k < entries; k++) {
        if (cd_end - cd < 46 || rd32(cd) != 0x02014b50) {
            set_err(err, errlen, "npz: central directory entry %u is malformed", k);
            goto done;
        }
        uint32_t flags = rd16(cd + 8), method = rd16(cd + 10), crc = rd32(cd + 16);
        uint64_t csize = rd32(cd + 20), usize = rd32(cd + 24), loff = rd32(cd + 42);
        uint32_t nlen = rd16(cd + 28), xlen = rd16(cd + 30), clen = rd16(cd + 32);
        if ((size_t)(cd_end - cd) < 46 + (size_t)nlen + xlen + clen) {
            set_err(err, errlen, "npz: central directory entry %u is truncated", k);
            goto done;
        }
        char name[1100]; /* a tensor name (at most 1024 bytes) and ".npy" */
        if (nlen == 0 || nlen >= sizeof name) {
            set_err(err, errlen, "npz: member %u has an empty or too long name", k);
            goto done;
        }
        memcpy(name, cd + 46, nlen);
        name[nlen] = '\0';
        if (strlen(name) != nlen) {
            set_err(err, errlen, "npz: member %u has a NUL in its name", k);
            goto done;
        }
        /* zip64 extra field (id 1): the 64-bit values of the fields that
         * read 0xFFFFFFFF, in the order usize, csize, offset. */
        const unsigned char *x = cd + 46 + nlen, *xend = x + xlen;
        while (xend - x >= 4) {
            uint32_t id = rd16(x), sz = rd16(x + 2);
            if ((size_t)(xend - x - 4) < sz) break;
            if (id == 1) {
                const unsigned char *v = x + 4;
                uint32_t left = sz;
                uint64_t *fields[3] = {&usize, &csize, &loff};
                for (int f = 0; f < 3; f++)
                    if (*fields[f] == 0xFFFFFFFFu) {
                        if (left < 8) {
                            set_err(err, errlen, "npz: member \"%s\": short zip64 field", name);
                            goto done;
                        }
                        *fields[f] = rd64(v);
                        v += 8;
                        left -= 8;
                    }
            }
            x += 4 + sz;
        }
        cd += 46 + nlen + xlen + clen;
        if (flags & 1) {
            set_err(err, errlen, "npz: member \"%s\" is encrypted", name);
            goto done;
        }
        if (method != 0 && method != 8) {
            set_err(err, errlen, "npz: member \"%s\" uses zip compression method %u; only stored "
                    "(np.savez) and deflated (np.savez_compressed) members are read", name,
                    method);
            goto done;
        }
        if (loff > len || len - loff < 30 || rd32(buf + loff) != 0x04034b50) {
            set_err(err, errlen, "npz: member \"%s\": local header missing", name);
            goto done;
        }
        uint32_t lnlen = rd16(buf + loff + 26), lxlen = rd16(buf + loff + 28);
        if (lnlen != nlen || memcmp(buf + loff + 30, name, nlen) ||
            (uint64_t)30 + lnlen + lxlen > len - loff) {
            set_err(err, errlen, "npz: member \"%s\": local header disagrees with the directory",
                    name);
            goto done;
        }
        uint64_t dstart = loff + 30 + lnlen + lxlen;
        if (csize > len - dstart || usize > MAX_DATA) {
            set_err(err, errlen, "npz: member \"%s\" runs past the end of the file", name);
            goto done;
        }
        if (method == 0 && csize != usize) {
            set_err(err, errlen, "npz: stored member \"%s\" has two different sizes", name);
            goto done;
        }
        /* Deflate expands at most about 1032:1; a bigger claim is a lie
         * that would only make us allocate. */
        if (method == 8 && usize > csize * 1032 + 1024) {
            set_err(err, errlen, "npz: member \"%s\" claims an impossible compression ratio", name);
            goto done;
        }
        const unsigned char *member = buf + dstart;
        if (method == 8) {
            inflated = inflate_member(member, (size_t)csize, (size_t)usize);
            if (!inflated) {
                set_err(err, errlen, "npz: member \"%s\": the deflate stream is corrupt or its "
                        "size disagrees with the directory", name);
                goto done;
            }
            member = inflated;
        }
        /* zlib's crc32 counts in uInt: feed it in pieces. */
        uLong c = crc32(0L, Z_NULL, 0);
        for (uint64_t at = 0; at < usize;) {
            uInt piece = usize - at > (1u << 30) ? (1u << 30) : (uInt)(usize - at);
            c = crc32(c, member + at, piece);
            at += piece;
        }
        if ((uint32_t)c != crc) {
            set_err(err, errlen, "npz: member \"%s\" fails its CRC-32 check (corrupted)", name);
            goto done;
        }
        size_t nl = strlen(name);
        if (nl <= 4 || strcmp(name + nl - 4, ".npy")) {
            set_err(err, errlen, "npz: member \"%s\" is not a .npy file", name);
            goto done;
        }
        name[nl - 4] = '\0';
        if (!name_ok(name)) {
            set_err(err, errlen, "npz: member %u has a name that is too long or has control "
                    "characters", k);
            goto done;
        }
        if (!strcmp(name, "__metadata__")) {
            tf_set one = {0};
            if (read_npy(member, (size_t)usize, name, &one, err, errlen)) goto done;
            if (one.t[0].dtype != TF_U8 || one.t[0].ndim != 1 || meta_text) {
                tf_free(&one);
                set_err(err, errlen, "npz: __metadata__ must appear once, as a uint8 vector of "
                        "UTF-8 JSON");
                goto done;
            }
            meta_len = one.t[0].bytes;
            meta_text = malloc(meta_len + 1);
            if (!meta_text) {
                tf_free(&one);
                set_err(err, errlen, "out of memory");
                goto done;
            }
            memcpy(meta_text, one.t[0].data, meta_len);
            meta_text[meta_len] = '\0';
            tf_free(&one);
        } else if (read_npy(member, (size_t)usize, name, out, err, errlen)) {
            goto done;
        }
        free(inflated);
        inflated = NULL;
    }
    if (meta_text) {
        djson *m = djson_parse(meta_text, meta_len, NULL, err, errlen, NULL);
        if (!m) goto done;
        int bad = meta_from_json(out, m, "npz: __metadata__", err, errlen);
        djson_free(m, NULL);
        if (bad) goto done;
    }
    rc = 0;
done:
    free(inflated);
    free(meta_text);
    if (rc) tf_free(out);
    return rc;
}

/* ============================================================ file I/O */

int tf_read_file(const char *path, tf_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        set_err(err, errlen, "\"%s\" is not a regular file", path);
        return -1;
    }
    if ((uint64_t)sb.st_size > MAX_DATA) {
        fclose(f);
        set_err(err, errlen, "\"%s\" is larger than 1 TiB", path);
        return -1;
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        set_err(err, errlen, "out of memory reading \"%s\"", path);
        return -1;
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    fclose(f);
    if (got != n) {
        free(buf);
        set_err(err, errlen, "cannot read \"%s\"", path);
        return -1;
    }
    char why[512];
    /* A zip starts with a member's local header, or, when it holds no member
     * (np.savez() of nothing, or a set without tensors), with the end record. */
    int zip = n >= 4 && (!memcmp(buf, "PK\3\4", 4) || !memcmp(buf, "PK\5\6", 4));
    int rc = zip ? tf_read_npz(buf, n, out, why, sizeof why)
                 : tf_read_safetensors(buf, n, out, why, sizeof why);
    free(buf);
    if (rc) set_err(err, errlen, "\"%s\": %s", path, why);
    return rc;
}

/* A file written beside the target and renamed over it once complete and
 * synced, so that readers see the old file or the new one, never a part. */
typedef struct {
    FILE *f;
    char *tmp;
    const char *path;
    int bad;
} atomic_file;

static int af_open(atomic_file *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        set_err(err, errlen, "\"%s\" is a directory; give a file name", path);
        return -1;
    }
    size_t n = strlen(path) + 32;
    a->tmp = malloc(n);
    if (!a->tmp) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        set_err(err, errlen, "cannot create \"%s\": %s", a->tmp, strerror(errno));
        free(a->tmp);
        return -1;
    }
    a->path = path;
    return 0;
}

static void af_write(atomic_file *a, const void *data, size_t n)
{
    if (!a->bad && n && fwrite(data, 1, n, a->f) != n) a->bad = 1;
}

static int af_close(atomic_file *a, char *err, size_t errlen)
{
    int ok = !a->bad && fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    ok = (fclose(a->f) == 0) && ok;
    if (ok && rename(a->tmp, a->path) != 0) ok = 0;
    if (!ok) {
        set_err(err, errlen, "cannot write \"%s\": %s", a->path, strerror(errno));
        unlink(a->tmp);
    } else {
        char *copy = strdup(a->path);
        if (copy) {
            int fd = open(dirname(copy), O_RDONLY);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
            free(copy);
        }
    }
    free(a->tmp);
    return ok ? 0 : -1;
}

static void meta_json(tf_str *h, const tf_set *s)
{
    tf_str_puts(h, "{");
    for (int i = 0; i < s->nmeta; i++) {
        if (i) tf_str_puts(h, ",");
        tf_str_json(h, s->meta_key[i]);
        tf_str_puts(h, ":");
        tf_str_json(h, s->meta_val[i]);
    }
    tf_str_puts(h, "}");
}

int tf_write_safetensors(const char *path, const tf_set *s, char *err, size_t errlen)
{
    tf_str h = {0};
    tf_str_puts(&h, "{");
    int first = 1;
    if (s->nmeta) {
        tf_str_puts(&h, "\"__metadata__\":");
        meta_json(&h, s);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < s->n; i++) {
        const tf_tensor *t = &s->t[i];
        tf_str_puts(&h, first ? "" : ",");
        first = 0;
        tf_str_json(&h, t->name);
        tf_str_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", tf_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) tf_str_printf(&h, "%s%" PRId64, d ? "," : "", t->shape[d]);
        tf_str_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + t->bytes);
        off += t->bytes;
    }
    tf_str_puts(&h, "}");
    while (!h.oom && h.len % 8) tf_str_puts(&h, " "); /* data starts 8-byte aligned */
    if (h.oom) {
        tf_str_free(&h);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    atomic_file a;
    if (af_open(&a, path, err, errlen)) {
        tf_str_free(&h);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    af_write(&a, len8, 8);
    af_write(&a, h.buf, h.len);
    for (int i = 0; i < s->n; i++) af_write(&a, s->t[i].data, s->t[i].bytes);
    tf_str_free(&h);
    return af_close(&a, err, errlen);
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

static const char *npy_descr_of(tf_dtype d)
{
    switch (d) {
    case TF_F64: return "<f8";
    case TF_F32: return "<f4";
    case TF_F16: return "<f2";
    case TF_I64: return "<i8";
    case TF_I32: return "<i4";
    case TF_I16: return "<i2";
    case TF_I8: return "|i1";
    case TF_U8: return "|u1";
    case TF_BOOL: return "|b1";
    default: return NULL; /* bfloat16: numpy has no such dtype */
    }
}

/* The .npy v1.0 header of a tensor: magic, version, length, then the
 * dictionary padded with spaces and a newline to a multiple of 64 bytes. */
static int npy_header(const tf_tensor *t, tf_str *h)
{
    const char *descr = npy_descr_of(t->dtype);
    if (!descr) return 0;
    tf_str dict = {0};
    tf_str_printf(&dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < t->ndim; d++) tf_str_printf(&dict, "%" PRId64 ", ", t->shape[d]);
    if (t->ndim > 1) dict.len -= 2, dict.buf[dict.len] = '\0'; /* (3, 4) but (3,) */
    else if (t->ndim == 1) dict.len -= 1, dict.buf[dict.len] = '\0';
    tf_str_puts(&dict, "), }");
    size_t total = 10 + dict.len + 1;
    while (total % 64) total++;
    if (dict.oom || total - 10 > 0xFFFF) {
        tf_str_free(&dict);
        return 0;
    }
    /* magic, version 1.0, then the header length (little-endian u16) */
    unsigned char len2[2];
    put16(len2, (uint32_t)(total - 10));
    str_putn(h, "\x93NUMPY\x01\x00", 8);
    str_putn(h, (const char *)len2, 2);
    tf_str_puts(h, dict.buf);
    while (!h->oom && h->len < total - 1) tf_str_puts(h, " ");
    tf_str_puts(h, "\n");
    tf_str_free(&dict);
    return !h->oom;
}

int tf_write_npz(const char *path, const tf_set *s, char *err, size_t errlen)
{
    /* Every member first as (header, data) to know the sizes and CRCs. */
    int n = s->n + (s->nmeta ? 1 : 0);
    tf_str *heads = calloc((size_t)n + 1, sizeof *heads);
    uint32_t *crcs = calloc((size_t)n + 1, sizeof *crcs);
    tf_str meta = {0};
    tf_tensor meta_t = {0};
    int rc = -1;
    atomic_file a;
    if (!heads || !crcs) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    if (s->nmeta) {
        meta_json(&meta, s);
        if (meta.oom) {
            set_err(err, errlen, "out of memory");
            goto done;
        }
        meta_t.name = "__metadata__";
        meta_t.dtype = TF_U8;
        meta_t.ndim = 1;
        meta_t.shape[0] = (int64_t)meta.len;
        meta_t.count = meta_t.bytes = meta.len;
        meta_t.data = (unsigned char *)meta.buf;
    }
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        const tf_tensor *t = i < s->n ? &s->t[i] : &meta_t;
        if (!npy_header(t, &heads[i])) {
            set_err(err, errlen, "npz: tensor \"%s\" (%s) has no .npy form (numpy has no "
                    "bfloat16)", t->name, tf_dtype_name(t->dtype));
            goto done;
        }
        uint64_t size = heads[i].len + (uint64_t)t->bytes;
        total += size + 30 + 46 + 2 * (strlen(t->name) + 4);
        if (size >= 0xFFFFFFFFu || total >= 0xFFFFFFFFu) {
            set_err(err, errlen, "npz: over 4 GiB; write safetensors instead");
            goto done;
        }
        uLong c = crc32(0L, Z_NULL, 0);
        c = crc32(c, (const unsigned char *)heads[i].buf, (uInt)heads[i].len);
        if (t->bytes) c = crc32(c, t->data, (uInt)t->bytes);
        crcs[i] = (uint32_t)c;
    }
    if (n > 65534) {
        set_err(err, errlen, "npz: more than 65,534 members; write safetensors instead");
        goto done;
    }
    if (af_open(&a, path, err, errlen)) goto done;
    uint32_t offset = 0;
    uint32_t *offsets = calloc((size_t)n + 1, sizeof *offsets);
    if (!offsets) {
        a.bad = 1;
        af_close(&a, err, errlen);
        set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) { /* local headers and data, then the directory */
        uint32_t cd_start = offset, cd_size = 0;
        for (int i = 0; i < n; i++) {
            const tf_tensor *t = i < s->n ? &s->t[i] : &meta_t;
            char fname[1100];
            snprintf(fname, sizeof fname, "%s.npy", t->name);
            uint32_t nlen = (uint32_t)strlen(fname);
            uint32_t size = (uint32_t)(heads[i].len + t->bytes);
            unsigned char h[46];
            memset(h, 0, sizeof h);
            if (pass == 0) {
                put32(h, 0x04034b50);
                put16(h + 4, 20);           /* version needed: 2.0 */
                put16(h + 10, 0x21);        /* DOS time 00:01:02: fixed, so files are reproducible */
                put16(h + 12, (1 << 5) | 1); /* DOS date 1980-01-01 */
                put32(h + 14, crcs[i]);
                put32(h + 18, size);
                put32(h + 22, size);
                put16(h + 26, nlen);
                offsets[i] = offset;
                af_write(&a, h, 30);
                af_write(&a, fname, nlen);
                af_write(&a, heads[i].buf, heads[i].len);
                af_write(&a, t->data, t->bytes);
                offset += 30 + nlen + size;
            } else {
                put32(h, 0x02014b50);
                put16(h + 4, 20);
                put16(h + 6, 20);
                put16(h + 12, 0x21);
                put16(h + 14, (1 << 5) | 1);
                put32(h + 16, crcs[i]);
                put32(h + 20, size);
                put32(h + 24, size);
                put16(h + 28, nlen);
                put32(h + 42, offsets[i]);
                af_write(&a, h, 46);
                af_write(&a, fname, nlen);
                cd_size += 46 + nlen;
            }
        }
        if (pass == 1) {
            unsigned char e[22];
            memset(e, 0, sizeof e);
            put32(e, 0x06054b50);
            put16(e + 8, (uint32_t)n);
            put16(e + 10, (uint32_t)n);
            put32(e + 12, cd_size);
            put32(e + 16, cd_start);
            af_write(&a, e, 22);
        }
    }
    free(offsets);
    rc = af_close(&a, err, errlen);
done:
    if (heads)
        for (int i = 0; i < n; i++) tf_str_free(&heads[i]);
    free(heads);
    free(crcs);
    tf_str_free(&meta);
    return rc;
}
