/*
 * descent.h - the whole public API of libdescent, and its manual.
 *
 * libdescent runs the optimizers that train neural networks (SGD, Adam,
 * AdamW, AdaGrad, the sign family, Lion, Muon and its relatives, the
 * stability and 8-bit methods) over parameters that the caller owns.
 *
 * Recipe
 * ------
 *     dsc_optimizer *opt = dsc_optimizer_new();
 *     // one group per optimizer; keys and defaults: `descent list`
 *     dsc_optimizer_add_group(opt, "hidden", "muon:lr=0.02");
 *     dsc_optimizer_add_group(opt, "rest",
 *                             "adamw:lr=3e-4,beta1=0.9,beta2=0.95,weight_decay=0.1");
 *     int64_t shape[2] = {768, 768};
 *     dsc_optimizer_add_param(opt, "h0.attn.w", w, dw, 2, shape,
 *                             DSC_ROLE_AUTO, "hidden");
 *     ...
 *     for (;;) {
 *         forward_backward(dw, ...);            // fill the gradient buffers
 *         if (dsc_optimizer_step(opt) != DSC_OK)
 *             fprintf(stderr, "%s\n", dsc_optimizer_error(opt));
 *     }
 *     dsc_optimizer_save(opt, "state.safetensors");
 *     dsc_optimizer_free(opt);
 *
 * Or let descent route parameters by role (the usual Muon + AdamW split):
 *     dsc_optimizer_use_split(opt, "muon:lr=0.02", "adamw:lr=3e-4");
 *     dsc_optimizer_add_param(opt, "wte", ..., DSC_ROLE_AUTO, NULL);
 *
 * Ownership: parameter and gradient buffers belong to the caller and must
 * stay valid while the optimizer uses them; the gradient is only read.
 * descent owns the optimizer state, allocated when a parameter is added;
 * dsc_optimizer_step() allocates nothing.
 *
 * Errors: every call that can fail returns a dsc_status (DSC_OK = 0). The
 * handle keeps a message saying what and where until its next call
 * (dsc_optimizer_error). A failed call leaves the optimizer unchanged. No
 * call aborts the process on bad input.
 *
 * Threads: a handle is used by one thread at a time; different handles are
 * independent. Inside a step, large tensors are split over OpenMP threads;
 * results are bitwise identical for any thread count.
 */
#ifndef DESCENT_H
#define DESCENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* DSC_VERSION_MAJOR, _MINOR, _PATCH and DSC_VERSION_STRING, generated from
 * the version in CMakeLists.txt and installed beside this header. */
#include "descent_version.h"
#define DSC_MAX_NDIM 4
/* DSC_API marks what the shared library exports: every function declared
 * here, and nothing else (the library is built with -fvisibility=hidden;
 * tests/exported_symbols.sh checks that the two sets are equal). */
#ifndef DSC_API
#if defined(__GNUC__) || defined(__clang__)
#define DSC_API __attribute__((visibility("default")))
#else
#define DSC_API
#endif
#endif
#define DSC_NAME_MAX 128 /* longest parameter or group name, with the NUL */

/* ------------------------------------------------------------------ status */

/* X-macro list: one line per status, generating the enum and its texts. */
#define DSC_STATUS_MAP(X)                                                       \
    X(OK, "success")                                                            \
    X(INVALID_ARGUMENT, "invalid argument")                                     \
    X(NULL_POINTER, "null pointer")                                             \
    X(UNKNOWN_OPTIMIZER, "unknown optimizer")                                   \
    X(UNKNOWN_KEY, "unknown hyperparameter key")                                \
    X(UNKNOWN_NAME, "unknown parameter or group name")                          \
    X(DUPLICATE_NAME, "duplicate name")                                         \
    X(OUT_OF_RANGE, "value out of range")                                       \
    X(PARSE, "could not parse")                                                 \
    X(SHAPE, "shape mismatch or unsupported shape")                             \
    X(NONFINITE, "non-finite gradient")                                         \
    X(NO_MEMORY, "out of memory")                                               \
    X(IO, "input/output error")                                                 \
    X(CORRUPT, "corrupted or truncated file")                                   \
    X(MISMATCH, "checkpoint does not match this optimizer")                     \
    X(STATE, "call not allowed in the current state")                           \
    X(UNSUPPORTED, "not supported by this build")

typedef enum {
#define DSC_STATUS_ENUM_(name, text) DSC_##name,
    DSC_STATUS_MAP(DSC_STATUS_ENUM_)
#undef DSC_STATUS_ENUM_
    DSC_STATUS_COUNT
} dsc_status;

/* "DSC_SHAPE" style name, and a short English text. Never NULL. */
DSC_API const char *dsc_status_name(dsc_status s);
DSC_API const char *dsc_status_string(dsc_status s);

/* ------------------------------------------------------------- build info */

