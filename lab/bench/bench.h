/* bench.h - benchmarks that the `descent bench` command and the bench/
 * programs share. Each prints its figures with the machine's own limits
 * measured in the same run, and returns a process exit code. */
#ifndef DESCENT_BENCH_H
#define DESCENT_BENCH_H

/* Element-wise optimizer steps against a STREAM-style triad. */
int bench_elementwise_main(int argc, char **argv);

#endif
