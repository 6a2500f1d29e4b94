/* bench_elementwise.c - `make bench` entry for lab/bench/elementwise.c. */
#include "bench/bench.h"

int main(int argc, char **argv) { return bench_elementwise_main(argc, argv); }
