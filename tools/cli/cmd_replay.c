/* cmd_replay.c - `descent replay FILE...`: golden trajectories through libdescent. */
#include "cli.h"
#include "golden.h"
#include "opts.h"

#include "datadir.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cmd_replay(int argc, char **argv)
{
    static const struct option longs[] = {{"ref", no_argument, 0, 'r'}, {0, 0, 0, 0}};
    int reference = 0, nfiles = 0, failed = 0, unreadable = 0, c;
    cli_opts_begin();
    while ((c = cli_opts_next("replay", argc, argv, longs)) != -1) {
        if (c == 'r') reference = 1;
        else return CLI_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        nfiles++;
        golden_file g;
        char err[1024], path[4096];
        const char *file = argv[i];
        /* A bare name that is not a file here: the golden files installed
         * with descent (share/descent/golden) or the clone's tests/golden. */
        if (!strchr(file, '/') && access(file, F_OK) != 0) {
            char installed[512], in_tree[512];
            snprintf(installed, sizeof installed, "golden/%s", file);
            snprintf(in_tree, sizeof in_tree, "tests/golden/%s", file);
            if (lab_data_path(installed, in_tree, path, sizeof path) == 0) file = path;
        }
        if (golden_read(file, &g, err, sizeof err)) {
            fprintf(stderr, "descent replay: %s\n", err);
            printf("FAIL %s unreadable\n", argv[i]);
            unreadable = 1;
            continue;
        }
        double max_err = 0;
        int rc = golden_replay(&g, reference, &max_err, err, sizeof err);
        switch (rc) {
        case 0: printf("PASS %s max_err=%.3g tol=%.3g\n", g.name, max_err, g.tolerance); break;
        case 1:
            printf("FAIL %s max_err=%.3g tol=%.3g\n", g.name, max_err, g.tolerance);
            failed = 1;
            break;
        case 2:
            printf("UNSUPPORTED %s optimizer=%s\n", g.name, g.optimizer);
            failed = 1;
            break;
        default:
            fprintf(stderr, "descent replay: %s: %s\n", g.name, err);
            printf("FAIL %s error\n", g.name);
            failed = 1;
        }
        golden_free(&g);
    }
    if (!nfiles) {
        fprintf(stderr, "descent replay: no files given (see descent help replay)\n");
        return CLI_USAGE;
    }
    if (unreadable) return CLI_USAGE;
    return failed ? CLI_FAILED : CLI_OK;
}