typedef struct {
    const char *version;  /* DSC_VERSION_STRING, e.g. "0.1.0" */
    const char *blas;     /* "openblas", "portable" */
    int openmp;           /* 1 if built with OpenMP */
    int max_threads;      /* omp_get_max_threads() or 1 */
    const char *kernels;  /* kernels chosen at run time: "ref", "portable", ... */
} dsc_build_info_t;

DSC_API dsc_build_info_t dsc_build_info(void);

/* Threads used by steps (0 = OpenMP default). Results do not depend on it. */
DSC_API void dsc_set_num_threads(int n);
DSC_API int dsc_get_num_threads(void);

/* Replace malloc/free for everything descent allocates (embedders, OOM
 * tests). Call before creating any handle; NULL restores the libc ones. */
DSC_API void dsc_set_allocator(void *(*alloc_fn)(size_t), void (*free_fn)(void *));

/* ---------------------------------------------------------------- registry */

typedef enum { DSC_KEY_FLOAT, DSC_KEY_INT, DSC_KEY_BOOL } dsc_key_type;

typedef struct {
    const char *name;      /* "lr" */
    dsc_key_type type;
    double default_value;  /* NAN when the key is required */
    double min_value, max_value;
    int min_open, max_open; /* 1: the bound itself is excluded */
    const char *help;
} dsc_key_info;

typedef struct {
    const char *name;      /* canonical name, e.g. "adamw" */
    const char *summary;   /* one line */
    const char *paper;     /* citation */
    const char *source;    /* official code the update rule follows */
    int nkeys;
    const dsc_key_info *keys;
    int matrix;            /* 1 if it needs matrices (ndim >= 2) */
} dsc_optimizer_info;

DSC_API int dsc_optimizer_kind_count(void);
/* i in [0, count); NULL outside. */
DSC_API const dsc_optimizer_info *dsc_optimizer_kind(int i);
/* By canonical name or alias; NULL if unknown. */
DSC_API const dsc_optimizer_info *dsc_optimizer_kind_find(const char *name);

/* Bytes of optimizer state for one parameter tensor of the given shape
 * under `spec` ("adam8bit", "adamw:lr=1e-3"), and the same per parameter
 * element. Returns DSC_OK or the parse/shape error. */
DSC_API dsc_status dsc_state_bytes(const char *spec, int ndim, const int64_t *shape,
                                   size_t *bytes);

/* ------------------------------------------------------------- optimizer */

typedef struct dsc_optimizer dsc_optimizer;

typedef enum {
    DSC_ROLE_AUTO = 0, /* infer: ndim 1 vector, 4 conv, 2 matrix unless the
                          name says embedding (wte, wpe, embed) or head
                          (lm_head, head, classifier) */
    DSC_ROLE_MATRIX,
    DSC_ROLE_EMBEDDING,
    DSC_ROLE_HEAD,
    DSC_ROLE_VECTOR,
    DSC_ROLE_CONV
} dsc_role;

DSC_API const char *dsc_role_name(dsc_role r);

/* What to do when a gradient holds NaN or Inf. */
typedef enum {
    DSC_NONFINITE_SKIP = 0, /* skip the whole step: parameters and state unchanged */
    DSC_NONFINITE_ZERO,     /* replace the bad entries by 0 and step */
    DSC_NONFINITE_FAIL      /* return DSC_NONFINITE, change nothing */
} dsc_nonfinite_policy;

typedef enum { DSC_CLIP_NONE = 0, DSC_CLIP_NORM, DSC_CLIP_VALUE } dsc_clip_kind;

DSC_API dsc_optimizer *dsc_optimizer_new(void);
DSC_API void dsc_optimizer_free(dsc_optimizer *opt); /* NULL is a no-op */

/* The message of the last failed call on this handle ("" after success). */
DSC_API const char *dsc_optimizer_error(const dsc_optimizer *opt);

/* Adds a group named `group` run by the optimizer `spec`:
 * "name" or "name:key=value,key=value". Unknown names and keys, values out
 * of range, fractional values of integer keys, NaN, missing required keys
 * and malformed text (see dsc_schedule_parse) are errors. */
DSC_API dsc_status dsc_optimizer_add_group(dsc_optimizer *opt, const char *group,
                                           const char *spec);

/* Routing rules used when a parameter is added with group NULL. The first
 * rule that matches wins. `pattern` is a glob on the name ('*' and '?';
 * NULL matches all); `role` DSC_ROLE_AUTO matches any role. `no_decay` 1
 * gives the parameter weight_decay = 0 (when its optimizer has the key). */
DSC_API dsc_status dsc_optimizer_add_rule(dsc_optimizer *opt, const char *pattern,
                                          dsc_role role, const char *group, int no_decay);

/* The standard split in one call: a group "matrix" run by `matrix_spec`
 * for hidden matrices and conv filters, a group "fallback" run by
 * `fallback_spec` for embeddings, the head and vectors; vectors (gains and
 * biases) get no weight decay. */
DSC_API dsc_status dsc_optimizer_use_split(dsc_optimizer *opt, const char *matrix_spec,
                                           const char *fallback_spec);

