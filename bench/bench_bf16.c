/* bench_bf16.c - `make bench` entry for lab/bench/bf16.c. */
#include "bench/bench.h"

int main(int argc, char **argv) { return bench_bf16_main(argc, argv); }
