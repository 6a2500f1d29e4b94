/* test_stability_lab.c - the stability experiment's claims on a reduced run
 * (one seed, 800 steps): under whole-gradient spikes Adam loses accuracy
 * that SPAM and Stable-SPAM keep, and 8-bit AdamW tracks float32 AdamW with
 * less state. Margins are what the full run (descent stability) shows, with
 * room to spare. */
#include "check.h"

#include "descent.h"
#include "stability/stability.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    setenv("DESCENT_PLOT", "none", 1);
    char dir[64];
    snprintf(dir, sizeof dir, "test_stability_%d", (int)getpid());
    stability_config cfg = stability_default();
    cfg.out_dir = dir;
    cfg.steps = 800;
    cfg.seeds = 1;
    cfg.quiet = 1;
    stability_result r;
    CHECK(stability_run(&cfg, &r) == 0);
    printf("adam clean %.4f spiked %.4f, spam %.4f, stable_spam %.4f; 8-bit gap %.4f, "
           "bytes %.2f vs %.2f\n", r.adam_clean_acc, r.adam_spiked_acc, r.spam_spiked_acc,
           r.stable_spam_spiked_acc, r.eightbit_max_rel_gap, r.eightbit_bytes_per_param,
           r.fp32_bytes_per_param);
    CHECK(r.adam_clean_acc > 0.9);
    CHECK(r.adam_spiked_acc < r.adam_clean_acc - 0.03);
    CHECK(r.spam_spiked_acc > r.adam_spiked_acc + 0.03);
    CHECK(r.stable_spam_spiked_acc > r.adam_spiked_acc + 0.03);
    CHECK(r.eightbit_max_rel_gap < 0.15);
    CHECK(r.eightbit_bytes_per_param < 0.5 * r.fp32_bytes_per_param);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("test_stability_lab");
}
