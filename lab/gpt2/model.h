/*
 * model.h - GPT-2 in C: forward, backward, llm.c checkpoints.
 *
 * The model is GPT-2 as OpenAI released it and as karpathy/llm.c trains
 * it: token and position embeddings, L pre-LayerNorm blocks (causal
 * self-attention, then a 4C GELU-tanh MLP, each added to the residual), a
 * final LayerNorm, and an LM head tied to the token embedding. The
 * vocabulary is padded (50257 -> 50304 for GPT-2) so the head's matrix has
 * a friendly row count; padded rows are never read by the loss and their
 * gradient stays 0.
 *
 * Memory: all parameters live in one contiguous float buffer (and their
 * gradients in a second one of the same layout), in llm.c's order of 16
 * tensors, so an llm.c checkpoint is that buffer after a 256-int header.
 * Activations for a (B, T) batch live in one buffer, sized on first use;
 * the backward pass uses one layer's worth of scratch on top.
 *
 * Threads and determinism: every matrix product is cut into tiles whose
 * size depends only on the matrix shape; OpenMP threads share the tiles,
 * each running a single-threaded CBLAS sgemm (or a plain loop without
 * CBLAS) on its own. Every other reduction (LayerNorm statistics, bias and
 * gain gradients, softmax, the loss, embedding gradients) runs in a fixed
 * order per output. Results are therefore bitwise identical for a given
 * thread count AND across thread counts (test_gpt2 checks 1 vs 2 threads).
 * They are not identical between a CBLAS build and the portable loops.
 *
 * Left out: mixed precision, dropout, KV caching for sampling (sampling
 * reruns the forward pass over the window), weight tying as an option (the
 * head is always tied, as in GPT-2).
 */
#ifndef DESCENT_GPT2_MODEL_H
#define DESCENT_GPT2_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int max_seq_len;       /* maxT: rows of wpe (1024 for GPT-2) */
    int vocab_size;        /* V: 50257 for GPT-2 */
    int padded_vocab_size; /* Vp >= V: rows of wte (50304 for GPT-2) */
    int num_layers;        /* L */
    int num_heads;         /* NH, divides C */
    int channels;          /* C */
} gpt2_config;

/* GPT-2 124M (L=12, C=768, NH=12, V=50257 padded to 50304, maxT=1024). */
gpt2_config gpt2_config_124m(void);
/* GPT-2 vocabulary and maxT with the given L, C, NH. */
gpt2_config gpt2_config_make(int num_layers, int channels, int num_heads, int max_seq_len);
/* 0 if the sizes are usable; else -1 and a message in err. */
int gpt2_config_check(const gpt2_config *c, char *err, size_t errlen);
/* Vp for V: the next multiple of 64 (llm.c pads 50257 to 50304 = 128*393;
 * 64 divides both and keeps tiny test vocabularies tiny). */
int gpt2_pad_vocab(int vocab_size);

/* The 16 parameter tensors in llm.c's order. */
enum {
    GPT2_WTE,      /* (Vp, C) token embedding, tied LM head */
    GPT2_WPE,      /* (maxT, C) position embedding */
    GPT2_LN1W,     /* (L, C) */
    GPT2_LN1B,     /* (L, C) */
    GPT2_QKVW,     /* (L, 3C, C) */
    GPT2_QKVB,     /* (L, 3C) */
    GPT2_ATTPROJW, /* (L, C, C) */
    GPT2_ATTPROJB, /* (L, C) */
    GPT2_LN2W,     /* (L, C) */
    GPT2_LN2B,     /* (L, C) */
    GPT2_FCW,      /* (L, 4C, C) */
    GPT2_FCB,      /* (L, 4C) */
    GPT2_FCPROJW,  /* (L, C, 4C) */
    GPT2_FCPROJB,  /* (L, C) */
    GPT2_LNFW,     /* (C) */
    GPT2_LNFB,     /* (C) */
    GPT2_NUM_TENSORS
};

typedef struct {
    gpt2_config cfg;
    size_t tensor_numel[GPT2_NUM_TENSORS];
    size_t num_params;
    float *params;                     /* num_params floats, owned */
    float *grads;                      /* same layout, owned */
    float *param[GPT2_NUM_TENSORS];    /* views into params */
    float *grad[GPT2_NUM_TENSORS];     /* views into grads */

    /* Activations for the current (B, T), owned; see model.c for layout. */
    int B, T;
    float *acts;
    size_t num_acts;    /* floats allocated (may exceed what B, T need) */
    float *scratch; /* backward: one layer of activation gradients */
    size_t num_scratch;
    const int *inputs;  /* borrowed from the last forward, (B, T) */
    const int *targets; /* borrowed, (B, T) or NULL */
    int have_targets;
    double loss;    /* mean loss of the last forward with targets */
} gpt2_model;

