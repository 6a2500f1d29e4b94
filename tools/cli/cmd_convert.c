/* cmd_convert.c - `descent convert` (convert.h; docs/convert.md).
 *
 * torch's optimizer state_dict is {"state": {i: {slot: tensor}},
 * "param_groups": [{"params": [i, ...], hyperparameters...}]}. On disk
 * (either format) it is flattened: tensors "state.<i>.<slot>" and the
 * metadata keys "format" = "torch-optimizer-state", "format_version" = "1",
 * "optimizer" (torch's class in lower case) and "param_groups" (the list as
 * JSON text). descent's checkpoint names tensors "<param>.<slot>" with the
 * same slot names, so the conversion is a renaming plus three translations:
 *   - torch numbers parameters, descent names them: torch's k-th parameter
 *     (in param_groups order) is descent's k-th, or --map says which is which;
 *   - torch's "step" is a float tensor, descent's an int64 counter; SGD keeps
 *     none in torch, and descent's says whether the momentum buffer is live;
 *   - torch's hyperparameters live in param_groups, descent's in groups;
 *     "betas" is descent's beta1 and beta2.
 * Everything is checked before the output is written; a refusal names what
 * differs. */
#include "cli.h"
#include "convert.h"
#include "descent.h"
#include "opts.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TORCH_FORMAT "torch-optimizer-state"
#define DESCENT_FORMAT "descent-optimizer-state"

const char cmd_convert_usage[] =
    "usage: descent convert [--optimizer NAME] [--template CKPT] [--map FILE]\n"
    "                       [--format safetensors|npz] [--quiet] IN OUT\n"
    "  Converts optimizer state between a torch.optim state_dict, saved as\n"
    "  safetensors or numpy .npz (layout: docs/convert.md), and descent's\n"
    "  checkpoint, for the optimizers whose state is the same: sgd\n"
    "  (momentum_buffer), adam and adamw (exp_avg, exp_avg_sq, max_exp_avg_sq,\n"
    "  step) and adagrad (sum, step). The direction follows IN: a descent\n"
    "  checkpoint converts to torch, any other file is read as torch's state.\n"
    "  Hyperparameters (lr, betas, eps, weight_decay, momentum, dampening,\n"
    "  nesterov, maximize, amsgrad, lr_decay, initial_accumulator_value) carry\n"
    "  over both ways; keys that mean something else on the other side refuse.\n"
    "  OUT is replaced atomically; nothing is written on any error.\n"
    "  --optimizer NAME  torch's class (sgd, adam, adamw, adagrad) when IN's\n"
    "                    metadata does not name it\n"
    "  --template CKPT   (to descent) a checkpoint saved by the descent setup that\n"
    "                    will load the result: its groups, parameter names, shapes\n"
    "                    and no_decay flags. Default: one group \"group<j>\" per\n"
    "                    torch param group, parameters \"param<k>\" (the names\n"
    "                    descent.torch gives), shapes from the state\n"
    "  --map FILE        lines \"INDEX NAME\": torch parameter INDEX is descent\n"
    "                    parameter NAME. Default: the k-th torch parameter in\n"
    "                    param_groups order is the k-th descent parameter\n"
    "  --format FMT      (to torch) safetensors or npz; default from OUT's\n"
    "                    extension (.npz is npz, anything else safetensors)\n"
    "  --quiet           no warnings\n"
    "  Exit status: 0 converted, 2 bad usage or input (the message says what).\n";

/* ------------------------------------------------------------ errors */

typedef struct {
    char *err;
    size_t errlen;
    int quiet;
} ctx;

