/* digits.c - see digits.h. */
#include "labfile.h"
#include "digits.h"

#include "../datadir.h"
#include "../rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void digits_free(digits_set *s)
{
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* $DESCENT_DATA_DIGITS, else the installed or in-tree copy (lab/datadir.h). */
static const char *default_path(void)
{
    const char *env = getenv("DESCENT_DATA_DIGITS");
    if (env) return env;
    static char path[4096];
    lab_data_path("digits/digits.csv.gz", "lab/classify/data/digits.csv.gz", path, sizeof path);
    return path;
}

int digits_load(const char *path, int test, uint64_t seed, digits_set *train,
                digits_set *test_set, char *err, size_t errlen)
{
    memset(train, 0, sizeof *train);
    memset(test_set, 0, sizeof *test_set);
    if (!path) path = default_path();
    FILE *probe = lab_open_input(path, "digits data", err, errlen); /* folder, device, "" */
    if (!probe) {
        size_t used = strlen(err);
        if (used < errlen)
            snprintf(err + used, errlen - used, " (set DESCENT_DATA_DIGITS, or DESCENT_DATADIR "
                     "to the folder that holds digits/digits.csv.gz)");
        return 1;
    }
    fclose(probe);
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        snprintf(err, errlen, "%s: cannot open (set DESCENT_DATA_DIGITS, or DESCENT_DATADIR to "
                 "the folder that holds digits/digits.csv.gz)", path);
        return 1;
    }
    int cap = 2048, n = 0;
    float *x = malloc((size_t)cap * DIGITS_FEATURES * sizeof *x);
    int *y = malloc((size_t)cap * sizeof *y);
    char line[1024];
    int lineno = 0, bad = 0;
    while (x && y && gzgets(gz, line, sizeof line)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\0') continue;
        if (n == cap) { bad = 2; break; }
        char *p = line;
        int v[DIGITS_FEATURES + 1];
        for (int k = 0; k <= DIGITS_FEATURES; k++) {
            char *end;
            long val = strtol(p, &end, 10);
            if (end == p || val < 0 || val > 16 || (k < DIGITS_FEATURES && *end != ',')) {
                bad = 1;
                break;
            }
            v[k] = (int)val;
            p = end + 1;
        }
        if (bad) break;
        if (v[DIGITS_FEATURES] > 9) { bad = 1; break; }
        for (int k = 0; k < DIGITS_FEATURES; k++) x[(size_t)n * DIGITS_FEATURES + k] = (float)v[k] / 16.0f;
        y[n++] = v[DIGITS_FEATURES];
    }
    int gzerr = 0;
    gzerror(gz, &gzerr);
    gzclose(gz);
    if (!x || !y || bad || gzerr < 0 || n < 20 || test <= 0 || test >= n) {
        snprintf(err, errlen, "%s: %s (line %d)", path,
                 !x || !y ? "out of memory" : bad == 2 ? "more rows than expected"
                 : bad || gzerr < 0 ? "not a digits CSV (64 values 0..16 and a label)"
                 : "too few rows for the split", lineno);
        free(x);
        free(y);
        return 1;
    }
    /* Seeded Fisher-Yates over row indices. */
    int *perm = malloc((size_t)n * sizeof *perm);
    digits_set *sets[2] = {train, test_set};
    int counts[2] = {n - test, test};
    for (int s = 0; s < 2; s++) {
        sets[s]->n = counts[s];
        sets[s]->x = malloc((size_t)counts[s] * DIGITS_FEATURES * sizeof(float));
        sets[s]->y = malloc((size_t)counts[s] * sizeof(int));
    }
    if (!perm || !train->x || !train->y || !test_set->x || !test_set->y) {
        snprintf(err, errlen, "out of memory");
        free(perm); free(x); free(y);
        digits_free(train);
        digits_free(test_set);
        return 1;
    }
    uint64_t st = seed;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(lab_splitmix64(&st) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < n; i++) {
        digits_set *d = i < n - test ? train : test_set;
        int k = i < n - test ? i : i - (n - test);
        memcpy(d->x + (size_t)k * DIGITS_FEATURES, x + (size_t)perm[i] * DIGITS_FEATURES,
               DIGITS_FEATURES * sizeof(float));
        d->y[k] = y[perm[i]];
    }
    free(perm);
    free(x);
    free(y);
    return 0;
}