/* Registers a parameter: `data` (updated in place) and `grad` (read only),
 * both float32, row-major, `ndim` in 1..4 dimensions of `shape`. A 2-D
 * tensor is (rows = out features, cols = in features). `group` NULL routes
 * by the rules. The parameter's optimizer state is allocated here. */
DSC_API dsc_status dsc_optimizer_add_param(dsc_optimizer *opt, const char *name,
                                           float *data, const float *grad, int ndim,
                                           const int64_t *shape, dsc_role role,
                                           const char *group);

/* bfloat16 parameters (the top 16 bits of a float32, as torch.bfloat16):
 * `data` and `grad` hold numel uint16_t each; the group's optimizer runs
 * in float32 as for any parameter.
 *   DSC_BF16_MASTER      descent keeps a float32 master copy (state slot
 *                        "master", checkpointed; taken from `data` here); each
 *                        update changes the master and writes it to `data`
 *                        rounded to nearest even (4 more bytes of state per
 *                        parameter). dsc_optimizer_load writes the loaded
 *                        master, rounded, into `data`.
 *   DSC_BF16_STOCHASTIC  no master: each update starts from `data` widened to
 *                        float32 and rounds the result stochastically (up with
 *                        probability equal to the distance from the lower
 *                        neighbour over the gap: unbiased), with random bits
 *                        from a hash of (seed, step, parameter, element): the
 *                        same bits for any thread count. Seed:
 *                        dsc_optimizer_set_seed (saved in checkpoints and
 *                        restored by dsc_optimizer_load).
 * Either way descent owns a float32 gradient buffer (and, stochastic, a
 * float32 work copy of the parameter): 4 (8) bytes per parameter outside the
 * checkpointed state, reported as work_bytes by dsc_optimizer_param_info. */
typedef enum { DSC_BF16_MASTER = 0, DSC_BF16_STOCHASTIC } dsc_bf16_mode;
DSC_API dsc_status dsc_optimizer_add_param_bf16(dsc_optimizer *opt, const char *name,
                                                uint16_t *data, const uint16_t *grad, int ndim,
                                                const int64_t *shape, dsc_role role,
                                                const char *group, dsc_bf16_mode mode);
DSC_API dsc_status dsc_optimizer_set_seed(dsc_optimizer *opt, uint64_t seed);

/* Point an existing parameter at new buffers (same shape). */
DSC_API dsc_status dsc_optimizer_rebind(dsc_optimizer *opt, const char *name,
                                        float *data, const float *grad);

/* Move a parameter to another group (before the first step only). */
DSC_API dsc_status dsc_optimizer_move_param(dsc_optimizer *opt, const char *name,
                                            const char *group);

/* Hyperparameters. A group value applies to all its parameters; a
 * parameter value overrides its group's for that parameter only. The group
 * calls also take the keys every optimizer accepts (maximize, layer_decay,
 * coordinate_clip, coordinate_clip_scale, bf16_state: `descent list any`),
 * range-checked alike; a refused value changes nothing. bf16_state (state
 * stored in bfloat16: 1 rounded to nearest, 2 stochastically; sgd, adam,
 * adamw, adagrad, lion, signum) cannot switch between float32 and bf16 once
 * the group has parameters (DSC_STATE). */
DSC_API dsc_status dsc_optimizer_set_hyper(dsc_optimizer *opt, const char *group,
                                           const char *key, double value);
DSC_API dsc_status dsc_optimizer_get_hyper(const dsc_optimizer *opt, const char *group,
                                           const char *key, double *value);
DSC_API dsc_status dsc_optimizer_set_param_hyper(dsc_optimizer *opt, const char *param,
                                                 const char *key, double value);

/* Listing: what each parameter is and where it went. */
typedef struct {
    const char *name;
    const char *group;
    const char *optimizer; /* the group's optimizer name */
    dsc_role role;
    int ndim;
    int64_t shape[DSC_MAX_NDIM];
    size_t numel;
    int no_decay;
    size_t state_bytes;
    int bf16;             /* 0 float32; 1 + dsc_bf16_mode for bf16 parameters */
    size_t work_bytes;    /* buffers descent owns beside the state (bf16: the
                             float32 gradient and work copy; stats, accumulation) */
} dsc_param_info;

DSC_API int dsc_optimizer_param_count(const dsc_optimizer *opt);
DSC_API dsc_status dsc_optimizer_param_info(const dsc_optimizer *opt, int i,
                                            dsc_param_info *info);
DSC_API int dsc_optimizer_group_count(const dsc_optimizer *opt);
/* Name and optimizer of group i; NULL outside the range. */
DSC_API const char *dsc_optimizer_group_name(const dsc_optimizer *opt, int i);
DSC_API const char *dsc_optimizer_group_kind(const dsc_optimizer *opt, int i);
DSC_API size_t dsc_optimizer_state_bytes(const dsc_optimizer *opt);

