/*
 * console.h - the operator console's static parts, served by the admin
 * endpoint: the page's frame (src/admin/console/page.html), its style sheet
 * and its script, built into the binary (console.c says how).
 */
#ifndef CHRONIK_ADMIN_CONSOLE_H
#define CHRONIK_ADMIN_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Append the whole page to out: the frame with body (HTML, already
 * escaped) as the content of its <main>. */
void admin_console_page(buf_t *out, const char *body, size_t len);

/* The asset at path (/console.css, /console.js): its bytes and content
 * type. False for any other path. */
bool admin_console_asset(const char *path, size_t path_len, const void **data, size_t *len, const char **ctype);

#endif
