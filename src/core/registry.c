/* registry.c - the table of optimizer families and the spec parser.
 *
 * Each family lives in src/optimizers/<family>.c and exports one
 * `const dsc_family dsc_family_<name>`; adding an optimizer is one line in
 * the table below. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const dsc_family dsc_family_sgd;
extern const dsc_family dsc_family_adam, dsc_family_adamw;
extern const dsc_family dsc_family_adagrad, dsc_family_adagradnorm;
extern const dsc_family dsc_family_signsgd, dsc_family_signum;
extern const dsc_family dsc_family_lion;
extern const dsc_family dsc_family_adamp, dsc_family_sgdp, dsc_family_spam,
    dsc_family_stable_spam, dsc_family_sgd_clip, dsc_family_adam_clip;
extern const dsc_family dsc_family_galore, dsc_family_fira;
extern const dsc_family dsc_family_muon, dsc_family_muon_moonlight, dsc_family_normuon;
extern const dsc_family dsc_family_auon, dsc_family_auon_hybrid, dsc_family_sinkgd;
extern const dsc_family dsc_family_lanton;
extern const dsc_family dsc_family_adam8bit, dsc_family_adamw8bit, dsc_family_sgd8bit,
    dsc_family_lion8bit;
extern const dsc_family dsc_family_adagrad8bit;

static const dsc_family *const families[] = {
    &dsc_family_sgd,
    &dsc_family_adam, &dsc_family_adamw,
    &dsc_family_adagrad, &dsc_family_adagradnorm,
    &dsc_family_signsgd, &dsc_family_signum,
    &dsc_family_lion,
    &dsc_family_adamp, &dsc_family_sgdp, &dsc_family_spam, &dsc_family_stable_spam,
    &dsc_family_sgd_clip, &dsc_family_adam_clip,
    &dsc_family_galore, &dsc_family_fira,
    &dsc_family_muon, &dsc_family_muon_moonlight, &dsc_family_normuon,
    &dsc_family_auon, &dsc_family_auon_hybrid, &dsc_family_sinkgd,
    &dsc_family_lanton,
    &dsc_family_adam8bit, &dsc_family_adamw8bit, &dsc_family_sgd8bit, &dsc_family_lion8bit,
    &dsc_family_adagrad8bit,
};

#define NFAMILIES ((int)(sizeof families / sizeof families[0]))

int dsc_family_count(void) { return NFAMILIES; }

const dsc_family *dsc_family_at(int i)
{
    return (i >= 0 && i < NFAMILIES) ? families[i] : NULL;
}

const dsc_family *dsc_family_find(const char *name)
{
    if (!name) return NULL;
    for (int i = 0; i < NFAMILIES; i++) {
        if (strcmp(families[i]->info.name, name) == 0) return families[i];
        for (const char *const *a = families[i]->aliases; a && *a; a++)
            if (strcmp(*a, name) == 0) return families[i];
    }
    return NULL;
}

int dsc_optimizer_kind_count(void) { return NFAMILIES; }

const dsc_optimizer_info *dsc_optimizer_kind(int i)
{
    const dsc_family *f = dsc_family_at(i);
    return f ? &f->info : NULL;
}

const dsc_optimizer_info *dsc_optimizer_kind_find(const char *name)
{
    const dsc_family *f = dsc_family_find(name);
    return f ? &f->info : NULL;
}

int dsc_family_key(const dsc_family *f, const char *key)
{
    for (int i = 0; i < f->info.nkeys; i++)
        if (strcmp(f->info.keys[i].name, key) == 0) return i;
    return -1;
}

static void list_keys(const dsc_family *f, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < f->info.nkeys && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "",
                                 f->info.keys[i].name);
}

dsc_status dsc_key_check(const dsc_family *f, int key, double v, char *err, size_t errlen)
{
    const dsc_key_info *k = &f->info.keys[key];
    if (isnan(v) || isinf(v)) {
        snprintf(err, errlen, "%s: %s must be a finite number, got %g", f->info.name,
                 k->name, v);
        return DSC_OUT_OF_RANGE;
    }
    if (k->type == DSC_KEY_BOOL && v != 0.0 && v != 1.0) {
        snprintf(err, errlen, "%s: %s is a boolean (0 or 1), got %g", f->info.name,
                 k->name, v);
        return DSC_OUT_OF_RANGE;
    }
    if (k->type == DSC_KEY_INT && v != floor(v)) {
        snprintf(err, errlen, "%s: %s is an integer, got %g", f->info.name, k->name, v);
        return DSC_OUT_OF_RANGE;
    }
    int below = k->min_open ? !(v > k->min_value) : !(v >= k->min_value);
    int above = k->max_open ? !(v < k->max_value) : !(v <= k->max_value);
    if (below || above) {
        snprintf(err, errlen, "%s: %s = %g is out of range %c%g, %g%c", f->info.name,
                 k->name, v, k->min_open ? '(' : '[', k->min_value, k->max_value,
                 k->max_open ? ')' : ']');
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

dsc_status dsc_spec_parse_tokens(const dsc_spec_tokens *t, const dsc_family **family,
                                 double *hp, char *err, size_t errlen)
{
    const dsc_family *f = dsc_family_find(t->name);
    if (!f) {
        size_t used = (size_t)snprintf(err, errlen, "unknown optimizer \"%s\" (known:", t->name);
        for (int i = 0; i < NFAMILIES && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, " %s", families[i]->info.name);
        if (used < errlen) snprintf(err + used, errlen - used, ")");
        return DSC_UNKNOWN_OPTIMIZER;
    }
    double v[DSC_MAX_KEYS];
    for (int i = 0; i < f->info.nkeys; i++) v[i] = f->info.keys[i].default_value;
    for (int j = 0; j < t->nitems; j++) {
        const dsc_spec_item *it = &t->item[j];
        if (!it->key[0]) continue; /* taken by the caller */
        int k = dsc_family_key(f, it->key);
        if (k < 0) {
            char keys[512];
            list_keys(f, keys, sizeof keys);
            snprintf(err, errlen, "%s: unknown key \"%s\" at character %zu (keys: %s)",
                     f->info.name, it->key, it->key_at + 1, keys);
            return DSC_UNKNOWN_KEY;
        }
        dsc_status st = dsc_key_check(f, k, it->value, err, errlen);
        if (st != DSC_OK) {
            size_t n = strlen(err);
            if (n < errlen) snprintf(err + n, errlen - n, " (at character %zu)", it->value_at + 1);
            return st;
        }
        v[k] = it->value;
    }
    for (int i = 0; i < f->info.nkeys; i++) {
        if (isnan(v[i])) {
            snprintf(err, errlen, "%s: key \"%s\" is required (no default)", f->info.name,
                     f->info.keys[i].name);
            return DSC_INVALID_ARGUMENT;
        }
    }
    if (f->check) {
        dsc_status st = f->check(v, err, errlen);
        if (st != DSC_OK) return st;
    }
    memcpy(hp, v, (size_t)f->info.nkeys * sizeof *hp);
    *family = f;
    return DSC_OK;
}

dsc_status dsc_spec_parse(const char *spec, const dsc_family **family, double *hp,
                          char *err, size_t errlen)
{
    dsc_spec_tokens t;
    dsc_status st = dsc_spec_tokenize("optimizer spec", spec, &t, err, errlen);
    if (st != DSC_OK) return st;
    return dsc_spec_parse_tokens(&t, family, hp, err, errlen);
}
