/* test_strict.c - the spec tokenizer shared by optimizer specs, use_split
 * and schedules refuses what a lenient parser would silently reinterpret,
 * and its messages point at the character that went wrong (issue 17:
 * duplicate keys, empty items, trailing commas, hex floats, fractional and
 * out-of-range integers, garbage after a value). */
#include "check.h"
#include "descent.h"

#include <stdlib.h>

/* add_group(spec) must return `want`; when `needle` is given the message
 * must contain it. */
static void group_case(const char *spec, dsc_status want, const char *needle)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    dsc_status st = dsc_optimizer_add_group(opt, "g", spec);
    check_count++;
    const char *msg = dsc_optimizer_error(opt);
    if (st != want || (needle && !strstr(msg, needle))) {
        check_failures++;
        fprintf(stderr, "spec \"%s\": got %s \"%s\", want %s containing \"%s\"\n", spec,
                dsc_status_name(st), msg, dsc_status_name(want), needle ? needle : "");
    }
    /* A refused spec adds nothing. */
    if (want != DSC_OK) CHECK_EQ_INT(dsc_optimizer_group_count(opt), 0);
    dsc_optimizer_free(opt);
}

static void sched_case(const char *text, dsc_status want, const char *needle)
{
    dsc_schedule s = dsc_schedule_default(), before;
    s.warmup = 7; /* a refused parse leaves *out as it was */
    before = s;
    char err[512] = "";
    dsc_status st = dsc_schedule_parse(text, &s, err, sizeof err);
    check_count++;
    if (st != want || (needle && !strstr(err, needle))) {
        check_failures++;
        fprintf(stderr, "schedule \"%s\": got %s \"%s\", want %s containing \"%s\"\n", text,
                dsc_status_name(st), err, dsc_status_name(want), needle ? needle : "");
    }
    if (want != DSC_OK) CHECK(memcmp(&s, &before, sizeof s) == 0);
}

static void test_optimizer_specs(void)
{
    group_case("adamw:lr=1e-3,weight_decay=0.1", DSC_OK, NULL);
    group_case("  adamw : lr = 1e-3 , weight_decay = 0.1  ", DSC_OK, NULL);
    group_case("adamw", DSC_OK, NULL);
    group_case("sgd:lr=.5", DSC_OK, NULL);
    group_case("sgd:lr=5.", DSC_OK, NULL);
    group_case("sgd:lr=+1E-2,nesterov=true,momentum=0.9", DSC_OK, NULL);
    /* Issue 17's reproducers. */
    group_case("adamw:lr=1e-3,lr=2e-3", DSC_PARSE, "duplicate key \"lr\" (first at character 7) at character 15");
    group_case("adamw:lr=1e-3,", DSC_PARSE, "empty item");
    group_case("adamw:lr=1e-3,", DSC_PARSE, "at character 15");
    group_case("adamw:lr=0x10", DSC_PARSE, "at character 11");
    group_case("adamw:lr=0x1p-3", DSC_PARSE, "hex floats");
    /* Empty items, garbage, missing parts. */
    group_case("adamw:", DSC_PARSE, "empty item");
    group_case("adamw:,lr=1", DSC_PARSE, "character 7");
    group_case("adamw:lr=1,,eps=1e-8", DSC_PARSE, "character 12");
    group_case("adamw:lr=1e-3x", DSC_PARSE, "unexpected 'x'");
    group_case("adamw:lr=1e-3 2", DSC_PARSE, "character 15");
    group_case("adamw:lr=", DSC_PARSE, "expected a decimal number");
    group_case("adamw:lr", DSC_PARSE, "expected '='");
    group_case("adamw:=1", DSC_PARSE, "character 7");
    group_case("adamw lr=1", DSC_PARSE, "character 7");
    group_case("", DSC_PARSE, "expected a name");
    group_case(":lr=1", DSC_PARSE, "character 1");
    group_case("adamw:lr=1e", DSC_PARSE, NULL);
    group_case("adamw:lr=1e+", DSC_PARSE, NULL);
    group_case("adamw:lr=.", DSC_PARSE, NULL);
    group_case("adamw:lr=--1", DSC_PARSE, NULL);
    group_case("adamw:lr=1,eps=1e-8;", DSC_PARSE, "character 20");
    group_case("adamw:lr=tru", DSC_PARSE, NULL);
    group_case("adamw:lr=truex", DSC_PARSE, NULL);
    /* Values a double cannot hold, and non-finite words. */
    group_case("adamw:lr=1e999", DSC_OUT_OF_RANGE, "outside the range of a double");
    group_case("adamw:lr=1e-999", DSC_OUT_OF_RANGE, "outside the range of a double");
    group_case("adamw:lr=0e-999", DSC_OK, NULL); /* exactly zero, not an underflow */
    group_case("adamw:lr=-inf", DSC_OUT_OF_RANGE, "finite");
    group_case("adamw:lr=NaN", DSC_OUT_OF_RANGE, "finite");
    /* Integer keys: fractions refused, the range named. */
    group_case("muon:lr=0.02,ns_steps=5", DSC_OK, NULL);
    group_case("muon:lr=0.02,ns_steps=1.5", DSC_OUT_OF_RANGE, "ns_steps is an integer");
    group_case("muon:lr=0.02,ns_steps=1e30", DSC_OUT_OF_RANGE, "out of range [0, 100]");
    group_case("muon:lr=0.02,ns_steps=-1", DSC_OUT_OF_RANGE, "out of range [0, 100]");
    group_case("sgd:nesterov=0.5", DSC_OUT_OF_RANGE, "boolean");
    /* Unknown names and keys name the place. */
    group_case("adamw:lrr=1", DSC_UNKNOWN_KEY, "\"lrr\" at character 7");
    group_case("adamz:lr=1", DSC_UNKNOWN_OPTIMIZER, "adamz");
    /* The coordinate_clip group keys go through the same tokenizer. */
    group_case("adamw:lr=1e-3,coordinate_clip=0.1", DSC_OK, NULL);
    group_case("adamw:lr=1e-3,coordinate_clip=0.1,coordinate_clip=0.2", DSC_PARSE, "duplicate");
    group_case("adamw:coordinate_clip=2", DSC_OUT_OF_RANGE, "coordinate_clip = 2 is out of range");
    group_case("adamw:coordinate_clip=0.1,", DSC_PARSE, "empty item");
    /* A long text is cut in the message, never overflowing the buffer. */
    char longspec[2048];
    snprintf(longspec, sizeof longspec, "adamw:lr=1e-3,%0*d", 1500, 0);
    group_case(longspec, DSC_PARSE, "...");
}

