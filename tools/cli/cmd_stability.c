/* cmd_stability.c - `descent stability`: what SPAM, Stable-SPAM, clipping
 * and 8-bit states are for, on the digits MLP. */
#include "cli.h"

#include "stability/stability.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

int cmd_stability(int argc, char **argv)
{
    stability_config cfg = stability_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--out") && v) { cfg.out_dir = v; i++; }
        else if (!strcmp(a, "--steps") && v && int_arg(v, 10, 10000000, &cfg.steps)) i++;
        else if (!strcmp(a, "--seeds") && v && int_arg(v, 1, 1000, &cfg.seeds)) i++;
        else if (!strcmp(a, "--batch") && v && int_arg(v, 1, 1024, &cfg.batch)) i++;
        else if (!strcmp(a, "--spike-every") && v && int_arg(v, 1, 1000000, &cfg.spike_every)) i++;
        else if (!strcmp(a, "--spike-coords") && v && int_arg(v, 0, 100000, &cfg.spike_coords)) i++;
        else if (!strcmp(a, "--spike-scale") && v) {
            char *end;
            cfg.spike_scale = strtod(v, &end);
            if (*end || !(cfg.spike_scale > 0 && cfg.spike_scale < 1e30)) {
                fprintf(stderr, "descent stability: --spike-scale must be a positive number\n");
                return CLI_USAGE;
            }
            i++;
        } else {
            fprintf(stderr, "descent stability: bad or incomplete option \"%s\" (see descent "
                    "help stability)\n", a);
            return CLI_USAGE;
        }
    }
    stability_result r;
    return stability_run(&cfg, &r) ? CLI_FAILED : CLI_OK;
}
