/*
 * test_onboarding.c: the onboarding example (examples/onboarding) in the
 * test environment, on its virtual clock: verified and onboarded after
 * seven daily reminders; expired after 72 hours; a "verified" at the very
 * instant the 72 hours end; a flaky email provider, played by canned
 * outcomes; an email that never goes out; cancels at each stage. Each test
 * checks which activities ran with which inputs, the stages the workflow
 * published and how it ended.
 */
#include "keel/testing.h"
#include "keel_test.h"
#include "onboarding.h"

#include <string.h>
#include <time.h>

#define HOUR (3600LL * 1000)
#define DAY  (24 * HOUR)

static keel_registry_t *reg;

static keel_testenv_t *env_new(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        for (size_t i = 0; i < onboarding_activities_cnt; i++)
                keel_testenv_register_activity(
                    env, onboarding_activities[i].name,
                    onboarding_activities[i].fn, NULL);
        return env;
}

/* Start onboarding `id` for user `user` (ada@example.com, plan "pro"),
 * with the extra input fields of `extra` (stolen; may be NULL). */
static void start(keel_testenv_t *env, const char *id, const char *user,
                  json_t *extra)
{
        json_t *in = json_pack("{ss ss ss}", "user", user, "email",
                               "ada@example.com", "plan", "pro");
        if (extra)
                json_object_update(in, extra);
        json_decref(extra);
        CU_ASSERT_EQUAL(keel_testenv_start(env, id, ONBOARDING_WORKFLOW, in),
                        KEEL_OK);
}

/* Field k of obj (stolen; may be NULL), as text ("-" if none) or an
 * integer (0 if none). */
static const char *str_of(json_t *obj, const char *k)
{
        static char buf[128];
        const char *s = json_string_value(json_object_get(obj, k));
        snprintf(buf, sizeof(buf), "%s", s ? s : "-");
        json_decref(obj);
        return buf;
}

static json_int_t int_of(json_t *obj, const char *k)
{
        json_int_t v = json_integer_value(json_object_get(obj, k));
        json_decref(obj);
        return v;
}

/* Field k of the completed run's result, of the state it published last. */
#define result_str(env, id, k) str_of(keel_testenv_result(env, id), k)
#define result_int(env, id, k) int_of(keel_testenv_result(env, id), k)
#define state_str(env, id, k)  str_of(keel_testenv_state(env, id), k)
#define state_int(env, id, k)  int_of(keel_testenv_state(env, id), k)

/* Every stage the run published, in order, joined by spaces; repeats of
 * one stage are counted: "reminding*7". */
static const char *stages(keel_testenv_t *env, const char *id)
{
        static char buf[1024];
        const json_t *h = keel_testenv_history(env, id);
        char last[64] = "";
        int times = 0;
        size_t i, len = 0;
        const json_t *ev;

        buf[0] = '\0';
        json_array_foreach(h, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                json_t *st;
                const char *name;
                if (strcmp(json_string_value(json_object_get(ev, "type")),
                           "keel.history.MarkerRecorded") ||
                    strcmp(
                        json_string_value(json_object_get(rec, "marker_name")),
                        "state"))
                        continue;
                st = json_loads(
                    json_string_value(json_object_get(rec, "details")), 0,
                    NULL);
                name = json_string_value(json_object_get(st, "stage"));
                if (name && !strcmp(name, last)) {
                        times++;
                } else {
                        if (times > 1)
                                len += (size_t)snprintf(
                                    buf + len, sizeof(buf) - len, "*%d", times);
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                                "%s%s", len ? " " : "",
                                                name ? name : "?");
                        snprintf(last, sizeof(last), "%s", name ? name : "?");
                        times = 1;
                }
                json_decref(st);
        }
        if (times > 1)
                snprintf(buf + len, sizeof(buf) - len, "*%d", times);
        return buf;
}

/* The record of the nth (from 0) event of type keel.history.<t> of the
 * run, or NULL. */
