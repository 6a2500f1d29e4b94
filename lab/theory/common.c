/* common.c - what the theory experiments share: the RNG, the context
 * (log, report text, output folder, plots), optimizer set-up, quantiles. */
#include "theory.h"

#include "labfile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ RNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void th_rng_seed(th_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->have_spare = 0;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t th_rng_u64(th_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double th_rng_uniform(th_rng *r)
{
    /* 53 random bits, shifted by half an ulp: never 0, never 1 */
    return ((double)(th_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
}

double th_rng_normal(th_rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * th_rng_uniform(r) - 1.0;
        v = 2.0 * th_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->have_spare = 1;
    return u * f;
}

/* Bailey (1994), "Polar generation of random variates with the
 * t-distribution": (u, v) uniform in the unit disc, w = u^2 + v^2, then
 * u * sqrt(nu (w^(-2/nu) - 1) / w) is t-distributed with nu degrees. */
double th_rng_student_t(th_rng *r, double nu)
{
    double u, v, w;
    do {
        u = 2.0 * th_rng_uniform(r) - 1.0;
        v = 2.0 * th_rng_uniform(r) - 1.0;
        w = u * u + v * v;
    } while (w >= 1.0 || w == 0.0);
    return u * sqrt(nu * (pow(w, -2.0 / nu) - 1.0) / w);
}

/* Chambers, Mallows and Stuck (1976), symmetric case (beta = 0):
 * V uniform on (-pi/2, pi/2), W exponential(1),
 * X = sin(a V) / cos(V)^(1/a) * (cos((1 - a) V) / W)^((1 - a) / a).
 * alpha = 2 gives N(0, 2); alpha = 1 gives Cauchy. */
double th_rng_stable(th_rng *r, double alpha)
{
    const double pi = 3.14159265358979323846;
    double v = pi * (th_rng_uniform(r) - 0.5), w = -log(th_rng_uniform(r));
    if (alpha == 1.0) return tan(v);
    return sin(alpha * v) / pow(cos(v), 1.0 / alpha) *
           pow(cos((1.0 - alpha) * v) / w, (1.0 - alpha) / alpha);
}

/* --------------------------------------------------------------- context */

void th_text_printf(th_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) return;
    if (t->len + (size_t)need + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + (size_t)need + 1) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) return;
        t->buf = nb;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)need;
}

void th_text_free(th_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

th_ctx th_ctx_default(void)
{
    th_ctx c;
    memset(&c, 0, sizeof c);
    c.size = TH_SIZE_DEFAULT;
    c.plot = LAB_PLOT_AUTO;
    c.seed = 42;
    return c;
}

void th_say(const th_ctx *c, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (c->log) {
        fputs(buf, c->log);
        fflush(c->log);
    }
    if (c->md) th_text_printf(c->md, "%s", buf);
}

void th_md(const th_ctx *c, const char *fmt, ...)
{
    if (!c->md) return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    th_text_printf(c->md, "%s", buf);
}

int th_path(const th_ctx *c, const char *name, char *buf, size_t n)
{
    if (!c->out_dir) return 0;
    snprintf(buf, n, "%s/%s", c->out_dir, name);
    return 1;
}

void th_plot(const th_ctx *c, const lab_plot *p, const char *base)
{
    char full[1024], path[1024], msg[256];
    if (!th_path(c, base, full, sizeof full)) return;
    lab_plot_format f = lab_plot_write(p, full, c->plot, path, sizeof path, msg, sizeof msg);
    if (f == LAB_PLOT_NONE) {
        th_say(c, "\n(plot %s skipped: %s)\n", base, msg);
        return;
    }
    const char *file = strrchr(path, '/');
    file = file ? file + 1 : path;
    if (c->log) fprintf(c->log, "\nplot: %s%s%s\n", path, msg[0] ? "  - " : "", msg);
    th_md(c, "\n![%s](%s)\n", p->title ? p->title : base, file);
}

FILE *th_csv_open(const th_ctx *c, const char *name, void **handle)
{
    char path[1024];
    *handle = NULL;
    if (!th_path(c, name, path, sizeof path)) return NULL;
    lab_file *f = malloc(sizeof *f);
    if (!f) return NULL;
    if (lab_file_open(f, path) != 0) {
        if (c->log) fprintf(c->log, "cannot write %s\n", path);
        free(f);
        return NULL;
    }
    *handle = f;
    return f->fp;
}

void th_csv_close(const th_ctx *c, void *handle)
{
    lab_file *f = handle;
    if (!f) return;
    char path[1024];
    snprintf(path, sizeof path, "%s", f->path);
    if (lab_file_commit(f) != 0) {
        if (c->log) fprintf(c->log, "cannot write %s\n", path);
    } else if (c->log) {
        fprintf(c->log, "csv:  %s\n", path);
    }
    free(f);
}

/* --------------------------------------------------------------- helpers */

int th_have(const char *name) { return dsc_optimizer_kind_find(name) != NULL; }

dsc_optimizer *th_opt_new(const char *spec, float *x, const float *g, int ndim,
                          const int64_t *shape, char *err, size_t errlen)
{
    dsc_optimizer *o = dsc_optimizer_new();
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dsc_role role = ndim >= 2 ? DSC_ROLE_MATRIX : DSC_ROLE_VECTOR;
    if (dsc_optimizer_add_group(o, "g", spec) != DSC_OK ||
        dsc_optimizer_add_param(o, "x", x, g, ndim, shape, role, "g") != DSC_OK) {
        snprintf(err, errlen, "%s: %s", spec, dsc_optimizer_error(o));
        dsc_optimizer_free(o);
        return NULL;
    }
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : 1; /* NaN sorts last, as +Inf */
    if (isnan(y)) return -1;
    return (x > y) - (x < y);
}

double th_quantile(double *v, int n, double q)
{
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    double f = pos - i;
    if (f == 0.0) return v[i];
    if (!isfinite(v[i]) || !isfinite(v[i + 1])) return f < 0.5 ? v[i] : v[i + 1];
    return v[i] + f * (v[i + 1] - v[i]);
}

double th_loglog_slope(const double *x, const double *y, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!(x[i] > 0) || !(y[i] > 0) || !isfinite(y[i])) continue;
        double a = log(x[i]), b = log(y[i]);
        sx += a, sy += b, sxx += a * a, sxy += a * b;
        m++;
    }
    if (m < 2) return NAN;
    double den = m * sxx - sx * sx;
    return den != 0 ? (m * sxy - sx * sy) / den : NAN;
}