/* ------------------------------------------------------------- schedules */

typedef enum {
    DSC_SCHED_CONSTANT = 0,
    DSC_SCHED_LINEAR_WARMUP, /* (s+1)/warmup, then 1 */
    DSC_SCHED_COSINE,        /* warmup, then cosine from 1 to min_ratio at total */
    DSC_SCHED_WSD,           /* warmup, stable 1, linear decay to min_ratio over
                                the last `decay` steps before total */
    DSC_SCHED_STEP           /* gamma^floor(s / step_size) */
} dsc_schedule_kind;

/* A multiplier on a float hyperparameter as a function of the optimizer
 * step s (0 at the first update). */
typedef struct {
    dsc_schedule_kind kind;
    int64_t warmup;    /* warmup steps (all kinds but STEP) */
    int64_t total;     /* COSINE, WSD: last step of the schedule */
    int64_t decay;     /* WSD: length of the decay phase */
    int64_t step_size; /* STEP */
    double gamma;      /* STEP */
    double min_ratio;  /* COSINE, WSD: final multiplier */
} dsc_schedule;

DSC_API dsc_schedule dsc_schedule_default(void); /* constant */
/* "cosine:warmup=100,total=5000,min_ratio=0.1", "wsd:warmup=..,total=..,
 * decay=..", "step:step_size=..,gamma=..", "linear_warmup:warmup=..",
 * "constant". Writes a message to err (may be NULL). Step counts are
 * integers in [0, 2^53]. Specs and schedules share one strict grammar:
 * decimal numbers or true/false, no duplicate keys, empty items, trailing
 * commas, hex floats, inf/nan or trailing characters; messages give the
 * character ("at character N"). */
DSC_API dsc_status dsc_schedule_parse(const char *text, dsc_schedule *out, char *err,
                                      size_t errlen);
DSC_API dsc_status dsc_schedule_validate(const dsc_schedule *s, char *err, size_t errlen);
DSC_API double dsc_schedule_factor(const dsc_schedule *s, int64_t step);

/* Attach a schedule to a float key of a group (e.g. "lr"). NULL group: all. */
DSC_API dsc_status dsc_optimizer_set_schedule(dsc_optimizer *opt, const char *group,
                                              const char *key, const dsc_schedule *s);

/* -------------------------------------------------- gradient transforms */

/* Clipping over all parameters of the optimizer: by global l2 norm (the
 * gradient is scaled by max_norm / (norm + 1e-6) when norm > max_norm, as
 * torch.nn.utils.clip_grad_norm_) or by value (each entry clamped to
 * [-limit, limit]). Clipping and the non-finite policy are saved in
 * checkpoints and restored by dsc_optimizer_load (src/core/transform.c). */
DSC_API dsc_status dsc_optimizer_set_clip(dsc_optimizer *opt, dsc_clip_kind kind,
                                          double limit);
DSC_API dsc_status dsc_optimizer_set_nonfinite(dsc_optimizer *opt,
                                               dsc_nonfinite_policy policy);
/* Gradient accumulation: each call of dsc_optimizer_step() is one
 * micro-step; every `micro_steps`-th call updates the parameters with the
 * mean of the accumulated gradients. 1 (default) means no accumulation. */
DSC_API dsc_status dsc_optimizer_set_accumulation(dsc_optimizer *opt, int micro_steps);

/* --------------------------------------------------------------- stepping */

typedef struct {
    int64_t step;         /* updates applied so far */
    int applied;          /* 1 if the last call updated the parameters */
    int skipped;          /* 1 if it was skipped for non-finite gradients */
    double grad_l2, grad_l1, grad_linf; /* of the gradient the step saw,
                                           before clipping (finite entries);
                                           NaN unless dsc_optimizer_set_stats
                                           is on (l2 is also computed when
                                           clipping by norm) */
    double clip_scale;    /* factor applied by norm clipping (1 if none) */
    size_t nonfinite;     /* non-finite entries in the last gradient */
    int64_t skipped_total;   /* steps skipped so far */
    int64_t zeroed_total;    /* entries zeroed so far (ZERO policy) */
    double lr;            /* lr of the first group in the last step */
    double update_l2;     /* l2 norm of the parameter change of the last
                             applied update (all parameters, in double); NaN
                             unless stats are on */
    int64_t clipped_total;   /* updates whose gradient norm clipping scaled */
} dsc_step_stats;

/* Gradient norms in dsc_step_stats every step (one more pass over the
 * gradients, in double with a fixed summation order), and the update norm.
 * The element-wise families adam, adamw, sgd, lion, signsgd, signum and
 * adagrad measure their update inside their step (float32 states, no
 * Lookahead, no communicator, not the reference loops); every other
 * parameter gets a copy taken before the update (4 bytes per parameter,
 * allocated here, reported in dsc_param_info.work_bytes). Off by default:
 * the step then reads each gradient once for the non-finite check and once
 * in the optimizer. */