static const json_t *nth_event(keel_testenv_t *env, const char *id,
                               const char *t, int nth)
{
        const json_t *h = keel_testenv_history(env, id);
        size_t i;
        const json_t *ev;
        json_array_foreach(h, i, ev)
        {
                if (!strcmp(json_string_value(json_object_get(ev, "type")) + 13,
                            t) &&
                    nth-- == 0)
                        return json_object_get(ev, "record");
        }
        return NULL;
}

#define first(env, id, t) nth_event(env, id, t, 0)

/* How many events of type keel.history.<t> the run has. */
static int count(keel_testenv_t *env, const char *id, const char *t)
{
        int n = 0;
        while (nth_event(env, id, t, n))
                n++;
        return n;
}

/* Field k of the input of the i-th call of activity `name`. */
#define call_input(env, name, i)                                               \
        json_incref((json_t *)keel_testenv_call_input(env, name, i))
#define call_str(env, name, i, k) str_of(call_input(env, name, i), k)
#define call_int(env, name, i, k) int_of(call_input(env, name, i), k)

/* The failure the run failed with: its type and message. */
static const json_t *wf_failure(keel_testenv_t *env, const char *id)
{
        return json_object_get(first(env, id, "WorkflowFailed"), "failure");
}

/* Field k of the details of that failure (JSON text in the record). */
static const char *failure_detail(keel_testenv_t *env, const char *id,
                                  const char *k)
{
        return str_of(json_loads(json_string_value(json_object_get(
                                     wf_failure(env, id), "details")),
                                 0, NULL),
                      k);
}

static int64_t real_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the tests --------------------------------------------------------- */

static void test_onboarding_verified_then_seven_reminders(void)
{
        int64_t us0 = real_us(), us;
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_t *r;

        start(env, "onb-1", "u-1", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, t0 + 10 * HOUR), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-1"), "running");
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-1", "stage"),
                               "awaiting_verification");
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-1", "account_id"),
                               "acct-u-1");
        CU_ASSERT_EQUAL(state_int(env, "onb-1", "verify_by_ms"),
                        t0 + 72 * HOUR);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "provisionAccount"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "provisionAccount", 0, "user"),
                               "u-1");
        CU_ASSERT_STRING_EQUAL(call_str(env, "provisionAccount", 0, "plan"),
                               "pro");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "sendEmail", 0, "template"),
                               "verify");
        CU_ASSERT_STRING_EQUAL(call_str(env, "sendEmail", 0, "to"),
                               "ada@example.com");

        CU_ASSERT_EQUAL(keel_testenv_signal(env, "onb-1", ONBOARDING_SIGNAL,
                                            json_pack("{ss}", "via", "link")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-1"), "completed");
        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-1", "status"), "onboarded");
        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-1", "account_id"),
                               "acct-u-1");
        CU_ASSERT_EQUAL(result_int(env, "onb-1", "reminders_sent"), 7);
        CU_ASSERT_EQUAL(result_int(env, "onb-1", "reminders_failed"), 0);
        CU_ASSERT_EQUAL(result_int(env, "onb-1", "verified_at_ms"),
                        t0 + 10 * HOUR);
        r = keel_testenv_result(env, "onb-1");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_object_get(r, "verification"), "via")),
                               "link");
        json_decref(r);

        /* one reminder a day for seven days after the verification */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 8);
        for (size_t day = 1; day <= 7; day++) {
                CU_ASSERT_STRING_EQUAL(
                    call_str(env, "sendEmail", day, "template"), "reminder");
                CU_ASSERT_EQUAL(call_int(env, "sendEmail", day, "day"),
                                (json_int_t)day);
                CU_ASSERT_EQUAL(call_int(env, "sendEmail", day, "of"), 7);
        }
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 0);
        CU_ASSERT_EQUAL(count(env, "onb-1", "TimerFired"), 7);
        CU_ASSERT_EQUAL(count(env, "onb-1", "TimerCancelled"), 1);
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 10 * HOUR + 7 * DAY);
        CU_ASSERT_STRING_EQUAL(stages(env, "onb-1"),
                               "provisioning sending_verification "
                               "awaiting_verification reminding*7 onboarded");
        CU_ASSERT_EQUAL(state_int(env, "onb-1", "reminders_sent"), 7);
        keel_testenv_destroy(env);

        /* Seven days and ten hours of workflow time: the clock is virtual.
         * The real time it took is printed, not asserted (no timed
         * assertions on a shared machine). */
        us = real_us() - us0;
        printf("\n    7 days 10 hours of virtual time in %lld us ",
               (long long)us);
}

