/* checkpoint.c - optimizer state as a safetensors file.
 *
 * Layout (https://github.com/huggingface/safetensors format):
 *   u64 little-endian N | N bytes of JSON header, space-padded to 8 | data
 * Header: "__metadata__" (string -> string) and one entry per tensor,
 *   "<param>.<slot>" for parameter state, "<group>/<slot>" for group state,
 *   each {"dtype", "shape", "data_offsets": [begin, end]} relative to data.
 * Metadata: format name and version, library version, step counters, the
 *   seed of the stochastic rounding, the configuration as a JSON string
 *   (groups with optimizer kinds, base and creation-time hyperparameters,
 *   schedules, group keys, the ema / lookahead settings; parameters with
 *   group, shape, overrides) and a checksum of the whole file.
 *
 * The checksum (format version 2) covers every byte of the file: the
 * length prefix, the header and the data. Its value sits inside the header
 * it covers, so it is computed with its own 16 hex digits read as '0':
 *     "checksum":"fnv1a64w-file:<16 hex digits>"
 * names the algorithm and what it covers. Any edit (a step count, a
 * hyperparameter, two data_offsets swapped, one flipped bit in a tensor)
 * is refused before anything is read into the optimizer. Version 1 files,
 * written before, carry "fnv1a64w:<hex>" over the data section only; they
 * still load, with that weaker check (their header is unprotected).
 *
 * Saving writes a temporary file beside the target, fsyncs it, renames it
 * over the target and fsyncs the directory, so a crash leaves either the
 * old or the new file. Loading validates everything (sizes, JSON, kinds,
 * names, shapes, dtypes, offsets, checksum) before touching the optimizer:
 * a failed load changes nothing. Tensors are stored in host byte order,
 * which is little-endian on every platform descent supports; a big-endian
 * host is refused.
 *
 * What is restored: state tensors, step counters and the optimizer's
 * configuration (hyperparameters, schedules, per-parameter overrides), as
 * torch's load_state_dict does, and the gradient-transform settings
 * (transform.c): each group's keys every family accepts (maximize,
 * layer_decay, coordinate_clip, coordinate_clip_scale: "group_keys") and
 * the optimizer-wide clipping and non-finite policy ("transform"). Files
 * written before these entries existed load with the caller's settings
 * kept. Accumulation stays as the caller set it (a checkpoint is taken
 * between updates). A sharded optimizer's rank files (shard.c) carry
 * neither entry: there the caller's settings stay. */
#include "internal.h"
#include "json.h" /* util/: the one JSON reader, shared with the command */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_NAME "descent-optimizer-state"
#define FORMAT_VERSION 2 /* 1: data-only checksum, still read */
#define CK_FILE_TAG "\"checksum\":\"fnv1a64w-file:"
#define MAX_HEADER (256u << 20)

/* ------------------------------------------------------------ checksum */

/* FNV-1a over 64-bit little-endian words (then the tail bytes): fast
 * enough to hash a gigabyte of state in about a second. Detects corruption,
 * not tampering. */
typedef struct {
    uint64_t h;
    unsigned char tail[8];
    size_t ntail;
} checksum;

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static void ck_init(checksum *c) { memset(c, 0, sizeof *c), c->h = FNV_OFFSET; }

static void ck_word(checksum *c, uint64_t w)
{
    c->h ^= w;
    c->h *= FNV_PRIME;
    c->h ^= c->h >> 29;
}

static void ck_update(checksum *c, const void *data, size_t n)
{
    const unsigned char *b = data;
    if (c->ntail > 0 && c->ntail < 8) { /* finish a partial word */
        size_t take = 8 - c->ntail < n ? 8 - c->ntail : n;
        memcpy(c->tail + c->ntail, b, take);
        c->ntail += take;
        b += take;
        n -= take;
        if (c->ntail < 8) return;
        uint64_t w;
        memcpy(&w, c->tail, 8);
        ck_word(c, w);
        c->ntail = 0;
    }
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        ck_word(c, w);
    }
    if (n) { /* here ntail is 0 and n < 8 */
        memcpy(c->tail, b, n);
        c->ntail = n;
    }
}

static uint64_t ck_final(checksum *c)
{
    for (size_t i = 0; i < c->ntail; i++) ck_word(c, c->tail[i]);
    return c->h;
}