DSC_API dsc_status dsc_optimizer_set_stats(dsc_optimizer *opt, int on);

/* One step (or micro-step, see accumulation) over every group. */
DSC_API dsc_status dsc_optimizer_step(dsc_optimizer *opt);
DSC_API dsc_status dsc_optimizer_stats(const dsc_optimizer *opt, dsc_step_stats *out);
DSC_API int64_t dsc_optimizer_step_count(const dsc_optimizer *opt);

/* Recompute every step with the plain reference loops instead of the fused
 * kernels (tests; DESCENT_KERNELS=ref in the environment does the same). */
DSC_API void dsc_optimizer_use_reference(dsc_optimizer *opt, int on);

/* ------------------------------------------------------------ checkpoints */

/* Optimizer state as safetensors: tensors "<param>.<slot>", group state
 * "<group>/<slot>", and in __metadata__ the format version, optimizer kinds,
 * hyperparameters, step counts, schedules and a checksum over the whole
 * file (header and data; format version 2, named in the file). Written
 * atomically (temporary file, fsync, rename). */
DSC_API dsc_status dsc_optimizer_save(dsc_optimizer *opt, const char *path);
/* Loads into an optimizer set up with the same groups and parameters
 * (paired by name). Checks the checksum first (any edit of the file is
 * refused), then kinds, shapes, sizes and every value; on any mismatch
 * nothing changes and the message says what differs. Version 1 files
 * (data-only checksum) still load. */
DSC_API dsc_status dsc_optimizer_load(dsc_optimizer *opt, const char *path);

/* ------------------------------------------------------ matrix diagnostics */

/* Muon's quintic Newton-Schulz iteration, the one every Muon-style
 * optimizer here runs, exposed to measure how close it gets to the polar
 * factor (`descent polar`). For each of `batch` consecutive m x n row-major
 * matrices G: X = G / (||G||_F + 1e-7), then `steps` times A = X X^T,
 * X = a X + (b A + c A A) X with (a, b, c) = (3.4445, -4.7750, 2.0315),
 * computed on the smaller side. out may equal g; steps 0 gives the
 * normalized input. `flags` is 0 or an OR of:
 *   DSC_NS_REFERENCE  the plain loops (sums in double, one thread);
 *   DSC_NS_BF16       the three products take bf16-rounded inputs and sum
 *                     in float32, as the official Muon's bf16 iteration
 *                     (docs/matrix.md, bf16 Newton-Schulz; the optimizers'
 *                     key ns_bf16=1): by an AVX512-BF16 kernel where the
 *                     CPU has it (about twice the float32 speed), else by
 *                     the float32 products on rounded inputs; the two
 *                     differ in the order of the float32 sums.
 * Every combination gives the same bits for any thread count. `work` holds
 * dsc_newton_schulz_work_floats(m, n) floats; nothing is allocated. Errors:
 * NULL_POINTER, INVALID_ARGUMENT (batch, m or n is 0, or an unknown flag),
 * OUT_OF_RANGE (steps < 0 or > 1000). */
#define DSC_NS_REFERENCE 1
#define DSC_NS_BF16 2
DSC_API size_t dsc_newton_schulz_work_floats(size_t m, size_t n);
DSC_API dsc_status dsc_newton_schulz(const float *g, float *out, size_t batch, size_t m,
                                     size_t n, int steps, int flags, float *work);

/* ----------------------------------------------------------- communicator */

/* Data-parallel training over several processes (docs/distributed.md).
 * libdescent does no communication itself: the caller hands it a
 * communicator, a table of collective operations over its processes
 * ("ranks"); libdescent_mpi (descent_mpi.h) provides one over MPI, and any
 * other transport fits the same table. Every function returns 0 on success
 * and non-zero on failure, and every rank must make the same calls in the
 * same order (they are collectives). Buffers are updated in place. */
typedef enum { DSC_COMM_F32 = 0, DSC_COMM_F64 } dsc_comm_dtype;

typedef struct {
    void *ctx;                /* passed to every function */
    int (*rank)(void *ctx);   /* this process, 0 .. size - 1 */
    int (*size)(void *ctx);   /* number of processes */
    /* buf[i] <- sum over ranks of buf[i]. Every rank must get the same bits;
     * descent_mpi adds in rank order starting from +0 (so the sum equals
     * sequential accumulation over ranks 0, 1, ...). */
    int (*allreduce_sum)(void *ctx, void *buf, size_t count, dsc_comm_dtype dtype);
    /* Rank r's block is buf[displs[r] .. displs[r] + counts[r]); afterwards
     * every rank holds every block (blocks of other ranks are overwritten). */
    int (*allgatherv)(void *ctx, void *buf, const size_t *counts, const size_t *displs,
                      dsc_comm_dtype dtype);
    /* buf <- root's buf. */
    int (*broadcast)(void *ctx, void *buf, size_t count, dsc_comm_dtype dtype, int root);
} dsc_comm;

