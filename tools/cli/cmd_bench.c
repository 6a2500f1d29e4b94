/* cmd_bench.c - `descent bench WHAT`: benchmarks from the command. */
#include "cli.h"

#include "bench.h"

#include <stdio.h>
#include <string.h>

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "descent bench: say what to measure (see descent help bench)\n");
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "elementwise")) return bench_elementwise_main(argc - 1, argv + 1);
    fprintf(stderr, "descent bench: unknown benchmark \"%s\" (elementwise; the matrix, "
            "8-bit and GPT-2 benchmarks: make bench, descent gpt2 bench)\n", argv[1]);
    return CLI_USAGE;
}