static int fail(ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void warn(ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warn(ctx *c, const char *fmt, ...)
{
    if (c->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("descent convert: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------- the four families */

typedef enum { K_SGD, K_ADAM, K_ADAMW, K_ADAGRAD, K_COUNT } kind;

static const char *const kind_name[K_COUNT] = {"sgd", "adam", "adamw", "adagrad"};
static const char *const torch_class[K_COUNT] = {"SGD", "Adam", "AdamW", "Adagrad"};

/* A torch param_groups key and the descent key it becomes. "betas" is a
 * pair: element `index` of it. */
typedef struct {
    const char *torch, *descent;
    int is_bool, index;
} hkey;

#define MAX_HKEYS 8
static const hkey hkeys[K_COUNT][MAX_HKEYS] = {
    [K_SGD] = {{"lr", "lr", 0, -1}, {"momentum", "momentum", 0, -1},
               {"dampening", "dampening", 0, -1}, {"weight_decay", "weight_decay", 0, -1},
               {"nesterov", "nesterov", 1, -1}, {"maximize", "maximize", 1, -1}},
    [K_ADAM] = {{"lr", "lr", 0, -1}, {"betas", "beta1", 0, 0}, {"betas", "beta2", 0, 1},
                {"eps", "eps", 0, -1}, {"weight_decay", "weight_decay", 0, -1},
                {"amsgrad", "amsgrad", 1, -1}, {"maximize", "maximize", 1, -1}},
    [K_ADAMW] = {{"lr", "lr", 0, -1}, {"betas", "beta1", 0, 0}, {"betas", "beta2", 0, 1},
                 {"eps", "eps", 0, -1}, {"weight_decay", "weight_decay", 0, -1},
                 {"amsgrad", "amsgrad", 1, -1}, {"maximize", "maximize", 1, -1}},
    [K_ADAGRAD] = {{"lr", "lr", 0, -1}, {"lr_decay", "lr_decay", 0, -1},
                   {"weight_decay", "weight_decay", 0, -1}, {"eps", "eps", 0, -1},
                   {"initial_accumulator_value", "initial_accumulator_value", 0, -1},
                   {"maximize", "maximize", 1, -1}},
};

/* torch keys that choose an implementation, not the arithmetic. */
static const char *const impl_keys[] = {"foreach", "capturable", "differentiable", "fused"};

/* The state slots of each family, as torch names them. "step" is a
 * scalar; the others have the parameter's shape. */
static int slot_known(kind k, const char *slot)
{
    switch (k) {
    case K_SGD: return !strcmp(slot, "momentum_buffer");
    case K_ADAM:
    case K_ADAMW:
        return !strcmp(slot, "exp_avg") || !strcmp(slot, "exp_avg_sq") ||
               !strcmp(slot, "max_exp_avg_sq") || !strcmp(slot, "step");
    case K_ADAGRAD: return !strcmp(slot, "sum") || !strcmp(slot, "step");
    default: return 0;
    }
}

/* torch.optim classes descent has no counterpart for, and what their
 * state holds, for the refusal. */
static const struct {
    const char *name, *state;
} torch_only[] = {
    {"rmsprop", "square_avg, momentum_buffer, grad_avg"},
    {"nadam", "exp_avg, exp_avg_sq, mu_product (momentum decay schedule)"},
    {"radam", "exp_avg, exp_avg_sq (rectified, with its own step rule)"},
    {"adamax", "exp_avg, exp_inf (infinity norm)"},
    {"adadelta", "square_avg, acc_delta"},
    {"asgd", "eta, mu, ax (averaged iterate)"},
    {"rprop", "prev, step_size"},
    {"sparseadam", "exp_avg, exp_avg_sq of sparse gradients"},
    {"lbfgs", "a history of directions (func_evals, d, t, old_dirs, ...)"},
};

static int kind_from_name(ctx *c, const char *name, kind *out)
{
    char low[64];
    size_t n = strlen(name);
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(low, kind_name[k])) {
            *out = (kind)k;
            return 0;
        }
    for (size_t i = 0; i < sizeof torch_only / sizeof torch_only[0]; i++)
        if (!strcmp(low, torch_only[i].name))
            return fail(c, "torch.optim %s keeps %s; descent has no optimizer with that state "
                        "(convert handles sgd, adam, adamw and adagrad)", name,
                        torch_only[i].state);
    const dsc_optimizer_info *info = dsc_optimizer_kind_find(low);
    if (info)
        return fail(c, "descent's %s has no torch.optim counterpart with the same state; "
                    "convert handles sgd, adam, adamw and adagrad", info->name);
    return fail(c, "unknown optimizer \"%s\" (convert handles sgd, adam, adamw and adagrad)",
                name);
}

/* ------------------------------------------------------------ layout */

/* descent's side: groups and parameters, from a template checkpoint, from
 * the torch file, or from the descent checkpoint being converted. */
typedef struct {
    char name[DSC_NAME_MAX];
    char optimizer[64];
} lgroup;

typedef struct {
    char name[DSC_NAME_MAX];
    int group;       /* index into groups */
    int ndim;
    int64_t shape[DSC_MAX_NDIM];
    size_t numel;
    int no_decay;
    int torch_id;    /* the torch index it pairs with; -1 until paired */
} lparam;

typedef struct {
    int ngroups, nparams;
    lgroup *g;
    lparam *p;
    dsc_optimizer *opt;
    float *zeros; /* one buffer, the largest parameter's size: data and gradient of all */
} layout;

/* A scratch buffer as large as the layout's largest parameter (one slot of
 * state is copied through it at a time); NULL after reporting the failure. */
static float *largest_param_buffer(ctx *c, const layout *l)
{
    size_t most = 1;
    for (int q = 0; q < l->nparams; q++)
        if (l->p[q].numel > most) most = l->p[q].numel;
    float *buf = malloc(most * sizeof *buf);
    if (!buf) fail(c, "out of memory");
    return buf;
}

static void layout_free(layout *l)
{
    free(l->g);
    free(l->p);
    free(l->zeros);
    dsc_optimizer_free(l->opt);
    memset(l, 0, sizeof *l);
}

static int name_fits(ctx *c, const char *what, const char *name)
{
    if (!name[0] || strlen(name) >= DSC_NAME_MAX)
        return fail(c, "%s \"%.64s\" is empty or longer than %d bytes", what, name,
                    DSC_NAME_MAX - 1);
    return 0;
}

/* Registers the layout's groups and parameters in a new optimizer. The
 * specs come from `spec_of` (group index -> text). */
static int layout_build(ctx *c, layout *l, char **specs)
{
    size_t most = 1;
    for (int i = 0; i < l->nparams; i++)
        if (l->p[i].numel > most) most = l->p[i].numel;
    l->zeros = calloc(most, sizeof *l->zeros);
    l->opt = dsc_optimizer_new();
    if (!l->zeros || !l->opt) return fail(c, "out of memory");
    for (int g = 0; g < l->ngroups; g++)
        if (dsc_optimizer_add_group(l->opt, l->g[g].name, specs[g]))
            return fail(c, "group \"%s\" (%s): %s", l->g[g].name, specs[g],
                        dsc_optimizer_error(l->opt));
    for (int i = 0; i < l->nparams; i++) {
        const lparam *p = &l->p[i];
        const char *group = l->g[p->group].name;
        if (p->no_decay) {
            /* no_decay is set by a routing rule; the name is the pattern */
            if (strpbrk(p->name, "*?["))
                return fail(c, "parameter \"%s\" has no_decay and a glob character in its "
                            "name; convert cannot route it", p->name);
            if (dsc_optimizer_add_rule(l->opt, p->name, DSC_ROLE_AUTO, group, 1))
                return fail(c, "%s", dsc_optimizer_error(l->opt));
            group = NULL;
        }
        if (dsc_optimizer_add_param(l->opt, p->name, l->zeros, l->zeros, p->ndim, p->shape,
                                    DSC_ROLE_AUTO, group))
            return fail(c, "parameter \"%s\": %s", p->name, dsc_optimizer_error(l->opt));
    }
    return 0;
}

static int json_index(const djson *v, double max, int64_t *out)
{
    if (!v || v->type != DJSON_NUMBER || v->number < 0 || v->number > max ||
        v->number != floor(v->number))
        return 0;
    *out = (int64_t)v->number;
    return 1;
}

/* A descent checkpoint (already read as a tensor set) into a layout and
 * an optimizer that has loaded it: the library checks the checksum, the
 * kinds, names, shapes and every value. `what` names the file in messages. */
static int layout_from_checkpoint(ctx *c, const char *path, const tf_set *ck, const char *what,
                                  layout *l)
{
    char jerr[256];
    const char *text = tf_meta(ck, "config");
    if (!text) return fail(c, "%s has no configuration in its metadata", what);
    djson *cfg = djson_parse(text, strlen(text), NULL, jerr, sizeof jerr, NULL);
    if (!cfg) return fail(c, "%s: configuration unreadable (%s)", what, jerr);
    const djson *groups = djson_get(cfg, "groups"), *params = djson_get(cfg, "params");
    char **specs = NULL;
    int rc = -1;
    if (!groups || groups->type != DJSON_ARRAY || !params || params->type != DJSON_ARRAY ||
        groups->count > 4096 || params->count > (1u << 24)) {
        fail(c, "%s: configuration lacks its groups or params lists", what);
        goto done;
    }
    l->ngroups = (int)groups->count;
    l->nparams = (int)params->count;
    l->g = calloc(groups->count + 1, sizeof *l->g);
    l->p = calloc(params->count + 1, sizeof *l->p);
    specs = calloc(groups->count + 1, sizeof *specs);
    if (!l->g || !l->p || !specs) {
        fail(c, "out of memory");
        goto done;
    }
    for (size_t g = 0; g < groups->count; g++) {
        const djson *e = &groups->items[g], *name = djson_get(e, "name"),
                    *opt = djson_get(e, "optimizer"), *hyper = djson_get(e, "hyper");
        if (!name || name->type != DJSON_STRING || !opt || opt->type != DJSON_STRING || !hyper ||
            hyper->type != DJSON_OBJECT || strlen(opt->string) >= sizeof l->g[g].optimizer) {
            fail(c, "%s: group %zu is malformed", what, g);
            goto done;
        }
        if (name_fits(c, "group", name->string)) goto done;
        strcpy(l->g[g].name, name->string);
        strcpy(l->g[g].optimizer, opt->string);
        /* The spec: the kind with every stored value (amsgrad must be right
         * before parameters are added: it sizes their state). */
        tf_str s = {0};
        tf_str_puts(&s, opt->string);
        for (size_t k = 0; k < hyper->count; k++) {
            if (hyper->items[k].type != DJSON_NUMBER) continue;
            tf_str_printf(&s, "%s%.64s=%.17g", k ? "," : ":", hyper->keys[k],
                          hyper->items[k].number);
        }
        if (s.oom) {
            tf_str_free(&s);
            fail(c, "out of memory");
            goto done;
        }
        specs[g] = s.buf;
    }
    for (size_t i = 0; i < params->count; i++) {
        const djson *e = &params->items[i], *name = djson_get(e, "name"),
                    *group = djson_get(e, "group"), *shape = djson_get(e, "shape"),
                    *nd = djson_get(e, "no_decay"), *ov = djson_get(e, "overrides");
        lparam *p = &l->p[i];
        if (!name || name->type != DJSON_STRING || !group || group->type != DJSON_STRING ||
            !shape || shape->type != DJSON_ARRAY || shape->count < 1 || shape->count > DSC_MAX_NDIM) {
            fail(c, "%s: parameter %zu is malformed", what, i);
            goto done;
        }
        if (name_fits(c, "parameter", name->string)) goto done;
        strcpy(p->name, name->string);
        p->group = -1;
        for (int g = 0; g < l->ngroups; g++)
            if (!strcmp(l->g[g].name, group->string)) p->group = g;
        if (p->group < 0) {
            fail(c, "%s: parameter \"%s\" is in an unknown group", what, p->name);
            goto done;
        }
        p->ndim = (int)shape->count;
        p->numel = 1;
        for (int d = 0; d < p->ndim; d++) {
            if (!json_index(&shape->items[d], (double)(1ull << 40), &p->shape[d])) {
                fail(c, "%s: parameter \"%s\" has a bad shape", what, p->name);
                goto done;
            }
            if (p->shape[d] && p->numel > (1ull << 40) / (uint64_t)p->shape[d]) {
                fail(c, "%s: parameter \"%s\" is too large", what, p->name);
                goto done;
            }
            p->numel *= (size_t)p->shape[d];
        }
        p->no_decay = nd && nd->type == DJSON_NUMBER && nd->number != 0;
        p->torch_id = -1;
        /* torch has hyperparameters per group only */
        if (ov && ov->type == DJSON_OBJECT && ov->count > 0) {
            fail(c, "%s: parameter \"%s\" overrides %s for itself; torch keeps hyperparameters "
                 "per param group only (move it to a group of its own)", what, p->name,
                 ov->keys[0]);
            goto done;
        }
    }
    if (layout_build(c, l, specs)) goto done;
    if (dsc_optimizer_load(l->opt, path)) {
        fail(c, "%s: %s", what, dsc_optimizer_error(l->opt));
        goto done;
    }
    rc = 0;
done:
    if (specs)
        for (int g = 0; g < l->ngroups; g++) free(specs[g]);
    free(specs);
    djson_free(cfg, NULL);
    return rc;
}

/* Slot `slot` of descent parameter `p`: index, or -1. */
static int find_slot(const dsc_optimizer *opt, const char *p, const char *slot,
                     dsc_slot_info *info)
{
    int n = dsc_optimizer_slot_count(opt, p, 0);
    for (int i = 0; i < n; i++)
        if (dsc_optimizer_slot_info(opt, p, 0, i, info) == DSC_OK && !strcmp(info->name, slot))
            return i;
    return -1;
}

/* ---------------------------------------------------------- --map file */

typedef struct {
    int64_t id;
    char name[DSC_NAME_MAX];
} map_entry;

static int read_map(ctx *c, const char *path, map_entry **out, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f) return fail(c, "cannot open the map \"%s\"", path);
    char line[DSC_NAME_MAX + 64];
    int n = 0, cap = 0, lineno = 0;
    map_entry *m = NULL;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fclose(f);
            free(m);
            return fail(c, "%s:%d: line too long", path, lineno);
        }
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '#' || *s == '\n' || *s == '\0') continue;
        char *end;
        long long id = strtoll(s, &end, 10);
        char name[DSC_NAME_MAX + 64];
        if (end == s || id < 0 || id > INT32_MAX || sscanf(end, " %s", name) != 1 ||
            strlen(name) >= DSC_NAME_MAX) {
            fclose(f);
            free(m);
            return fail(c, "%s:%d: expected \"INDEX NAME\"", path, lineno);
        }
        char rest[8];
        char *after = strstr(end, name) + strlen(name);
        if (sscanf(after, " %7s", rest) == 1) {
            fclose(f);
            free(m);
            return fail(c, "%s:%d: text after the name", path, lineno);
        }
        for (int i = 0; i < n; i++)
            if (m[i].id == id || !strcmp(m[i].name, name)) {
                fclose(f);
                free(m);
                return fail(c, "%s:%d: index %lld or name \"%s\" appears twice", path, lineno,
                            id, name);
            }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            map_entry *nm = realloc(m, (size_t)cap * sizeof *nm);
            if (!nm) {
                fclose(f);
                free(m);
                return fail(c, "out of memory");
            }
            m = nm;
        }
        m[n].id = id;
        strcpy(m[n].name, name);
        n++;
    }
    fclose(f);
    *out = m;
    *count = n;
    return 0;
}

