/*
 * console.c - the operator console's static parts (console.h).
 *
 * The files under src/admin/console/ are kept as they are, readable and
 * editable as HTML, CSS and JavaScript, and the assembler puts them into
 * this object verbatim (.incbin), each between a start and an end symbol:
 * no generator script and no C-escaped copy to keep in step. The Makefile
 * makes this object depend on those files. The page needs nothing from
 * outside the binary (no CDN): the admin endpoint sends it with a Content
 * Security Policy that allows only its own origin.
 *
 * page.html holds the marker <!--body--> where the broker's rendering of
 * the cluster goes, so that the page reads without scripts; console.js
 * then refreshes it every second from GET /api/console.
 */
#include "admin/console.h"

#include <string.h>

#include "base/util.h"

#define CONSOLE_EMBED(sym, file)                                                                  \
    __asm__(".section .rodata\n"                                                                  \
            ".global " #sym "\n.hidden " #sym "\n" #sym ":\n"                                     \
            ".incbin \"" file "\"\n"                                                              \
            ".global " #sym "_end\n.hidden " #sym "_end\n" #sym "_end:\n"                         \
            ".byte 0\n"                                                                           \
            ".previous\n");                                                                       \
    extern const char sym[] __attribute__((visibility("hidden")));                                \
    extern const char sym##_end[] __attribute__((visibility("hidden")))

CONSOLE_EMBED(console_page_html, "src/admin/console/page.html");
CONSOLE_EMBED(console_css, "src/admin/console/console.css");
CONSOLE_EMBED(console_js, "src/admin/console/console.js");

#define BODY_MARK "<!--body-->"

void admin_console_page(buf_t *out, const char *body, size_t len)
{
    size_t n = (size_t)(console_page_html_end - console_page_html);
    const char *mark = memmem(console_page_html, n, BODY_MARK, sizeof BODY_MARK - 1);
    CK_ASSERT(mark != NULL);
    size_t before = (size_t)(mark - console_page_html);
    buf_put(out, console_page_html, before);
    buf_put(out, body, len);
    size_t after = before + sizeof BODY_MARK - 1;
    buf_put(out, console_page_html + after, n - after);
}

bool admin_console_asset(const char *path, size_t path_len, const void **data, size_t *len, const char **ctype)
{
    static const struct {
        const char *path, *ctype, *start, *end;
    } assets[] = {
        {"/console.css", "text/css; charset=utf-8", console_css, console_css_end},
        {"/console.js", "text/javascript; charset=utf-8", console_js, console_js_end},
    };
    for (size_t i = 0; i < ARRAY_LEN(assets); i++) {
        if (strlen(assets[i].path) != path_len || memcmp(assets[i].path, path, path_len) != 0)
            continue;
        *data = assets[i].start;
        *len = (size_t)(assets[i].end - assets[i].start);
        *ctype = assets[i].ctype;
        return true;
    }
    return false;
}
