/* Wall-clock and monotonic time in integer milliseconds. */
#ifndef FIELDSYNC_BASE_CLOCK_H
#define FIELDSYNC_BASE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch, UTC. */
int64_t clock_now_ms(void);
/* Milliseconds on a clock that never goes back; for intervals only. */
int64_t clock_mono_ms(void);
/* Microseconds on the monotonic clock; for latency measurements. */
int64_t clock_mono_us(void);
/* Sleep for the given milliseconds. */
void clock_sleep_ms(int64_t ms);
/* Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes). */
void clock_format_iso(int64_t ms, char out[32]);
/* Parses ISO-8601 UTC ("2026-12-02T09:41:07Z", with optional fraction, or
 * a plain date "2026-12-02"); returns 0 on success. */
int clock_parse_iso(const char *s, int64_t *ms_out);

#endif