/* ================================================== torch -> descent */

typedef struct {
    int64_t *ids;      /* torch ids in param_groups order */
    int *group_of;     /* torch group of each */
    int n;
    int ngroups;
    double (*values)[MAX_HKEYS]; /* per torch group, in hkeys order */
} torch_groups;

static void torch_groups_free(torch_groups *t)
{
    free(t->ids);
    free(t->group_of);
    free(t->values);
    memset(t, 0, sizeof *t);
}

/* param_groups: a list of objects, each "params" (indices) plus the
 * hyperparameters of `k`. */
static int parse_param_groups(ctx *c, const char *text, kind k, torch_groups *t)
{
    char jerr[256];
    djson *root = djson_parse(text, strlen(text), NULL, jerr, sizeof jerr, NULL);
    if (!root) return fail(c, "param_groups metadata is not valid JSON (%s)", jerr);
    int rc = -1;
    if (root->type != DJSON_ARRAY || root->count == 0 || root->count > 4096) {
        fail(c, "param_groups metadata must be a non-empty list of groups");
        goto done;
    }
    size_t total = 0;
    for (size_t g = 0; g < root->count; g++) {
        const djson *ps = djson_get(&root->items[g], "params");
        if (!ps || ps->type != DJSON_ARRAY) {
            fail(c, "param_groups[%zu] has no \"params\" list", g);
            goto done;
        }
        total += ps->count;
    }
    if (total > (1u << 24)) {
        fail(c, "param_groups lists %zu parameters", total);
        goto done;
    }
    t->ngroups = (int)root->count;
    t->ids = calloc(total + 1, sizeof *t->ids);
    t->group_of = calloc(total + 1, sizeof *t->group_of);
    t->values = calloc(root->count, sizeof *t->values);
    if (!t->ids || !t->group_of || !t->values) {
        fail(c, "out of memory");
        goto done;
    }
    for (size_t g = 0; g < root->count; g++) {
        const djson *grp = &root->items[g];
        const djson *ps = djson_get(grp, "params");
        for (size_t i = 0; i < ps->count; i++) {
            int64_t id;
            if (!json_index(&ps->items[i], INT32_MAX, &id)) {
                fail(c, "param_groups[%zu].params[%zu] is not a parameter index", g, i);
                goto done;
            }
            for (int j = 0; j < t->n; j++)
                if (t->ids[j] == id) {
                    fail(c, "parameter index %" PRId64 " appears twice in param_groups", id);
                    goto done;
                }
            t->group_of[t->n] = (int)g;
            t->ids[t->n++] = id;
        }
        /* every key of the group: carried, ignored with a reason, or refused */
        for (size_t e = 0; e < grp->count; e++) {
            const char *key = grp->keys[e];
            const djson *v = &grp->items[e];
            int known = !strcmp(key, "params");
            for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++)
                if (!strcmp(key, hkeys[k][h].torch)) known = 1;
            for (size_t i = 0; i < sizeof impl_keys / sizeof impl_keys[0]; i++)
                if (!strcmp(key, impl_keys[i])) known = 1;
            if (!strcmp(key, "initial_lr")) {
                warn(c, "param_groups[%zu].initial_lr belongs to a torch LR scheduler and is not "
                     "carried; set a descent schedule in the spec instead", g);
                known = 1;
            }
            if (!strcmp(key, "decoupled_weight_decay")) {
                int on = v->type == DJSON_BOOL && v->number != 0;
                if (k == K_ADAM && on) {
                    fail(c, "param_groups[%zu]: torch Adam with decoupled_weight_decay=True is "
                         "AdamW; convert with --optimizer adamw", g);
                    goto done;
                }
                if (k == K_ADAMW && !on) {
                    fail(c, "param_groups[%zu]: AdamW with decoupled_weight_decay=False is "
                         "Adam; convert with --optimizer adam", g);
                    goto done;
                }
                known = 1;
            }
            if (!known) {
                fail(c, "param_groups[%zu] has \"%s\", which descent's %s does not have (it "
                     "would change the update); refusing rather than dropping it", g, key,
                     kind_name[k]);
                goto done;
            }
        }
        for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++) {
            const hkey *hk = &hkeys[k][h];
            const djson *v = djson_get(grp, hk->torch);
            if (v && hk->index >= 0)
                v = v->type == DJSON_ARRAY && v->count == 2 ? &v->items[hk->index] : NULL;
            if (!v || (v->type != DJSON_NUMBER && v->type != DJSON_BOOL)) {
                fail(c, "param_groups[%zu]: \"%s\" is missing or not a number%s", g, hk->torch,
                     hk->index >= 0 ? " pair" : "");
                goto done;
            }
            if (hk->is_bool && v->number != 0 && v->number != 1) {
                fail(c, "param_groups[%zu]: \"%s\" must be true or false", g, hk->torch);
                goto done;
            }
            t->values[g][h] = v->number;
        }
    }
    rc = 0;
