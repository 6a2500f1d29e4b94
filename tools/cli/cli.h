/* cli.h - what the `descent` command's files share: one entry per command
 * (cmd_<name>.c), and the golden-file reader used by replay and tests. */
#ifndef DESCENT_CLI_H
#define DESCENT_CLI_H

#include <stdio.h>

typedef struct {
    const char *name;
    const char *summary;              /* one line for `descent --help` */
    const char *usage;                /* full text for `descent help NAME` */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

/* Exit codes: 0 success, 1 a check failed (replay, tests), 2 bad usage or input. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

const cli_command *cli_find(const char *name);
void cli_print_usage(FILE *out, const cli_command *c);

/* Returns 1 if argv[i] is "-h" or "--help". */
int cli_wants_help(int argc, char **argv);

#endif
