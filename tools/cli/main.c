/* main.c - the `descent` command: dispatch to one cmd_<name>.c per command. */
#include "cli.h"

#include "descent.h"
#include "datadir.h"

#include <stdio.h>
#include <string.h>

int cmd_list(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_polar(int argc, char **argv);
extern const char cmd_polar_usage[];
int cmd_help(int argc, char **argv);
int cmd_stability(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_gpt2(int argc, char **argv);
extern const char cmd_gpt2_usage[];
int cmd_demo(int argc, char **argv);
extern const char cmd_demo_usage[];
int cmd_theory(int argc, char **argv);
extern const char cmd_theory_usage[];
int cmd_classify(int argc, char **argv);
extern const char cmd_classify_usage[];
int cmd_convert(int argc, char **argv);
extern const char cmd_convert_usage[];

static const cli_command commands[] = {
    {"list", "list the optimizers with their keys, defaults and papers",
     "usage: descent list [PATTERN...] [--memory] [--markdown]\n"
     "  Prints every optimizer (or those matching a name, an alias or a shell\n"
     "  pattern such as 'adam*' or '*8bit'), the wrappers ema and lookahead and the\n"
     "  keys every optimizer accepts (\"any\"), with their keys, defaults, valid\n"
     "  ranges, paper and the official code they follow.\n"
     "  --memory    add the bytes of optimizer state per parameter (for a\n"
     "              4096x4096 matrix, i.e. large tensors)\n"
     "  --markdown  one Markdown table of all optimizers (name, summary, paper, code);\n"
     "              with PATTERNs, a table of each one's keys (docs/optimizers.md)\n",
     cmd_list},
    {"replay", "replay golden trajectory files and compare",
     "usage: descent replay [--ref] FILE...\n"
     "  Replays each golden file (format: tests/golden/README.md) through libdescent\n"
     "  and prints one line per file:\n"
     "    PASS <name> max_err=<x> tol=<t>\n"
     "    FAIL <name> max_err=<x> tol=<t>\n"
     "    UNSUPPORTED <name> optimizer=<opt>\n"
     "  max_err is the largest |got - expect| / (1 + |expect|) over all steps.\n"
     "  --ref  use the plain reference loops instead of the fused kernels\n"
     "  Exit status: 0 if every file passed, 1 otherwise, 2 on unreadable input.\n",
     cmd_replay},
    {"convert", "optimizer state between torch's state_dict and a descent checkpoint",
     cmd_convert_usage, cmd_convert},
    {"theory", "run the theory lab: when and why sign-based optimizers beat SGD",
     cmd_theory_usage, cmd_theory},
    {"stability", "spikes vs SPAM/Stable-SPAM/clipping, 8-bit vs float32 AdamW (digits MLP)",
     "usage: descent stability [--out DIR] [--steps N] [--seeds N] [--batch N]\n"
     "                         [--spike-every N] [--spike-coords N] [--spike-scale X]\n"
     "  Trains an MLP 64-128-10 on scikit-learn's 8x8 digits (committed in\n"
     "  lab/classify/data) with several optimizers, the same data order and seeds:\n"
     "  1. with injected gradient spikes (the gradient times X every N steps, on\n"
     "     --spike-coords coordinates or on all of it; defaults x1000 every 100\n"
     "     steps, 40 coordinates) for adam, adamw, adam with global-norm clipping,\n"
     "     spam and stable_spam, against the same runs without spikes;\n"
     "  2. adamw8bit against float32 adamw: loss curves and bytes of state.\n"
     "  Prints tables; writes CSVs, plots and report.md to DIR (default\n"
     "  out/stability). Defaults: 1500 steps, 3 seeds, batch 32.\n",
     cmd_stability},
    {"polar", "Newton-Schulz (ns5) against the exact polar factor on Gaussian matrices",
     cmd_polar_usage, cmd_polar},
    {"gpt2", "GPT-2 in C: prepare data, train, compare optimizers, sample, bench",
     cmd_gpt2_usage, cmd_gpt2},
    {"demo", "the main job: GPT-2 on Moby-Dick with six optimizers, table and plot",
     cmd_demo_usage, cmd_demo},
    {"classify", "Fashion-MNIST: the optimizer study with phi per layer type",
     cmd_classify_usage, cmd_classify},
    {"bench", "measure optimizer steps against this machine's memory bandwidth",
     "usage: descent bench elementwise [--quick] [--only NAME]\n"
     "  Measures a STREAM-style triad and an in-place update stream at 1 and 2\n"
     "  threads, then every element-wise optimizer's full step (plus a few modes:\n"
     "  row-wise AdaGrad-Norm, sparse SPAM, coordinate clipping) on 1M and 100M\n"
     "  parameters (--quick: 1M only; --only NAME: one family and its modes):\n"
     "  ns per parameter, GB/s from the bytes the step really moves (parameter\n"
     "  read+write, gradient read by the scan and the kernel, state read+write)\n"
     "  and the fractions of both bandwidths. `make bench` also runs the\n"
     "  Newton-Schulz/Muon, 8-bit and low-rank benchmarks; `descent gpt2 bench`\n"
     "  times the GPT-2 trainer.\n",
     cmd_bench},
    {"version", "print the version and build configuration",
     "usage: descent version\n"
     "  Prints the version, the build configuration (BLAS, OpenMP, threads,\n"
     "  kernels) and the folder of shipped data in use (digits, GPT-2\n"
     "  vocabulary, golden files): PREFIX/share/descent once installed,\n"
     "  DESCENT_DATADIR if set.\n", cmd_version},
    {"help", "explain a command", "usage: descent help [COMMAND]\n", cmd_help},
};

#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

const cli_command *cli_find(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

void cli_print_usage(FILE *out, const cli_command *c) { fputs(c->usage, out); }

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void overview(FILE *out)
{
    fprintf(out,
            "descent - optimizers for neural-network training, and a lab to compare them\n\n"
            "usage: descent COMMAND [ARGS...]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`descent help COMMAND` or `descent COMMAND --help` explains one.\n"
                 "Environment: OMP_NUM_THREADS (threads), DESCENT_KERNELS=ref (reference loops) or\n"
                 "  DESCENT_KERNELS=portable (no AVX-512 path for 8-bit states, no AVX512-BF16\n"
                 "  kernel for bf16 Newton-Schulz).\n");
}

int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        overview(stdout);
        return CLI_OK;
    }
    const cli_command *c = cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "descent help: unknown command \"%s\"\n", argv[1]);
        return CLI_USAGE;
    }
    cli_print_usage(stdout, c);
    return CLI_OK;
}

