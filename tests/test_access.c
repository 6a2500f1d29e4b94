/* test_access.c - the calls for bindings: state slots read and written by
 * name (parameter and group state), and rebind_all, against values worked
 * out here by hand; every failure must leave the optimizer unchanged. */
#include "check.h"
#include "descent.h"

#include <stdint.h>
#include <string.h>

static void test_slots(void)
{
    float w[6] = {1, 2, 3, 4, 5, 6}, g[6] = {1, 1, 1, 1, 1, 1};
    int64_t shape[2] = {2, 3};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "main", "adam:lr=0.1"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 2, shape, DSC_ROLE_AUTO, "main"),
                 DSC_OK, opt);
    CHECK_EQ_INT(dsc_optimizer_slot_count(opt, "w", 0), 3); /* exp_avg, exp_avg_sq, step */
    CHECK_EQ_INT(dsc_optimizer_slot_count(opt, "nosuch", 0), -1);
    CHECK_EQ_INT(dsc_optimizer_slot_count(opt, "main", 1), 0); /* adam: no group state */
    dsc_slot_info info;
    CHECK_STATUS(dsc_optimizer_slot_info(opt, "w", 0, 0, &info), DSC_OK, opt);
    CHECK(strcmp(info.name, "exp_avg") == 0 && strcmp(info.dtype, "F32") == 0);
    CHECK_EQ_INT(info.count, 6);
    CHECK_EQ_INT(info.bytes, 24);
    CHECK_STATUS(dsc_optimizer_slot_info(opt, "w", 0, 3, &info), DSC_OUT_OF_RANGE, NULL);

    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    float m[6];
    int64_t t = 0;
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "w", 0, "exp_avg", m, sizeof m), DSC_OK, opt);
    CHECK_NEAR(m[0], 0.1, 1e-7); /* (1 - beta1) * g */
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "w", 0, "step", &t, sizeof t), DSC_OK, opt);
    CHECK_EQ_INT(t, 1);

    /* Wrong size, unknown slot or owner: an error naming it, nothing written. */
    float big[7] = {9, 9, 9, 9, 9, 9, 9};
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "exp_avg", big, sizeof big), DSC_SHAPE,
                 NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "exp_avg") != NULL);
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "momentum", big, 24), DSC_UNKNOWN_NAME,
                 NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "momentum") != NULL);
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "v", 0, "exp_avg", big, 24), DSC_UNKNOWN_NAME,
                 NULL);
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "exp_avg", NULL, 24), DSC_NULL_POINTER,
                 NULL);
    float again[6];
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "w", 0, "exp_avg", again, sizeof again), DSC_OK,
                 opt);
    CHECK(memcmp(again, m, sizeof m) == 0);

    /* Writing the state then stepping continues from it: with m = 0, v = 0
     * and t = 0 written back, the next step is Adam's first step again,
     * p <- p - lr * sign(g) (bias-corrected m / sqrt(v) = 1 for constant g). */
    float zero[6] = {0};
    int64_t t0 = 0;
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "exp_avg", zero, sizeof zero), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "exp_avg_sq", zero, sizeof zero), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "w", 0, "step", &t0, sizeof t0), DSC_OK, opt);
    float before = w[0];
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_NEAR(w[0], before - 0.1, 1e-6);
    dsc_optimizer_free(opt);
}

static void test_group_slots(void)
{
    float w[4] = {0}, g[4] = {1, 1, 1, 1};
    int64_t shape[1] = {4};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "main", "adagradnorm:lr=0.1"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "w", w, g, 1, shape, DSC_ROLE_AUTO, "main"),
                 DSC_OK, opt);
    int n = dsc_optimizer_slot_count(opt, "main", 1);
    CHECK(n >= 1);
    double s0 = -1, s = -1, acc0 = -1;
    CHECK_STATUS(dsc_optimizer_get_hyper(opt, "main", "initial_accumulator_value", &acc0), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "main", 1, "sum", &s, sizeof s), DSC_OK, opt);
    CHECK_NEAR(s, acc0 + 4.0, 1e-12); /* initial value + the global |g|^2 of one step */
    s0 = 123.0; /* written back, then read again */
    CHECK_STATUS(dsc_optimizer_write_slot(opt, "main", 1, "sum", &s0, sizeof s0), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "main", 1, "sum", &s, sizeof s), DSC_OK, opt);
    CHECK_NEAR(s, 123.0, 0);
    CHECK_STATUS(dsc_optimizer_read_slot(opt, "nosuch", 1, "sum", &s, sizeof s),
                 DSC_UNKNOWN_NAME, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "group") != NULL);
    dsc_optimizer_free(opt);
}

