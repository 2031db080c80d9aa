/*
 * cron.c: cron expressions (cron_int.h) for the schedule workflow
 * (schedule.c). Parsing fills one bit set per field; the next matching
 * time is found day by day (a day matches by month and Vixie's day rule),
 * then the first hour and minute of that day at or after the start, so
 * even a yearly expression costs a few hundred cheap steps. Pure integer
 * arithmetic on a UTC calendar: the same answer on every machine and
 * every replay.
 */
#include "cron_int.h"

#include "keel/error.h"

#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS   60000LL
#define DAY_MIN     1440LL
#define SEARCH_DAYS 146097 /* 400 Gregorian years */

/* ---- the calendar (Howard Hinnant's algorithms) ------------------------- */

int64_t keel__days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;
        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

void keel__civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
        int64_t z = days + 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct field_s {
        const char *name;
        int lo, hi;
        const char *const *names; /* names[i] is value lo + i; or NULL */
} field_t;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY",
                                          "JUN", "JUL", "AUG", "SEP", "OCT",
                                          "NOV", "DEC", NULL};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED",
                                         "THU", "FRI", "SAT", NULL};

static const field_t fields[5] = {{"minute", 0, 59, NULL},
                                  {"hour", 0, 23, NULL},
                                  {"day-of-month", 1, 31, NULL},
                                  {"month", 1, 12, month_names},
                                  {"day-of-week", 0, 7, wday_names}};