int digits_mlp_init(digits_mlp *m, int hidden, int max_batch, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    if (hidden < 1 || hidden > 1024 || max_batch < 1) return 1;
    m->hidden = hidden;
    m->max_batch = max_batch;
    size_t n1 = (size_t)hidden * DIGITS_FEATURES, n2 = (size_t)DIGITS_CLASSES * hidden;
    m->w1 = calloc(n1, sizeof(float));
    m->gw1 = calloc(n1, sizeof(float));
    m->b1 = calloc((size_t)hidden, sizeof(float));
    m->gb1 = calloc((size_t)hidden, sizeof(float));
    m->w2 = calloc(n2, sizeof(float));
    m->gw2 = calloc(n2, sizeof(float));
    m->b2 = calloc(DIGITS_CLASSES, sizeof(float));
    m->gb2 = calloc(DIGITS_CLASSES, sizeof(float));
    m->act = calloc((size_t)max_batch * (size_t)(hidden + DIGITS_CLASSES), sizeof(float));
    if (!m->w1 || !m->gw1 || !m->b1 || !m->gb1 || !m->w2 || !m->gw2 || !m->b2 || !m->gb2 ||
        !m->act) {
        digits_mlp_free(m);
        return 1;
    }
    /* Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear. */
    uint64_t st = seed;
    double a1 = 1.0 / sqrt(DIGITS_FEATURES), a2 = 1.0 / sqrt(hidden);
    for (size_t i = 0; i < n1; i++) m->w1[i] = (float)((2 * lab_uniform53(&st) - 1) * a1);
    for (int i = 0; i < hidden; i++) m->b1[i] = (float)((2 * lab_uniform53(&st) - 1) * a1);
    for (size_t i = 0; i < n2; i++) m->w2[i] = (float)((2 * lab_uniform53(&st) - 1) * a2);
    for (int i = 0; i < DIGITS_CLASSES; i++)
        m->b2[i] = (float)((2 * lab_uniform53(&st) - 1) * a2);
    return 0;
}

void digits_mlp_free(digits_mlp *m)
{
    free(m->w1); free(m->gw1); free(m->b1); free(m->gb1);
    free(m->w2); free(m->gw2); free(m->b2); free(m->gb2);
    free(m->act);
    memset(m, 0, sizeof *m);
}

/* Forward one example: fills h (hidden) and p (softmax, 10); returns -log p[y]. */
static double forward_one(const digits_mlp *m, const float *x, int y, float *h, float *p)
{
    int H = m->hidden;
    for (int j = 0; j < H; j++) {
        float s = m->b1[j];
        const float *w = m->w1 + (size_t)j * DIGITS_FEATURES;
        for (int k = 0; k < DIGITS_FEATURES; k++) s += w[k] * x[k];
        h[j] = s > 0 ? s : 0;
    }
    float mx = -INFINITY;
    for (int c = 0; c < DIGITS_CLASSES; c++) {
        float s = m->b2[c];
        const float *w = m->w2 + (size_t)c * H;
        for (int j = 0; j < H; j++) s += w[j] * h[j];
        p[c] = s;
        if (s > mx) mx = s;
    }
    double z = 0;
    for (int c = 0; c < DIGITS_CLASSES; c++) z += exp((double)(p[c] - mx));
    double logz = log(z) + mx;
    double loss = logz - p[y];
    for (int c = 0; c < DIGITS_CLASSES; c++) p[c] = (float)exp((double)p[c] - logz);
    return loss;
}

double digits_mlp_grad(digits_mlp *m, const digits_set *s, const int *idx, int b)
{
    int H = m->hidden;
    memset(m->gw1, 0, (size_t)H * DIGITS_FEATURES * sizeof(float));
    memset(m->gb1, 0, (size_t)H * sizeof(float));
    memset(m->gw2, 0, (size_t)DIGITS_CLASSES * H * sizeof(float));
    memset(m->gb2, 0, DIGITS_CLASSES * sizeof(float));
    float *h = m->act, *p = m->act + H, dh[1024];
    double loss = 0;
    float inv = 1.0f / (float)b;
    for (int i = 0; i < b; i++) {
        const float *x = s->x + (size_t)idx[i] * DIGITS_FEATURES;
        int y = s->y[idx[i]];
        loss += forward_one(m, x, y, h, p);
        p[y] -= 1.0f; /* d loss / d logits */
        for (int j = 0; j < H; j++) dh[j] = 0;
        for (int c = 0; c < DIGITS_CLASSES; c++) {
            float d = p[c] * inv;
            m->gb2[c] += d;
            float *gw = m->gw2 + (size_t)c * H;
            const float *w = m->w2 + (size_t)c * H;
            for (int j = 0; j < H; j++) {
                gw[j] += d * h[j];
                dh[j] += d * w[j];
            }
        }
        for (int j = 0; j < H; j++) {
            if (h[j] <= 0) continue;
            m->gb1[j] += dh[j];
            float *gw = m->gw1 + (size_t)j * DIGITS_FEATURES;
            for (int k = 0; k < DIGITS_FEATURES; k++) gw[k] += dh[j] * x[k];
        }
    }
    return loss / b;
}

void digits_mlp_eval(digits_mlp *m, const digits_set *s, double *loss, double *accuracy)
{
    float *h = m->act, *p = m->act + m->hidden;
    double total = 0;
    int correct = 0;
    for (int i = 0; i < s->n; i++) {
        total += forward_one(m, s->x + (size_t)i * DIGITS_FEATURES, s->y[i], h, p);
        int best = 0;
        for (int c = 1; c < DIGITS_CLASSES; c++)
            if (p[c] > p[best]) best = c;
        correct += best == s->y[i];
    }
    *loss = total / s->n;
    *accuracy = (double)correct / s->n;
}
