/*
 * cli_time.c - a strict reader of ISO 8601 date-times (cli_time.h): fixed
 * digit counts, every field range-checked, nothing left over.
 */
#include "admin/cli_time.h"

#include <string.h>

/* n decimal digits at *p into *out; advances *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (a valid date from 1970 on). */
static int64_t days_since_epoch(int y, int m, int d)
{
    int64_t n = 0;
    for (int yy = 1970; yy < y; yy++)
        n += leap(yy) ? 366 : 365;
    for (int mm = 1; mm < m; mm++)
        n += month_days(y, mm);
    return n + d - 1;
}

/* The fraction after '.', in milliseconds (1 to 9 digits). */
static bool fraction(const char **p, int *ms)
{
    int n = 0, v = 0;
    while (n < 9 && (*p)[n] >= '0' && (*p)[n] <= '9') {
        if (n < 3)
            v = v * 10 + ((*p)[n] - '0');
        n++;
    }
    if (n == 0 || ((*p)[n] >= '0' && (*p)[n] <= '9'))
        return false;
    for (int i = n; i < 3; i++)
        v *= 10;
    *p += n;
    *ms = v;
    return true;
}

/* The zone's offset east of UTC in minutes; "" is UTC. */
static bool zone(const char **p, int *east_min)
{
    *east_min = 0;
    if (**p == 0)
        return true;
    if (expect(p, 'Z'))
        return true;
    int sign = **p == '+' ? 1 : **p == '-' ? -1 : 0, hh, mm;
    if (sign == 0)
        return false;
    (*p)++;
    if (!digits(p, 2, &hh))
        return false;
    (void)expect(p, ':');
    if (!digits(p, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *east_min = sign * (hh * 60 + mm);
    return true;
}

bool cli_parse_iso8601(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h, mi, se, frac = 0, east = 0;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') || !digits(&p, 2, &d))
        return false;
    if (!expect(&p, 'T') && !expect(&p, ' '))
        return false;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &se))
        return false;
    if (*p == '.' && (++p, !fraction(&p, &frac)))
        return false;
    if (!zone(&p, &east) || *p != 0)
        return false;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 ||
        se > 60)
        return false;
    int64_t secs = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)east * 60;
    if (secs < 0)
        return false;
    *ms = secs * 1000 + frac;
    return true;
}
