/* json.c - see json.h. Recursive descent; every allocation is checked and
 * a failure frees what was built. */
#include "json.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *start, *s, *end;
    char *err;
    size_t errlen;
    int depth;
    int oom; /* an allocation failed (not a syntax error) */
} parser;

static int fail(parser *p, const char *what)
{
    if (!strcmp(what, "out of memory")) p->oom = 1;
    snprintf(p->err, p->errlen, "JSON: %s at byte %ld", what, (long)(p->s - p->start));
    return 0;
}

static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static void free_value(json_value *v)
{
    if (v->type == JSON_STRING) dsc_free(v->string);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++) {
            free_value(&v->items[i]);
            if (v->keys) dsc_free(v->keys[i]);
        }
        dsc_free(v->items);
        dsc_free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_string(parser *p, char **out)
{
    if (p->s >= p->end || *p->s != '"') return fail(p, "expected a string");
    p->s++;
    const char *start = p->s;
    size_t n = 0;
    /* The unescaped text is never longer than the escaped one. */
    while (p->s < p->end && *p->s != '"') {
        if (*p->s == '\\' && p->end - p->s > 1) p->s++; /* never past the end */
        p->s++;
    }
    if (p->s >= p->end) return fail(p, "unterminated string");
    char *buf = dsc_malloc((size_t)(p->s - start) + 1);
    if (!buf) return fail(p, "out of memory");
    for (const char *c = start; c < p->s; c++) {
        if ((unsigned char)*c < 0x20) {
            dsc_free(buf);
            return fail(p, "control character in string");
        }
        if (*c != '\\') {
            buf[n++] = *c;
            continue;
        }
        c++;
        switch (*c) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = c + k < p->s ? hexval(c[k]) : -1;
                if (h < 0) {
                    dsc_free(buf);
                    return fail(p, "bad \\u escape");
                }
                cp = cp * 16 + (unsigned)h;
            }
            c += 4;
            /* Strings are C strings: an escaped NUL would cut them short.
             * Surrogates (code points beyond the BMP) are not needed by
             * anything descent writes and are refused rather than
             * half-decoded. */
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
                dsc_free(buf);
                return fail(p, cp ? "surrogate \\u escape (not supported)" : "\\u0000 in string");
            }
            /* Names we write are ASCII; keep BMP code points as UTF-8. */
            if (cp < 0x80) buf[n++] = (char)cp;
            else if (cp < 0x800) {
                buf[n++] = (char)(0xC0 | (cp >> 6));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[n++] = (char)(0xE0 | (cp >> 12));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            dsc_free(buf);
            return fail(p, "bad escape");
        }
    }
    buf[n] = '\0';
    p->s++;
    *out = buf;
    return 1;
}

static int parse_value(parser *p, json_value *v);

static int push(json_value *v, size_t *cap, int with_keys)
{
    if (v->count < *cap) return 1;
    size_t ncap = *cap ? *cap * 2 : 8;
    json_value *items = dsc_calloc(ncap, sizeof *items);
    char **keys = with_keys ? dsc_calloc(ncap, sizeof *keys) : NULL;
    if (!items || (with_keys && !keys)) {
        dsc_free(items);
        dsc_free(keys);
        return 0;
    }
    if (v->count) {
        memcpy(items, v->items, v->count * sizeof *items);
        if (with_keys) memcpy(keys, v->keys, v->count * sizeof *keys);
    }
    dsc_free(v->items);
    dsc_free(v->keys);
    v->items = items;
    v->keys = keys;
    *cap = ncap;
    return 1;
}

static int parse_container(parser *p, json_value *v, int object)
{
    if (++p->depth > 32) return fail(p, "nesting too deep");
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    p->s++;
    size_t cap = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == (object ? '}' : ']')) {
        p->s++;
        p->depth--;
        return 1;
    }
    for (;;) {
        if (!push(v, &cap, object)) return fail(p, "out of memory");
        skip_ws(p);
        if (object) {
            if (!parse_string(p, &v->keys[v->count])) return 0;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                dsc_free(v->keys[v->count]);
                v->keys[v->count] = NULL;
                return fail(p, "expected ':'");
            }
            p->s++;
            /* A repeated key would let a reader pick either value. */
            for (size_t k = 0; k < v->count; k++)
                if (!strcmp(v->keys[k], v->keys[v->count])) {
                    dsc_free(v->keys[v->count]);
                    v->keys[v->count] = NULL;
                    return fail(p, "duplicate key");
                }
        }
        v->count++;
        if (!parse_value(p, &v->items[v->count - 1])) return 0;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == (object ? '}' : ']')) {
            p->s++;
            p->depth--;
            return 1;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, json_value *v)
{
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->s >= p->end) return fail(p, "unexpected end");
    char c = *p->s;
    if (c == '{' || c == '[') return parse_container(p, v, c == '{');
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->string);
    }
    size_t left = (size_t)(p->end - p->s);
    if (left >= 4 && !memcmp(p->s, "true", 4)) { v->type = JSON_BOOL; v->number = 1; p->s += 4; return 1; }
    if (left >= 5 && !memcmp(p->s, "false", 5)) { v->type = JSON_BOOL; p->s += 5; return 1; }
    if (left >= 4 && !memcmp(p->s, "null", 4)) { v->type = JSON_NULL; p->s += 4; return 1; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and,
         * here, finite: no leading zeros, no "1.", no hex, no overflow. */
        const char *q = p->s, *e = p->end;
        if (q < e && *q == '-') q++;
        if (q < e && *q == '0') q++;
        else if (q < e && *q >= '1' && *q <= '9')
            while (q < e && *q >= '0' && *q <= '9') q++;
        else return fail(p, "bad number");
        if (q < e && *q == '.') {
            q++;
            if (!(q < e && *q >= '0' && *q <= '9')) return fail(p, "bad number");
            while (q < e && *q >= '0' && *q <= '9') q++;
        }
        if (q < e && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < e && (*q == '+' || *q == '-')) q++;
            if (!(q < e && *q >= '0' && *q <= '9')) return fail(p, "bad number");
            while (q < e && *q >= '0' && *q <= '9') q++;
        }
        size_t n = (size_t)(q - p->s);
        char buf[64];
        if (n >= sizeof buf) return fail(p, "number longer than 63 characters");
        memcpy(buf, p->s, n);
        buf[n] = '\0';
        char *stop;
        v->number = strtod(buf, &stop);
        if (stop != buf + n) return fail(p, "bad number");
        if (isinf(v->number)) return fail(p, "number out of the range of a double");
        v->type = JSON_NUMBER;
        p->s = q;
        return 1;
    }
    return fail(p, "unexpected character");
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen, int *oom)
{
    parser p = {text, text, text + len, err, errlen, 0, 0};
    if (oom) *oom = 0;
    json_value *v = dsc_calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "JSON: out of memory");
        if (oom) *oom = 1;
        return NULL;
    }
    if (!parse_value(&p, v)) {
        if (oom) *oom = p.oom;
        json_free(v);
        return NULL;
    }
    skip_ws(&p);
    if (p.s != p.end) {
        snprintf(err, errlen, "JSON: trailing characters");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(json_value *v)
{
    if (!v) return;
    free_value(v);
    dsc_free(v);
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (obj->keys[i] && !strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}