static const struct {
        const char *macro, *fields;
} macros[] = {{"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
              {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
              {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
              {"@annually", "0 0 1 1 *"}};

/* A value of field f at *p (a number or, where f has them, a name);
 * moves *p past it. 0, or -1 with err set. */
static int value(const field_t *f, const char **p, int *out, char *err,
                 size_t errsize)
{
        const char *s = *p;
        if (isdigit((unsigned char)*s)) {
                long v = 0;
                while (isdigit((unsigned char)*s) && v < 1000)
                        v = v * 10 + (*s++ - '0');
                if (isdigit((unsigned char)*s) || v < f->lo || v > f->hi) {
                        snprintf(err, errsize,
                                 "%s field: %.*s is out of range %d-%d",
                                 f->name, (int)(strspn(*p, "0123456789")), *p,
                                 f->lo, f->hi);
                        return -1;
                }
                *out = (int)v;
                *p = s;
                return 0;
        }
        if (isalpha((unsigned char)*s)) {
                size_t n = 0;
                while (isalpha((unsigned char)s[n]))
                        n++;
                for (int i = 0; f->names && f->names[i]; i++)
                        if (n == 3 && !strncasecmp(s, f->names[i], 3)) {
                                *out = f->lo + i;
                                *p = s + 3;
                                return 0;
                        }
                snprintf(err, errsize, "%s field: unknown name '%.*s'%s",
                         f->name, (int)(n < 20 ? n : 20), s,
                         f->names ? ""
                                  : " (names are for months and weekdays)");
                return -1;
        }
        snprintf(err, errsize, "%s field: expected a number%s at '%.20s'",
                 f->name, f->names ? " or a name" : "", *s ? s : "(end)");
        return -1;
}

/* One comma-separated item of field f (text up to end) into *bits. */
static int item(const field_t *f, const char *s, const char *end,
                uint64_t *bits, char *err, size_t errsize)
{
        int lo = f->lo, hi = f->hi, step = 1, ranged = 1;
        const char *p = s;

        if (*p == '*') {
                p++;
        } else {
                if (value(f, &p, &lo, err, errsize))
                        return -1;
                ranged = 0;
                hi = lo;
                if (p < end && *p == '-') {
                        p++;
                        if (value(f, &p, &hi, err, errsize))
                                return -1;
                        ranged = 1;
                        if (hi < lo) {
                                snprintf(err, errsize,
                                         "%s field: range %.*s runs "
                                         "backwards",
                                         f->name, (int)(end - s), s);
                                return -1;
                        }
                }
        }
        if (p < end && *p == '/') {
                long v = 0;
                const char *d = ++p;
                while (p < end && isdigit((unsigned char)*p) && v < 1000)
                        v = v * 10 + (*p++ - '0');
                if (p == d || v < 1 || v > f->hi - f->lo + 1) {
                        snprintf(err, errsize,
                                 "%s field: the step in '%.*s' must be 1 to "
                                 "%d",
                                 f->name, (int)(end - s), s, f->hi - f->lo + 1);
                        return -1;
                }
                step = (int)v;
                if (!ranged) /* "A/S": from A to the field's end */
                        hi = f->hi;
        }
        if (p != end) {
                snprintf(err, errsize, "%s field: cannot read '%.*s'", f->name,
                         (int)(end - s), s);
                return -1;
        }
        for (int v = lo; v <= hi; v += step)
                *bits |= 1ULL << v;
        return 0;
}

/* Field f's text [s, end) into *bits. */
static int field(const field_t *f, const char *s, const char *end,
                 uint64_t *bits, char *err, size_t errsize)
{
        *bits = 0;
        while (s < end) {
                const char *comma = memchr(s, ',', (size_t)(end - s));
                const char *e = comma ? comma : end;
                if (e == s) {
                        snprintf(err, errsize, "%s field: an empty list item",
                                 f->name);
                        return -1;
                }
                if (item(f, s, e, bits, err, errsize))
                        return -1;
                s = comma ? comma + 1 : end;
                if (comma && s == end) {
                        snprintf(err, errsize, "%s field: an empty list item",
                                 f->name);
                        return -1;
                }
        }
        return 0;
}

/* Whether some day of the months in c can match its day-of-month set
 * (February counts its 29th). */
static int some_mday(const keel__cron_t *c)
{
        static const int days_in[13] = {0,  31, 29, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31};
        for (int m = 1; m <= 12; m++)
                for (int d = 1; (c->months >> m & 1) && d <= days_in[m]; d++)
                        if (c->mdays >> d & 1)
                                return 1;
        return 0;
}

int keel__cron_parse(const char *expr, keel__cron_t *out, char *err,
                     size_t errsize)
{
        const char *s = expr ? expr : "", *start[5], *end[5];
        uint64_t bits[5];
        int n = 0;

        memset(out, 0, sizeof(*out));
        while (isspace((unsigned char)*s))
                s++;
        if (*s == '@') {
                size_t len = strcspn(s, " \t\r\n");
                const char *rest = s + len;
                while (isspace((unsigned char)*rest))
                        rest++;
                for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
                        if (strlen(macros[i].macro) == len && !*rest &&
                            !strncasecmp(s, macros[i].macro, len))
                                return keel__cron_parse(macros[i].fields, out,
                                                        err, errsize);
                snprintf(err, errsize,
                         "unknown macro '%.*s': @hourly, @daily, @midnight, "
                         "@weekly, @monthly, @yearly or @annually",
                         (int)(len < 40 ? len : 40), s);
                return KEEL_ERR_INVALID_ARG;
        }
        while (*s) {
                if (n == 5) {
                        n++;
                        break;
                }
                start[n] = s;
                while (*s && !isspace((unsigned char)*s))
                        s++;
                end[n++] = s;
                while (isspace((unsigned char)*s))
                        s++;
        }
        if (n != 5) {
                snprintf(err, errsize,
                         "a cron expression has 5 fields (minute hour "
                         "day-of-month month day-of-week), not %s%d",
                         n > 5 ? "more than " : "", n > 5 ? 5 : n);
                return KEEL_ERR_INVALID_ARG;
        }
        for (int i = 0; i < 5; i++)
                if (field(&fields[i], start[i], end[i], &bits[i], err, errsize))
                        return KEEL_ERR_INVALID_ARG;
        out->minutes = bits[0];
        out->hours = (uint32_t)bits[1];
        out->mdays = (uint32_t)bits[2];
        out->months = (uint16_t)bits[3];
        /* 7 is Sunday too */
        out->wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f);
        out->mday_star = *start[2] == '*';
        out->wday_star = *start[4] == '*';
        /* With both day fields restricted either may match, and every
         * weekday comes round; otherwise the days of month must exist. */
        if ((out->mday_star || out->wday_star) && !some_mday(out)) {
                snprintf(err, errsize,
                         "no day matches: the day-of-month field names no "
                         "day that the months have");
                return KEEL_ERR_INVALID_ARG;
        }
        return KEEL_OK;
}

/* ---- the next time ------------------------------------------------------ */

static int day_matches(const keel__cron_t *c, int mday, int wday)
{
        int dom = c->mdays >> mday & 1, dow = c->wdays >> wday & 1;
        if (c->mday_star || c->wday_star)
                return dom && dow;
        return dom || dow;
}

int keel__cron_next(const keel__cron_t *c, int64_t after_ms, int64_t *next_ms)
{
        /* the first whole minute after after_ms */
        int64_t t = floor_div(after_ms, MINUTE_MS) + 1;
        int64_t day = floor_div(t, DAY_MIN);
        int from = (int)(t - day * DAY_MIN);

        for (int i = 0; i < SEARCH_DAYS; i++, day++, from = 0) {
                int64_t y;
                int m, d;
                keel__civil_from_days(day, &y, &m, &d);
                if (!(c->months >> m & 1) ||
                    !day_matches(c, d, (int)((day % 7 + 11) % 7)))
                        continue;
                for (int h = from / 60; h < 24; h++) {
                        if (!(c->hours >> h & 1))
                                continue;
                        for (int mi = h == from / 60 ? from % 60 : 0; mi < 60;
                             mi++)
                                if (c->minutes >> mi & 1) {
                                        *next_ms =
                                            ((day * DAY_MIN) + h * 60 + mi) *
                                            MINUTE_MS;
                                        return KEEL_OK;
                                }
                }
        }
        return KEEL_ERR_NOT_FOUND;
}
