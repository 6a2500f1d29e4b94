/* golden.c - read a golden trajectory file and replay it through libdescent.
 *
 * The reader is strict: an unknown record, a count that does not match the
 * declared shape, a step without the parameters it must expect, or a
 * truncated file (no `end`) are errors with the file and line number. */
#include "golden.h"

#include "descent.h"
#include "labfile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest parameter a golden file may declare (elements): golden files are
 * small hand-checkable trajectories; the bound keeps every size product
 * far from overflow. */
#define GOLDEN_MAX_NUMEL ((size_t)1 << 28)

#define FAIL(...)                                                                       \
    do {                                                                                \
        snprintf(err, errlen, __VA_ARGS__);                                             \
        goto fail;                                                                      \
    } while (0)

static int find_param(const golden_file *g, const char *name)
{
    for (int i = 0; i < g->nparams; i++)
        if (!strcmp(g->params[i].name, name)) return i;
    return -1;
}

/* Parse exactly n numbers from s into a new array. The numbers are
 * counted before anything is allocated, so the allocation is bounded by
 * the line's length, never by a count the file merely declares. */
static double *parse_numbers(const char *s, size_t n, size_t *got)
{
    size_t k = 0;
    for (const char *c = s; *c;) { /* count the words */
        while (isspace((unsigned char)*c)) c++;
        if (!*c) break;
        k++;
        while (*c && !isspace((unsigned char)*c)) c++;
    }
    *got = k;
    if (k != n) return NULL;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    k = 0;
    while (*s) {
        while (isspace((unsigned char)*s)) s++;
        if (!*s) break;
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || (!isspace((unsigned char)*end) && *end)) {
            *got = (size_t)-1;
            free(v);
            return NULL;
        }
        v[k++] = x;
        s = end;
    }
    return v;
}

void golden_free(golden_file *g)
{
    if (!g) return;
    for (int i = 0; i < g->nparams; i++) free(g->params[i].init);
    for (int s = 0; s < g->nsteps; s++) {
        for (int i = 0; i < g->nparams; i++) {
            if (g->steps[s].grad) free(g->steps[s].grad[i]);
            if (g->steps[s].expect) free(g->steps[s].expect[i]);
        }
        free(g->steps[s].grad);
        free(g->steps[s].expect);
    }
    free(g->params);
    free(g->steps);
    memset(g, 0, sizeof *g);
}

