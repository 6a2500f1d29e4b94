/* spec.c - the one tokenizer for "name:key=value,key=value" texts.
 *
 * Optimizer specs (dsc_optimizer_add_group, dsc_optimizer_use_split,
 * dsc_state_bytes) and schedules (dsc_schedule_parse) share this grammar,
 * so they accept and refuse exactly the same things:
 *
 *     spec  = ws name ws [ ":" item { "," item } ] ws
 *     item  = ws key ws "=" ws value ws
 *     name  = letter or digit or "_" or "-", one or more
 *     key   = letter or "_", then letters, digits, "_"
 *     value = [+-] digits [ "." digits ] [ (e|E) [+-] digits ]
 *           | [+-] "." digits [ (e|E) [+-] digits ]
 *           | true | false | True | False
 *
 * It is strict on purpose: a duplicate key, an empty item (",," or a
 * trailing comma), a hex float ("0x10"), "inf" or "nan", a value that
 * overflows a double and any trailing garbage are refused, and the message
 * gives the 1-based character where the text went wrong. A lenient parser
 * that lets "lr=1e-3,lr=2e-3" mean 2e-3 turns a typo into a silent change
 * of the experiment.
 *
 * Values are parsed with strtod after the syntax above is checked, so the
 * digits are converted by the C library (correctly rounded), never by a
 * hand-written loop. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The message: what, the text (cut when long), the problem, the character. */
static dsc_status fail_at(dsc_status st, const char *what, const char *text, size_t at,
                          char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;
static dsc_status fail_at(dsc_status st, const char *what, const char *text, size_t at,
                          char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return st;
    char problem[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    size_t n = strlen(text);
    int shown = n > 200 ? 200 : (int)n;
    snprintf(err, errlen, "%s \"%.*s%s\": %s at character %zu", what, shown, text,
             n > 200 ? "..." : "", problem, at + 1);
    return st;
}

/* Length of a strict decimal number at s (0 if there is none). */
static size_t number_length(const char *s)
{
    size_t i = 0, digits = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    while (is_digit(s[i])) i++, digits++;
    if (s[i] == '.') {
        i++;
        while (is_digit(s[i])) i++, digits++;
    }
    if (digits == 0) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1, edigits = 0;
        if (s[j] == '+' || s[j] == '-') j++;
        while (is_digit(s[j])) j++, edigits++;
        if (edigits == 0) return 0;
        i = j;
    }
    return i;
}

/* 1 if a digit 1-9 comes before the exponent: "1e-400" underflows to 0
 * (refused, the value meant is lost), "0e-400" is just 0. */
static int nonzero_mantissa(const char *s)
{
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '1' && *s <= '9') return 1;
    return 0;
}

static size_t word_length(const char *s)
{
    static const char *const words[] = {"true", "false", "True", "False"};
    for (size_t w = 0; w < 4; w++) {
        size_t n = strlen(words[w]);
        if (!strncmp(s, words[w], n) && !is_alpha(s[n]) && !is_digit(s[n]) && s[n] != '_')
            return n;
    }
    return 0;
}

