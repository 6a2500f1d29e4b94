/* bench_elementwise.c - `make bench` entry for bench/lib/elementwise.c. */
#include "bench.h"

int main(int argc, char **argv) { return bench_elementwise_main(argc, argv); }