static void test_rebind_all(void)
{
    float a[3] = {1, 1, 1}, b[2] = {1, 1};
    float ga[3] = {1, 1, 1}, gb[2] = {1, 1};
    float ga2[3] = {2, 2, 2}, gb2[2] = {3, 3};
    int64_t sa[1] = {3}, sb[1] = {2};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "main", "sgd:lr=0.5"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "a", a, ga, 1, sa, DSC_ROLE_AUTO, "main"), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "b", b, gb, 1, sb, DSC_ROLE_AUTO, "main"), DSC_OK,
                 opt);
    const float *grads[2] = {ga2, gb2};
    CHECK_STATUS(dsc_optimizer_rebind_all(opt, 1, NULL, grads), DSC_INVALID_ARGUMENT, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "2 parameters") != NULL);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt); /* still the first buffers */
    CHECK_NEAR(a[0], 0.5, 0);
    CHECK_NEAR(b[0], 0.5, 0);
    CHECK_STATUS(dsc_optimizer_rebind_all(opt, 2, NULL, grads), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_NEAR(a[0], 0.5 - 0.5 * 2, 0);
    CHECK_NEAR(b[1], 0.5 - 0.5 * 3, 0);
    /* A NULL entry keeps that buffer; new data buffers are updated instead. */
    float a2[3] = {10, 10, 10};
    float *data[2] = {a2, NULL};
    const float *keep[2] = {NULL, gb};
    CHECK_STATUS(dsc_optimizer_rebind_all(opt, 2, data, keep), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_NEAR(a2[0], 10 - 0.5 * 2, 0); /* a's gradient is still ga2 */
    CHECK_NEAR(a[0], -0.5, 0);          /* the old buffer is left alone */
    CHECK_NEAR(b[0], -1.0 - 0.5 * 1, 0);
    dsc_optimizer_free(opt);
}

static void test_rebind_all_bf16(void)
{
    float a[2] = {1, 1}, ga[2] = {1, 1}, ga2[2] = {2, 2};
    uint16_t h[2] = {0x3f80, 0x3f80}, gh[2] = {0x3f80, 0x3f80}; /* 1.0 in bf16 */
    int64_t s2[1] = {2};
    dsc_optimizer *opt = dsc_optimizer_new();
    CHECK_STATUS(dsc_optimizer_add_group(opt, "main", "sgd:lr=0.5"), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_add_param(opt, "a", a, ga, 1, s2, DSC_ROLE_AUTO, "main"), DSC_OK,
                 opt);
    CHECK_STATUS(dsc_optimizer_add_param_bf16(opt, "h", h, gh, 1, s2, DSC_ROLE_AUTO, "main",
                                              DSC_BF16_MASTER), DSC_OK, opt);
    /* A float32 buffer for the bf16 parameter is refused, and the float32
     * parameter's entry of the same call is not stored either. */
    const float *bad[2] = {ga2, ga2};
    CHECK_STATUS(dsc_optimizer_rebind_all(opt, 2, NULL, bad), DSC_STATE, NULL);
    CHECK(strstr(dsc_optimizer_error(opt), "\"h\"") != NULL);
    const float *ok[2] = {ga2, NULL};
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt); /* a still reads ga */
    CHECK_NEAR(a[0], 0.5, 0);
    CHECK_STATUS(dsc_optimizer_rebind_all(opt, 2, NULL, ok), DSC_OK, opt);
    CHECK_STATUS(dsc_optimizer_step(opt), DSC_OK, opt);
    CHECK_NEAR(a[0], 0.5 - 0.5 * 2, 0);
    dsc_optimizer_free(opt);
}

int main(void)
{
    test_slots();
    test_group_slots();
    test_rebind_all();
    test_rebind_all_bf16();
    return check_report("test_access");
}