dsc_status dsc_spec_tokenize(const char *what, const char *text, dsc_spec_tokens *t,
                             char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!text) {
        snprintf(err, errlen, "%s is NULL", what);
        return DSC_NULL_POINTER;
    }
    memset(t, 0, sizeof *t);
    t->text = text;
    size_t i = 0;
    while (is_space(text[i])) i++;
    t->name_at = i;
    while (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '_' || text[i] == '-') i++;
    t->name_len = i - t->name_at;
    if (t->name_len == 0)
        return text[i] ? fail_at(DSC_PARSE, what, text, i, err, errlen,
                                 "expected a name, got '%c'", text[i])
                       : fail_at(DSC_PARSE, what, text, i, err, errlen, "expected a name");
    if (t->name_len >= DSC_SPEC_NAME_MAX)
        return fail_at(DSC_PARSE, what, text, t->name_at, err, errlen,
                       "name longer than %d characters", DSC_SPEC_NAME_MAX - 1);
    memcpy(t->name, text + t->name_at, t->name_len);
    t->name[t->name_len] = '\0';
    while (is_space(text[i])) i++;
    if (text[i] == '\0') return DSC_OK;
    if (text[i] != ':')
        return fail_at(DSC_PARSE, what, text, i, err, errlen,
                       "unexpected '%c' after the name (expected ':' or the end)", text[i]);
    i++;
    for (;;) {
        while (is_space(text[i])) i++;
        if (text[i] == ',' || text[i] == '\0')
            return fail_at(DSC_PARSE, what, text, i, err, errlen, "empty item%s",
                           text[i] ? "" : " (nothing after ':' or a trailing comma)");
        if (!(is_alpha(text[i]) || text[i] == '_'))
            return fail_at(DSC_PARSE, what, text, i, err, errlen,
                           "expected key=value, got '%c'", text[i]);
        if (t->nitems == DSC_SPEC_MAX_ITEMS)
            return fail_at(DSC_PARSE, what, text, i, err, errlen, "more than %d items",
                           DSC_SPEC_MAX_ITEMS);
        dsc_spec_item *it = &t->item[t->nitems];
        it->key_at = i;
        while (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '_') i++;
        size_t klen = i - it->key_at;
        if (klen >= DSC_SPEC_NAME_MAX)
            return fail_at(DSC_PARSE, what, text, it->key_at, err, errlen,
                           "key longer than %d characters", DSC_SPEC_NAME_MAX - 1);
        memcpy(it->key, text + it->key_at, klen);
        it->key[klen] = '\0';
        while (is_space(text[i])) i++;
        if (text[i] != '=')
            return fail_at(DSC_PARSE, what, text, i, err, errlen,
                           "expected '=' after key \"%s\"", it->key);
        i++;
        while (is_space(text[i])) i++;
        it->value_at = i;
        size_t vlen = word_length(text + i);
        if (vlen) {
            it->value = text[i] == 't' || text[i] == 'T' ? 1.0 : 0.0;
            it->is_bool = 1;
        } else {
            vlen = number_length(text + i);
            const char *w = text + i + (text[i] == '+' || text[i] == '-');
            if (vlen == 0 && (!strncasecmp(w, "inf", 3) || !strncasecmp(w, "nan", 3)))
                return fail_at(DSC_OUT_OF_RANGE, what, text, i, err, errlen,
                               "%s must be a finite number", it->key);
            if (vlen == 0)
                return fail_at(DSC_PARSE, what, text, i, err, errlen,
                               "%s: expected a decimal number or true/false", it->key);
            char buf[128];
            if (vlen >= sizeof buf)
                return fail_at(DSC_PARSE, what, text, i, err, errlen,
                               "%s: number longer than %zu characters", it->key,
                               sizeof buf - 1);
            memcpy(buf, text + i, vlen);
            buf[vlen] = '\0';
            errno = 0;
            char *end = NULL;
            double v = strtod(buf, &end);
            if (end != buf + vlen)
                return fail_at(DSC_PARSE, what, text, i, err, errlen,
                               "%s: \"%s\" is not a number", it->key, buf);
            if (isinf(v) || (errno == ERANGE && v == 0.0 && nonzero_mantissa(buf)))
                return fail_at(DSC_OUT_OF_RANGE, what, text, i, err, errlen,
                               "%s: %s is outside the range of a double", it->key, buf);
            it->value = v;
        }
        i += vlen;
        /* Hex floats ("0x10") and suffixes ("1e-3x") stop here. */
        while (is_space(text[i])) i++;
        if (text[i] != ',' && text[i] != '\0')
            return fail_at(DSC_PARSE, what, text, i, err, errlen,
                           "%s: unexpected '%c' after the value (hex floats, inf and nan are "
                           "not accepted)", it->key, text[i]);
        for (int j = 0; j < t->nitems; j++)
            if (!strcmp(t->item[j].key, it->key))
                return fail_at(DSC_PARSE, what, text, it->key_at, err, errlen,
                               "duplicate key \"%s\" (first at character %zu)", it->key,
                               t->item[j].key_at + 1);
        t->nitems++;
        if (text[i] == '\0') return DSC_OK;
        i++; /* the comma */
    }
}

/* The shortest of %.15g, %.17g that reads back as v. */
static const char *shortest(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
    return buf;
}

dsc_status dsc_spec_int(const dsc_spec_tokens *t, const dsc_spec_item *it, const char *what,
                        double min, double max, int64_t *out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    double v = it->value;
    char a[32], b[32], c[32];
    if (v != floor(v))
        return fail_at(DSC_OUT_OF_RANGE, what, t->text, it->value_at, err, errlen,
                       "%s is an integer, got %s", it->key, shortest(v, a, sizeof a));
    /* The comparison is done in double, before any conversion: casting an
     * out-of-range double to an integer is undefined behaviour in C. */
    if (!(v >= min && v <= max))
        return fail_at(DSC_OUT_OF_RANGE, what, t->text, it->value_at, err, errlen,
                       "%s = %s is out of range [%s, %s]", it->key, shortest(v, a, sizeof a),
                       shortest(min, b, sizeof b), shortest(max, c, sizeof c));
    *out = (int64_t)v;
    return DSC_OK;
}
