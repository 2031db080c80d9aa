/*
 * test_cron.c: the cron expressions of schedules (sdk/src/cron.c) against
 * times computed by hand from a calendar: steps, lists, ranges, names,
 * the macros, month ends, leap years (2000 and 2028 are, 2100 is not),
 * Vixie's rule for the two day fields, and the errors a user sees.
 * Every time is UTC; 2026-01-01 is a Thursday.
 */
#include "cron_int.h"
#include "keel/error.h"
#include "keel_test.h"

#include <stdio.h>
#include <string.h>

/* ms since the epoch of y-mo-d h:mi (UTC). */
static int64_t at(int y, int mo, int d, int h, int mi)
{
        return ((keel__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL;
}

/* The next time of expr after `after`, or -1 (and a test failure) when
 * it does not parse or finds none. */
static int64_t next(const char *expr, int64_t after)
{
        keel__cron_t c;
        char err[300] = "";
        int64_t n = -1;
        int rc = keel__cron_parse(expr, &c, err, sizeof(err));
        if (rc) {
                fprintf(stderr, "'%s': %s\n", expr, err);
                CU_FAIL("did not parse");
                return -1;
        }
        CU_ASSERT_EQUAL(keel__cron_next(&c, after, &n), KEEL_OK);
        return n;
}

static void test_cron_calendar(void)
{
        int64_t y;
        int m, d;
        CU_ASSERT_EQUAL(keel__days_from_civil(1970, 1, 1), 0);
        CU_ASSERT_EQUAL(keel__days_from_civil(2000, 3, 1), 11017);
        CU_ASSERT_EQUAL(keel__days_from_civil(2026, 1, 1), 20454);
        CU_ASSERT_EQUAL(keel__days_from_civil(1969, 12, 31), -1);
        /* 2026-01-01T00:00:00Z, the test environment's default clock */
        CU_ASSERT_EQUAL(at(2026, 1, 1, 0, 0), 1767225600000LL);
        for (int64_t day = -800000; day < 800000; day += 997) {
                keel__civil_from_days(day, &y, &m, &d);
                CU_ASSERT_EQUAL(keel__days_from_civil(y, m, d), day);
        }
        keel__civil_from_days(keel__days_from_civil(2100, 2, 28) + 1, &y, &m,
                              &d);
        CU_ASSERT(y == 2100 && m == 3 && d == 1); /* 2100 is no leap year */
        keel__civil_from_days(keel__days_from_civil(2000, 2, 28) + 1, &y, &m,
                              &d);
        CU_ASSERT(y == 2000 && m == 2 && d == 29);
}

static void test_cron_steps_lists_ranges(void)
{
        int64_t t0 = at(2026, 1, 1, 0, 0);
        CU_ASSERT_EQUAL(next("*/5 * * * *", t0), at(2026, 1, 1, 0, 5));
        CU_ASSERT_EQUAL(next("*/5 * * * *", t0 + 4 * 60000 + 59999),
                        at(2026, 1, 1, 0, 5));
        CU_ASSERT_EQUAL(next("*/5 * * * *", at(2026, 1, 1, 0, 5)),
                        at(2026, 1, 1, 0, 10));
        CU_ASSERT_EQUAL(next("*/5 * * * *", at(2026, 1, 1, 23, 58)),
                        at(2026, 1, 2, 0, 0));
        CU_ASSERT_EQUAL(next("* * * * *", t0 + 1), at(2026, 1, 1, 0, 1));
        /* hours 9, 13, 17 */
        CU_ASSERT_EQUAL(next("15,45 9-17/4 * * *", at(2026, 1, 1, 9, 45)),
                        at(2026, 1, 1, 13, 15));
        CU_ASSERT_EQUAL(next("15,45 9-17/4 * * *", at(2026, 1, 1, 17, 45)),
                        at(2026, 1, 2, 9, 15));
        /* A/S runs to the field's end: 5, 20, 35, 50 */
        CU_ASSERT_EQUAL(next("5/15 * * * *", at(2026, 1, 1, 0, 35)),
                        at(2026, 1, 1, 0, 50));
        CU_ASSERT_EQUAL(next("5/15 * * * *", at(2026, 1, 1, 0, 50)),
                        at(2026, 1, 1, 1, 5));
        /* Mondays, Wednesdays, Fridays at midnight: Fri Jan 2, Mon Jan 5 */
        CU_ASSERT_EQUAL(next("0 0 * * 1-5/2", t0), at(2026, 1, 2, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 * * 1-5/2", at(2026, 1, 2, 0, 0)),
                        at(2026, 1, 5, 0, 0));
        /* the year rolls over */
        CU_ASSERT_EQUAL(next("0 0 1 1 *", at(2026, 12, 31, 23, 59)),
                        at(2027, 1, 1, 0, 0));
        /* whitespace of any kind between fields */
        CU_ASSERT_EQUAL(next("  0\t12  * *   *  ", t0), at(2026, 1, 1, 12, 0));
}

static void test_cron_names_and_sunday(void)
{
        int64_t t0 = at(2026, 1, 1, 0, 0);
        /* Sunday is 0, 7 or SUN: 2026-01-04 */
        CU_ASSERT_EQUAL(next("30 8 * * 7", t0), at(2026, 1, 4, 8, 30));
        CU_ASSERT_EQUAL(next("30 8 * * 0", t0), at(2026, 1, 4, 8, 30));
        CU_ASSERT_EQUAL(next("30 8 * * sun", t0), at(2026, 1, 4, 8, 30));
        CU_ASSERT_EQUAL(next("30 8 * * 5-7", at(2026, 1, 2, 8, 30)),
                        at(2026, 1, 3, 8, 30));
        /* weekdays of the first quarter: after Tue 2026-03-31 comes Fri
         * 2027-01-01 */
        CU_ASSERT_EQUAL(next("0 9 * JAN-MAR MON-FRI", at(2026, 3, 31, 9, 0)),
                        at(2027, 1, 1, 9, 0));
        CU_ASSERT_EQUAL(next("0 9 * jan-Mar Mon-fri", at(2026, 3, 30, 9, 0)),
                        at(2026, 3, 31, 9, 0));
        CU_ASSERT_EQUAL(next("0 0 1 JUN,DEC *", t0), at(2026, 6, 1, 0, 0));
}

static void test_cron_month_ends_and_leap_years(void)
{
        /* the 31st: March, May (February and April have none) */
        CU_ASSERT_EQUAL(next("0 0 31 * *", at(2026, 1, 31, 0, 0)),
                        at(2026, 3, 31, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 31 * *", at(2026, 3, 31, 0, 0)),
                        at(2026, 5, 31, 0, 0));
        /* February 29th: 2028, 2000; after 2096 the next is 2104 */
        CU_ASSERT_EQUAL(next("0 0 29 2 *", at(2026, 1, 1, 0, 0)),
                        at(2028, 2, 29, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 29 2 *", at(2000, 1, 1, 0, 0)),
                        at(2000, 2, 29, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 29 2 *", at(2096, 3, 1, 0, 0)),
                        at(2104, 2, 29, 0, 0));
        /* the last days of February */
        CU_ASSERT_EQUAL(next("59 23 28-31 2 *", at(2026, 2, 28, 23, 59)),
                        at(2027, 2, 28, 23, 59));
        CU_ASSERT_EQUAL(next("59 23 28-31 2 *", at(2028, 2, 28, 23, 59)),
                        at(2028, 2, 29, 23, 59));
        /* the 30th, every month but February */
        CU_ASSERT_EQUAL(next("0 6 30 * *", at(2026, 1, 30, 6, 0)),
                        at(2026, 3, 30, 6, 0));
        /* end of a leap year's day 366 */
        CU_ASSERT_EQUAL(next("0 0 * * *", at(2028, 12, 31, 0, 0)),
                        at(2029, 1, 1, 0, 0));
}

static void test_cron_day_fields_vixie(void)
{
        int64_t t0 = at(2026, 1, 1, 0, 0);
        /* Both restricted: the 13th OR a Friday. Fri Jan 2, Fri Jan 9,
         * Tue Jan 13, Fri Jan 16. */
        CU_ASSERT_EQUAL(next("0 0 13 * 5", t0), at(2026, 1, 2, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 13 * 5", at(2026, 1, 9, 0, 0)),
                        at(2026, 1, 13, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 13 * 5", at(2026, 1, 13, 0, 0)),
                        at(2026, 1, 16, 0, 0));
        /* A day-of-month field starting with '*' counts as unrestricted:
         * odd days AND Mondays (Jan 5, Jan 19). */
        CU_ASSERT_EQUAL(next("0 0 */2 * 1", t0), at(2026, 1, 5, 0, 0));
        CU_ASSERT_EQUAL(next("0 0 */2 * 1", at(2026, 1, 5, 0, 0)),
                        at(2026, 1, 19, 0, 0));
        /* February 30th OR a Monday: fires on Mondays of February */
        CU_ASSERT_EQUAL(next("0 0 30 2 1", t0), at(2026, 2, 2, 0, 0));
        /* day of week alone */
        CU_ASSERT_EQUAL(next("0 0 * * 3", t0), at(2026, 1, 7, 0, 0));
}

static void test_cron_macros(void)
{
        int64_t t = at(2026, 1, 15, 10, 0);
        CU_ASSERT_EQUAL(next("@hourly", t), at(2026, 1, 15, 11, 0));
        CU_ASSERT_EQUAL(next("@daily", t), at(2026, 1, 16, 0, 0));
        CU_ASSERT_EQUAL(next("@midnight", t), at(2026, 1, 16, 0, 0));
        CU_ASSERT_EQUAL(next("@weekly", t), at(2026, 1, 18, 0, 0));
        CU_ASSERT_EQUAL(next("@monthly", t), at(2026, 2, 1, 0, 0));
        CU_ASSERT_EQUAL(next("@yearly", t), at(2027, 1, 1, 0, 0));
        CU_ASSERT_EQUAL(next("@ANNUALLY", t), at(2027, 1, 1, 0, 0));
}

/* expr is refused, with a message holding `says`. */
static void refused(const char *expr, const char *says)
{
        keel__cron_t c;
        char err[300] = "";
        CU_ASSERT_EQUAL(keel__cron_parse(expr, &c, err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);
        if (!strstr(err, says)) {
                fprintf(stderr, "'%s': '%s' lacks '%s'\n", expr, err, says);
                CU_FAIL("wrong message");
        }
}

static void test_cron_errors(void)
{
        refused("", "5 fields");
        refused("* * * *", "not 4");
        refused("* * * * * *", "more than 5");
        refused("60 * * * *", "minute field: 60 is out of range 0-59");
        refused("* 24 * * *", "hour field: 24 is out of range 0-23");
        refused("* * 0 * *", "day-of-month field: 0 is out of range 1-31");
        refused("* * * 13 *", "month field: 13 is out of range 1-12");
        refused("* * * * 8", "day-of-week field: 8 is out of range 0-7");
        refused("*/0 * * * *", "step");
        refused("*/61 * * * *", "step");
        refused("5-1 * * * *", "backwards");
        refused("* * * FOO *", "unknown name 'FOO'");
        refused("MON * * * *", "names are for months and weekdays");
        refused("* * * * MON-", "expected a number");
        refused("1,,2 * * * *", "empty list item");
        refused("1, * * * *", "empty list item");
        refused("*5 * * * *", "cannot read");
        refused("0 0 30 2 *", "no day matches");
        refused("0 0 31 4,6,9,11 *", "no day matches");
        refused("@reboot", "unknown macro");
        refused("@daily 5", "unknown macro");
        refused("99999999999 * * * *", "out of range");
}

static CU_TestInfo tests[] = {
    {"test_cron_calendar", test_cron_calendar},
    {"test_cron_steps_lists_ranges", test_cron_steps_lists_ranges},
    {"test_cron_names_and_sunday", test_cron_names_and_sunday},
    {"test_cron_month_ends_and_leap_years",
     test_cron_month_ends_and_leap_years},
    {"test_cron_day_fields_vixie", test_cron_day_fields_vixie},
    {"test_cron_macros", test_cron_macros},
    {"test_cron_errors", test_cron_errors},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("cron", tests)