static void test_onboarding_expires_after_72_hours(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);

        start(env, "onb-2", "u-2", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        /* expired is an outcome, not an error: the run completes */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-2"), "completed");
        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-2", "status"), "expired");
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 72 * HOUR);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "user"),
                               "u-2");
        CU_ASSERT_STRING_EQUAL(
            call_str(env, "deprovisionAccount", 0, "account_id"), "acct-u-2");
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "reason"),
                               "verification_expired");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 1);
        CU_ASSERT_EQUAL(count(env, "onb-2", "TimerFired"), 1);
        CU_ASSERT_STRING_EQUAL(stages(env, "onb-2"),
                               "provisioning sending_verification "
                               "awaiting_verification deprovisioning expired");
        /* too late: the run is closed */
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "onb-2", ONBOARDING_SIGNAL, NULL),
            KEEL_ERR_NOT_FOUND);
        keel_testenv_destroy(env);
}

/*
 * "verified" and the end of the 72 hours at the same instant: timestamps
 * do not decide, the order of the events in the history does. A signal
 * recorded before the timer fired wins (the orchestrator applies the
 * commands it read in a batch before the timers due by then); once the
 * timer has fired, the onboarding has expired and the signal is refused.
 */
static void test_onboarding_verified_at_the_deadline(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env), deadline = t0 + 72 * HOUR;

        start(env, "onb-first", "u-3", NULL);
        start(env, "onb-late", "u-4", NULL);
        /* the clock reads the deadline; neither timer has fired yet */
        CU_ASSERT_EQUAL(keel_testenv_run_before(env, deadline), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), deadline);
        CU_ASSERT_EQUAL(state_int(env, "onb-first", "verify_by_ms"), deadline);
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "onb-first", ONBOARDING_SIGNAL, NULL),
            KEEL_OK);
        /* now the timers due at the deadline fire: onb-late's too */
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, deadline), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), deadline);
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "onb-late", ONBOARDING_SIGNAL, NULL),
            KEEL_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);

        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-first", "status"),
                               "onboarded");
        CU_ASSERT_EQUAL(result_int(env, "onb-first", "verified_at_ms"),
                        deadline);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            first(env, "onb-first", "SignalReceived"), "ts")),
                        deadline);
        CU_ASSERT_EQUAL(count(env, "onb-first", "TimerCancelled"), 1);
        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-late", "status"),
                               "expired");
        CU_ASSERT_EQUAL(count(env, "onb-late", "SignalReceived"), 0);
        /* only the late one was deprovisioned */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "user"),
                               "u-4");
        keel_testenv_destroy(env);
}

static void test_onboarding_email_provider_fails_twice(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_t *flaky = json_loads(
            "[{\"failure\": {\"type\": \"EmailProviderUnavailable\", "
            "\"message\": \"503 from the provider\"}},"
            " {\"failure\": {\"type\": \"EmailProviderUnavailable\"}},"
            " {\"result\": {\"message_id\": \"m-1\"}}]",
            0, NULL);

        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "sendEmail", flaky),
                        KEEL_OK);
        json_decref(flaky);
        start(env, "onb-5", "u-5", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, t0 + HOUR), KEEL_OK);
        /* the verification email went out on attempt 3, after 1 s and 2 s
         * of backoff; the 72 hours count from then */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 3);
        CU_ASSERT_EQUAL(state_int(env, "onb-5", "verify_by_ms"),
                        t0 + 3000 + 72 * HOUR);
        keel_testenv_signal(env, "onb-5", ONBOARDING_SIGNAL, NULL);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);

        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-5", "status"), "onboarded");
        CU_ASSERT_EQUAL(result_int(env, "onb-5", "reminders_sent"), 7);
        /* every one of the 8 emails took three attempts, with the same
         * input each time */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 24);
        CU_ASSERT_EQUAL(count(env, "onb-5", "ActivityFailed"), 16);
        CU_ASSERT_EQUAL(count(env, "onb-5", "ActivityRetried"), 16);
        for (size_t i = 0; i < 24; i++)
                CU_ASSERT_STRING_EQUAL(
                    call_str(env, "sendEmail", i, "template"),
                    i < 3 ? "verify" : "reminder");
        CU_ASSERT_EQUAL(call_int(env, "sendEmail", 23, "day"), 7);
        /* reminders keep to their days: the retries do not add up */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, HOUR + 7 * DAY + 3000);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 0);
        keel_testenv_destroy(env);
}

