/* stability.h - what the stability and memory methods are for, shown on a
 * real task (an MLP on the 8x8 digits):
 *   1. spikes: every few hundred steps a few gradient coordinates are
 *      multiplied by 1000 (as loss spikes do in LLM training). Adam and
 *      AdamW against SPAM, Stable-SPAM and global-norm clipping, each with
 *      and without the spikes.
 *   2. eightbit: AdamW with 8-bit block-wise states against float32 AdamW:
 *      the loss curves and the bytes of state. */
#ifndef DESCENT_STABILITY_H
#define DESCENT_STABILITY_H

#include <stdint.h>

typedef struct {
    const char *out_dir;  /* CSVs, plots and report.md go here */
    int steps;            /* optimizer steps per run */
    int batch;
    int seeds;            /* runs per arm, results averaged */
    int spike_every;      /* steps between spikes */
    int spike_coords;     /* coordinates hit by each spike */
    double spike_scale;   /* gradient multiplier of a spike */
    int quiet;
} stability_config;

stability_config stability_default(void);

typedef struct {
    /* spikes: final test accuracy with spikes, per arm (NaN if absent) */
    double adam_spiked_acc, spam_spiked_acc, stable_spam_spiked_acc, adam_clean_acc;
    /* eightbit: max relative gap of the full-train loss after 10% of the
     * run, and state bytes per parameter of each */
    double eightbit_max_rel_gap, eightbit_bytes_per_param, fp32_bytes_per_param;
} stability_result;

/* Runs both parts; prints tables; writes files. 0 on success. */
int stability_run(const stability_config *cfg, stability_result *res);

#endif