/* Allocates a model with GPT-2's initialisation (normal(0, 0.02) weights,
 * residual projections scaled by 1/sqrt(2L), zero biases, unit gains, zero
 * padded rows) from a seed. 0 on success; -1 and a message on failure. */
int gpt2_init(gpt2_model *m, const gpt2_config *cfg, uint64_t seed, char *err,
              size_t errlen);
void gpt2_free(gpt2_model *m); /* NULL or zeroed model: no-op */

/* llm.c's GPT-2 checkpoint: 256 int32 (magic 20240326, version 3, maxT, V,
 * L, NH, C, Vp), then every parameter as float32 in tensor order. Load
 * allocates the model; save writes atomically (temporary file, fsync,
 * rename). 0 on success; -1 and a message on failure. */
int gpt2_load(gpt2_model *m, const char *path, char *err, size_t errlen);
int gpt2_save(const gpt2_model *m, const char *path, char *err, size_t errlen);

/* Forward over inputs (B, T) of token ids in [0, V). With targets (B, T)
 * also the mean cross-entropy, returned and kept in m->loss; without,
 * returns 0 and leaves the logits for gpt2_logits. The arrays are borrowed
 * until the next forward. Allocates activations when (B, T) grows.
 * Returns -1 (message in err) on bad sizes, tokens or memory. */
int gpt2_forward(gpt2_model *m, const int *inputs, const int *targets, int B, int T,
                 double *loss, char *err, size_t errlen);
/* Gradient of the last forward's mean loss, written over m->grads (no
 * zeroing needed: every gradient entry is overwritten). Needs a forward
 * with targets. Returns -1 if there was none. */
int gpt2_backward(gpt2_model *m);
/* Logits (Vp floats, the first V meaningful) at batch row b, position t of
 * the last forward. Valid until the next forward or backward. */
const float *gpt2_logits(const gpt2_model *m, int b, int t);

/* Parameter views for an optimizer: per-layer slices of the stacked
 * tensors, with Hugging Face GPT-2 names ("wte", "wpe", "h.3.attn.c_attn.weight",
 * "ln_f.bias"), so hidden matrices are 2-D and gains and biases 1-D. */
typedef struct {
    char name[64];
    float *data;
    float *grad;
    int ndim;
    int64_t shape[2];
    int tensor; /* GPT2_* kind */
    int layer;  /* -1 for the non-layer tensors */
} gpt2_view;

int gpt2_view_count(const gpt2_model *m);
void gpt2_view_at(const gpt2_model *m, int i, gpt2_view *v);
const char *gpt2_tensor_name(int tensor); /* "wte", "qkvw", ... */

/* Floating-point operations of one training step (forward and backward)
 * on a (B, T) batch, counted from the model's products:
 *   6 * N_mm * B*T + 6 * L * C * B * T * (T+1)
 * with N_mm = L * 12 C^2 + V * C the weights that enter a matrix product
 * (qkv, attention projection, MLP in and out, and the tied head over the V
 * real tokens; embeddings lookups, biases and LayerNorms are left out).
 * Each weight costs 2 FLOPs per token forward and 4 backward; causal
 * attention computes T(T+1)/2 query-key pairs per head, each 2 hs FLOPs for
 * q.k and 2 hs for the weighted sum of v forward, twice that backward.
 * *n_mm receives N_mm when not NULL. */
double gpt2_step_flops(const gpt2_config *c, int B, int T, double *n_mm);

/* The ceiling a step is measured against: every matrix product of one
 * training step (the forward nt, and the backward nn and tn products of each
 * layer's four matrices and of the head) as one plain cblas_sgemm call on
 * the whole matrix, threaded by the BLAS itself with `threads` threads.
 * gpt2_sgemm_ref_time calls each shape 1 + reps times back to back and
 * gives two timings, each the seconds of one step's products (a shape's
 * time times its count; their FLOPs are gpt2_sgemm_ref_flops):
 *   best   the best of the `reps` calls after the first: sgemm at its
 *          fastest, warm (the target's ceiling);
 *   first  the first call of each shape, which follows other work as in a
 *          step: sgemm as a trainer calls it.
 * A benchmark runs it after each step, so step and ceiling see the same
 * minute of a shared machine. new returns NULL when out of memory. Without
 * CBLAS the portable loops stand in (a portable build is measured against
 * its own products). */
typedef struct gpt2_sgemm_ref gpt2_sgemm_ref;
gpt2_sgemm_ref *gpt2_sgemm_ref_new(const gpt2_config *c, int B, int T, int threads);
void gpt2_sgemm_ref_time(gpt2_sgemm_ref *r, int reps, double *first, double *best);
double gpt2_sgemm_ref_flops(const gpt2_sgemm_ref *r);
void gpt2_sgemm_ref_free(gpt2_sgemm_ref *r);

/* Threads for the model's loops (0 = OpenMP default); n > 0 also sets
 * OpenBLAS's thread count when built with it. */
void gpt2_set_threads(int n);
int gpt2_get_threads(void);

#endif
