/* json.c - see json.h. Recursive descent over a length-delimited buffer
 * (no NUL needed); each container counts an item before parsing it, so a
 * failure anywhere frees exactly what was built. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct {
    const char *start, *s, *end;
    void *(*alloc)(size_t);
    void (*release)(void *);
    char *err;
    size_t errlen;
    int depth;
    int oom;
} parser;

/* Records the first error only: an inner failure says more than the
 * containers around it. */
static int fail(parser *p, const char *what)
{
    if (p->err && p->errlen && !p->err[0])
        snprintf(p->err, p->errlen, "JSON: %s at byte %ld", what, (long)(p->s - p->start));
    return 0;
}

static int fail_oom(parser *p)
{
    p->oom = 1;
    return fail(p, "out of memory");
}

static void *zalloc(parser *p, size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size) return NULL;
    size_t bytes = count * size;
    void *q = p->alloc(bytes > 0 ? bytes : 1);
    if (q) memset(q, 0, bytes);
    return q;
}

/* The caller's release function need not accept NULL. */
static void drop(void (*release)(void *), void *q)
{
    if (q) release(q);
}

static void clear(void (*release)(void *), djson *v)
{
    if (v->type == DJSON_STRING) drop(release, v->string);
    if (v->type == DJSON_ARRAY || v->type == DJSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++) {
            clear(release, &v->items[i]);
            if (v->keys) drop(release, v->keys[i]);
        }
        drop(release, v->items);
        drop(release, v->keys);
    }
    memset(v, 0, sizeof *v);
}

static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

/* Four hex digits at q (the caller checked they are inside the string). */
static int hex4(const char *q, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        int h = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
        if (h < 0) return 0;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal (p->s at its opening quote) into a new buffer. The
 * unescaped text is never longer than the escaped one (a \u escape of six
 * bytes gives at most three, a pair of twelve at most four), so one
 * buffer of the literal's length suffices. */
static int parse_string(parser *p, char **out)
{
    if (p->s >= p->end || *p->s != '"') return fail(p, "expected a string");
    const char *start = ++p->s;
    while (p->s < p->end && *p->s != '"') {
        if (*p->s == '\\' && p->end - p->s > 1) p->s++; /* never past the end */
        p->s++;
    }
    if (p->s >= p->end) return fail(p, "unterminated string");
    const char *stop = p->s;
    char *buf = p->alloc((size_t)(stop - start) + 1), *o = buf;
    if (!buf) return fail_oom(p);
    const char *why = NULL;
    for (const char *c = start; c < stop && !why; c++) {
        if ((unsigned char)*c < 0x20) {
            why = "control character in a string";
            break;
        }
        if (*c != '\\') {
            *o++ = *c;
            continue;
        }
        c++; /* c < stop: the scan above kept every escape inside */
        switch (*c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (stop - c < 5 || !hex4(c + 1, &cp)) {
                why = "bad \\u escape";
                break;
            }
            c += 4;
            /* Beyond the BMP, UTF-16 writes a high then a low surrogate;
             * either one alone is not a character. */
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (stop - c < 7 || c[1] != '\\' || c[2] != 'u' || !hex4(c + 3, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    why = "unpaired surrogate";
                    break;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                c += 6;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                why = "unpaired surrogate";
                break;
            }
            /* Strings are C strings: an escaped NUL would cut them short. */
            if (cp == 0) {
                why = "\\u0000 in a string";
                break;
            }
            o += put_utf8(o, cp);
            break;
        }
        default: why = "bad escape"; break;
        }
    }
    if (why) {
        p->release(buf);
        return fail(p, why);
    }
    *o = '\0';
    p->s++; /* the closing quote */
    *out = buf;
    return 1;
}

static int parse_value(parser *p, djson *v);

/* Room for one more item (and key). Grown by copying into new blocks, as
 * the allocator interface has no realloc. */
static int grow(parser *p, djson *v, size_t *cap, int with_keys)
{
    if (v->count < *cap) return 1;
    size_t ncap = *cap ? *cap * 2 : 8;
    djson *items = zalloc(p, ncap, sizeof *items);
    char **keys = with_keys ? zalloc(p, ncap, sizeof *keys) : NULL;
    if (!items || (with_keys && !keys)) {
        drop(p->release, items);
        drop(p->release, keys);
        return fail_oom(p);
    }
    if (v->count) {
        memcpy(items, v->items, v->count * sizeof *items);
        if (with_keys) memcpy(keys, v->keys, v->count * sizeof *keys);
    }
    drop(p->release, v->items);
    drop(p->release, v->keys);
    v->items = items;
    v->keys = keys;
    *cap = ncap;
    return 1;
}

static int parse_container(parser *p, djson *v, int object)
{
    if (++p->depth > MAX_DEPTH) return fail(p, "nested more than 32 deep");
    v->type = object ? DJSON_OBJECT : DJSON_ARRAY;
    const char close = object ? '}' : ']';
    p->s++;
    size_t cap = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        p->depth--;
        return 1;
    }
    for (;;) {
        if (!grow(p, v, &cap, object)) return 0;
        skip_ws(p);
        if (object) {
            char *key;
            if (!parse_string(p, &key)) return 0;
            /* A repeated key would let two readers pick different values. */
            for (size_t k = 0; k < v->count; k++)
                if (!strcmp(v->keys[k], key)) {
                    p->release(key);
                    return fail(p, "duplicate key");
                }
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                p->release(key);
                return fail(p, "expected ':'");
            }
            p->s++;
            v->keys[v->count] = key;
        }
        v->count++; /* counted first, so a failure inside frees the item */
        if (!parse_value(p, &v->items[v->count - 1])) return 0;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            p->depth--;
            return 1;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int digit(const char *q, const char *e) { return q < e && *q >= '0' && *q <= '9'; }

/* RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and, here,
 * finite: no leading zeros, no "1.", no hex, no overflow to infinity. */
static int parse_number(parser *p, djson *v)
{
    const char *q = p->s, *e = p->end;
    if (q < e && *q == '-') q++;
    if (!digit(q, e)) return fail(p, "malformed number");
    if (*q == '0') q++;
    else
        while (digit(q, e)) q++;
    if (q < e && *q == '.') {
        q++;
        if (!digit(q, e)) return fail(p, "malformed number");
        while (digit(q, e)) q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        if (!digit(q, e)) return fail(p, "malformed number");
        while (digit(q, e)) q++;
    }
    size_t n = (size_t)(q - p->s);
    char buf[64];
    if (n >= sizeof buf) return fail(p, "number longer than 63 characters");
    memcpy(buf, p->s, n);
    buf[n] = '\0';
    char *stop;
    v->number = strtod(buf, &stop);
    if (stop != buf + n) return fail(p, "malformed number");
    if (!isfinite(v->number)) return fail(p, "number out of the range of a double");
    v->type = DJSON_NUMBER;
    p->s = q;
    return 1;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n)) return 0;
    p->s += n;
    return 1;
}