/* ------------------------------------------------------- string builder */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_putn(sbuf *s, const char *text, size_t n)
{
    if (s->oom) return;
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4096;
        while (ncap < s->len + n + 1) ncap *= 2;
        char *b = dsc_malloc(ncap);
        if (!b) {
            s->oom = 1;
            return;
        }
        if (s->len) memcpy(b, s->buf, s->len);
        dsc_free(s->buf);
        s->buf = b;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void sb_puts(sbuf *s, const char *text) { sb_putn(s, text, strlen(text)); }

static void sb_printf(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_putn(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string literal. Names are validated printable without quotes or
 * backslashes, but escape anyway so the writer is correct on its own. */
static void sb_json_string(sbuf *s, const char *text)
{
    sb_puts(s, "\"");
    for (const char *c = text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[3] = {'\\', *c, 0};
            sb_puts(s, e);
        } else if ((unsigned char)*c < 0x20) {
            sb_printf(s, "\\u%04x", (unsigned)(unsigned char)*c);
        } else {
            sb_putn(s, c, 1);
        }
    }
    sb_puts(s, "\"");
}

/* ------------------------------------------------------- tensor listing */

typedef struct {
    char key[DSC_NAME_MAX + DSC_SLOT_NAME_MAX + 2];
    dsc_slot *slot;
} tensor_ref;

static size_t slot_bytes(const dsc_slot *s) { return s->count * dsc_dtype_size(s->dtype); }

/* All state tensors in a fixed order: parameters in insertion order, then
 * groups. Returns the count, or -1 when out of memory. */
static long list_tensors(const dsc_optimizer *opt, tensor_ref **out)
{
    long n = 0;
    for (int i = 0; i < opt->nparams; i++) n += opt->params[i]->nslots;
    for (int i = 0; i < opt->ngroups; i++) n += opt->groups[i]->nslots;
    tensor_ref *t = dsc_calloc((size_t)(n ? n : 1), sizeof *t);
    if (!t) return -1;
    long k = 0;
    for (int i = 0; i < opt->nparams; i++)
        for (int s = 0; s < opt->params[i]->nslots; s++, k++) {
            snprintf(t[k].key, sizeof t[k].key, "%s.%s", opt->params[i]->name,
                     opt->params[i]->slots[s].name);
            t[k].slot = &opt->params[i]->slots[s];
        }
    for (int i = 0; i < opt->ngroups; i++)
        for (int s = 0; s < opt->groups[i]->nslots; s++, k++) {
            snprintf(t[k].key, sizeof t[k].key, "%s/%s", opt->groups[i]->name,
                     opt->groups[i]->slots[s].name);
            t[k].slot = &opt->groups[i]->slots[s];
        }
    *out = t;
    return n;
}

static const char *sched_kind_name(dsc_schedule_kind k)
{
    switch (k) {
    case DSC_SCHED_CONSTANT: return "constant";
    case DSC_SCHED_LINEAR_WARMUP: return "linear_warmup";
    case DSC_SCHED_COSINE: return "cosine";
    case DSC_SCHED_WSD: return "wsd";
    case DSC_SCHED_STEP: return "step";
    }
    return "constant";
}

static int sched_kind_from_name(const char *name)
{
    for (int k = DSC_SCHED_CONSTANT; k <= DSC_SCHED_STEP; k++)
        if (!strcmp(name, sched_kind_name((dsc_schedule_kind)k))) return k;
    return -1;
}

static void write_hypers(sbuf *s, const dsc_family *f, const double *v, uint64_t mask)
{
    sb_puts(s, "{");
    int first = 1;
    for (int k = 0; k < f->info.nkeys; k++) {
        if (!(mask & (1ull << k))) continue;
        sb_printf(s, "%s\"%s\":%.17g", first ? "" : ",", f->info.keys[k].name, v[k]);
        first = 0;
    }
    sb_puts(s, "}");
}

/* The configuration document stored as the "config" metadata string. */
static void write_config(sbuf *s, const dsc_optimizer *opt)
{
    sb_puts(s, "{\"groups\":[");
    for (int i = 0; i < opt->ngroups; i++) {
        const dsc_group *g = opt->groups[i];
        const dsc_family *f = g->family;
        uint64_t all = f->info.nkeys >= 64 ? ~0ull : (1ull << f->info.nkeys) - 1;
        sb_puts(s, i ? ",{\"name\":" : "{\"name\":");
        sb_json_string(s, g->name);
        sb_printf(s, ",\"optimizer\":\"%s\",\"hyper\":", f->info.name);
        write_hypers(s, f, g->base, all);
        sb_puts(s, ",\"init\":");
        write_hypers(s, f, g->init, all);
        sb_puts(s, ",\"schedules\":{");
        int first = 1;
        for (int k = 0; k < f->info.nkeys; k++) {
            if (!(g->sched_mask & (1ull << k))) continue;
            const dsc_schedule *sc = &g->sched[k];
            sb_printf(s, "%s\"%s\":{\"kind\":\"%s\",\"warmup\":%" PRId64 ",\"total\":%" PRId64
                      ",\"decay\":%" PRId64 ",\"step_size\":%" PRId64
                      ",\"gamma\":%.17g,\"min_ratio\":%.17g}",
                      first ? "" : ",", f->info.keys[k].name, sched_kind_name(sc->kind),
                      sc->warmup, sc->total, sc->decay, sc->step_size, sc->gamma, sc->min_ratio);
            first = 0;
        }
        sb_puts(s, "}");
        if (!opt->shard_local) { /* the keys every family accepts (wrap.c) */
            sb_puts(s, ",\"group_keys\":{");
            first = 1;
            for (int k = 0; k < dsc_group_key_count(); k++) {
                const char *key = dsc_group_key_name(k);
                if (dsc_group_key_find(f, key) != k) continue; /* the family's own */
                sb_printf(s, "%s\"%s\":%.17g", first ? "" : ",", key,
                          dsc_group_key_get(&g->wrap, k));
                first = 0;
            }
            sb_puts(s, "}");
            /* The wrappers' settings: "wrappers":{"ema":{"decay":0.999,...}} */
            sb_puts(s, ",\"wrappers\":{");
            first = 1;
            for (int w = 0; w < 2; w++) {
                double vals[4];
                int nv = dsc_wrap_settings(&g->wrap, w, vals);
                if (!nv) continue;
                const dsc_optimizer_info *wi = dsc_wrapper_info(w);
                sb_printf(s, "%s\"%s\":{", first ? "" : ",", wi->name);
                for (int k = 0; k < nv; k++)
                    sb_printf(s, "%s\"%s\":%.17g", k ? "," : "", wi->keys[k].name, vals[k]);
                sb_puts(s, "}");
                first = 0;
            }
            sb_puts(s, "}");
        }
        sb_puts(s, "}");
    }
    sb_puts(s, "],\"params\":[");
    for (int i = 0; i < opt->nparams; i++) {
        const dsc_param *p = opt->params[i];
        const dsc_group *g = opt->groups[p->group];
        sb_puts(s, i ? ",{\"name\":" : "{\"name\":");
        sb_json_string(s, p->name);
        sb_puts(s, ",\"group\":");
        sb_json_string(s, g->name);
        sb_puts(s, ",\"shape\":[");
        for (int d = 0; d < p->ndim; d++) sb_printf(s, "%s%" PRId64, d ? "," : "", p->shape[d]);
        sb_printf(s, "],\"no_decay\":%d,\"overrides\":", p->no_decay);
        write_hypers(s, g->family, p->override_value, p->override_mask);
        sb_puts(s, "}");
    }
    sb_puts(s, "]");
    if (!opt->shard_local) /* the optimizer-wide transform settings (transform.c) */
        sb_printf(s, ",\"transform\":{\"clip\":\"%s\",\"clip_limit\":%.17g,\"nonfinite\":\"%s\"}",
                  dsc_clip_kind_name(opt->clip_kind), opt->clip_limit,
                  dsc_nonfinite_name(opt->nonfinite));
    sb_puts(s, "}");
}

/* ----------------------------------------------------------------- save */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* `copy` is a scratch copy of the path (dirname writes into it), taken
 * before the rename so that nothing can fail for want of memory after it. */
static void fsync_dir_of(char *copy)
{
    int fd = open(dirname(copy), O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

dsc_status dsc_optimizer_save(dsc_optimizer *opt, const char *path)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!path) return dsc_fail(opt, DSC_NULL_POINTER, "save: path is NULL");
    if (!path[0]) return dsc_fail(opt, DSC_INVALID_ARGUMENT, "save: the path is empty");
    struct stat target;
    if (stat(path, &target) == 0 && S_ISDIR(target.st_mode))
        return dsc_fail(opt, DSC_IO, "save: \"%s\" is a directory; give a file name", path);
    if (opt->swapped || opt->in_hook)
        return dsc_fail(opt, DSC_STATE, "save: %s", opt->in_hook ? "not from inside a step hook"
                        : "averaged weights are swapped in; swap them back first");
    if (opt->shard) return dsc_shard_save(opt, path); /* one file per rank (shard.c) */
    if (!host_is_little_endian())
        return dsc_fail(opt, DSC_UNSUPPORTED, "save: big-endian hosts are not supported");
    if (opt->micro > 0)
        return dsc_fail(opt, DSC_STATE, "save: %d accumulation micro-steps are pending; save "
                        "after a full step", opt->micro);
    tensor_ref *t = NULL;
    long n = list_tensors(opt, &t);
    if (n < 0) return dsc_fail(opt, DSC_NO_MEMORY, "save: out of memory");
    for (long i = 0; i < n; i++)
        for (long j = i + 1; j < n; j++)
            if (!strcmp(t[i].key, t[j].key)) {
                dsc_status st = dsc_fail(opt, DSC_DUPLICATE_NAME,
                                         "save: two state tensors would both be named \"%s\"; "
                                         "rename the parameter or group", t[i].key);
                dsc_free(t);
                return st;
            }

    sbuf config = {0}, h = {0};
    write_config(&config, opt);
    sb_puts(&h, "{\"__metadata__\":{\"format\":\"" FORMAT_NAME "\"");
    sb_printf(&h, ",\"format_version\":\"%d\",\"descent_version\":\"%s\"", FORMAT_VERSION,
              dsc_build_info().version);
    sb_printf(&h, ",\"step\":\"%" PRId64 "\",\"skipped_total\":\"%" PRId64
              "\",\"zeroed_total\":\"%" PRId64 "\"", opt->step, opt->stats.skipped_total,
              opt->stats.zeroed_total);
    /* The seed of the stochastic rounding (bf16 parameters and states), so a
     * resumed run draws the bits an uninterrupted one would. */
    sb_printf(&h, ",\"seed\":\"%" PRIu64 "\"", opt->seed);
    /* The digits are filled in once the whole file is hashed (below). */
    sb_puts(&h, "," CK_FILE_TAG);
    size_t digits_at = h.len;
    sb_puts(&h, "0000000000000000\",\"config\":");
    sb_json_string(&h, config.oom ? "" : config.buf);
    sb_puts(&h, "}");
    size_t offset = 0;
    for (long i = 0; i < n; i++) {
        const dsc_slot *s = t[i].slot;
        sb_puts(&h, ",");
        sb_json_string(&h, t[i].key);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dsc_dtype_name(s->dtype));
        for (int d = 0; d < s->ndim; d++) sb_printf(&h, "%s%" PRId64, d ? "," : "", s->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + slot_bytes(s));
        offset += slot_bytes(s);
    }
    sb_puts(&h, "}");
    while (!h.oom && h.len % 8) sb_puts(&h, " ");
    dsc_status st = DSC_OK;
    if (h.oom || config.oom) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "save: out of memory building the header");
        goto done;
    }

    size_t plen = strlen(path);
    char *tmp = dsc_malloc(plen + 32);
    char *dircopy = tmp ? dsc_strdup(path) : NULL;
    if (!dircopy) {
        dsc_free(tmp);
        st = dsc_fail(opt, DSC_NO_MEMORY, "save: out of memory");
        goto done;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        st = dsc_fail(opt, DSC_IO, "save: cannot create \"%s\": %s", tmp, strerror(errno));
        dsc_free(tmp);
        dsc_free(dircopy);
        goto done;
    }
    unsigned char len8[8];
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    {
        checksum ck;
        ck_init(&ck);
        ck_update(&ck, len8, 8);
        ck_update(&ck, h.buf, h.len);
        for (long i = 0; i < n; i++) ck_update(&ck, t[i].slot->data, slot_bytes(t[i].slot));
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, ck_final(&ck));
        memcpy(h.buf + digits_at, hex, 16);
    }
    int ok = write_all(fd, len8, 8) && write_all(fd, h.buf, h.len);
    for (long i = 0; ok && i < n; i++) ok = write_all(fd, t[i].slot->data, slot_bytes(t[i].slot));
    if (ok) ok = fsync(fd) == 0;
    int saved_errno = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved_errno = errno;
    }
    if (!ok) {
        unlink(tmp);
        st = dsc_fail(opt, DSC_IO, "save: writing \"%s\" failed: %s (the previous file, if "
                      "any, is unchanged)", path, strerror(saved_errno));
    } else {
        fsync_dir_of(dircopy);
    }
    dsc_free(tmp);
    dsc_free(dircopy);
