/*
 * cron_int.h: cron expressions, for schedules (schedule_int.h). Five
 * fields in UTC, Vixie cron's syntax and rules: minute (0-59), hour
 * (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week (0-7,
 * 0 and 7 Sunday, or SUN-SAT). A field is a comma-separated list of `*`,
 * `N`, `A-B`, each optionally with a step (`*` / `A-B` / `A` then `/S`;
 * `A/S` runs from A to the field's end). Names are case-insensitive.
 * When both day fields are restricted (neither starts with `*`), a day
 * matches if either does; otherwise both must (Vixie's rule). The macros
 * @hourly, @daily (@midnight), @weekly, @monthly and @yearly (@annually)
 * stand for their five fields. Times are milliseconds since the epoch;
 * the calendar is the proleptic Gregorian one, in UTC, with no DST.
 */
#ifndef KEEL_CRON_INT_H
#define KEEL_CRON_INT_H

#include <stddef.h>
#include <stdint.h>

/* A parsed expression: bit i of each set is value i. */
typedef struct keel__cron_s {
        uint64_t minutes; /* 0-59 */
        uint32_t hours;   /* 0-23 */
        uint32_t mdays;   /* 1-31 */
        uint16_t months;  /* 1-12 */
        uint8_t wdays;    /* 0-6, 0 Sunday */
        int mday_star;    /* the day-of-month field starts with '*' */
        int wday_star;    /* the day-of-week field starts with '*' */
} keel__cron_t;

/*
 * Parse expr into *out. KEEL_OK; KEEL_ERR_INVALID_ARG with a message in
 * err naming the field and what is wrong (a value out of range, a bad
 * step, a name in the wrong field, the wrong number of fields) or saying
 * that no day ever matches (February 30th).
 */
int keel__cron_parse(const char *expr, keel__cron_t *out, char *err,
                     size_t errsize);

/*
 * The first minute matching c strictly after after_ms, into *next_ms (a
 * whole minute). KEEL_OK, or KEEL_ERR_NOT_FOUND when none comes within
 * 400 years (never for an expression keel__cron_parse() accepted).
 */
int keel__cron_next(const keel__cron_t *c, int64_t after_ms, int64_t *next_ms);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), and
 * back; for cron and the names of schedule occurrences. */
int64_t keel__days_from_civil(int64_t y, int m, int d);
void keel__civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
