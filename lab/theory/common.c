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

/* The stream is folded into the seed, so each (seed, stream) pair starts
 * its own xoshiro256** state through lab_rng_seed's splitmix64. */
void th_rng_seed(th_rng *r, uint64_t seed, uint64_t stream)
{
    lab_rng_seed(&r->core, seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL));
    r->have_spare = 0;
    r->spare = 0.0;
}

uint64_t th_rng_u64(th_rng *r) { return lab_rng_u64(&r->core); }

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

const char *th_size_name(th_size s)
{
    return s == TH_SIZE_TEST ? "test" : s == TH_SIZE_LARGE ? "large" : "default";
}

/* -------------------------------------------------------------- verdicts */

void th_verdicts_init(th_verdicts *v, const char *experiment)
{
    memset(v, 0, sizeof *v);
    snprintf(v->experiment, sizeof v->experiment, "%s", experiment);
}

void th_claim_add(th_verdicts *v, const char *claim, lab_claim_kind kind, double a, double b,
                  lab_ci ci, double predicted)
{
    if (v->nclaims >= TH_MAX_CLAIMS) return;
    th_claim *k = &v->claims[v->nclaims++];
    snprintf(k->claim, sizeof k->claim, "%s", claim);
    k->measured = ci.est, k->lo = ci.lo, k->hi = ci.hi;
    k->predicted = predicted;
    k->verdict = lab_verdict_of(kind, a, b, ci);
    switch (kind) {
    case LAB_CLAIM_ABOVE:
        snprintf(k->rule, sizeof k->rule, "supported if the interval lies above %g", a);
        break;
    case LAB_CLAIM_BELOW:
        snprintf(k->rule, sizeof k->rule, "supported if the interval lies below %g", b);
        break;
    default:
        snprintf(k->rule, sizeof k->rule, "supported if the interval lies within [%g, %g]", a, b);
        break;
    }
}

const char *th_fmt(char *buf, size_t n, double v)
{
    if (isnan(v)) snprintf(buf, n, "-");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "did not reach" : "-inf");
    else snprintf(buf, n, "%.3g", v);
    return buf;
}

const char *th_fmt_ci(char *buf, size_t n, lab_ci ci)
{
    char a[32], b[32], e[32];
    if (isinf(ci.est) && ci.est > 0) {
        snprintf(buf, n, "did not reach");
        return buf;
    }
    th_fmt(e, sizeof e, ci.est);
    th_fmt(a, sizeof a, ci.lo);
    if (isinf(ci.hi) && ci.hi > 0) snprintf(b, sizeof b, "inf");
    else th_fmt(b, sizeof b, ci.hi);
    snprintf(buf, n, "%s [%s, %s]", e, a, b);
    return buf;
}

const char *th_fmt_lr(char *buf, size_t n, const lab_tune_result *r)
{
    if (r->best < 0) snprintf(buf, n, "none reached");
    else if (r->edge) snprintf(buf, n, "%.3g (EDGE: %s)", r->best_lr, lab_tune_edge_name(r));
    else if (r->at_cap) snprintf(buf, n, "%.3g (cap)", r->best_lr);
    else snprintf(buf, n, "%.3g", r->best_lr);
    return buf;
}

