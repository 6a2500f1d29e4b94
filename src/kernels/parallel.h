/*
 * parallel.h - how every kernel and step runs on threads (runtime.c).
 * Not installed. The bottom layer: it includes only the public header (for
 * dsc_status and the build-info type) and the C library, so kernels, the
 * core and the optimizer families can all use it without any cycle.
 *
 * The convention (docs/CONTRIBUTING.md, "Parallel loops"): an element-wise
 * loop is a plain range function run by dsc_parallel_ranges(); independent
 * items (rows, tensors) run by dsc_parallel_items(); a sum is a block
 * function run by dsc_reduce_blocks() (vec.h). The core and the families
 * open no OpenMP region (tests/parallel_convention.sh); only the kernels
 * do, whose loops run over rows, tiles or blocks with a fixed partition
 * (gemm.c, newton_schulz.c, svd.c, nuclear.c, vec.c).
 */
#ifndef DESCENT_KERNELS_PARALLEL_H
#define DESCENT_KERNELS_PARALLEL_H

#include "descent.h"

#include <stddef.h>

int dsc_threads(void);       /* threads a parallel loop may use */
int dsc_env_reference(void); /* DESCENT_KERNELS=ref */
#define DSC_PAR_MIN 32768    /* below this many elements loops stay serial */

/* Element-wise kernels run as plain functions over a range [lo, hi): one
 * contiguous range per thread (boundaries on 64-byte multiples, so no two
 * threads write the same cache line), serial below DSC_PAR_MIN. The kernel
 * body lives outside the OpenMP region on purpose: inside an outlined
 * function GCC loses `restrict` and may unswitch flags into a scalar loop;
 * a plain function with local restrict pointers and compile-time flags
 * vectorizes every variant. Element-wise results do not depend on how the
 * range is cut, so any thread count gives the same bits. */
typedef void (*dsc_range_fn)(const void *ctx, size_t lo, size_t hi);
void dsc_parallel_ranges(size_t n, dsc_range_fn fn, const void *ctx);
/* The same for loops over `n` independent items that are not elements
 * (rows of a matrix, parameters of a group): items [lo, hi) per thread, an
 * even static split, serial when `parallel` is 0 or one thread is allowed.
 * The result must not depend on the split (each item is computed whole by
 * one thread). */
void dsc_parallel_items(size_t n, int parallel, dsc_range_fn fn, const void *ctx);

/* For the per-variant bodies of such kernels: a body written once with its
 * flags as parameters, inlined into one call per flag combination, so each
 * combination is its own branch-free loop. */
#if defined(__GNUC__) || defined(__clang__)
#define DSC_BODY static inline __attribute__((always_inline))
#else
#define DSC_BODY static inline
#endif

/* DSC_WIDE on a range function compiles it three times, for AVX-512F, for
 * AVX2 and for the baseline, and picks one when the program loads (GCC
 * function multi-versioning on x86-64 with glibc's ifunc). All give the
 * same bits: the build is ISO C (-std=c11), so GCC never contracts a*b+c
 * into an FMA although AVX-512F has one (a GNU C build would: keep
 * CMAKE_C_EXTENSIONS OFF); divides and square roots are IEEE at any width.
 * It matters for steps with several divides or square roots per element,
 * which the baseline's 4-wide SSE2 leaves compute-bound; on a core with a
 * full-width 512-bit divider (AMD Zen 5) the AVX-512 clone halves their
 * cost again (`descent bench elementwise`, column "cache ns"). Elsewhere it
 * is empty. Put it on static functions only: GCC exports the dispatcher of
 * a non-static clone whatever the visibility, and libdescent exports
 * nothing but its API. A function it calls runs the clone's ISA only when
 * inlined into it (DSC_BODY, or static with one caller). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(DESCENT_NO_CLONES)
#define DSC_WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
/* The same for loops that mix 16- and 32-bit lanes (the bf16 conversions):
 * with AVX-512F alone GCC runs them at 256 bits, with x86-64-v4's AVX512BW
 * at 512 (AdamW with bf16 states: 0.55 -> 0.46 ns per parameter in cache,
 * stochastic rounding 0.89 -> 0.59). Integer work: the same bits. */
#define DSC_WIDE_BW __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define DSC_WIDE
#define DSC_WIDE_BW
#endif

#endif /* DESCENT_KERNELS_PARALLEL_H */