int golden_read(const char *path, golden_file *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    FILE *f = lab_open_input(path, "golden file", err, errlen);
    if (!f) return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, version = 0, ended = 0;
    golden_step *cur = NULL;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') continue;
        if (ended) FAIL("%s:%d: text after `end`", path, lineno);
        char word[32];
        int wn = 0;
        if (sscanf(s, "%31s%n", word, &wn) != 1) FAIL("%s:%d: unreadable line", path, lineno);
        char *rest = s + wn;
        if (!version && strcmp(word, "golden"))
            FAIL("%s:%d: expected `golden 1` first, got \"%s\"", path, lineno, word);
        if (!strcmp(word, "golden")) {
            if (sscanf(rest, "%d", &version) != 1 || version != 1)
                FAIL("%s:%d: unsupported golden format version", path, lineno);
        } else if (!strcmp(word, "name")) {
            if (sscanf(rest, "%127s", g->name) != 1) FAIL("%s:%d: name missing", path, lineno);
        } else if (!strcmp(word, "optimizer")) {
            if (sscanf(rest, "%63s", g->optimizer) != 1)
                FAIL("%s:%d: optimizer missing", path, lineno);
        } else if (!strcmp(word, "tolerance")) {
            if (sscanf(rest, "%lf", &g->tolerance) != 1 || !(g->tolerance > 0))
                FAIL("%s:%d: bad tolerance", path, lineno);
        } else if (!strcmp(word, "hyper")) {
            if (g->nhypers >= GOLDEN_MAX_HYPERS) FAIL("%s:%d: too many hypers", path, lineno);
            golden_hyper *h = &g->hyper[g->nhypers];
            if (sscanf(rest, "%63s %lf", h->key, &h->value) != 2)
                FAIL("%s:%d: expected `hyper KEY VALUE`", path, lineno);
            g->nhypers++;
        } else if (!strcmp(word, "param")) {
            if (g->nsteps) FAIL("%s:%d: param after the first step", path, lineno);
            golden_param p;
            memset(&p, 0, sizeof p);
            int n = 0;
            if (sscanf(rest, "%127s %d%n", p.name, &p.ndim, &n) != 2 || p.ndim < 1 || p.ndim > 4)
                FAIL("%s:%d: expected `param NAME NDIM D1 ...` with NDIM 1..4", path, lineno);
            if (find_param(g, p.name) >= 0) FAIL("%s:%d: duplicate param %s", path, lineno, p.name);
            char *q = rest + n;
            p.numel = 1;
            for (int d = 0; d < p.ndim; d++) {
                long long v;
                int m = 0;
                if (sscanf(q, "%lld%n", &v, &m) != 1 || v <= 0 || v > 100000000)
                    FAIL("%s:%d: bad dimension %d", path, lineno, d);
                p.shape[d] = v;
                /* Overflow-checked: 2^26 x 2^26 x 2^12 must not wrap to 0. */
                if ((size_t)v > GOLDEN_MAX_NUMEL / p.numel)
                    FAIL("%s:%d: param %s has more than %llu elements", path, lineno, p.name,
                         (unsigned long long)GOLDEN_MAX_NUMEL);
                p.numel *= (size_t)v;
                q += m;
            }
            golden_param *np = realloc(g->params, (size_t)(g->nparams + 1) * sizeof *np);
            if (!np) FAIL("%s: out of memory", path);
            g->params = np;
            g->params[g->nparams++] = p;
        } else if (!strcmp(word, "init")) {
            char name[GOLDEN_NAME];
            int n = 0;
            if (sscanf(rest, "%127s%n", name, &n) != 1) FAIL("%s:%d: init without name", path, lineno);
            int i = find_param(g, name);
            if (i < 0) FAIL("%s:%d: init of undeclared param %s", path, lineno, name);
            size_t got = 0;
            free(g->params[i].init);
            g->params[i].init = parse_numbers(rest + n, g->params[i].numel, &got);
            if (!g->params[i].init)
                FAIL("%s:%d: init %s: expected %zu numbers, got %s", path, lineno, name,
                     g->params[i].numel, got == (size_t)-1 ? "a non-number" : "a different count");
        } else if (!strcmp(word, "group")) {
            char name[GOLDEN_NAME], opt[64];
            if (sscanf(rest, "%127s %63s", name, opt) != 2)
                FAIL("%s:%d: expected `group NAME OPTIMIZER`", path, lineno);
            int i = find_param(g, name);
            if (i < 0) FAIL("%s:%d: group of undeclared param %s", path, lineno, name);
            strcpy(g->params[i].group_opt, opt);
        } else if (!strcmp(word, "ghyper")) {
            char name[GOLDEN_NAME];
            golden_hyper h;
            if (sscanf(rest, "%127s %63s %lf", name, h.key, &h.value) != 3)
                FAIL("%s:%d: expected `ghyper NAME KEY VALUE`", path, lineno);
            int i = find_param(g, name);
            if (i < 0 || !g->params[i].group_opt[0])
                FAIL("%s:%d: ghyper for %s without a group line", path, lineno, name);
            if (g->params[i].nghypers >= GOLDEN_MAX_HYPERS) FAIL("%s:%d: too many ghypers", path, lineno);
            g->params[i].ghyper[g->params[i].nghypers++] = h;
        } else if (!strcmp(word, "step")) {
            int k;
            if (sscanf(rest, "%d", &k) != 1 || k != g->nsteps + 1)
                FAIL("%s:%d: expected `step %d`", path, lineno, g->nsteps + 1);
            golden_step *ns = realloc(g->steps, (size_t)(g->nsteps + 1) * sizeof *ns);
            if (!ns) FAIL("%s: out of memory", path);
            g->steps = ns;
            cur = &g->steps[g->nsteps++];
            memset(cur, 0, sizeof *cur);
            cur->grad = calloc((size_t)g->nparams, sizeof(double *));
            cur->expect = calloc((size_t)g->nparams, sizeof(double *));
            if (!cur->grad || !cur->expect) FAIL("%s: out of memory", path);
        } else if (!strcmp(word, "lr")) {
            if (!cur) FAIL("%s:%d: lr outside a step", path, lineno);
            if (sscanf(rest, "%lf", &cur->lr) != 1) FAIL("%s:%d: bad lr", path, lineno);
            cur->has_lr = 1;
        } else if (!strcmp(word, "grad") || !strcmp(word, "expect")) {
            if (!cur) FAIL("%s:%d: %s outside a step", path, lineno, word);
            char name[GOLDEN_NAME];
            int n = 0;
            if (sscanf(rest, "%127s%n", name, &n) != 1) FAIL("%s:%d: %s without name", path, lineno, word);
            int i = find_param(g, name);
            if (i < 0) FAIL("%s:%d: %s of undeclared param %s", path, lineno, word, name);
            double **slot = word[0] == 'g' ? &cur->grad[i] : &cur->expect[i];
            size_t got = 0;
            free(*slot);
            *slot = parse_numbers(rest + n, g->params[i].numel, &got);
            if (!*slot)
                FAIL("%s:%d: %s %s: expected %zu numbers", path, lineno, word, name,
                     g->params[i].numel);
        } else if (!strcmp(word, "end")) {
            ended = 1;
        } else {
            FAIL("%s:%d: unknown record \"%s\"", path, lineno, word);
        }
    }
    if (!ended) FAIL("%s: truncated (no `end` line)", path);
    if (!g->optimizer[0]) FAIL("%s: no optimizer line", path);
    if (!(g->tolerance > 0)) FAIL("%s: no tolerance line", path);
    if (!g->nparams || !g->nsteps) FAIL("%s: no params or no steps", path);
    for (int i = 0; i < g->nparams; i++)
        if (!g->params[i].init) FAIL("%s: param %s has no init", path, g->params[i].name);
    free(line);
    fclose(f);
    return 0;
