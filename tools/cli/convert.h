/* convert.h - `descent convert`: optimizer state between torch's
 * state_dict (in safetensors or .npz, the layout of docs/convert.md) and
 * descent's checkpoint, both ways, for the optimizers whose state is the
 * same: torch.optim.SGD (momentum_buffer), Adam and AdamW (exp_avg,
 * exp_avg_sq, max_exp_avg_sq, step), Adagrad (sum, step). Built on the
 * public API only: descent's side is made with dsc_optimizer_add_group /
 * add_param / write_slot and written by dsc_optimizer_save, or read by
 * dsc_optimizer_load and dsc_optimizer_read_slot. */
#ifndef DESCENT_CONVERT_H
#define DESCENT_CONVERT_H

#include "tensorfile.h"

#include <stddef.h>

typedef struct {
    const char *optimizer; /* torch's class, lower case; NULL: from the file's metadata */
    const char *template_path; /* to descent: a checkpoint of the target setup, or NULL */
    const char *map_path;  /* lines "INDEX NAME", or NULL: the k-th torch parameter is
                              the k-th descent parameter */
    const char *format;    /* to torch: "safetensors", "npz", or NULL: from out's extension */
    int quiet;             /* 1: no warnings on stderr */
} convert_opts;

/* The whole command: reads `in`, picks the direction from its metadata (a
 * descent checkpoint converts to torch, anything else is read as torch's
 * state), writes `out` atomically. 0 on success; -1 with the reason in err
 * and nothing written. */
int convert_file(const char *in, const char *out, const convert_opts *o, char *err,
                 size_t errlen);

/* torch -> descent on a set already read (the fuzz target's entry). */
int convert_torch_set(const tf_set *in, const char *out, const convert_opts *o, char *err,
                      size_t errlen);

#endif
