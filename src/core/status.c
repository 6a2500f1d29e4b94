/* status.c - status names and texts, the handle's error message. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *dsc_status_name(dsc_status s)
{
    switch (s) {
#define DSC_STATUS_NAME_(name, text) case DSC_##name: return "DSC_" #name;
        DSC_STATUS_MAP(DSC_STATUS_NAME_)
#undef DSC_STATUS_NAME_
    default: return "DSC_UNKNOWN_STATUS";
    }
}

const char *dsc_status_string(dsc_status s)
{
    switch (s) {
#define DSC_STATUS_TEXT_(name, text) case DSC_##name: return text;
        DSC_STATUS_MAP(DSC_STATUS_TEXT_)
#undef DSC_STATUS_TEXT_
    default: return "unknown status";
    }
}

dsc_status dsc_fail(dsc_optimizer *opt, dsc_status s, const char *fmt, ...)
{
    if (opt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(opt->error, sizeof opt->error, fmt, ap);
        va_end(ap);
    }
    return s;
}

void dsc_clear_error(dsc_optimizer *opt)
{
    if (opt) opt->error[0] = '\0';
}

const char *dsc_optimizer_error(const dsc_optimizer *opt)
{
    return opt ? opt->error : "null optimizer handle";
}