done:
    djson_free(root, NULL);
    return rc;
}

/* "state.<id>.<slot>" -> id and slot; 0 if the name has another form. */
static int split_state_name(const char *name, int64_t *id, const char **slot)
{
    if (strncmp(name, "state.", 6)) return 0;
    const char *s = name + 6;
    int64_t v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (++digits > 9) return 0;
    }
    if (!digits || *s != '.' || !s[1]) return 0;
    *id = v;
    *slot = s + 1;
    return 1;
}

/* A torch scalar tensor as a step count: finite, whole, in [0, 2^53]. */
static int read_step(ctx *c, const tf_tensor *t, int64_t *out)
{
    if (t->count != 1 || t->ndim > 1)
        return fail(c, "\"%s\" must be a scalar (it has %zu values)", t->name, t->count);
    double v;
    switch (t->dtype) {
    case TF_F32: {
        float f;
        memcpy(&f, t->data, 4);
        v = f;
        break;
    }
    case TF_F64: memcpy(&v, t->data, 8); break;
    case TF_I64: {
        int64_t i;
        memcpy(&i, t->data, 8);
        v = (double)i;
        break;
    }
    case TF_I32: {
        int32_t i;
        memcpy(&i, t->data, 4);
        v = i;
        break;
    }
    default:
        return fail(c, "\"%s\" has dtype %s; a step count is F32, F64, I64 or I32", t->name,
                    tf_dtype_name(t->dtype));
    }
    if (!isfinite(v) || v < 0 || v != floor(v) || v > 9007199254740992.0)
        return fail(c, "\"%s\" is %g, not a step count (a whole number >= 0)", t->name, v);
    *out = (int64_t)v;
    return 0;
}

/* A state tensor as float32 into `out` (numel values): F32 as is, F64
 * rounded (warned once). Non-finite values are refused, and negative ones
 * where the slot is a sum of squares. */
static int read_floats(ctx *c, const tf_tensor *t, const char *slot, float *out,
                       int *warned_f64)
{
    int squares = !strcmp(slot, "exp_avg_sq") || !strcmp(slot, "max_exp_avg_sq") ||
                  !strcmp(slot, "sum");
    if (t->dtype != TF_F32 && t->dtype != TF_F64)
        return fail(c, "\"%s\" has dtype %s; descent's state is float32 (F32, or F64 rounded)",
                    t->name, tf_dtype_name(t->dtype));
    if (t->dtype == TF_F64 && !*warned_f64) {
        warn(c, "\"%s\" and other float64 state are rounded to float32", t->name);
        *warned_f64 = 1;
    }
    for (size_t i = 0; i < t->count; i++) {
        float f;
        if (t->dtype == TF_F32) memcpy(&f, t->data + 4 * i, 4);
        else {
            double d;
            memcpy(&d, t->data + 8 * i, 8);
            f = (float)d;
        }
        if (!isfinite(f))
            return fail(c, "\"%s\" holds a non-finite value at %zu", t->name, i);
        if (squares && f < 0)
            return fail(c, "\"%s\" holds a negative value at %zu (a sum of squares cannot)",
                        t->name, i);
        out[i] = f;
    }
    return 0;
}

/* The shape of torch tensor t against descent parameter p: the same
 * dimensions, or a 0-dim tensor for a (1,) parameter (descent has no 0-dim
 * parameters; descent.torch registers them as (1,)). */
static int same_shape(const tf_tensor *t, const lparam *p)
{
    if (t->ndim == 0) return p->ndim == 1 && p->shape[0] == 1;
    if (t->ndim != p->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return 0;
    return 1;
}

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (at < n) snprintf(buf + at, n - at, ")");
}

/* The default descent layout: groups "group<j>" and parameters "param<k>"
 * (or the --map names), shapes from the torch state. */