/* `descent --version` prints one line (what help2man reads); `descent
 * version` adds which copy of the shipped data this command reads. */
int cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "descent version: unexpected argument \"%s\"\n", argv[1]);
        return CLI_USAGE;
    }
    dsc_build_info_t b = dsc_build_info();
    printf("descent %s (blas: %s, openmp: %s, threads: %d, kernels: %s)\n", b.version, b.blas,
           b.openmp ? "yes" : "no", b.max_threads, b.kernels);
    if (argc > 0) {
        const char *data = lab_data_dir(); /* lab/datadir.h */
        printf("data: %s\n", data ? data : "the source tree");
    }
    return CLI_OK;
}

static int descent_main(int argc, char **argv)
{
    if (argc < 2) {
        overview(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        overview(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(0, NULL);
    const cli_command *c = cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "descent: unknown command \"%s\" (see descent --help)\n", argv[1]);
        return CLI_USAGE;
    }
    /* gpt2 explains its subcommands itself */
    if (c->run != cmd_help && c->run != cmd_gpt2 && c->run != cmd_classify &&
        cli_wants_help(argc - 1, argv + 1)) {
        cli_print_usage(stdout, c);
        return CLI_OK;
    }
    return c->run(argc - 1, argv + 1);
}

#ifdef DESCENT_CLI_MPI
/* descent-mpi: the same command inside an MPI job (mpi_glue.c). */
int cli_mpi_main(int argc, char **argv, int (*run)(int, char **));
#endif

int main(int argc, char **argv)
{
#ifdef DESCENT_CLI_MPI
    return cli_mpi_main(argc, argv, descent_main);
#else
    return descent_main(argc, argv);
#endif
}