fail:
    free(line);
    fclose(f);
    golden_free(g);
    return 1;
}

/* "name:key=value,..." with 17 significant digits, so no value is rounded. */
static int build_spec(char *buf, size_t n, const char *opt, const golden_hyper *h, int nh)
{
    size_t used = (size_t)snprintf(buf, n, "%s", opt);
    for (int i = 0; i < nh && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%c%s=%.17g", i ? ',' : ':', h[i].key,
                                 h[i].value);
    return used < n;
}

int golden_replay(const golden_file *g, int reference, double *max_err, char *err,
                  size_t errlen)
{
    *max_err = 0.0;
    if (!dsc_optimizer_kind_find(g->optimizer)) return 2;
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i].group_opt[0] && !dsc_optimizer_kind_find(g->params[i].group_opt))
            return 2;
    int rc = 3;
    dsc_optimizer *opt = dsc_optimizer_new();
    float **data = calloc((size_t)g->nparams, sizeof *data);
    float **grad = calloc((size_t)g->nparams, sizeof *grad);
    char spec[4096];
    if (!opt || !data || !grad) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    dsc_optimizer_use_reference(opt, reference);
    build_spec(spec, sizeof spec, g->optimizer, g->hyper, g->nhypers);
    if (dsc_optimizer_add_group(opt, "main", spec) != DSC_OK) {
        snprintf(err, errlen, "%s", dsc_optimizer_error(opt));
        goto done;
    }
    for (int i = 0; i < g->nparams; i++) {
        const golden_param *p = &g->params[i];
        data[i] = malloc(p->numel * sizeof(float));
        grad[i] = calloc(p->numel, sizeof(float));
        if (!data[i] || !grad[i]) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (size_t k = 0; k < p->numel; k++) data[i][k] = (float)p->init[k];
        const char *group = "main";
        if (p->group_opt[0]) {
            build_spec(spec, sizeof spec, p->group_opt, p->ghyper, p->nghypers);
            if (dsc_optimizer_add_group(opt, p->name, spec) != DSC_OK) {
                snprintf(err, errlen, "%s", dsc_optimizer_error(opt));
                goto done;
            }
            group = p->name;
        }
        if (dsc_optimizer_add_param(opt, p->name, data[i], grad[i], p->ndim, p->shape,
                                    DSC_ROLE_AUTO, group) != DSC_OK) {
            snprintf(err, errlen, "%s", dsc_optimizer_error(opt));
            goto done;
        }
    }
    for (int s = 0; s < g->nsteps; s++) {
        const golden_step *st = &g->steps[s];
        if (st->has_lr && dsc_optimizer_set_hyper(opt, "main", "lr", st->lr) != DSC_OK) {
            snprintf(err, errlen, "step %d: %s", s + 1, dsc_optimizer_error(opt));
            goto done;
        }
        for (int i = 0; i < g->nparams; i++)
            for (size_t k = 0; k < g->params[i].numel; k++)
                grad[i][k] = st->grad[i] ? (float)st->grad[i][k] : 0.0f;
        if (dsc_optimizer_step(opt) != DSC_OK) {
            snprintf(err, errlen, "step %d: %s", s + 1, dsc_optimizer_error(opt));
            goto done;
        }
        for (int i = 0; i < g->nparams; i++) {
            if (!st->expect[i]) continue;
            for (size_t k = 0; k < g->params[i].numel; k++) {
                double e = st->expect[i][k];
                double d = fabs((double)data[i][k] - e) / (1.0 + fabs(e));
                if (!(d <= *max_err)) *max_err = isnan(d) ? INFINITY : d;
            }
        }
    }
    rc = *max_err <= g->tolerance ? 0 : 1;
done:
    for (int i = 0; data && grad && i < g->nparams; i++) {
        free(data[i]);
        free(grad[i]);
    }
    free(data);
    free(grad);
    dsc_optimizer_free(opt);
    return rc;
}
