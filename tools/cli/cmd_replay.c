/* cmd_replay.c - `descent replay FILE...`: golden trajectories through libdescent. */
#include "cli.h"
#include "golden.h"

#include <stdio.h>
#include <string.h>

int cmd_replay(int argc, char **argv)
{
    int reference = 0, nfiles = 0, failed = 0, unreadable = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ref")) {
            reference = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "descent replay: unknown option \"%s\"\n", argv[i]);
            return CLI_USAGE;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ref")) continue;
        nfiles++;
        golden_file g;
        char err[1024];
        if (golden_read(argv[i], &g, err, sizeof err)) {
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