static int layout_default(ctx *c, const tf_set *in, kind k, const torch_groups *t,
                          const map_entry *map, int nmap, layout *l)
{
    l->ngroups = t->ngroups;
    l->nparams = t->n;
    l->g = calloc((size_t)t->ngroups + 1, sizeof *l->g);
    l->p = calloc((size_t)t->n + 1, sizeof *l->p);
    char **specs = calloc((size_t)t->ngroups + 1, sizeof *specs);
    int rc = -1;
    if (!l->g || !l->p || !specs) {
        fail(c, "out of memory");
        goto done;
    }
    for (int g = 0; g < t->ngroups; g++) {
        snprintf(l->g[g].name, sizeof l->g[g].name, "group%d", g);
        snprintf(l->g[g].optimizer, sizeof l->g[g].optimizer, "%s", kind_name[k]);
        tf_str s = {0};
        tf_str_puts(&s, kind_name[k]);
        for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++)
            tf_str_printf(&s, "%s%s=%.17g", h ? "," : ":", hkeys[k][h].descent, t->values[g][h]);
        if (s.oom) {
            tf_str_free(&s);
            fail(c, "out of memory");
            goto done;
        }
        specs[g] = s.buf;
    }
    static const char *const shaped[] = {"exp_avg", "momentum_buffer", "sum", "exp_avg_sq",
                                         "max_exp_avg_sq"};
    for (int i = 0; i < t->n; i++) {
        lparam *p = &l->p[i];
        p->group = t->group_of[i];
        p->torch_id = (int)t->ids[i];
        if (map) {
            int found = 0;
            for (int m = 0; m < nmap; m++)
                if (map[m].id == t->ids[i]) {
                    strcpy(p->name, map[m].name);
                    found = 1;
                }
            if (!found) {
                fail(c, "the map names no descent parameter for torch parameter %" PRId64,
                     t->ids[i]);
                goto done;
            }
        } else {
            snprintf(p->name, sizeof p->name, "param%d", i);
        }
        const tf_tensor *src = NULL;
        for (size_t s = 0; s < sizeof shaped / sizeof shaped[0] && !src; s++) {
            char key[64];
            snprintf(key, sizeof key, "state.%" PRId64 ".%s", t->ids[i], shaped[s]);
            src = tf_find(in, key);
        }
        if (!src) {
            fail(c, "torch parameter %" PRId64 " has no state, so its shape is unknown; pass "
                 "--template with a checkpoint of the descent setup", t->ids[i]);
            goto done;
        }
        if (src->ndim > DSC_MAX_NDIM) {
            fail(c, "\"%s\" has %d dimensions; descent parameters have 1 to %d", src->name,
                 src->ndim, DSC_MAX_NDIM);
            goto done;
        }
        p->ndim = src->ndim ? src->ndim : 1;
        p->shape[0] = 1;
        for (int d = 0; d < src->ndim; d++) p->shape[d] = src->shape[d];
        p->numel = src->count;
        if (p->numel == 0) {
            fail(c, "\"%s\" is empty; descent has no empty parameters", src->name);
            goto done;
        }
    }
    rc = layout_build(c, l, specs);
done:
    if (specs)
        for (int g = 0; g < t->ngroups; g++) free(specs[g]);
    free(specs);
    return rc;
}

/* descent's keys that torch's class lacks must sit at the value that
 * makes the update torch's. */
static int check_descent_only_keys(ctx *c, const layout *l, int g, kind k)
{
    double v;
    if (k == K_SGD && dsc_optimizer_get_hyper(l->opt, l->g[g].name, "decoupled_weight_decay",
                                              &v) == DSC_OK && v != 0)
        return fail(c, "group \"%s\" has decoupled_weight_decay=1 (SGDW); torch.optim.SGD "
                    "adds weight decay to the gradient (L2), a different update",
                    l->g[g].name);
    return 0;
}

