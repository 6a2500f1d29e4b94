/* fuzz_spec.c - the spec tokenizer through its three users: an optimizer
 * spec (dsc_optimizer_add_group, dsc_state_bytes), a schedule
 * (dsc_schedule_parse) and dsc_optimizer_use_split (the input cut at its
 * first newline into the matrix and fallback specs). Properties besides
 * "no crash, no UB, no leak": a refused call changes nothing and leaves a
 * message; an accepted schedule validates and gives finite factors in
 * [0, 1] (up to min_ratio rules) at any step. */
#include "fuzz.h"

#include "descent.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = fuzz_text(data, size);

    dsc_optimizer *opt = dsc_optimizer_new();
    if (!opt) abort();
    dsc_status st = dsc_optimizer_add_group(opt, "g", text);
    if (st == DSC_OK) {
        FUZZ_ASSERT(dsc_optimizer_group_count(opt) == 1);
        float w[12] = {0}, g[12] = {0};
        int64_t shape[2] = {3, 4};
        if (dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "g") == DSC_OK)
            dsc_optimizer_step(opt);
    } else {
        FUZZ_ASSERT(dsc_optimizer_group_count(opt) == 0);
        FUZZ_ASSERT(dsc_optimizer_error(opt)[0] != '\0');
    }
    dsc_optimizer_free(opt);

    int64_t shape[2] = {4, 4};
    size_t bytes = 0;
    dsc_state_bytes(text, 2, shape, &bytes);

    char err[512] = "";
    dsc_schedule s = dsc_schedule_default(), keep;
    s.warmup = 3;
    keep = s;
    st = dsc_schedule_parse(text, &s, err, sizeof err);
    if (st == DSC_OK) {
        FUZZ_ASSERT(dsc_schedule_validate(&s, NULL, 0) == DSC_OK);
        const int64_t steps[] = {0, 1, s.warmup, s.total, s.total + 1, INT64_MAX / 2};
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            double f = dsc_schedule_factor(&s, steps[i]);
            FUZZ_ASSERT(isfinite(f) && f >= 0.0 && f <= 1.0);
        }
    } else {
        FUZZ_ASSERT(!memcmp(&s, &keep, sizeof s));
        FUZZ_ASSERT(err[0] != '\0');
    }

    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        opt = dsc_optimizer_new();
        if (!opt) abort();
        st = dsc_optimizer_use_split(opt, text, nl + 1);
        FUZZ_ASSERT(dsc_optimizer_group_count(opt) == (st == DSC_OK ? 2 : 0));
        dsc_optimizer_free(opt);
    }
    free(text);
    return 0;
}
