/* One-line key=value logging to stderr at five levels. */
#ifndef FIELDSYNC_BASE_LOG_H
#define FIELDSYNC_BASE_LOG_H

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error".."debug"; returns 0 on success. */
int log_parse_level(const char *name, enum log_level *out);

/* Writes "<time> level=<level> <message>\n" in one write. The message is
 * key=value pairs by convention; it must never hold a secret. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Blanks quotes, backslashes and control characters in text (a peer's
 * words) and trims trailing blanks, so it sits whole in a "quoted" log
 * value. */
void log_clean_value(char *text);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