void th_tuned(const th_ctx *c, th_verdicts *v, const char *what, const lab_tune_result *r)
{
    v->tuned++;
    if (r->best >= 0 && r->edge == 0) return;
    if (r->best < 0) v->unreached++;
    else v->edge_hits++;
    (void)c;
    if (r->best < 0)
        fprintf(stderr, "WARNING: %s: no lr on the grid reached the target\n", what);
    else
        fprintf(stderr, "WARNING: %s: best lr %.3g is on the grid's %s after extension\n", what,
                r->best_lr, lab_tune_edge_name(r));
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fprintf(f, "null");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

int th_verdicts_finish(const th_ctx *c, const th_verdicts *v)
{
    th_say(c, "\n### Verdicts (%s)\n\n", v->experiment);
    for (int i = 0; i < v->nclaims; i++) {
        const th_claim *k = &v->claims[i];
        char m[96], p[32];
        lab_ci ci = {k->measured, k->lo, k->hi};
        th_fmt_ci(m, sizeof m, ci);
        th_say(c, "- %s: measured %s, predicted %s: **%s** (%s)\n", k->claim, m,
               th_fmt(p, sizeof p, k->predicted), lab_verdict_name(k->verdict), k->rule);
    }
    th_say(c, "\nTuned learning rates: %d; left on a grid edge: %d; no lr reached the target: "
              "%d.\n", v->tuned, v->edge_hits, v->unreached);
    char path[1024], name[96];
    snprintf(name, sizeof name, "%s.json", v->experiment);
    if (!th_path(c, name, path, sizeof path)) return 0;
    lab_file f;
    if (lab_file_open(&f, path) != 0) {
        if (c->log) fprintf(c->log, "cannot write %s\n", path);
        return -1;
    }
    fprintf(f.fp, "{\n  \"experiment\": ");
    json_str(f.fp, v->experiment);
    fprintf(f.fp, ",\n  \"size\": \"%s\",\n  \"seed\": %llu,\n  \"level\": %g,\n  \"claims\": [",
            th_size_name(c->size), (unsigned long long)c->seed, TH_LEVEL);
    for (int i = 0; i < v->nclaims; i++) {
        const th_claim *k = &v->claims[i];
        fprintf(f.fp, "%s\n    {\"claim\": ", i ? "," : "");
        json_str(f.fp, k->claim);
        fprintf(f.fp, ", \"measured\": ");
        json_num(f.fp, k->measured);
        fprintf(f.fp, ", \"ci\": [");
        json_num(f.fp, k->lo);
        fprintf(f.fp, ", ");
        json_num(f.fp, k->hi);
        fprintf(f.fp, "], \"predicted\": ");
        json_num(f.fp, k->predicted);
        fprintf(f.fp, ", \"verdict\": \"%s\", \"rule\": ", lab_verdict_name(k->verdict));
        json_str(f.fp, k->rule);
        if (isinf(k->measured) || isinf(k->hi))
            fprintf(f.fp, ", \"note\": \"null bounds: did not reach within the budget\"");
        fprintf(f.fp, "}");
    }
    fprintf(f.fp, "\n  ],\n  \"tuned\": %d,\n  \"edge_hits\": %d,\n  \"unreached\": %d\n}\n",
            v->tuned, v->edge_hits, v->unreached);
    if (lab_file_commit(&f) != 0) {
        if (c->log) fprintf(c->log, "cannot write %s\n", path);
        return -1;
    }
    if (c->log) fprintf(c->log, "json: %s\n", path);
    return 0;
}

/* ------------------------------------------------------- tuned hit times */

typedef struct {
    void *cell;
    th_hit_fn fn;
    int method, draws;
    long budget;
    double *hits;
    int failed;
} hit_tune;

/* Score of an lr: the median hit time over the draws. A run is capped at
 * the best median so far (a draw slower than that cannot pull the median
 * below it), and the draws stop once more than half have missed. */
static int hit_score(double lr, double bound, void *user, double *score)
{
    hit_tune *h = user;
    long cap = h->budget;
    if (isfinite(bound) && bound < (double)cap) cap = (long)bound;
    int missed = 0;
    for (int j = 0; j < h->draws; j++) {
        double s;
        if (h->fn(h->cell, h->method, lr, j, cap, &s) != 0) {
            h->failed = 1;
            return -1;
        }
        h->hits[j] = s;
        if (!isfinite(s) && ++missed > h->draws / 2) {
            *score = INFINITY;
            return 0;
        }
    }
    *score = lab_median(h->hits, h->draws);
    return 0;
}

int th_tune_hits(void *cell, th_hit_fn fn, int method, int draws, long budget,
                 const lab_tune_opts *o, lab_tune_result *r, double *hits)
{
    hit_tune h = {cell, fn, method, draws, budget, hits, 0};
    char err[160];
    if (lab_tune(o, hit_score, &h, r, err, sizeof err) != 0) {
        if (!h.failed) fprintf(stderr, "%s\n", err);
        return -1;
    }
    for (int j = 0; j < draws; j++) hits[j] = INFINITY;
    if (r->best < 0) return 0;
    for (int j = 0; j < draws; j++)
        if (fn(cell, method, r->best_lr, j, budget, &hits[j]) != 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ cache */

static int cache_path(const th_ctx *c, const char *key, char *buf, size_t n)
{
    if (!c->out_dir) return 0;
    snprintf(buf, n, "%s/cache/%s-%s-%llu.txt", c->out_dir, key, th_size_name(c->size),
             (unsigned long long)c->seed);
    return 1;
}

int th_cache_get(const th_ctx *c, const char *key, char *buf, size_t n)
{
    char path[1200];
    if (!c->resume || !cache_path(c, key, path, sizeof path)) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t k = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[k] = 0;
    return k > 0;
}

void th_cache_put(const th_ctx *c, const char *key, const char *text)
{
    char path[1200], dir[1100];
    if (!cache_path(c, key, path, sizeof path)) return;
    snprintf(dir, sizeof dir, "%s/cache", c->out_dir);
    if (lab_mkdirs(dir) != 0) return;
    lab_file_write_text(path, text);
}