/* Shard the optimizer over the communicator's ranks (ZeRO-1). Call on every
 * rank, after the last dsc_optimizer_add_param and before the first step,
 * with the same groups and parameters everywhere; the communicator is
 * copied. Every rank must pass the same gradient (the mean over all ranks'
 * data, e.g. summed with allreduce_sum) to each step. Then:
 *  - element-wise groups (sgd, adam, adamw, lion, signsgd, signum, adagrad
 *    and the 8-bit ones): each rank keeps the state of, and steps, one
 *    contiguous 1/size share of the group's flattened parameters; the new
 *    values are then all-gathered;
 *  - per-tensor groups (muon, normuon, muon_moonlight, ...): whole tensors
 *    go to ranks balanced by the cost of their update (Newton-Schulz
 *    flops), each rank steps its own, the owners broadcast the results;
 *  - other groups (those whose step couples parameters) run whole on every
 *    rank (replicated state).
 * Gradient norms, the non-finite count and so the clipping and skipping
 * decisions are all-reduced: every rank takes the same decision, and every
 * update is bit for bit the one a single process computes.
 * dsc_optimizer_state_bytes and dsc_param_info.state_bytes then give this
 * rank's bytes. Save and load write and read one file per rank next to a
 * manifest at `path`; a checkpoint loads only on the world size that saved
 * it (otherwise DSC_MISMATCH says so), and if any rank fails to load, all
 * ranks fail and nothing changes. A communicator of size 1 is allowed.
 * Parameters, groups, and the communicator cannot change afterwards
 * (DSC_STATE). A failing collective gives DSC_IO: the ranks may then
 * disagree, and the run should stop. */
DSC_API dsc_status dsc_optimizer_set_comm(dsc_optimizer *opt, const dsc_comm *comm);
/* ------------------------------------- wrappers, averages, hooks, layers */

/* A group's spec may start with wrappers and carry keys every optimizer
 * accepts (src/core/wrap.c):
 *   "lookahead(k=5,alpha=0.5):adamw:lr=1e-3"     Lookahead (Zhang et al. 2019)
 *   "ema(decay=0.999,warmup=1):sgd:lr=0.1"        EMA of the weights
 *   "ema(decay=0.99):lookahead:adam:lr=1e-3"      both (EMA of the final weights)
 * Lookahead keeps slow weights s (the parameters before the first step); after
 * every k-th update s <- s + alpha (p - s) and p <- s. The EMA keeps shadow
 * weights e: after the first update e <- p (as torch.optim.swa_utils.
 * AveragedModel), after the n-th e <- d e + (1 - d) p with d = decay, or with
 * warmup (timm ModelEmaV3) d = min(decay, 1 - (1 + n / warmup_gamma)^-warmup_power).
 * Both are per-parameter state slots ("ema", "ema_count", "lookahead_slow",
 * "lookahead_step"), checkpointed like any other.
 * Keys any optimizer accepts: coordinate_clip=c, coordinate_clip_scale=s
 * (coordinate-wise clipping of the group's gradients; sgd_clip and adam_clip
 * have their own coordinate_clip), maximize=1 (ascend; families with their own
 * maximize key keep theirs), layer_decay=D in (0, 1] (the lr of a parameter
 * at depth i of L is multiplied by D^(L - i): embeddings are depth 0, a name's
 * first number n gives depth n + 1, other parameters (head, final norm) the
 * top L = 1 + the deepest numbered depth; dsc_optimizer_set_param_layer sets
 * a depth explicitly). `descent list` lists them all. */
DSC_API int dsc_wrapper_count(void);
/* ema, lookahead, then the pseudo-entry "any" with the group keys; NULL outside. */
DSC_API const dsc_optimizer_info *dsc_wrapper_info(int i);

typedef enum { DSC_AVERAGE_EMA = 0, DSC_AVERAGE_LOOKAHEAD } dsc_average_kind;

/* The EMA (shadow) or Lookahead (slow) weights of a parameter, numel floats,
 * read only, valid until the handle is freed. Errors: UNKNOWN_NAME, STATE
 * (its group has no such wrapper, or no update was applied yet). */
DSC_API dsc_status dsc_optimizer_average(const dsc_optimizer *opt, const char *param,
                                         dsc_average_kind kind, const float **data);
/* Exchange the parameters' values with their EMA or slow weights (for an
 * evaluation), in every group that has the wrapper; calling it again with
 * the same kind swaps back. Steps and saves are refused while swapped. */
DSC_API dsc_status dsc_optimizer_swap_average(dsc_optimizer *opt, dsc_average_kind kind);
/* 1 + the kind swapped in, 0 when the live weights are in place. */
DSC_API int dsc_optimizer_swapped(const dsc_optimizer *opt);

/* Depth of a parameter for layer_decay (>= 0), or -1 to take it from the
 * name (the default). */
DSC_API dsc_status dsc_optimizer_set_param_layer(dsc_optimizer *opt, const char *param, int layer);