int convert_torch_set(const tf_set *in, const char *out, const convert_opts *o, char *err,
                      size_t errlen)
{
    ctx cx = {err, errlen, o->quiet}, *c = &cx;
    kind k;
    const char *fmt = tf_meta(in, "format"), *ver = tf_meta(in, "format_version");
    const char *meta_kind = tf_meta(in, "optimizer");
    if (fmt && strcmp(fmt, TORCH_FORMAT))
        return fail(c, "metadata format is \"%s\", not \"" TORCH_FORMAT "\"", fmt);
    if (ver && strcmp(ver, "1"))
        return fail(c, "metadata format_version is \"%s\"; this descent reads version 1", ver);
    if (!meta_kind && !o->optimizer)
        return fail(c, "the file does not name its optimizer (metadata \"optimizer\"); pass "
                    "--optimizer sgd|adam|adamw|adagrad");
    if (kind_from_name(c, o->optimizer ? o->optimizer : meta_kind, &k)) return -1;
    if (meta_kind && o->optimizer) {
        kind mk;
        if (kind_from_name(c, meta_kind, &mk)) return -1;
        if (mk != k)
            return fail(c, "--optimizer %s, but the file says its state is %s's", o->optimizer,
                        meta_kind);
    }
    const char *pg = tf_meta(in, "param_groups");
    if (!pg)
        return fail(c, "no \"param_groups\" in the metadata: the hyperparameters and the "
                    "parameter order are needed (docs/convert.md shows how to save them)");
    torch_groups t = {0};
    layout l = {0};
    map_entry *map = NULL;
    int nmap = 0, rc = -1, warned_f64 = 0;
    float *buf = NULL;
    if (parse_param_groups(c, pg, k, &t)) goto done;
    /* Every tensor must be state.<id>.<slot> of a listed parameter and a
     * slot of this family. */
    for (int i = 0; i < in->n; i++) {
        int64_t id;
        const char *slot;
        if (!split_state_name(in->t[i].name, &id, &slot)) {
            fail(c, "tensor \"%s\" is not named state.<index>.<slot>", in->t[i].name);
            goto done;
        }
        int listed = 0;
        for (int j = 0; j < t.n; j++) listed |= t.ids[j] == id;
        if (!listed) {
            fail(c, "\"%s\": parameter %" PRId64 " is in no param group", in->t[i].name, id);
            goto done;
        }
        if (!slot_known(k, slot)) {
            fail(c, "\"%s\": torch.optim.%s keeps no \"%s\"; descent's %s state would not "
                 "match", in->t[i].name, torch_class[k], slot, kind_name[k]);
            goto done;
        }
    }
    if (o->map_path) {
        if (read_map(c, o->map_path, &map, &nmap)) goto done;
        if (nmap != t.n) {
            fail(c, "the map has %d entries; param_groups list %d parameters", nmap, t.n);
            goto done;
        }
    }
    if (o->template_path) {
        tf_set tmpl = {0};
        char why[512];
        if (tf_read_file(o->template_path, &tmpl, why, sizeof why)) {
            fail(c, "template: %s", why);
            goto done;
        }
        const char *tfmt = tf_meta(&tmpl, "format");
        int bad = !tfmt || strcmp(tfmt, DESCENT_FORMAT);
        if (bad) fail(c, "template \"%s\" is not a descent checkpoint", o->template_path);
        if (!bad && layout_from_checkpoint(c, o->template_path, &tmpl, "template", &l)) bad = 1;
        tf_free(&tmpl);
        if (bad) goto done;
        if (l.nparams != t.n) {
            fail(c, "the template has %d parameters; param_groups list %d", l.nparams, t.n);
            goto done;
        }
        /* pair: by the map's names, or the k-th with the k-th */
        for (int i = 0; i < t.n; i++) {
            int pi = i;
            if (map) {
                pi = -1;
                for (int m = 0; m < nmap; m++)
                    if (map[m].id == t.ids[i])
                        for (int q = 0; q < l.nparams; q++)
                            if (!strcmp(l.p[q].name, map[m].name)) pi = q;
                if (pi < 0) {
                    fail(c, "the map pairs torch parameter %" PRId64 " with no parameter of the "
                         "template", t.ids[i]);
                    goto done;
                }
            }
            l.p[pi].torch_id = (int)t.ids[i];
        }
        for (int g = 0; g < l.ngroups; g++)
            if (strcmp(l.g[g].optimizer, kind_name[k])) {
                fail(c, "template group \"%s\" runs %s; the torch state is %s's", l.g[g].name,
                     l.g[g].optimizer, torch_class[k]);
                goto done;
            }
    } else if (layout_default(c, in, k, &t, map, nmap, &l)) {
        goto done;
    }

    /* Hyperparameters: each torch group onto the descent group of its
     * parameters; all of them must be in one descent group, and two torch
     * groups on one descent group must agree. weight_decay counts only
     * for parameters that decay (no_decay ones need 0). */
    /* origin: the first torch group seen on each descent group; wd_origin
     * the first one whose parameters decay (the only ones that say what the
     * group's weight_decay is). */
    int *origin = calloc(2 * (size_t)l.ngroups + 1, sizeof *origin);
    if (!origin) {
        fail(c, "out of memory");
        goto done;
    }
    int *wd_origin = origin + l.ngroups;
    for (int g = 0; g < l.ngroups; g++) origin[g] = wd_origin[g] = -1;
    for (int tg = 0; tg < t.ngroups; tg++) {
        int dg = -1, decays = 0;
        for (int q = 0; q < l.nparams; q++) {
            int member = 0;
            for (int i = 0; i < t.n; i++)
                member |= t.group_of[i] == tg && t.ids[i] == l.p[q].torch_id;
            if (!member) continue;
            if (dg >= 0 && dg != l.p[q].group) {
                fail(c, "torch param group %d holds parameters of descent groups \"%s\" and "
                     "\"%s\"; they need one group each side", tg, l.g[dg].name,
                     l.g[l.p[q].group].name);
                free(origin);
                goto done;
            }
            dg = l.p[q].group;
            if (!l.p[q].no_decay) decays = 1;
            int wd_at = -1;
            for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++)
                if (!strcmp(hkeys[k][h].torch, "weight_decay")) wd_at = h;
            if (l.p[q].no_decay && t.values[tg][wd_at] != 0) {
                fail(c, "descent parameter \"%s\" has no_decay but torch param group %d has "
                     "weight_decay %g", l.p[q].name, tg, t.values[tg][wd_at]);
                free(origin);
                goto done;
            }
        }
        if (dg < 0) continue; /* an empty torch group */
        for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++) {
            const hkey *hk = &hkeys[k][h];
            int is_wd = !strcmp(hk->descent, "weight_decay");
            if (is_wd && !decays) continue; /* no_decay parameters only: checked above */
            int first = is_wd ? wd_origin[dg] : origin[dg];
            double have;
            if (first >= 0 && t.values[first][h] != t.values[tg][h]) {
                fail(c, "torch param groups %d and %d both map to descent group \"%s\" but "
                     "differ in %s", first, tg, l.g[dg].name, hk->torch);
                free(origin);
                goto done;
            }
            if (!strcmp(hk->descent, "amsgrad")) {
                /* amsgrad sizes the state: it cannot change after the fact */
                if (dsc_optimizer_get_hyper(l.opt, l.g[dg].name, "amsgrad", &have) == DSC_OK &&
                    have != t.values[tg][h]) {
                    fail(c, "torch param group %d has amsgrad=%s, the template's group \"%s\" "
                         "the opposite; save the template with the same amsgrad", tg,
                         t.values[tg][h] != 0 ? "True" : "False", l.g[dg].name);
                    free(origin);
                    goto done;
                }
                continue;
            }
            if (dsc_optimizer_set_hyper(l.opt, l.g[dg].name, hk->descent, t.values[tg][h])) {
                fail(c, "torch param group %d: %s", tg, dsc_optimizer_error(l.opt));
                free(origin);
                goto done;
            }
        }
        if (origin[dg] < 0) origin[dg] = tg;
        if (decays && wd_origin[dg] < 0) wd_origin[dg] = tg;
    }
    for (int g = 0; g < l.ngroups; g++) {
        if (check_descent_only_keys(c, &l, g, k)) {
            free(origin);
            goto done;
        }
        if (o->template_path && origin[g] < 0)
            warn(c, "descent group \"%s\" has no torch parameters; its hyperparameters stay "
                 "the template's", l.g[g].name);
    }
    free(origin);

    /* State, parameter by parameter. */
    if (!(buf = largest_param_buffer(c, &l))) goto done;
    int64_t max_step = 0;
    for (int q = 0; q < l.nparams; q++) {
        const lparam *p = &l.p[q];
        int n = dsc_optimizer_slot_count(l.opt, p->name, 0);
        /* torch's slots for this parameter */
        char key[96];
        int have_any = 0;
        for (int i = 0; i < in->n; i++) {
            int64_t id;
            const char *slot;
            if (split_state_name(in->t[i].name, &id, &slot) && id == p->torch_id) have_any = 1;
        }
        /* A descent slot torch does not fill is reset: zeros, step 0 (a
         * template may hold state of its own). */
        for (int s = 0; s < n; s++) {
            dsc_slot_info info;
            if (dsc_optimizer_slot_info(l.opt, p->name, 0, s, &info)) continue;
            void *zero = calloc(info.bytes ? info.bytes : 1, 1);
            if (!zero) {
                fail(c, "out of memory");
                goto done;
            }
            dsc_status st = dsc_optimizer_write_slot(l.opt, p->name, 0, info.name, zero,
                                                     info.bytes);
            free(zero);
            if (st) {
                fail(c, "%s", dsc_optimizer_error(l.opt));
                goto done;
            }
        }
        if (!have_any) continue; /* not stepped in torch: fresh in descent */
        int64_t step = -1;
        snprintf(key, sizeof key, "state.%d.step", p->torch_id);
        const tf_tensor *st = tf_find(in, key);
        if (st && read_step(c, st, &step)) goto done;
        /* the slots each family needs once a parameter has state */
        const char *need[3] = {NULL, NULL, NULL};
        double ams = 0;
        switch (k) {
        case K_SGD: need[0] = "momentum_buffer"; break;
        case K_ADAM:
        case K_ADAMW:
            need[0] = "exp_avg", need[1] = "exp_avg_sq", need[2] = "step";
            dsc_optimizer_get_hyper(l.opt, l.g[p->group].name, "amsgrad", &ams);
            break;
        case K_ADAGRAD: need[0] = "sum", need[1] = "step"; break;
        default: break;
        }
        for (int r = 0; r < 3 && need[r]; r++) {
            snprintf(key, sizeof key, "state.%d.%s", p->torch_id, need[r]);
            if (!tf_find(in, key)) {
                fail(c, "\"%s\" is missing (torch parameter %d has other state)", key,
                     p->torch_id);
                goto done;
            }
        }
        snprintf(key, sizeof key, "state.%d.max_exp_avg_sq", p->torch_id);
        if ((k == K_ADAM || k == K_ADAMW) && (ams != 0) != (tf_find(in, key) != NULL)) {
            fail(c, "\"%s\" is %s but amsgrad is %s in its param group", key,
                 ams != 0 ? "missing" : "present", ams != 0 ? "on" : "off");
            goto done;
        }
        for (int i = 0; i < in->n; i++) {
            int64_t id;
            const char *slot;
            const tf_tensor *tt = &in->t[i];
            if (!split_state_name(tt->name, &id, &slot) || id != p->torch_id ||
                !strcmp(slot, "step"))
                continue;
            dsc_slot_info info;
            if (find_slot(l.opt, p->name, slot, &info) < 0) {
                fail(c, "\"%s\": descent's %s keeps no \"%s\" for parameter \"%s\"", tt->name,
                     kind_name[k], slot, p->name);
                goto done;
            }
            if (!same_shape(tt, p) || info.count != p->numel) {
                char a[96], b[96];
                format_shape(a, sizeof a, tt->ndim, tt->shape);
                format_shape(b, sizeof b, p->ndim, p->shape);
                fail(c, "\"%s\" has shape %s; descent parameter \"%s\" has shape %s", tt->name,
                     a, p->name, b);
                goto done;
            }
            if (read_floats(c, tt, slot, buf, &warned_f64)) goto done;
            if (dsc_optimizer_write_slot(l.opt, p->name, 0, slot, buf, info.bytes)) {
                fail(c, "%s", dsc_optimizer_error(l.opt));
                goto done;
            }
        }
        /* descent's step: torch's, or for SGD 1 (the buffer is live) */
        if (k == K_SGD) step = 1;
        if (step > max_step) max_step = step;
        if (dsc_optimizer_write_slot(l.opt, p->name, 0, "step", &step, sizeof step)) {
            fail(c, "%s", dsc_optimizer_error(l.opt));
            goto done;
        }
    }
    if (dsc_optimizer_save(l.opt, out)) {
        fail(c, "%s", dsc_optimizer_error(l.opt));
        goto done;
    }
    rc = 0;
