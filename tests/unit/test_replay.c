/*
 * test_replay.c: keel_replay() (keel/replay.h) on the histories of the
 * payment, onboarding and AI agent examples recorded from real runs under
 * tests/fixtures/histories: each replays against the current code of its
 * example; an edited history, as if the code had changed, is reported at
 * the event that differs; malformed histories and unknown types are
 * errors, not crashes.
 */
#include "agent.h"
#include "keel/replay.h"
#include "keel_test.h"
#include "onboarding.h"
#include "payment.h"

#include <string.h>

static keel_registry_t *reg;
static const char *dir;

/* Each fixture, named after its workflow ID, and its workflow type. */
static const struct fixture_s {
        const char *name, *type;
} fixtures[] = {{"payment-completed", PAYMENT_WORKFLOW},
                {"payment-refunded", PAYMENT_WORKFLOW},
                {"payment-declined", PAYMENT_WORKFLOW},
                {"payment-out-of-stock", PAYMENT_WORKFLOW},
                {"payment-cancelled", PAYMENT_WORKFLOW},
                {"payment-flaky", PAYMENT_WORKFLOW},
                {"payment-terminated", PAYMENT_WORKFLOW},
                {"onboarding-onboarded", ONBOARDING_WORKFLOW},
                {"onboarding-expired", ONBOARDING_WORKFLOW},
                {"onboarding-cancelled", ONBOARDING_WORKFLOW},
                {"onboarding-flaky", ONBOARDING_WORKFLOW},
                {"onboarding-email-failed", ONBOARDING_WORKFLOW},
                {"ai-agent-completed", AGENT_WORKFLOW},
                {"ai-agent-rejected", AGENT_WORKFLOW},
                {"ai-agent-cancelled", AGENT_WORKFLOW}};
#define NFIX (sizeof(fixtures) / sizeof(fixtures[0]))

static json_t *load(const char *name)
{
        char path[1024];
        json_t *h;
        snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        h = json_load_file(path, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        return h;
}

static void test_recorded_histories_replay(void)
{
        for (size_t i = 0; i < NFIX; i++) {
                char path[1024];
                keel_replay_report_t r;
                int rc;
                snprintf(path, sizeof(path), "%s/%s.json", dir,
                         fixtures[i].name);
                rc = keel_replay_file(reg, path, &r);
                if (rc)
                        fprintf(stderr, "%s: %s\n", fixtures[i].name,
                                r.message);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
                CU_ASSERT_STRING_EQUAL(r.workflow_id, fixtures[i].name);
                CU_ASSERT_STRING_EQUAL(r.type, fixtures[i].type);
                CU_ASSERT(r.events >= 5);
                CU_ASSERT_EQUAL(r.event_seq, 0);
        }
}

/* The first ActivityScheduled of h: its record. */
static json_t *first_activity(json_t *h, int64_t *seq)
{
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(h, "events"), i, ev)
        {
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            "keel.history.ActivityScheduled")) {
                        *seq = (int64_t)i + 1;
                        return json_object_get(ev, "record");
                }
        }
        return NULL;
}

static void test_changed_command_is_reported(void)
{
        json_t *h = load("payment-refunded");
        keel_replay_report_t r;
        int64_t seq = 0;
        json_t *rec = first_activity(h, &seq);

        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        /* As if the code had charged with another activity. */
        json_object_set_new(rec, "activity_type", json_string("chargeCardV0"));
        CU_ASSERT_EQUAL(keel_replay(reg, h, &r), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_EQUAL(r.event_seq, seq);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.expected, "chargeCardV0"));
        CU_ASSERT_PTR_NOT_NULL(strstr(r.actual, "chargeCard,"));
        CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "non-determinism at event"));
        json_decref(h);
}

static void test_missing_command_is_reported(void)
{
        json_t *h = load("payment-completed");
        json_t *events = json_object_get(h, "events");
        size_t n = json_array_size(events);
        keel_replay_report_t r;

        /* A history that recorded one more activity than the code issues:
         * a copy of the last ActivityScheduled before the close. */
        for (size_t i = n; i > 0; i--) {
                json_t *ev = json_array_get(events, i - 1);
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            "keel.history.ActivityScheduled")) {
                        json_t *cp = json_deep_copy(ev);
                        json_t *last = json_array_get(events, n - 1);
                        json_object_set_new(json_object_get(cp, "record"),
                                            "activity_id", json_string("999"));
                        /* Insert before the close, renumbering it. */
                        json_array_insert_new(events, n - 1, cp);
                        json_object_set_new(json_object_get(cp, "record"),
                                            "seq", json_integer((json_int_t)n));
                        json_object_set_new(json_object_get(last, "record"),
                                            "seq",
                                            json_integer((json_int_t)n + 1));
                        break;
                }
        }
        CU_ASSERT_EQUAL(keel_replay(reg, h, &r), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_EQUAL(r.event_seq, (int64_t)n);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.expected, "activity 999"));
        json_decref(h);
}

static void test_bad_histories_are_errors(void)
{
        keel_replay_report_t r;
        json_t *h = load("payment-declined"), *bare;

        /* A bare array of events is a history too. */
        bare = json_deep_copy(json_object_get(h, "events"));
        CU_ASSERT_EQUAL(keel_replay(reg, bare, &r), KEEL_OK);
        /* A gap in seq. */
        json_array_remove(bare, 2);
        CU_ASSERT_EQUAL(keel_replay(reg, bare, &r), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "event 3"));
        json_decref(bare);
        /* An unknown type. */
        json_object_set_new(
            json_object_get(json_array_get(json_object_get(h, "events"), 0),
                            "record"),
            "workflow_type", json_string("shipping"));
        CU_ASSERT_EQUAL(keel_replay(reg, h, &r), KEEL_ERR_NOT_FOUND);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "shipping"));
        json_decref(h);
        /* Nothing like a history. */
        h = json_pack("{s[]}", "events");
        CU_ASSERT_EQUAL(keel_replay(reg, h, &r), KEEL_ERR_INVALID_ARG);
        json_decref(h);
        h = json_string("history");
        CU_ASSERT_EQUAL(keel_replay(reg, h, &r), KEEL_ERR_INVALID_ARG);
        json_decref(h);
        CU_ASSERT_EQUAL(keel_replay_file(reg, "/nonexistent/h.json", &r),
                        KEEL_ERR_IO);
}

static int setup(void)
{
        dir = getenv("KEEL_TEST_FIXTURES");
        reg = keel_registry_new();
        return !dir || !reg || payment_register_workflow(reg) ||
               onboarding_register_workflow(reg) ||
               agent_register_workflow(reg);
}

static int teardown(void)
{
        keel_registry_destroy(reg);
        return 0;
}

static CU_TestInfo tests[] = {
    {"test_recorded_histories_replay", test_recorded_histories_replay},
    {"test_changed_command_is_reported", test_changed_command_is_reported},
    {"test_missing_command_is_reported", test_missing_command_is_reported},
    {"test_bad_histories_are_errors", test_bad_histories_are_errors},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("replay", tests, setup, teardown)
