/* cmd_stability.c - `descent stability`: what SPAM, Stable-SPAM, clipping
 * and 8-bit states are for, on the digits MLP. */
#include "cli.h"
#include "opts.h"

#include "stability/stability.h"

#include <stdio.h>

int cmd_stability(int argc, char **argv)
{
    static const struct option longs[] = {
        {"out", required_argument, 0, 'o'},         {"steps", required_argument, 0, 's'},
        {"seeds", required_argument, 0, 'n'},       {"batch", required_argument, 0, 'b'},
        {"spike-every", required_argument, 0, 'e'}, {"spike-coords", required_argument, 0, 'c'},
        {"spike-scale", required_argument, 0, 'x'}, {0, 0, 0, 0}};
    static const char cmd[] = "stability";
    stability_config cfg = stability_default();
    int c, bad = 0;
    cli_opts_begin();
    while (!bad && (c = cli_opts_next(cmd, argc, argv, longs)) != -1) {
        switch (c) {
        case 'o': cfg.out_dir = optarg; break;
        case 's': bad = cli_int(cmd, "--steps", optarg, 10, 10000000, &cfg.steps); break;
        case 'n': bad = cli_int(cmd, "--seeds", optarg, 1, 1000, &cfg.seeds); break;
        case 'b': bad = cli_int(cmd, "--batch", optarg, 1, 1024, &cfg.batch); break;
        case 'e': bad = cli_int(cmd, "--spike-every", optarg, 1, 1000000, &cfg.spike_every); break;
        case 'c': bad = cli_int(cmd, "--spike-coords", optarg, 0, 100000, &cfg.spike_coords); break;
        case 'x': bad = cli_double(cmd, "--spike-scale", optarg, 1e-30, 1e30, &cfg.spike_scale); break;
        default: bad = 1;
        }
    }
    if (bad) return CLI_USAGE;
    if (optind < argc) {
        fprintf(stderr, "descent stability: unexpected argument \"%s\" (see descent help "
                "stability)\n", argv[optind]);
        return CLI_USAGE;
    }
    stability_result r;
    return stability_run(&cfg, &r) ? CLI_FAILED : CLI_OK;
}
