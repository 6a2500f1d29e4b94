/* check.h - tiny test macros: print the expression, the values and
 * file:line, count failures; main returns check_report(). */
#ifndef DESCENT_CHECK_H
#define DESCENT_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        check_count++;                                                                  \
        if (!(cond)) {                                                                  \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                               \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long va_ = (long long)(a), vb_ = (long long)(b);                           \
        check_count++;                                                                  \
        if (va_ != vb_) {                                                               \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s = %lld, %s = %lld\n",      \
                    __FILE__, __LINE__, #a, va_, #b, vb_);                              \
        }                                                                               \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double va_ = (double)(a), vb_ = (double)(b);                                    \
        check_count++;                                                                  \
        if (!(fabs(va_ - vb_) <= (tol))) {                                              \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g (tol %g)\n", \
                    __FILE__, __LINE__, #a, va_, #b, vb_, (double)(tol));               \
        }                                                                               \
    } while (0)

/* A status call must return `expected`; prints the handle's message if not. */
#define CHECK_STATUS(call, expected, opt)                                               \
    do {                                                                                \
        dsc_status st_ = (call);                                                        \
        check_count++;                                                                  \
        if (st_ != (expected)) {                                                        \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__,      \
                    __LINE__, #call, dsc_status_name(st_), dsc_status_name(expected),   \
                    (opt) ? dsc_optimizer_error(opt) : "");                             \
        }                                                                               \
    } while (0)

static int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* The whole file at path, NUL-terminated (*len excludes the NUL), read in
 * growing chunks so pipes work too; NULL (and *len 0) if it cannot be opened or memory
 * runs out. The caller frees it. */
static inline char *check_slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) {
            char *p = realloc(buf, (cap *= 2) + 1);
            if (!p) free(buf);
            buf = p;
        }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

#endif