done:
    dsc_free(config.buf);
    dsc_free(h.buf);
    dsc_free(t);
    return st;
}

/* ----------------------------------------------------------------- load */

static dsc_dtype dtype_from_name(const char *s, int *ok)
{
    *ok = 1;
    if (!strcmp(s, "F32")) return DSC_DT_F32;
    if (!strcmp(s, "F64")) return DSC_DT_F64;
    if (!strcmp(s, "U8")) return DSC_DT_U8;
    if (!strcmp(s, "I64")) return DSC_DT_I64;
    if (!strcmp(s, "BF16")) return DSC_DT_BF16;
    *ok = 0;
    return DSC_DT_F32;
}

static int read_all(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

/* The JSON reader allocates through the library's hook like everything
 * else descent owns (test_oom makes it fail). */
static const djson_allocator json_alloc = {dsc_malloc, dsc_free};

static const char *meta_string(const djson *meta, const char *key)
{
    const djson *v = djson_get(meta, key);
    return v && v->type == DJSON_STRING ? v->string : NULL;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return 0; /* strtoull would take "-1" */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return 0;
    *out = v;
    return 1;
}

/* A JSON number that must be an integer in [lo, hi]: the range is checked
 * in double before the conversion, which is undefined behaviour for values
 * out of int64_t's range ("shape":[1e300]); fractions ([1.5]) are refused,
 * not truncated. */
static int json_int(const djson *v, double lo, double hi, int64_t *out)
{
    if (!v || v->type != DJSON_NUMBER) return 0;
    double x = v->number;
    if (!(x >= lo && x <= hi) || x != floor(x)) return 0;
    *out = (int64_t)x;
    return 1;
}

/* Largest integer a checkpoint may hold in a shape, offset or count: 2^53,
 * below which every integer is exact in a double. */
#define JSON_INT_MAX 9007199254740992.0

/* Finds the one CK_FILE_TAG in the raw header; its 16 digits at *at.
 * 0 if absent, repeated or malformed. */
static int find_file_checksum(const char *header, size_t hl, size_t *at, uint64_t *value)
{
    const size_t tl = strlen(CK_FILE_TAG);
    size_t found = 0, where = 0;
    for (size_t i = 0; i + tl + 17 <= hl; i++)
        if (header[i] == '"' && !memcmp(header + i, CK_FILE_TAG, tl)) {
            found++;
            where = i + tl;
        }
    if (found != 1 || header[where + 16] != '"') return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = header[where + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *at = where;
    *value = v;
    return 1;
}

typedef struct {
    uint64_t begin, end;
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* A hyperparameter object {"key": number} for family f into v/mask. */
static dsc_status read_hypers(dsc_optimizer *opt, const djson *obj, const dsc_family *f,
                              double *v, uint64_t *mask, const char *where)
{
    if (!obj || obj->type != DJSON_OBJECT)
        return dsc_fail(opt, DSC_CORRUPT, "load: %s: hyperparameters missing", where);
    for (size_t i = 0; i < obj->count; i++) {
        int k = dsc_family_key(f, obj->keys[i]);
        if (k < 0 || obj->items[i].type != DJSON_NUMBER)
            return dsc_fail(opt, DSC_MISMATCH, "load: %s: key \"%s\" is not a %s "
                            "hyperparameter", where, obj->keys[i], f->info.name);
        char err[DSC_ERR_MAX];
        if (dsc_key_check(f, k, obj->items[i].number, err, sizeof err) != DSC_OK)
            return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s", where, err);
        v[k] = obj->items[i].number;
        if (mask) *mask |= 1ull << k;
    }
    return DSC_OK;
}

typedef struct {
    double base[DSC_MAX_KEYS], init[DSC_MAX_KEYS];
    dsc_schedule sched[DSC_MAX_KEYS];
    uint64_t sched_mask;
    struct dsc_group_opts wrap; /* with the group keys of the file, if any */
} group_update;

/* The optimizer-wide transform settings of the file (the caller's when the
 * file has none). */
typedef struct {
    dsc_clip_kind clip_kind;
    double clip_limit;
    dsc_nonfinite_policy nonfinite;
} transform_update;

typedef struct {
    double override_value[DSC_MAX_KEYS];
    uint64_t override_mask;
    int no_decay;
} param_update;

/* "group_keys": {"coordinate_clip": 0.1, ...} of a group into o. */
static dsc_status read_group_keys(dsc_optimizer *opt, const djson *obj, const dsc_group *g,
                                  struct dsc_group_opts *o, const char *where)
{
    if (!obj) return DSC_OK; /* written before group keys were saved: keep the caller's */
    if (obj->type != DJSON_OBJECT)
        return dsc_fail(opt, DSC_CORRUPT, "load: %s: group_keys is not an object", where);
    for (size_t i = 0; i < obj->count; i++) {
        int k = dsc_group_key_find(g->family, obj->keys[i]);
        if (k < 0 || obj->items[i].type != DJSON_NUMBER)
            return dsc_fail(opt, DSC_MISMATCH, "load: %s: \"%s\" is not a group key of %s",
                            where, obj->keys[i], g->family->info.name);
        char err[DSC_ERR_MAX];
        if (dsc_group_key_set(g->family, o, k, obj->items[i].number, err, sizeof err) != DSC_OK)
            return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s", where, err);
    }
    return DSC_OK;
}

/* "wrappers": {"ema": {"decay": 0.999, ...}, "lookahead": {...}} of a group
 * into o: the file and the optimizer must wrap the group alike (their
 * slots differ otherwise); the file's settings replace the caller's, as
 * its hyperparameters do. Files without it keep the caller's. */
static dsc_status read_wrappers(dsc_optimizer *opt, const djson *obj,
                                struct dsc_group_opts *o, const char *where)
{
    if (!obj) return DSC_OK;
    if (obj->type != DJSON_OBJECT)
        return dsc_fail(opt, DSC_CORRUPT, "load: %s: wrappers is not an object", where);
    for (int w = 0; w < 2; w++) {
        const dsc_optimizer_info *wi = dsc_wrapper_info(w);
        const djson *set = djson_get(obj, wi->name);
        double vals[4];
        int nv = dsc_wrap_settings(o, w, vals);
        if (!set != !nv)
            return dsc_fail(opt, DSC_MISMATCH, "load: %s: the checkpoint %s a %s wrapper, this "
                            "optimizer %s", where, set ? "has" : "lacks", wi->name,
                            nv ? "has one" : "does not");
        if (!set) continue;
        if (set->type != DJSON_OBJECT)
            return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s settings malformed", where, wi->name);
        for (int k = 0; k < nv; k++) {
            const djson *v = djson_get(set, wi->keys[k].name);
            if (!v || v->type != DJSON_NUMBER)
                return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s.%s missing or not a number",
                                where, wi->name, wi->keys[k].name);
            vals[k] = v->number;
        }
        char err[DSC_ERR_MAX];
        if (dsc_wrap_set_settings(o, w, vals, err, sizeof err) != DSC_OK)
            return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s", where, err);
    }
    if (obj->count > (size_t)(o->ema + o->lookahead))
        return dsc_fail(opt, DSC_MISMATCH, "load: %s: unknown wrapper in the checkpoint", where);
    return DSC_OK;
}

/* "transform": {"clip": "norm", "clip_limit": 1, "nonfinite": "skip"}. */
static dsc_status read_transform(dsc_optimizer *opt, const djson *obj, transform_update *tu)
{
    tu->clip_kind = opt->clip_kind;
    tu->clip_limit = opt->clip_limit;
    tu->nonfinite = opt->nonfinite;
    if (!obj) return DSC_OK; /* an older file: keep the caller's settings */
    const djson *clip = djson_get(obj, "clip"), *limit = djson_get(obj, "clip_limit");
    const djson *nf = djson_get(obj, "nonfinite");
    int kind = clip && clip->type == DJSON_STRING ? dsc_clip_kind_from_name(clip->string) : -1;
    int policy = nf && nf->type == DJSON_STRING ? dsc_nonfinite_from_name(nf->string) : -1;
    if (obj->type != DJSON_OBJECT || kind < 0 || policy < 0 || !limit ||
        limit->type != DJSON_NUMBER)
        return dsc_fail(opt, DSC_CORRUPT, "load: the transform settings are malformed (clip: "
                        "none, norm or value; clip_limit: a number; nonfinite: skip, zero or "
                        "fail)");
    char err[DSC_ERR_MAX];
    if (dsc_transform_check_clip(kind, limit->number, err, sizeof err) != DSC_OK ||
        dsc_transform_check_nonfinite(policy, err, sizeof err) != DSC_OK)
        return dsc_fail(opt, DSC_CORRUPT, "load: transform settings: %s", err);
    tu->clip_kind = (dsc_clip_kind)kind;
    tu->clip_limit = limit->number;
    tu->nonfinite = (dsc_nonfinite_policy)policy;
    return DSC_OK;
}

static dsc_status check_config(dsc_optimizer *opt, const djson *cfg, group_update *gu,
                               param_update *pu)
{
    const djson *groups = djson_get(cfg, "groups");
    const djson *params = djson_get(cfg, "params");
    if (!groups || groups->type != DJSON_ARRAY || !params || params->type != DJSON_ARRAY)
        return dsc_fail(opt, DSC_CORRUPT, "load: configuration lacks groups or params");
    if ((int)groups->count != opt->ngroups)
        return dsc_fail(opt, DSC_MISMATCH, "load: checkpoint has %zu groups, this optimizer %d",
                        groups->count, opt->ngroups);
    if ((int)params->count != opt->nparams)
        return dsc_fail(opt, DSC_MISMATCH, "load: checkpoint has %zu parameters, this "
                        "optimizer %d", params->count, opt->nparams);
    for (size_t i = 0; i < groups->count; i++) {
        const djson *g = &groups->items[i];
        const djson *name = djson_get(g, "name"), *kind = djson_get(g, "optimizer");
        if (!name || name->type != DJSON_STRING || !kind || kind->type != DJSON_STRING)
            return dsc_fail(opt, DSC_CORRUPT, "load: group %zu lacks a name or optimizer", i);
        dsc_group *mine = dsc_optimizer_find_group(opt, name->string);
        if (!mine)
            return dsc_fail(opt, DSC_MISMATCH, "load: checkpoint group \"%s\" does not exist "
                            "in this optimizer", name->string);
        if (strcmp(mine->family->info.name, kind->string))
            return dsc_fail(opt, DSC_MISMATCH, "load: group \"%s\" is run by %s here but by %s "
                            "in the checkpoint", name->string, mine->family->info.name,
                            kind->string);
        int gi = -1;
        for (int k = 0; k < opt->ngroups; k++)
            if (opt->groups[k] == mine) gi = k;
        group_update *u = &gu[gi];
        memcpy(u->base, mine->base, sizeof u->base);
        memcpy(u->init, mine->init, sizeof u->init);
        u->wrap = mine->wrap;
        dsc_status st;
        char where[DSC_NAME_MAX + 16];
        snprintf(where, sizeof where, "group \"%s\"", mine->name);
        if ((st = read_hypers(opt, djson_get(g, "hyper"), mine->family, u->base, NULL, where)) ||
            (st = read_hypers(opt, djson_get(g, "init"), mine->family, u->init, NULL, where)) ||
            (st = read_group_keys(opt, djson_get(g, "group_keys"), mine, &u->wrap, where)) ||
            (st = read_wrappers(opt, djson_get(g, "wrappers"), &u->wrap, where)))
            return st;
        const djson *sc = djson_get(g, "schedules");
        if (!sc || sc->type != DJSON_OBJECT)
            return dsc_fail(opt, DSC_CORRUPT, "load: %s: schedules missing", where);
        for (size_t s = 0; s < sc->count; s++) {
            int k = dsc_family_key(mine->family, sc->keys[s]);
            const djson *o = &sc->items[s];
            const djson *kindv = djson_get(o, "kind");
            int kind = kindv && kindv->type == DJSON_STRING ? sched_kind_from_name(kindv->string)
                                                           : -1;
            if (k < 0 || kind < 0)
                return dsc_fail(opt, DSC_CORRUPT, "load: %s: bad schedule \"%s\"", where,
                                sc->keys[s]);
            dsc_schedule d;
            char err[DSC_ERR_MAX];
            d = dsc_schedule_default();
            d.kind = (dsc_schedule_kind)kind;
            const djson *f;
            int ok = json_int(djson_get(o, "warmup"), 0, JSON_INT_MAX, &d.warmup) &&
                     json_int(djson_get(o, "total"), 0, JSON_INT_MAX, &d.total) &&
                     json_int(djson_get(o, "decay"), 0, JSON_INT_MAX, &d.decay) &&
                     json_int(djson_get(o, "step_size"), 0, JSON_INT_MAX, &d.step_size);
            if ((f = djson_get(o, "gamma")) && f->type == DJSON_NUMBER) d.gamma = f->number;
            else ok = 0;
            if ((f = djson_get(o, "min_ratio")) && f->type == DJSON_NUMBER) d.min_ratio = f->number;
            else ok = 0;
            if (!ok)
                return dsc_fail(opt, DSC_CORRUPT, "load: %s: schedule \"%s\" has a missing, "
                                "fractional or out-of-range field", where, sc->keys[s]);
            if (dsc_schedule_validate(&d, err, sizeof err) != DSC_OK)
                return dsc_fail(opt, DSC_CORRUPT, "load: %s: %s", where, err);
            u->sched[k] = d;
            u->sched_mask |= 1ull << k;
        }
    }
    for (size_t i = 0; i < params->count; i++) {
        const djson *p = &params->items[i];
        const djson *name = djson_get(p, "name"), *group = djson_get(p, "group");
        const djson *shape = djson_get(p, "shape"), *nd = djson_get(p, "no_decay");
        if (!name || name->type != DJSON_STRING || !group || group->type != DJSON_STRING ||
            !shape || shape->type != DJSON_ARRAY)
            return dsc_fail(opt, DSC_CORRUPT, "load: parameter %zu is incomplete", i);
        dsc_param *mine = dsc_optimizer_find_param(opt, name->string);
        if (!mine)
            return dsc_fail(opt, DSC_MISMATCH, "load: checkpoint parameter \"%s\" does not "
                            "exist in this optimizer", name->string);
        if (strcmp(opt->groups[mine->group]->name, group->string))
            return dsc_fail(opt, DSC_MISMATCH, "load: parameter \"%s\" is in group \"%s\" here "
                            "but in \"%s\" in the checkpoint", name->string,
                            opt->groups[mine->group]->name, group->string);
        int same = (int)shape->count == mine->ndim;
        for (int d = 0; d < (int)shape->count; d++) {
            int64_t dim;
            if (!json_int(&shape->items[d], 0, JSON_INT_MAX, &dim))
                return dsc_fail(opt, DSC_CORRUPT, "load: parameter \"%s\": shape entry %d is "
                                "not an integer in [0, 2^53]", name->string, d);
            same = same && dim == mine->shape[d];
        }
        if (!same)
            return dsc_fail(opt, DSC_MISMATCH, "load: parameter \"%s\" has a different shape "
                            "in the checkpoint", name->string);
        int pi = -1;
        for (int k = 0; k < opt->nparams; k++)
            if (opt->params[k] == mine) pi = k;
        param_update *u = &pu[pi];
        u->no_decay = nd && nd->type == DJSON_NUMBER && nd->number != 0;
        char where[DSC_NAME_MAX + 16];
        snprintf(where, sizeof where, "parameter \"%s\"", mine->name);
        dsc_status st = read_hypers(opt, djson_get(p, "overrides"),
                                    opt->groups[mine->group]->family, u->override_value,
                                    &u->override_mask, where);
        if (st) return st;
    }
    return DSC_OK;
}

/* Make sure the buffers exist for the settings about to be restored: the
 * settings are swapped in for dsc_optimizer_ensure_buffers and swapped back,
 * so the optimizer's configuration is unchanged whatever happens. */
static dsc_status reserve_work(dsc_optimizer *opt, group_update *gu,
                               const transform_update *tu)
{
    if (opt->shard_local) return DSC_OK; /* the shard's driver owns the transforms */
    dsc_clip_kind kind = opt->clip_kind;
    dsc_nonfinite_policy nf = opt->nonfinite;
    opt->clip_kind = tu->clip_kind;
    opt->nonfinite = tu->nonfinite;
    for (int i = 0; i < opt->ngroups; i++) {
        struct dsc_group_opts w = opt->groups[i]->wrap;
        opt->groups[i]->wrap = gu[i].wrap;
        gu[i].wrap = w; /* the two swapped; swapped back below */
    }
    dsc_status st = dsc_optimizer_ensure_buffers(opt);
    for (int i = 0; i < opt->ngroups; i++) {
        struct dsc_group_opts w = opt->groups[i]->wrap;
        opt->groups[i]->wrap = gu[i].wrap;
        gu[i].wrap = w;
    }
    opt->clip_kind = kind;
    opt->nonfinite = nf;
    return st;
}

/* Hash the data section (the file positioned at its start) on top of ck. */
static int hash_data(FILE *f, uint64_t left, checksum *ck)
{
    unsigned char buf[1 << 16];
    while (left) {
        size_t chunk = left < sizeof buf ? (size_t)left : sizeof buf;
        if (!read_all(f, buf, chunk)) return 0;
        ck_update(ck, buf, chunk);
        left -= chunk;
    }
    return 1;
}

dsc_status dsc_optimizer_load(dsc_optimizer *opt, const char *path)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!path) return dsc_fail(opt, DSC_NULL_POINTER, "load: path is NULL");
    if (!path[0]) return dsc_fail(opt, DSC_INVALID_ARGUMENT, "load: the path is empty");
    if (opt->swapped || opt->in_hook)
        return dsc_fail(opt, DSC_STATE, "load: %s", opt->in_hook ? "not from inside a step hook"
                        : "averaged weights are swapped in; swap them back first");
    if (opt->shard || dsc_shard_is_manifest(path)) return dsc_shard_load(opt, path);
    if (!host_is_little_endian())
        return dsc_fail(opt, DSC_UNSUPPORTED, "load: big-endian hosts are not supported");
    FILE *f = fopen(path, "rb");
    if (!f) return dsc_fail(opt, DSC_IO, "load: cannot open \"%s\": %s", path, strerror(errno));
    dsc_status st = DSC_OK;
    char *header = NULL;
    djson *root = NULL, *cfg = NULL;
    tensor_ref *t = NULL;
    group_update *gu = NULL;
    param_update *pu = NULL;
    extent *file_entry = NULL, *sorted = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = dsc_fail(opt, DSC_IO, "load: cannot stat \"%s\": %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = dsc_fail(opt, DSC_IO, "load: \"%s\" is a directory, not a checkpoint file", path);
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = dsc_fail(opt, DSC_IO, "load: \"%s\" is not a regular file (a device, pipe or "
                      "socket)", path);
        goto done;
    }
    if (sb.st_size < 8) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\" is truncated (%lld bytes, less than the "
                      "8-byte header length)", path, (long long)sb.st_size);
        goto done;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    unsigned char len8[8];
    if (!read_all(f, len8, 8)) {
        st = dsc_fail(opt, DSC_IO, "load: cannot read \"%s\"", path);
        goto done;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
    if (hl == 0 || hl > MAX_HEADER || hl > file_size - 8) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": header length %" PRIu64 " does not fit "
                      "a %" PRIu64 "-byte file (truncated or not a safetensors file)", path, hl,
                      file_size);
        goto done;
    }
    header = dsc_malloc((size_t)hl);
    if (!header) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory for the header");
        goto done;
    }
    if (!read_all(f, header, (size_t)hl)) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": header truncated", path);
        goto done;
    }
    uint64_t data_size = file_size - 8 - hl;

    /* The whole-file checksum first, on the raw bytes: an edited header is
     * then reported as an edit, whatever the edit did to the JSON. */
    size_t digits_at = 0;
    uint64_t want_sum = 0;
    int whole_file = find_file_checksum(header, (size_t)hl, &digits_at, &want_sum);
    if (whole_file) {
        checksum ck;
        ck_init(&ck);
        ck_update(&ck, len8, 8);
        ck_update(&ck, header, digits_at);
        ck_update(&ck, "0000000000000000", 16);
        ck_update(&ck, header + digits_at + 16, (size_t)hl - digits_at - 16);
        if (!hash_data(f, data_size, &ck)) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": data truncated", path);
            goto done;
        }
        if (ck_final(&ck) != want_sum) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": checksum mismatch: the file changed "
                          "after it was written (edited, corrupted or truncated); nothing was "
                          "loaded", path);
            goto done;
        }
    }

    char err[DSC_ERR_MAX];
    int oom = 0;
    root = djson_parse(header, (size_t)hl, &json_alloc, err, sizeof err, &oom);
    if (oom) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory reading the header");
        goto done;
    }
    if (!root || root->type != DJSON_OBJECT) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": header is not valid JSON (%s)", path,
                      root ? "not an object" : err);
        goto done;
    }
    const djson *meta = djson_get(root, "__metadata__");
    const char *format = meta_string(meta, "format");
    if (!format || strcmp(format, FORMAT_NAME)) {
        st = dsc_fail(opt, DSC_MISMATCH, "load: \"%s\" is a safetensors file but not descent "
                      "optimizer state (metadata format is %s)", path, format ? format : "absent");
        goto done;
    }
    int64_t version = 0, step = 0, skipped = 0, zeroed = 0;
    if (!parse_i64(meta_string(meta, "format_version"), &version) || version < 1 ||
        version > FORMAT_VERSION) {
        st = dsc_fail(opt, DSC_MISMATCH, "load: \"%s\": format version %s, this library reads "
                      "1 to %d", path, meta_string(meta, "format_version") ? meta_string(meta,
                      "format_version") : "absent", FORMAT_VERSION);
        goto done;
    }
    const char *cks = meta_string(meta, "checksum");
    if (version >= 2 && !whole_file) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": the whole-file checksum "
                      "(\"fnv1a64w-file:\" and 16 hex digits) is missing or malformed", path);
        goto done;
    }
    if (version == 1) {
        /* Written before the whole-file checksum: the data section only. */
        uint64_t data_sum = 0;
        char tail;
        checksum ck;
        ck_init(&ck);
        if (!cks || strncmp(cks, "fnv1a64w:", 9) || strlen(cks) != 25 ||
            sscanf(cks + 9, "%16" SCNx64 "%c", &data_sum, &tail) != 1) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": checksum missing", path);
            goto done;
        }
        if (fseeko(f, (off_t)(8 + hl), SEEK_SET) != 0 || !hash_data(f, data_size, &ck)) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": data truncated", path);
            goto done;
        }
        if (ck_final(&ck) != data_sum) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": checksum mismatch (the file is "
                          "corrupted)", path);
            goto done;
        }
    }
    if (!parse_i64(meta_string(meta, "step"), &step) || step < 0 ||
        !parse_i64(meta_string(meta, "skipped_total"), &skipped) || skipped < 0 ||
        !parse_i64(meta_string(meta, "zeroed_total"), &zeroed) || zeroed < 0) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": step counters missing or invalid", path);
        goto done;
    }
    uint64_t seed = opt->seed; /* files without one keep the caller's */
    if (meta_string(meta, "seed") && !parse_u64(meta_string(meta, "seed"), &seed)) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": seed invalid", path);
        goto done;
    }
    const char *cfg_text = meta_string(meta, "config");
    cfg = cfg_text ? djson_parse(cfg_text, strlen(cfg_text), &json_alloc, err, sizeof err, &oom)
                   : NULL;
    if (!cfg && oom) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory reading the configuration");
        goto done;
    }
    if (!cfg) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": configuration unreadable (%s)", path,
                      cfg_text ? err : "absent");
        goto done;
    }
    gu = dsc_calloc((size_t)opt->ngroups + 1, sizeof *gu);
    pu = dsc_calloc((size_t)opt->nparams + 1, sizeof *pu);
    if (!gu || !pu) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory");
        goto done;
    }
    if ((st = check_config(opt, cfg, gu, pu)) != DSC_OK) goto done;
    transform_update tu;
    if ((st = read_transform(opt, djson_get(cfg, "transform"), &tu)) != DSC_OK) goto done;

    /* Tensors: every expected one present with the right dtype, shape and
     * extent; none unexpected; together they tile the data section. */
    long n = list_tensors(opt, &t);
    if (n < 0) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory");
        goto done;
    }
    file_entry = dsc_calloc((size_t)(n > 0 ? n : 1), sizeof *file_entry);
    sorted = dsc_calloc((size_t)(n > 0 ? n : 1), sizeof *sorted);
    if (!file_entry || !sorted) {
        st = dsc_fail(opt, DSC_NO_MEMORY, "load: out of memory");
        goto done;
    }
    size_t ntensors = root->count - (meta ? 1 : 0);
    if ((long)ntensors != n) {
        st = dsc_fail(opt, DSC_MISMATCH, "load: \"%s\" holds %zu state tensors, this "
                      "optimizer has %ld", path, ntensors, n);
        goto done;
    }
    for (long i = 0; i < n; i++) {
        long e = -1;
        for (size_t k = 0; k < root->count; k++)
            if (!strcmp(root->keys[k], t[i].key)) e = (long)k;
        if (e < 0) {
            st = dsc_fail(opt, DSC_MISMATCH, "load: \"%s\" has no tensor \"%s\"", path, t[i].key);
            goto done;
        }
        const djson *ent = &root->items[e];
        const djson *dt = djson_get(ent, "dtype"), *shape = djson_get(ent, "shape");
        const djson *off = djson_get(ent, "data_offsets");
        int ok = 0;
        dsc_dtype dtype = dt && dt->type == DJSON_STRING ? dtype_from_name(dt->string, &ok)
                                                        : DSC_DT_F32;
        int64_t b = 0, en = 0;
        if (!ok || !shape || shape->type != DJSON_ARRAY || !off || off->type != DJSON_ARRAY ||
            off->count != 2 || !json_int(&off->items[0], 0, JSON_INT_MAX, &b) ||
            !json_int(&off->items[1], 0, JSON_INT_MAX, &en)) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": entry \"%s\" is malformed", path,
                          t[i].key);
            goto done;
        }
        const dsc_slot *s = t[i].slot;
        int same = dtype == s->dtype && (int)shape->count == s->ndim;
        for (size_t d = 0; d < shape->count; d++) {
            int64_t dim;
            if (!json_int(&shape->items[d], 0, JSON_INT_MAX, &dim)) {
                st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": tensor \"%s\": shape entry %zu "
                              "is not an integer in [0, 2^53]", path, t[i].key, d);
                goto done;
            }
            same = same && (int)d < s->ndim && dim == s->shape[d];
        }
        if (!same) {
            st = dsc_fail(opt, DSC_MISMATCH, "load: tensor \"%s\": dtype or shape differs from "
                          "this optimizer's state (the file's %s, %zu dims; here %s, %d dims)%s",
                          t[i].key, dt->string, shape->count, dsc_dtype_name(s->dtype),
                          s->ndim,
                          (dtype == DSC_DT_BF16) != (s->dtype == DSC_DT_BF16)
                              ? ": saved with another bf16_state"
                              : "");
            goto done;
        }
        if (en < b || (uint64_t)en > data_size || (uint64_t)(en - b) != slot_bytes(s)) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": tensor \"%s\" lies outside the data "
                          "(file truncated?)", path, t[i].key);
            goto done;
        }
        file_entry[i].begin = sorted[i].begin = (uint64_t)b;
        file_entry[i].end = sorted[i].end = (uint64_t)en;
    }
    qsort(sorted, (size_t)n, sizeof *sorted, extent_cmp);
    for (long i = 0; i < n; i++) {
        uint64_t expect = i ? sorted[i - 1].end : 0;
        if (sorted[i].begin != expect || (i == n - 1 && sorted[i].end != data_size)) {
            st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": the tensors' data_offsets overlap or "
                          "leave gaps in the data section", path);
            goto done;
        }
    }
    if (n == 0 && data_size != 0) {
        st = dsc_fail(opt, DSC_CORRUPT, "load: \"%s\": %" PRIu64 " bytes of data but no "
                      "tensors", path, data_size);
        goto done;
    }

    /* The work buffers the restored transform settings need, before
     * anything changes (an allocation failure here changes nothing). */
    if ((st = reserve_work(opt, gu, &tu)) != DSC_OK) goto done;

    /* Everything checked: read the tensors into the slots. A read error
     * now (the file changed under us) is reported; state may be partial. */
    for (long i = 0; i < n; i++) {
        if (fseeko(f, (off_t)(8 + hl + file_entry[i].begin), SEEK_SET) != 0 ||
            !read_all(f, t[i].slot->data, slot_bytes(t[i].slot))) {
            st = dsc_fail(opt, DSC_IO, "load: \"%s\": read failed after validation", path);
            goto done;
        }
    }
    for (int i = 0; i < opt->ngroups; i++) {
        dsc_group *g = opt->groups[i];
        memcpy(g->base, gu[i].base, sizeof g->base);
        memcpy(g->init, gu[i].init, sizeof g->init);
        memcpy(g->sched, gu[i].sched, sizeof g->sched);
        g->sched_mask = gu[i].sched_mask;
        g->wrap = gu[i].wrap;
    }
    opt->clip_kind = tu.clip_kind;
    opt->clip_limit = tu.clip_limit;
    opt->nonfinite = tu.nonfinite;
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        memcpy(p->override_value, pu[i].override_value, sizeof p->override_value);
        p->override_mask = pu[i].override_mask;
        p->no_decay = pu[i].no_decay;
    }
    opt->step = step;
    opt->seed = seed;
    opt->micro = 0;
    opt->stats.step = step;
    opt->stats.skipped_total = skipped;
    opt->stats.zeroed_total = zeroed;
    dsc_bf16_publish_masters(opt); /* bf16 parameters show their loaded masters (bf16.c) */
done:
    fclose(f);
    dsc_free(header);
    djson_free(root, &json_alloc);
    djson_free(cfg, &json_alloc);
    dsc_free(t);
    dsc_free(gu);
    dsc_free(pu);
    dsc_free(file_entry);
    dsc_free(sorted);
    return st;
}
