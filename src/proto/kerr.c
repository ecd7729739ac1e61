/* kerr.c - names and messages of Kafka error codes (kerr.h). */
#include "proto/kerr.h"

#include <stddef.h>

struct kerr_row {
    int16_t code;
    bool retriable;
    const char *name;
    const char *msg;
};

static const struct kerr_row rows[] = {
#define KERR_ROW(name, code, retriable, msg) {code, retriable, #name, msg},
    KERR_TABLE(KERR_ROW)
#undef KERR_ROW
};

static const struct kerr_row *find(int16_t code)
{
    /* Codes run -1, 0, 1, ... without gaps, so the row is at code + 1. */
    size_t i = (size_t)(code + 1);
    if (code >= -1 && i < sizeof rows / sizeof rows[0] && rows[i].code == code)
        return &rows[i];
    return NULL;
}

const char *kerr_name(int16_t code)
{
    const struct kerr_row *r = find(code);
    return r ? r->name : "UNKNOWN";
}

const char *kerr_message(int16_t code)
{
    const struct kerr_row *r = find(code);
    return r ? r->msg : "unknown error code";
}

bool kerr_retriable(int16_t code)
{
    const struct kerr_row *r = find(code);
    return r && r->retriable;
}