/* Step hooks (torch register_step_pre_hook / register_step_post_hook).
 * A pre hook runs at the start of each call of dsc_optimizer_step() that
 * will update the parameters (not on accumulating micro-steps); a non-zero
 * return refuses the step: the call returns DSC_STATE and changes nothing.
 * A post hook runs after each update applied or skipped, with its stats.
 * Hooks run in the order added and may set hyperparameters; they may not
 * step, load or free the handle. *id (may be NULL) receives a handle for
 * dsc_optimizer_remove_hook. */
typedef int (*dsc_pre_hook)(dsc_optimizer *opt, void *user);
typedef void (*dsc_post_hook)(dsc_optimizer *opt, const dsc_step_stats *stats, void *user);
DSC_API dsc_status dsc_optimizer_add_pre_hook(dsc_optimizer *opt, dsc_pre_hook fn, void *user, int *id);
DSC_API dsc_status dsc_optimizer_add_post_hook(dsc_optimizer *opt, dsc_post_hook fn, void *user,
                                               int *id);
DSC_API dsc_status dsc_optimizer_remove_hook(dsc_optimizer *opt, int id);

/* ------------------------------------------------- access for bindings */

/* Optimizer state slot by slot, for bindings that move state in and out of
 * a framework (torch's state_dict). `owner` is a parameter name, or with
 * `group_state` 1 a group name (the group's own counters and scalars, e.g.
 * SPAM's warmup counter). Slot names are those of checkpoints
 * ("<param>.<slot>"); where an algorithm is torch's they are torch's:
 * exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer, sum, and step (an
 * I64 counter; 0 means the parameter has not taken a step yet). */
typedef struct {
    const char *name;    /* "exp_avg" */
    const char *dtype;   /* safetensors names: "F32", "F64", "U8", "I64", "BF16" */
    int ndim;
    int64_t shape[DSC_MAX_NDIM];
    size_t count;        /* elements */
    size_t bytes;        /* count times the element size */
} dsc_slot_info;

/* Number of slots of `owner`; -1 if there is no such parameter or group. */
DSC_API int dsc_optimizer_slot_count(const dsc_optimizer *opt, const char *owner,
                                     int group_state);
/* Slot i in [0, count) of `owner`: UNKNOWN_NAME, OUT_OF_RANGE otherwise. */
DSC_API dsc_status dsc_optimizer_slot_info(const dsc_optimizer *opt, const char *owner,
                                           int group_state, int i, dsc_slot_info *info);
/* Copy a slot out of (read) or into (write) the optimizer; `bytes` must be
 * the slot's size exactly (SHAPE otherwise). Writing replaces the state as
 * a checkpoint load would; the values are the caller's responsibility. */
DSC_API dsc_status dsc_optimizer_read_slot(dsc_optimizer *opt, const char *owner,
                                           int group_state, const char *slot, void *out,
                                           size_t bytes);
DSC_API dsc_status dsc_optimizer_write_slot(dsc_optimizer *opt, const char *owner,
                                            int group_state, const char *slot, const void *in,
                                            size_t bytes);

/* dsc_optimizer_rebind for every parameter in one call, in the order of
 * dsc_optimizer_param_info: `n` must be the parameter count; a NULL array
 * or a NULL entry keeps that buffer. Shapes are not checked (the caller
 * passes buffers of the registered shapes). For frameworks that
 * re-allocate gradient tensors between steps: one call per step instead
 * of one name lookup per parameter, and no copy. */
DSC_API dsc_status dsc_optimizer_rebind_all(dsc_optimizer *opt, int n, float *const *data,
                                            const float *const *grad);

/* ---------------------------------------------------- adaptive batch size */

/* AdAdaGrad's adaptive batch-size tests (Lau, Liu & Kolar, arXiv 2402.11215;
 * official tests.py). Input: the b >= 2 per-sample gradients of each of
 * `ntensors` tensors at the parameters before this iteration's step;
 * grads[t] holds b rows of numel[t] float32 entries, sample-major
 * (grads[t][i * numel[t] + j]). With gbar the mean gradient, N2 its squared
 * norm over all tensors and unbiased variances (divide by b - 1):
 *   NORM     c = V / (param^2 N2),    V = sum of the coordinates' variances
 *   IP       c = V / (param^2 N2^2),  V = sum over tensors of var_i <g_i, gbar>
 *   ORTH     c = V / (param^2 N2),    V as NORM, on g_i - (<g_i,gbar>/|gbar|^2) gbar
 *                                     (per tensor)
 *   IP_ORTH  max of IP (theta = param) and ORTH (nu = param2)
 * param is eta, theta or nu (0.1 in the official code); param2 is read by
 * IP_ORTH only. *next = min(max_batch, ceil(max(b, c))): the batch grows
 * exactly when c > b. `candidate` (may be NULL) receives c (+inf when the
 * mean gradient is 0 and the samples vary). Allocates a scratch of
 * max(numel) + b doubles; any thread. Errors: NULL_POINTER, INVALID_ARGUMENT
 * (b < 2, no tensors, numel 0, param <= 0, max_batch < 1, unknown test),
 * NONFINITE (a NaN or Inf entry), NO_MEMORY. */