done:
    free(buf);
    free(map);
    torch_groups_free(&t);
    layout_free(&l);
    return rc;
}

/* ================================================== descent -> torch */

static int descent_to_torch(ctx *c, const char *path, const tf_set *ck, const char *out,
                            const convert_opts *o)
{
    layout l = {0};
    tf_set res = {0};
    map_entry *map = NULL;
    int nmap = 0, rc = -1;
    float *buf = NULL;
    kind k = K_COUNT;
    /* A first look at the tensor names: any slot beyond the family's
     * (a wrapper's "ema", a group's own state) is refused by name. */
    for (int i = 0; i < ck->n; i++) {
        const char *name = ck->t[i].name;
        if (strchr(name, '/')) {
            fail(c, "\"%s\" is a group's own state; torch.optim keeps state per parameter only",
                 name);
            goto done;
        }
        static const char *const torch_slots[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                                                  "momentum_buffer", "sum", "step"};
        const char *dot = strrchr(name, '.');
        int known = 0;
        for (size_t s = 0; dot && s < sizeof torch_slots / sizeof torch_slots[0]; s++)
            known |= !strcmp(dot + 1, torch_slots[s]);
        if (!known) {
            fail(c, "checkpoint tensor \"%s\" is state \"%s\" (a wrapper such as ema or "
                 "lookahead, or another family), which no torch.optim class keeps", name,
                 dot ? dot + 1 : name);
            goto done;
        }
    }
    if (layout_from_checkpoint(c, path, ck, "input", &l)) goto done;
    for (int g = 0; g < l.ngroups; g++) {
        kind gk;
        ctx quiet = {c->err, c->errlen, 1};
        if (kind_from_name(&quiet, l.g[g].optimizer, &gk)) {
            fail(c, "group \"%s\" runs %s, which torch.optim does not have (convert handles "
                 "sgd, adam, adamw and adagrad)", l.g[g].name, l.g[g].optimizer);
            goto done;
        }
        if (k != K_COUNT && gk != k) {
            fail(c, "groups run %s and %s; one torch optimizer runs one class (convert each "
                 "group's state separately)", kind_name[k], kind_name[gk]);
            goto done;
        }
        k = gk;
        if (check_descent_only_keys(c, &l, g, k)) goto done;
    }
    if (k == K_COUNT) {
        fail(c, "the checkpoint has no groups");
        goto done;
    }
    for (int q = 0; q < l.nparams; q++) {
        int n = dsc_optimizer_slot_count(l.opt, l.p[q].name, 0);
        for (int s = 0; s < n; s++) {
            dsc_slot_info info;
            dsc_optimizer_slot_info(l.opt, l.p[q].name, 0, s, &info);
            if (!slot_known(k, info.name) && strcmp(info.name, "step")) {
                fail(c, "parameter \"%s\" has state \"%s\" (a wrapper such as ema or "
                     "lookahead?), which torch.optim.%s does not keep", l.p[q].name, info.name,
                     torch_class[k]);
                goto done;
            }
        }
        double wd = 0;
        dsc_optimizer_get_hyper(l.opt, l.g[l.p[q].group].name, "weight_decay", &wd);
        if (l.p[q].no_decay && wd != 0) {
            fail(c, "parameter \"%s\" has no_decay in group \"%s\" (weight_decay %g); torch "
                 "needs such parameters in a param group of their own", l.p[q].name,
                 l.g[l.p[q].group].name, wd);
            goto done;
        }
    }
    if (tf_meta(ck, "config") && strstr(tf_meta(ck, "config"), "\"schedules\":{\""))
        warn(c, "the checkpoint has schedules; param_groups get the base values (torch keeps "
             "schedules in LR scheduler objects: recreate them there)");
    if (o->map_path) {
        if (read_map(c, o->map_path, &map, &nmap)) goto done;
        if (nmap != l.nparams) {
            fail(c, "the map has %d entries; the checkpoint has %d parameters", nmap, l.nparams);
            goto done;
        }
        for (int q = 0; q < l.nparams; q++) {
            for (int m = 0; m < nmap; m++)
                if (!strcmp(map[m].name, l.p[q].name)) l.p[q].torch_id = (int)map[m].id;
            if (l.p[q].torch_id < 0) {
                fail(c, "the map gives no torch index for parameter \"%s\"", l.p[q].name);
                goto done;
            }
        }
    } else {
        for (int q = 0; q < l.nparams; q++) l.p[q].torch_id = q;
    }

    char why[512];
    /* param_groups, one per descent group that has parameters */
    tf_str pg = {0};
    tf_str_puts(&pg, "[");
    int first_group = 1;
    for (int g = 0; g < l.ngroups; g++) {
        int members = 0;
        for (int q = 0; q < l.nparams; q++) members += l.p[q].group == g;
        if (!members) {
            warn(c, "group \"%s\" has no parameters; it is left out of param_groups",
                 l.g[g].name);
            continue;
        }
        tf_str_puts(&pg, first_group ? "{\"params\":[" : ",{\"params\":[");
        first_group = 0;
        int first = 1;
        for (int q = 0; q < l.nparams; q++)
            if (l.p[q].group == g) {
                tf_str_printf(&pg, "%s%d", first ? "" : ",", l.p[q].torch_id);
                first = 0;
            }
        tf_str_puts(&pg, "]");
        for (int h = 0; h < MAX_HKEYS && hkeys[k][h].torch; h++) {
            const hkey *hk = &hkeys[k][h];
            double v = 0;
            dsc_optimizer_get_hyper(l.opt, l.g[g].name, hk->descent, &v);
            if (hk->index == 1) continue; /* written with index 0 */
            if (hk->index == 0) {
                double b2 = 0;
                dsc_optimizer_get_hyper(l.opt, l.g[g].name, hkeys[k][h + 1].descent, &b2);
                tf_str_printf(&pg, ",\"%s\":[%.17g,%.17g]", hk->torch, v, b2);
            } else if (hk->is_bool) {
                tf_str_printf(&pg, ",\"%s\":%s", hk->torch, v != 0 ? "true" : "false");
            } else {
                tf_str_printf(&pg, ",\"%s\":%.17g", hk->torch, v);
            }
        }
        tf_str_puts(&pg, "}");
    }
    tf_str_puts(&pg, "]");
    if (pg.oom || tf_set_meta(&res, "format", TORCH_FORMAT, why, sizeof why) ||
        tf_set_meta(&res, "format_version", "1", why, sizeof why) ||
        tf_set_meta(&res, "optimizer", kind_name[k], why, sizeof why) ||
        tf_set_meta(&res, "param_groups", pg.buf, why, sizeof why)) {
        tf_str_free(&pg);
        fail(c, "out of memory");
        goto done;
    }
    tf_str_free(&pg);

    if (!(buf = largest_param_buffer(c, &l))) goto done;
    for (int q = 0; q < l.nparams; q++) {
        const lparam *p = &l.p[q];
        int64_t step = 0;
        if (dsc_optimizer_read_slot(l.opt, p->name, 0, "step", &step, sizeof step)) {
            fail(c, "%s", dsc_optimizer_error(l.opt));
            goto done;
        }
        double mom = 0, init = 0;
        dsc_optimizer_get_hyper(l.opt, l.g[p->group].name, "momentum", &mom);
        dsc_optimizer_get_hyper(l.opt, l.g[p->group].name, "initial_accumulator_value", &init);
        /* torch keeps no state for a parameter that has not stepped, except
         * Adagrad, which fills it when the optimizer is made */
        if (step == 0 && k != K_ADAGRAD) continue;
        if (k == K_SGD && mom == 0) continue; /* torch's buffer is None */
        int n = dsc_optimizer_slot_count(l.opt, p->name, 0);
        for (int s = 0; s < n; s++) {
            dsc_slot_info info;
            dsc_optimizer_slot_info(l.opt, p->name, 0, s, &info);
            char key[96];
            snprintf(key, sizeof key, "state.%d.%s", p->torch_id, info.name);
            if (!strcmp(info.name, "step")) {
                if (k == K_SGD) continue; /* torch's SGD counts no steps */
                if (step > (1 << 24))
                    warn(c, "parameter \"%s\": step %" PRId64 " is above 2^24, where torch's "
                         "float32 step counter rounds", p->name, step);
                float fs = (float)step;
                if (tf_add(&res, key, TF_F32, 0, NULL, &fs, why, sizeof why)) {
                    fail(c, "%s", why);
                    goto done;
                }
                continue;
            }
            if (!strcmp(info.dtype, "BF16")) { /* bf16_state: no torch.optim twin */
                fail(c, "parameter \"%s\": slot \"%s\" is stored in bf16 (bf16_state); "
                     "convert reads float32 states only", p->name, info.name);
                goto done;
            }
            if (info.count != p->numel || strcmp(info.dtype, "F32")) {
                fail(c, "parameter \"%s\": slot \"%s\" is not float32 of the parameter's size",
                     p->name, info.name);
                goto done;
            }
            if (dsc_optimizer_read_slot(l.opt, p->name, 0, info.name, buf, info.bytes)) {
                fail(c, "%s", dsc_optimizer_error(l.opt));
                goto done;
            }
            /* descent fills Adagrad's sum at the first step */
            if (k == K_ADAGRAD && step == 0)
                for (size_t i = 0; i < p->numel; i++) buf[i] = (float)init;
            if (tf_add(&res, key, TF_F32, p->ndim, p->shape, buf, why, sizeof why)) {
                fail(c, "%s", why);
                goto done;
            }
        }
    }
    const char *format = o->format;
    if (!format) {
        size_t n = strlen(out);
        format = n >= 4 && !strcmp(out + n - 4, ".npz") ? "npz" : "safetensors";
    }
    int bad = !strcmp(format, "npz") ? tf_write_npz(out, &res, why, sizeof why)
                                     : tf_write_safetensors(out, &res, why, sizeof why);
    if (bad) {
        fail(c, "%s", why);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    free(map);
    tf_free(&res);
    layout_free(&l);
    return rc;
}

/* ============================================================= command */

int convert_file(const char *in, const char *out, const convert_opts *o, char *err,
                 size_t errlen)
{
    ctx c = {err, errlen, o->quiet};
    if (o->format && strcmp(o->format, "npz") && strcmp(o->format, "safetensors"))
        return fail(&c, "--format is safetensors or npz, not \"%s\"", o->format);
    tf_set s = {0};
    if (tf_read_file(in, &s, err, errlen)) return -1;
    const char *fmt = tf_meta(&s, "format");
    int rc;
    if (fmt && !strcmp(fmt, DESCENT_FORMAT)) {
        if (o->template_path) {
            tf_free(&s);
            return fail(&c, "--template is for torch -> descent; \"%s\" is already a descent "
                        "checkpoint", in);
        }
        rc = descent_to_torch(&c, in, &s, out, o);
    } else {
        if (o->format) {
            tf_free(&s);
            return fail(&c, "--format is for descent -> torch; the output here is a descent "
                        "checkpoint");
        }
        rc = convert_torch_set(&s, out, o, err, errlen);
    }
    tf_free(&s);
    return rc;
}

int cmd_convert(int argc, char **argv)
{
    static const struct option longs[] = {
        {"optimizer", required_argument, 0, 'o'}, {"template", required_argument, 0, 't'},
        {"map", required_argument, 0, 'm'},       {"format", required_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},           {0, 0, 0, 0}};
    convert_opts o = {0};
    int opt;
    cli_opts_begin();
    while ((opt = cli_opts_next("convert", argc, argv, longs)) != -1) {
        if (opt == CLI_OPTS_BAD) return CLI_USAGE;
        if (opt == 'o') o.optimizer = optarg;
        if (opt == 't') o.template_path = optarg;
        if (opt == 'm') o.map_path = optarg;
        if (opt == 'f') o.format = optarg;
        if (opt == 'q') o.quiet = 1;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "descent convert: needs IN and OUT (see descent help convert)\n");
        return CLI_USAGE;
    }
    char err[1024];
    if (convert_file(argv[optind], argv[optind + 1], &o, err, sizeof err)) {
        fprintf(stderr, "descent convert: %s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}