static void test_use_split(void)
{
    dsc_optimizer *opt = dsc_optimizer_new();
    /* The second spec is bad: nothing of the first may stay behind. */
    CHECK_STATUS(dsc_optimizer_use_split(opt, "muon:lr=0.02", "adamw:lr=3e-4,lr=1e-3"),
                 DSC_PARSE, opt);
    CHECK(strstr(dsc_optimizer_error(opt), "duplicate key") != NULL);
    CHECK_EQ_INT(dsc_optimizer_group_count(opt), 0);
    CHECK_STATUS(dsc_optimizer_use_split(opt, "muon:lr=0.02,", "adamw:lr=3e-4"), DSC_PARSE, opt);
    CHECK_EQ_INT(dsc_optimizer_group_count(opt), 0);
    /* Then a good pair works on the same handle, rules included. */
    CHECK_STATUS(dsc_optimizer_use_split(opt, "muon:lr=0.02", "adamw:lr=3e-4"), DSC_OK, opt);
    CHECK_EQ_INT(dsc_optimizer_group_count(opt), 2);
    float w[12] = {0}, g[12] = {0};
    int64_t shape[2] = {3, 4};
    CHECK_STATUS(dsc_optimizer_add_param(opt, "h.w", w, g, 2, shape, DSC_ROLE_AUTO, NULL),
                 DSC_OK, opt);
    dsc_param_info info;
    CHECK_STATUS(dsc_optimizer_param_info(opt, 0, &info), DSC_OK, opt);
    CHECK(!strcmp(info.group, "matrix"));
    dsc_optimizer_free(opt);
}

static void test_schedules(void)
{
    sched_case("cosine:warmup=10,total=100,min_ratio=0.1", DSC_OK, NULL);
    sched_case("cosine:warmup=10,total=9007199254740992", DSC_OK, NULL);
    /* Issue 17's reproducers: no float -> integer conversion out of range. */
    sched_case("cosine:total=1e19", DSC_OUT_OF_RANGE, "total = 1e+19 is out of range [0, 9007199254740992]");
    sched_case("cosine:warmup=1e30,total=100", DSC_OUT_OF_RANGE, "warmup = 1e+30 is out of range [0, 9007199254740992] at character 15");
    sched_case("cosine:warmup=1.5,total=100", DSC_OUT_OF_RANGE, "warmup is an integer, got 1.5");
    sched_case("cosine:warmup=-1,total=100", DSC_OUT_OF_RANGE, "warmup = -1 is out of range [0,");
    sched_case("step:step_size=2.5", DSC_OUT_OF_RANGE, "step_size is an integer");
    sched_case("wsd:total=100,decay=1e300", DSC_OUT_OF_RANGE, "decay = 1e+300 is out of range");
    /* The same strictness as optimizer specs. */
    sched_case("cosine:total=100,total=200", DSC_PARSE, "duplicate key \"total\"");
    sched_case("cosine:total=100,", DSC_PARSE, "empty item");
    sched_case("cosine:total=0x64", DSC_PARSE, "at character 15");
    sched_case("cosine:total=100 steps", DSC_PARSE, "unexpected 's'");
    sched_case("cosine:", DSC_PARSE, "empty item");
    sched_case("cosine:total=inf", DSC_OUT_OF_RANGE, "finite");
    sched_case("cosine:totl=100", DSC_UNKNOWN_KEY, "character 8");
    sched_case("cosin:total=100", DSC_UNKNOWN_NAME, "cosin");
    sched_case("constant", DSC_OK, NULL);
}

/* Every integer key's range fits the integer type its family converts it
 * to (int for counts of iterations, int64_t for step counts): the range
 * check is what makes those conversions defined. */
static void test_integer_key_ranges(void)
{
    for (int i = 0; i < dsc_optimizer_kind_count(); i++) {
        const dsc_optimizer_info *info = dsc_optimizer_kind(i);
        for (int k = 0; k < info->nkeys; k++) {
            const dsc_key_info *key = &info->keys[k];
            if (key->type != DSC_KEY_INT) continue;
            CHECK(key->min_value >= 0);
            CHECK(key->max_value <= 9007199254740992.0);
            /* Keys converted with (int): iteration counts. */
            if (!strcmp(key->name, "ns_steps") || !strcmp(key->name, "iters"))
                CHECK(key->max_value <= 2147483647.0);
        }
    }
}

int main(void)
{
    test_optimizer_specs();
    test_use_split();
    test_schedules();
    test_integer_key_ranges();
    return check_report("test_strict");
}
