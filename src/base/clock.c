/* Time helpers over clock_gettime. */
#include "base/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void clock_format_iso(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    struct tm tm;

    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    char text[96];

    /* The year always takes four digits (strftime's %Y drops leading
     * zeros, so year 620 would not read back). */
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, 32, "invalid");
        return;
    }
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
    size_t n = strlen(text) < 31 ? strlen(text) : 31;
    memcpy(out, text, n);
    out[n] = '\0';
}

static int parse_digits(const char **p, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += count;
    *out = v;
    return 0;
}

int clock_parse_iso(const char *s, int64_t *ms_out)
{
    int year, mon, day, hour = 0, min = 0, sec = 0, ms = 0;
    const char *p = s;

    if (parse_digits(&p, 4, &year) || *p++ != '-' ||
        parse_digits(&p, 2, &mon) || *p++ != '-' || parse_digits(&p, 2, &day))
        return -1;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (parse_digits(&p, 2, &hour) || *p++ != ':' ||
            parse_digits(&p, 2, &min) || *p++ != ':' ||
            parse_digits(&p, 2, &sec))
            return -1;
        if (*p == '.') {
            int scale = 100;
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9') {
                ms += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
        }
        if (*p == 'Z')
            p++;
        else if (strcmp(p, "+00:00") == 0)
            p += 6;
    }
    if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
        min > 59 || sec > 60)
        return -1;

    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    *ms_out = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}