static void test_onboarding_email_fails_for_good_deprovisions(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_t *down =
            json_pack("[{s{ss ss}}]", "failure", "type",
                      "EmailProviderUnavailable", "message", "provider down");
        const json_t *f;

        /* Retryable, but it never works: 5 attempts, then compensation. */
        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "sendEmail", down),
                        KEEL_OK);
        json_decref(down);
        start(env, "onb-6", "u-6", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-6"), "failed");
        f = wf_failure(env, "onb-6");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "VerificationEmailFailed");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "message")),
                               "provider down");
        CU_ASSERT_STRING_EQUAL(failure_detail(env, "onb-6", "email_failure"),
                               "EmailProviderUnavailable");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "provisionAccount"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"),
                        ONBOARDING_MAX_ATTEMPTS);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "reason"),
                               "verification_email_failed");
        CU_ASSERT_STRING_EQUAL(
            call_str(env, "deprovisionAccount", 0, "account_id"), "acct-u-6");
        /* backoff 1 + 2 + 4 + 8 s */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 15000);
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-6", "stage"), "failed");
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-6", "reason"),
                               "verification_email_failed");

        /* The fake provider bouncing the address (the input's faults):
         * non-retryable, so one attempt. */
        keel_testenv_register_activity(env, "sendEmail", onboarding_send_email,
                                       NULL);
        start(env, "onb-7", "u-7",
              json_pack("{s{s{sb}}}", "faults", "sendEmail", "fail", 1));
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-7"), "failed");
        CU_ASSERT_STRING_EQUAL(failure_detail(env, "onb-7", "email_failure"),
                               "EmailBounced");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"),
                        ONBOARDING_MAX_ATTEMPTS + 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 2);
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 1, "user"),
                               "u-7");
        keel_testenv_destroy(env);
}

static void test_onboarding_cancel_at_each_stage(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);

        /* While provisioning is under way: it may have happened, so the
         * account (if any) is deprovisioned, by user. */
        start(env, "onb-c1", "u-c1", NULL);
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "onb-c1", "changed my mind"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-c1"), "cancelled");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 1);
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "user"),
                               "u-c1");
        CU_ASSERT_STRING_EQUAL(call_str(env, "deprovisionAccount", 0, "reason"),
                               "cancelled");
        CU_ASSERT_STRING_EQUAL(
            call_str(env, "deprovisionAccount", 0, "account_id"), "-");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 0);
        CU_ASSERT_STRING_EQUAL(stages(env, "onb-c1"),
                               "provisioning deprovisioning cancelled");

        /* While waiting for "verified". */
        start(env, "onb-c2", "u-c2", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, t0 + 5 * HOUR), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "onb-c2", "duplicate"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-c2"), "cancelled");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 2);
        CU_ASSERT_STRING_EQUAL(
            call_str(env, "deprovisionAccount", 1, "account_id"), "acct-u-c2");
        CU_ASSERT_EQUAL(count(env, "onb-c2", "TimerCancelled"), 1);
        CU_ASSERT_EQUAL(keel_testenv_now(env), t0 + 5 * HOUR);
        CU_ASSERT_STRING_EQUAL(stages(env, "onb-c2"),
                               "provisioning sending_verification "
                               "awaiting_verification deprovisioning "
                               "cancelled");

        /* During the reminders, after the third. */
        start(env, "onb-c3", "u-c3", NULL);
        keel_testenv_signal(env, "onb-c3", ONBOARDING_SIGNAL, NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, keel_testenv_now(env) +
                                                        3 * DAY + 12 * HOUR),
                        KEEL_OK);
        CU_ASSERT_EQUAL(state_int(env, "onb-c3", "reminders_sent"), 3);
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "onb-c3", "account closed"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-c3"), "cancelled");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 3);
        CU_ASSERT_STRING_EQUAL(
            call_str(env, "deprovisionAccount", 2, "account_id"), "acct-u-c3");
        CU_ASSERT_STRING_EQUAL(stages(env, "onb-c3"),
                               "provisioning sending_verification "
                               "awaiting_verification reminding*4 "
                               "deprovisioning cancelled");
        /* c2's verification email, c3's and three reminders */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 5);
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-c3", "stage"), "cancelled");
        keel_testenv_destroy(env);
}

