/* quickstart.c - the README example, made runnable: fit y = A x with AdamW,
 * a cosine schedule and clipping, save the optimizer state and resume. */
#include <descent.h>

#include <stdio.h>

enum { ROWS = 16, COLS = 8 };

int main(void)
{
    static float w[ROWS * COLS], dw[ROWS * COLS], b[ROWS], db[ROWS];
    static float target[ROWS * COLS];
    /* Targets in [-0.5, 0.5] from integer arithmetic: the example needs no
     * libm, so the README's pkg-config line is all it takes to link it. */
    for (int i = 0; i < ROWS * COLS; i++) target[i] = (float)((i * 37) % 17) / 16.0f - 0.5f;
    dsc_optimizer *opt = dsc_optimizer_new();
    if (dsc_optimizer_add_group(opt, "main", "adamw:lr=0.05,beta2=0.95,weight_decay=0.0") ||
        dsc_optimizer_add_param(opt, "fc.w", w, dw, 2, (int64_t[]){ROWS, COLS}, DSC_ROLE_AUTO,
                                NULL) ||
        dsc_optimizer_add_param(opt, "fc.b", b, db, 1, (int64_t[]){ROWS}, DSC_ROLE_AUTO, NULL)) {
        fprintf(stderr, "%s\n", dsc_optimizer_error(opt));
        return 1;
    }
    dsc_schedule cosine;
    dsc_schedule_parse("cosine:warmup=10,total=300,min_ratio=0.1", &cosine, NULL, 0);
    dsc_optimizer_set_schedule(opt, "main", "lr", &cosine);
    dsc_optimizer_set_clip(opt, DSC_CLIP_NORM, 1.0);
    double loss = 0;
    for (int step = 0; step < 300; step++) {
        loss = 0; /* loss = 1/2 ||w - target||^2 + 1/2 ||b - 1||^2 */
        for (int i = 0; i < ROWS * COLS; i++) {
            dw[i] = w[i] - target[i];
            loss += 0.5 * dw[i] * dw[i];
        }
        for (int i = 0; i < ROWS; i++) {
            db[i] = b[i] - 1.0f;
            loss += 0.5 * db[i] * db[i];
        }
        if (dsc_optimizer_step(opt) != DSC_OK) {
            fprintf(stderr, "%s\n", dsc_optimizer_error(opt));
            return 1;
        }
    }
    printf("final loss %.3g after %lld steps\n", loss, (long long)dsc_optimizer_step_count(opt));
    if (dsc_optimizer_save(opt, "quickstart.safetensors") != DSC_OK) {
        fprintf(stderr, "%s\n", dsc_optimizer_error(opt));
        return 1;
    }
    dsc_optimizer_free(opt);
    return loss < 1e-2 ? 0 : 1;
}
