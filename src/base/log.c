/* Logging: each line is formatted whole and written with one write(2), so
 * lines from several threads never interleave. */
#include "base/log.h"

#include "base/clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int current_level = LOG_NOTICE;

static const char *const level_names[] = {"error", "warn", "notice", "info",
                                          "debug"};

void log_set_level(enum log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&current_level);
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_clean_value(char *text)
{
    size_t n = 0;

    for (char *p = text; *p; p++, n++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = ' ';
    }
    while (n > 0 && text[n - 1] == ' ')
        text[--n] = '\0';
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    char when[32];
    va_list ap;

    if ((int)level > atomic_load(&current_level))
        return;
    clock_format_iso(clock_now_ms(), when);
    int n =
        snprintf(line, sizeof(line), "%s level=%s ", when, level_names[level]);
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)(m < 0 ? 0 : m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