/* sendEmail whose reminder of day 3 bounces; every other email goes. */
static int day3_bounces(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result)
{
        if (json_integer_value(json_object_get(input, "day")) == 3)
                return keel_activity_fail(ctx, "EmailBounced", "mailbox full",
                                          NULL, 1);
        return onboarding_send_email(ctx, input, result);
}

static void test_onboarding_missed_reminder_is_skipped(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_register_activity(env, "sendEmail", day3_bounces, NULL);
        start(env, "onb-8", "u-8",
              json_pack("{si}", "reminder_interval_ms", 1000));
        keel_testenv_signal(env, "onb-8", ONBOARDING_SIGNAL, NULL);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(result_str(env, "onb-8", "status"), "onboarded");
        CU_ASSERT_EQUAL(result_int(env, "onb-8", "reminders_sent"), 6);
        CU_ASSERT_EQUAL(result_int(env, "onb-8", "reminders_failed"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 8);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 0);
        keel_testenv_destroy(env);
}

static void test_onboarding_failures_without_an_account(void)
{
        keel_testenv_t *env = env_new();

        /* Nothing provisioned, nothing to undo. */
        start(env, "onb-9", "u-9",
              json_pack("{s{s{sb}}}", "faults", "provisionAccount", "fail", 1));
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-9"), "failed");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   wf_failure(env, "onb-9"), "type")),
                               "ProvisioningFailed");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "provisionAccount"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "deprovisionAccount"), 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendEmail"), 0);

        /* An input without an email address fails at once. */
        CU_ASSERT_EQUAL(keel_testenv_start(env, "onb-10", ONBOARDING_WORKFLOW,
                                           json_pack("{ss}", "user", "u-10")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   wf_failure(env, "onb-10"), "type")),
                               "InvalidInput");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "provisionAccount"), 1);

        /* A deprovisioning that fails for good fails the workflow. */
        start(env, "onb-11", "u-11",
              json_pack("{si s{s{sb}}}", "verify_timeout_ms", 1000, "faults",
                        "deprovisionAccount", "fail", 1));
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "onb-11"), "failed");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   wf_failure(env, "onb-11"), "type")),
                               "DeprovisionFailed");
        CU_ASSERT_STRING_EQUAL(state_str(env, "onb-11", "reason"),
                               "deprovision_failed");
        keel_testenv_destroy(env);
}

static int setup(void)
{
        reg = keel_registry_new();
        return !reg || onboarding_register_workflow(reg);
}

static int teardown(void)
{
        keel_registry_destroy(reg);
        return 0;
}

static CU_TestInfo tests[] = {
    {"test_onboarding_verified_then_seven_reminders",
     test_onboarding_verified_then_seven_reminders},
    {"test_onboarding_expires_after_72_hours",
     test_onboarding_expires_after_72_hours},
    {"test_onboarding_verified_at_the_deadline",
     test_onboarding_verified_at_the_deadline},
    {"test_onboarding_email_provider_fails_twice",
     test_onboarding_email_provider_fails_twice},
    {"test_onboarding_email_fails_for_good_deprovisions",
     test_onboarding_email_fails_for_good_deprovisions},
    {"test_onboarding_cancel_at_each_stage",
     test_onboarding_cancel_at_each_stage},
    {"test_onboarding_missed_reminder_is_skipped",
     test_onboarding_missed_reminder_is_skipped},
    {"test_onboarding_failures_without_an_account",
     test_onboarding_failures_without_an_account},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("onboarding", tests, setup, teardown)
