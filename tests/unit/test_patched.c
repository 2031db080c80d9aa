/*
 * test_patched.c: versioning with keel_patched() and
 * keel_deprecate_patch(), in the test environment and through the
 * replayer: runs that got past a change under the old code keep the old
 * path, new runs take the new one, each run records its choice once, and
 * a deprecated patch still replays the runs that recorded it.
 */
#include "keel/replay.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <string.h>

static int work(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        (void)ctx;
        (void)input;
        *result = json_pack("{sb}", "ok", 1);
        return KEEL_OK;
}

/* v1: charge, wait for "go", reserve. */
static keel_err_t order_v1(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        keel_activity(wf, "chargeCard", NULL, NULL, NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_activity(wf, "reserveInventory", NULL, NULL, NULL);
        *result = json_string("v1");
        return KEEL_OK;
}

/* v2: an audit step after the wait, behind a patch. */
static keel_err_t order_v2(keel_wf_t *wf, const json_t *input, json_t **result)
{
        int patched;
        (void)input;
        keel_activity(wf, "chargeCard", NULL, NULL, NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        patched = keel_patched(wf, "audit");
        /* Asking again gives the same answer, and records nothing more. */
        if (keel_patched(wf, "audit") != patched)
                return keel_fail(wf, "Inconsistent", "patched changed", NULL);
        if (patched)
                keel_activity(wf, "audit", NULL, NULL, NULL);
        keel_activity(wf, "reserveInventory", NULL, NULL, NULL);
        *result = json_string(patched ? "v2-new" : "v2-old");
        return KEEL_OK;
}

/* v3: the patch deprecated, the new path only. */
static keel_err_t order_v3(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        keel_activity(wf, "chargeCard", NULL, NULL, NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_deprecate_patch(wf, "audit");
        keel_activity(wf, "audit", NULL, NULL, NULL);
        keel_activity(wf, "reserveInventory", NULL, NULL, NULL);
        *result = json_string("v3");
        return KEEL_OK;
}

static keel_registry_t *reg_of(keel_workflow_fn_t fn)
{
        keel_registry_t *r = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL_FATAL(keel_workflow_register(r, "order", fn), KEEL_OK);
        return r;
}

/* Run workflow `id` to completion under registry r: start, run, signal
 * "go", run. The history (a new reference) and the result's text. */
static json_t *run(keel_registry_t *r, const char *id, char *res, size_t size)
{
        keel_testenv_t *env = keel_testenv_new(r, 0);
        json_t *h, *v;
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        keel_testenv_register_activity(env, "chargeCard", work, NULL);
        keel_testenv_register_activity(env, "reserveInventory", work, NULL);
        keel_testenv_register_activity(env, "audit", work, NULL);
        CU_ASSERT_EQUAL(keel_testenv_start(env, id, "order", NULL), KEEL_OK);
        keel_testenv_run(env);
        keel_testenv_signal(env, id, "go", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, id), "completed");
        v = keel_testenv_result(env, id);
        snprintf(res, size, "%s",
                 json_string_value(v) ? json_string_value(v) : "");
        json_decref(v);
        h = json_deep_copy(keel_testenv_history(env, id));
        keel_testenv_destroy(env);
        return h;
}

static int count_markers(const json_t *h, const char *name)
{
        size_t i;
        const json_t *ev;
        int n = 0;
        json_array_foreach(h, i, ev)
        {
                const char *m = json_string_value(json_object_get(
                    json_object_get(ev, "record"), "marker_name"));
                if (m && !strcmp(m, name))
                        n++;
        }
        return n;
}

static int replay(keel_registry_t *r, const json_t *h,
                  keel_replay_report_t *rep)
{
        return keel_replay(r, h, rep);
}

static void test_old_runs_keep_the_old_path(void)
{
        keel_registry_t *r1 = reg_of(order_v1), *r2 = reg_of(order_v2);
        keel_replay_report_t rep;
        char res[32];
        json_t *old = run(r1, "o1", res, sizeof(res));

        CU_ASSERT_STRING_EQUAL(res, "v1");
        /* v2 replays a run v1 finished: no marker there, the old path. */
        CU_ASSERT_EQUAL(replay(r2, old, &rep), KEEL_OK);
        /* Without the patch the same change breaks it. */
        {
                keel_registry_t *r3 = reg_of(order_v3);
                CU_ASSERT_EQUAL(replay(r3, old, &rep), KEEL_ERR_NONDETERMINISM);
                CU_ASSERT_PTR_NOT_NULL(strstr(rep.actual, "audit"));
                keel_registry_destroy(r3);
        }
        json_decref(old);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

static void test_new_runs_take_the_new_path_once(void)
{
        keel_registry_t *r1 = reg_of(order_v1), *r2 = reg_of(order_v2);
        keel_replay_report_t rep;
        char res[32];
        json_t *h = run(r2, "o2", res, sizeof(res));

        CU_ASSERT_STRING_EQUAL(res, "v2-new");
        CU_ASSERT_EQUAL(count_markers(h, "patch"), 1);
        CU_ASSERT_EQUAL(replay(r2, h, &rep), KEEL_OK);
        /* Rolling back to v1 would break it, and the replayer says so. */
        CU_ASSERT_EQUAL(replay(r1, h, &rep), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.expected, "patch audit"));
        json_decref(h);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

/* A run that waited under v1 and resumes under v2 (an orchestrator
 * restored with the new code) is past its history at the patch: it takes
 * the new path. */
static void test_run_deployed_mid_way_takes_the_new_path(void)
{
        keel_registry_t *r1 = reg_of(order_v1), *r2 = reg_of(order_v2);
        keel_testenv_t *env = keel_testenv_new(r1, 0);
        keel__machine_t *m;
        keel__out_t out;
        json_t *cut, *sig;
        const json_t *ev;
        char err[256];
        size_t i;
        int marker = 0, audit = 0;

        keel_testenv_register_activity(env, "chargeCard", work, NULL);
        keel_testenv_start(env, "o3", "order", NULL);
        keel_testenv_run(env);
        cut = json_deep_copy(keel_testenv_history(env, "o3"));
        keel_testenv_destroy(env);

        m = keel__machine_new(r2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        keel__out_init(&out);
        json_array_foreach(cut, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel__machine_resume(m, 1767225600000LL, &out),
                        KEEL_OK);
        keel__out_reset(&out);
        sig = json_pack("{ss ss sI ss ss}", "workflow_id", "o3", "command_id",
                        "s1", "ts", (json_int_t)0, "signal_name", "go",
                        "payload", "null");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.SignalWorkflow",
                                              sig, 1767225600100LL, &out),
                        KEEL_OK);
        json_decref(sig);
        json_array_foreach(out.history, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const char *t = json_string_value(json_object_get(ev, "type"));
                const char *mn =
                    json_string_value(json_object_get(rec, "marker_name"));
                const char *at =
                    json_string_value(json_object_get(rec, "activity_type"));
                CU_ASSERT_STRING_NOT_EQUAL(
                    t, "keel.history.NonDeterminismDetected");
                if (mn && !strcmp(mn, "patch"))
                        marker++;
                if (at && !strcmp(at, "audit"))
                        audit++;
        }
        CU_ASSERT_EQUAL(marker, 1);
        CU_ASSERT_EQUAL(audit, 1);
        keel__out_destroy(&out);
        keel__machine_destroy(m);
        json_decref(cut);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

static void test_deprecated_patch_still_replays(void)
{
        keel_registry_t *r2 = reg_of(order_v2), *r3 = reg_of(order_v3);
        keel_replay_report_t rep;
        char res[32];
        json_t *with_marker = run(r2, "o4", res, sizeof(res));
        json_t *v3run = run(r3, "o5", res, sizeof(res));

        CU_ASSERT_EQUAL(replay(r3, with_marker, &rep), KEEL_OK);
        /* New runs under v3 record no marker, and replay. */
        CU_ASSERT_STRING_EQUAL(res, "v3");
        CU_ASSERT_EQUAL(count_markers(v3run, "patch"), 0);
        CU_ASSERT_EQUAL(replay(r3, v3run, &rep), KEEL_OK);
        json_decref(with_marker);
        json_decref(v3run);
        keel_registry_destroy(r2);
        keel_registry_destroy(r3);
}

static CU_TestInfo tests[] = {
    {"test_old_runs_keep_the_old_path", test_old_runs_keep_the_old_path},
    {"test_new_runs_take_the_new_path_once",
     test_new_runs_take_the_new_path_once},
    {"test_run_deployed_mid_way_takes_the_new_path",
     test_run_deployed_mid_way_takes_the_new_path},
    {"test_deprecated_patch_still_replays",
     test_deprecated_patch_still_replays},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("patched", tests)
