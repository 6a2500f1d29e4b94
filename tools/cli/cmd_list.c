/* cmd_list.c - `descent list [PATTERN...]`: optimizers, wrappers and the
 * keys every optimizer accepts, with keys, defaults, papers. A PATTERN is a
 * shell-style pattern (fnmatch: * ? [...]) or an exact name or alias. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "opts.h"

#include "descent.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(dsc_key_type t)
{
    return t == DSC_KEY_BOOL ? "bool" : t == DSC_KEY_INT ? "int" : "float";
}

static void print_one(const dsc_optimizer_info *o, int memory)
{
    printf("%s  -  %s\n", o->name, o->summary);
    printf("  paper:  %s\n  source: %s\n", o->paper, o->source);
    /* the families whose state is torch.optim's, slot for slot */
    static const char *const torch_twin[][2] = {
        {"sgd", "SGD"}, {"adam", "Adam"}, {"adamw", "AdamW"}, {"adagrad", "Adagrad"}};
    for (size_t i = 0; i < sizeof torch_twin / sizeof torch_twin[0]; i++)
        if (!strcmp(o->name, torch_twin[i][0]))
            printf("  torch:  state converts to and from torch.optim.%s (descent convert)\n",
                   torch_twin[i][1]);
    if (memory) {
        int64_t shape[2] = {4096, 4096};
        size_t bytes = 0;
        if (dsc_state_bytes(o->name, 2, shape, &bytes) == DSC_OK)
            printf("  state:  %.3f bytes per parameter (4096x4096 matrix)\n",
                   (double)bytes / (4096.0 * 4096.0));
        else {
            /* lr-required optimizers: give it a value to measure */
            char spec[128];
            snprintf(spec, sizeof spec, "%s:lr=0.1,momentum=0.9", o->name);
            if (dsc_state_bytes(spec, 2, shape, &bytes) == DSC_OK)
                printf("  state:  %.3f bytes per parameter (4096x4096 matrix)\n",
                       (double)bytes / (4096.0 * 4096.0));
        }
    }
    printf("  %-24s %-6s %-12s %s\n", "key", "type", "default", "range / meaning");
    for (int k = 0; k < o->nkeys; k++) {
        const dsc_key_info *key = &o->keys[k];
        char def[32];
        if (isnan(key->default_value)) snprintf(def, sizeof def, "(required)");
        else snprintf(def, sizeof def, "%g", key->default_value);
        printf("  %-24s %-6s %-12s %c%g, %g%c  %s\n", key->name, type_name(key->type), def,
               key->min_open ? '(' : '[', key->min_value, key->max_value,
               key->max_open ? ')' : ']', key->help);
    }
    printf("\n");
}

/* Text for a Markdown table cell: a '|' inside it (norms such as ||U||)
 * would end the cell, so it is written as "\|". */
static void md(const char *text)
{
    for (const char *c = text; *c; c++) {
        if (*c == '|') putchar('\\');
        putchar(*c);
    }
}

/* One Markdown table of every optimizer (the README's table comes from here). */
static void print_markdown(void)
{
    printf("| optimizer | what it is | paper | follows |\n|---|---|---|---|\n");
    for (int i = 0; i < dsc_optimizer_kind_count(); i++) {
        const dsc_optimizer_info *o = dsc_optimizer_kind(i);
        printf("| `%s` | ", o->name);
        md(o->summary);
        printf(" | ");
        md(o->paper);
        printf(" | ");
        md(o->source);
        printf(" |\n");
    }
}

/* One optimizer's keys as a Markdown table (docs/optimizers.md is made of
 * these, by scripts/docs-tables.sh, so the document cannot drift). */
static void print_markdown_keys(const dsc_optimizer_info *o)
{
    printf("| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (int k = 0; k < o->nkeys; k++) {
        const dsc_key_info *key = &o->keys[k];
        char def[32];
        if (isnan(key->default_value)) snprintf(def, sizeof def, "required");
        else snprintf(def, sizeof def, "%g", key->default_value);
        printf("| `%s` | %s | %s | %c%g, %g%c | ", key->name, type_name(key->type), def,
               key->min_open ? '(' : '[', key->min_value, key->max_value,
               key->max_open ? ')' : ']');
        md(key->help);
        printf(" |\n");
    }
}

/* Every entry: the optimizers, then the wrappers and the "any" keys. */
static int entry_count(void) { return dsc_optimizer_kind_count() + dsc_wrapper_count(); }

static const dsc_optimizer_info *entry(int i)
{
    int n = dsc_optimizer_kind_count();
    return i < n ? dsc_optimizer_kind(i) : dsc_wrapper_info(i - n);
}

static int is_wrapper(int i) { return i >= dsc_optimizer_kind_count(); }

int cmd_list(int argc, char **argv)
{
    static const struct option longs[] = {{"memory", no_argument, 0, 'm'},
                                          {"markdown", no_argument, 0, 'd'},
                                          {0, 0, 0, 0}};
    int memory = 0, markdown = 0, named = 0, rc = CLI_OK, c;
    cli_opts_begin();
    while ((c = cli_opts_next("list", argc, argv, longs)) != -1) {
        if (c == 'm') memory = 1;
        else if (c == 'd') markdown = 1;
        else return CLI_USAGE;
    }
    if (markdown && optind == argc) {
        print_markdown();
        return CLI_OK;
    }
    for (int i = optind; i < argc; i++) {
        named = 1;
        int found = 0;
        /* An exact name or alias first (aliases are not in the table). */
        const dsc_optimizer_info *o = dsc_optimizer_kind_find(argv[i]);
        if (o) {
            if (markdown) print_markdown_keys(o);
            else print_one(o, memory);
            continue;
        }
        for (int k = 0; k < entry_count(); k++) {
            if (fnmatch(argv[i], entry(k)->name, 0) != 0) continue;
            if (markdown) print_markdown_keys(entry(k));
            else print_one(entry(k), memory && !is_wrapper(k));
            found = 1;
        }
        if (!found) {
            fprintf(stderr, "descent list: no optimizer or wrapper matches \"%s\" "
                    "(patterns: * ? [...]; `descent list` shows all)\n", argv[i]);
            rc = CLI_USAGE;
        }
    }
    if (!named)
        for (int k = 0; k < entry_count(); k++) print_one(entry(k), memory && !is_wrapper(k));
    return rc;
}
