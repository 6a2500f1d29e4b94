/* cmd_classify.c - `descent classify SUBCOMMAND`: the image-classification
 * counterpart of the GPT-2 lab. The work lives in lab/classify/. */
#include "cli.h"

#include "classify/fashion.h"

#include <stdio.h>
#include <string.h>

const char cmd_classify_usage[] =
    "usage: descent classify SUBCOMMAND [ARGS...]\n"
    "  Image classification with libdescent's optimizers.\n"
    "subcommands:\n"
    "  study     the optimizer study on Fashion-MNIST (tuned lrs, seeds, phi per\n"
    "            layer type through training, prediction against outcome)\n"
    "`descent classify SUBCOMMAND --help` explains one.\n";

int cmd_classify(int argc, char **argv)
{
    if (argc < 2) {
        fputs(cmd_classify_usage, stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(cmd_classify_usage, stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "study")) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(classify_study_usage, stdout);
            return CLI_OK;
        }
        return classify_cmd_study(argc - 1, argv + 1);
    }
    fprintf(stderr, "descent classify: unknown subcommand \"%s\" (see descent classify "
            "--help)\n", argv[1]);
    return CLI_USAGE;
}