typedef enum {
    DSC_BATCH_TEST_NORM = 0,
    DSC_BATCH_TEST_IP,
    DSC_BATCH_TEST_ORTH,
    DSC_BATCH_TEST_IP_ORTH
} dsc_batch_test;

DSC_API dsc_status dsc_adadagrad_next_batch(dsc_batch_test test, double param, double param2,
                                            int64_t b, int ntensors, const float *const *grads,
                                            const size_t *numel, int64_t max_batch, int64_t *next,
                                            double *candidate);

/* ------------------------------------------------------ noise statistics */

/* Noise density of a gradient estimator (Tao, Yu, Zhang, arXiv 2605.06615):
 * from k >= 2 sample gradients grads[0..k-1] of d float32 entries each (e.g.
 * k mini-batch gradients at the same parameters), sigma_i^2 is the sample
 * variance of coordinate i (float64, clamped at 0) and
 *     phi = (sum_i sigma_i)^2 / (d * sum_i sigma_i^2),
 * in [1/d, 1]: 1/d when the noise sits on one coordinate, 1 when it is
 * spread equally. *phi = 0 when no coordinate varies. The buffers are only
 * read; nothing is allocated; any thread may call it. Errors: NULL_POINTER,
 * INVALID_ARGUMENT (k < 2 or d == 0), NONFINITE (a NaN or Inf entry). */
DSC_API dsc_status dsc_noise_density(const float *const *grads, int k, size_t d, double *phi);

/* ------------------------------------------------------- benchmark hooks */

/* Internal kernels, reachable so that the programs in bench/ can time them
 * through this header instead of including the library's private headers
 * (src/ stays invisible above the library). They are measuring
 * instruments, not a supported API: arguments are not checked beyond what
 * is said, and names or signatures may change in any release. Every one is
 * deterministic, with the same bits at any thread count, and allocates
 * nothing unless it says so. */

/* The library's GEMM (the one the matrix optimizers run, CBLAS-backed or
 * portable as dsc_build_info().blas says): row-major float32,
 * C = alpha op(A) op(B) + beta C, C m x n, op(A) m x k, op(B) k x n,
 * op(X) = X^T when the flag is non-zero. beta == 0 does not read C. work
 * holds dsc_bench_gemm_work_floats() floats (or is NULL: a small stack
 * panel, slower). */
DSC_API size_t dsc_bench_gemm_work_floats(void);
DSC_API void dsc_bench_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                            const float *a, size_t lda, const float *b, size_t ldb, float beta,
                            float *c, size_t ldc, float *work);

/* GaLore/Fira's projector refresh, step by step. dsc_bench_gram_f64: c
 * (r x r) = x x^T in double, x r x len, both row-major.
 * dsc_bench_sym_eig: eigenpairs of the symmetric a (n x n, destroyed), in
 * decreasing order with the library's sign convention (docs/matrix.md):
 * k == 0 all of them by QL with vectors (row j of a becomes the vector of
 * w[j], w holds n values), k > 0 the k largest by the top-k route that the
 * optimizers use (w holds k values, vecs k x n). work holds
 * dsc_bench_sym_eig_work_bytes(n, k) bytes. Returns 0, or -1 when QL did
 * not converge. */
DSC_API void dsc_bench_gram_f64(size_t r, size_t len, const double *x, double *c);
DSC_API size_t dsc_bench_sym_eig_work_bytes(size_t n, size_t k);
DSC_API int dsc_bench_sym_eig(size_t n, size_t k, double *a, double *w, double *vecs,
                              void *work);
/* The reference route the fast refresh is checked against: one-sided
 * Jacobi SVD of a (m x n, read only), s (min(m, n)) descending, u
 * (m x min(m, n)) with the sign convention on its columns. Allocates its
 * workspace: NO_MEMORY when that fails; OK otherwise (also when 80 sweeps
 * did not converge, which leaves a slightly less accurate result). */
DSC_API dsc_status dsc_bench_svd_jacobi(size_t m, size_t n, const double *a, double *s,
                                        double *u);

/* One group's update rule alone, without the step driver around it (no
 * gradient scan, clipping, schedule, wrappers, statistics or step count):
 * the "kernel" column of bench_quant8. It applies the family's update again
 * with the hyperparameters and gradients of the last dsc_optimizer_step,
 * so parameters and states change as after one more update. Errors:
 * NULL_POINTER, INVALID_ARGUMENT (no such group), STATE (no step taken
 * yet, a sharded handle, or a pending accumulation window). */
DSC_API dsc_status dsc_bench_group_update(dsc_optimizer *opt, int group);

#ifdef __cplusplus
}
#endif
#endif /* DESCENT_H */
