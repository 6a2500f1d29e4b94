/* bench_bf16.c - `make bench` entry for bench/lib/bf16.c. */
#include "bench.h"

int main(int argc, char **argv) { return bench_bf16_main(argc, argv); }