static int parse_value(parser *p, djson *v)
{
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->s >= p->end) return fail(p, "unexpected end");
    char c = *p->s;
    if (c == '{' || c == '[') return parse_container(p, v, c == '{');
    if (c == '"') {
        v->type = DJSON_STRING;
        return parse_string(p, &v->string);
    }
    if (literal(p, "true")) {
        v->type = DJSON_BOOL;
        v->number = 1;
        return 1;
    }
    if (literal(p, "false")) {
        v->type = DJSON_BOOL;
        return 1;
    }
    if (literal(p, "null")) return 1; /* DJSON_NULL, from the memset */
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    return fail(p, "unexpected character");
}

static void *plain_alloc(size_t n) { return malloc(n); }
static void plain_release(void *q) { free(q); }

djson *djson_parse(const char *text, size_t len, const djson_allocator *a, char *err,
                   size_t errlen, int *oom)
{
    parser p = {text, text, text + len, a ? a->alloc : plain_alloc,
                a ? a->release : plain_release, err, errlen, 0, 0};
    if (oom) *oom = 0;
    if (err && errlen) err[0] = '\0';
    djson *v = zalloc(&p, 1, sizeof *v);
    if (!v) {
        fail_oom(&p);
        if (oom) *oom = 1;
        return NULL;
    }
    int ok = text != NULL && parse_value(&p, v);
    if (!text) fail(&p, "no text");
    if (ok) {
        skip_ws(&p);
        if (p.s != p.end) ok = fail(&p, "text after the value");
    }
    if (!ok) {
        if (oom) *oom = p.oom;
        clear(p.release, v);
        p.release(v);
        return NULL;
    }
    return v;
}

void djson_free(djson *v, const djson_allocator *a)
{
    if (!v) return;
    void (*release)(void *) = a ? a->release : plain_release;
    clear(release, v);
    release(v);
}

const djson *djson_get(const djson *obj, const char *key)
{
    if (!obj || obj->type != DJSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (obj->keys[i] && !strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}
