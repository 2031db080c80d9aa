/*
 * test_child.c: child workflows in the test environment (the
 * orchestrator's state machine on a virtual clock, every workflow on one
 * machine; the commands a run sends another workflow go through the inbox
 * as on Kafka).
 *
 * "parent" starts the children its input lists ({"type", "input", "id",
 * "policy", "wait"}) and, for each it waits for, adds its result's "n" or
 * notes its failure type; "square" completes with n * n; "boom" fails
 * with type "Boom"; "waiter" waits for the signal "go" (and, cancelled,
 * reports it).
 */
#include "keel/keel.h"
#include "keel/testing.h"
#include "keel_test.h"

#include <string.h>

#define T0 1767225600000LL

static keel_err_t square(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_int_t n = json_integer_value(json_object_get(input, "n"));
        (void)wf;
        *result = json_pack("{sI}", "n", n * n);
        return KEEL_OK;
}

static keel_err_t boom(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        return keel_fail(wf, "Boom", "it blew up",
                         json_pack("{si}", "code", 7));
}

static keel_err_t waiter(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *p = NULL;
        (void)input;
        if (keel_wait_signal(wf, "go", -1, &p) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{si}", "n", 1);
        return KEEL_OK;
}

static keel_err_t parent(keel_wf_t *wf, const json_t *input, json_t **result)
{
        const json_t *kids = json_object_get(input, "children");
        keel_future_t *fs[16];
        json_int_t sum = 0;
        json_t *failures = json_array();
        size_t i, n = json_array_size(kids);
        const json_t *k;

        keel_own(wf, failures);
        json_array_foreach(kids, i, k)
        {
                keel_child_options_t o = {0};
                const char *pol =
                    json_string_value(json_object_get(k, "policy"));
                o.workflow_id = json_string_value(json_object_get(k, "id"));
                if (pol && !strcmp(pol, "cancel"))
                        o.parent_close_policy =
                            KEEL_PARENT_CLOSE_REQUEST_CANCEL;
                else if (pol && !strcmp(pol, "abandon"))
                        o.parent_close_policy = KEEL_PARENT_CLOSE_ABANDON;
                fs[i] = keel_start_child(
                    wf, json_string_value(json_object_get(k, "type")),
                    json_incref(json_object_get(k, "input")), &o);
        }
        for (i = 0; i < n && i < 16; i++) {
                json_t *r = NULL;
                int rc;
                if (json_is_false(
                        json_object_get(json_array_get(kids, i), "wait")))
                        continue;
                rc = keel_await(wf, fs[i], &r);
                if (rc == KEEL_ERR_CANCELLED)
                        return KEEL_ERR_CANCELLED;
                if (rc == KEEL_OK)
                        sum += json_integer_value(json_object_get(r, "n"));
                else
                        json_array_append_new(
                            failures,
                            json_pack("{ss ss}", "type",
                                      keel_wf_failure(wf)->type, "message",
                                      keel_wf_failure(wf)->message));
        }
        *result = json_pack("{sI sO}", "sum", sum, "failures", failures);
        return KEEL_OK;
}

static keel_testenv_t *env_new(keel_registry_t **reg)
{
        keel_testenv_t *env;
        *reg = keel_registry_new();
        keel_workflow_register(*reg, "parent", parent);
        keel_workflow_register(*reg, "square", square);
        keel_workflow_register(*reg, "boom", boom);
        keel_workflow_register(*reg, "waiter", waiter);
        env = keel_testenv_new(*reg, T0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        return env;
}

static json_t *kid(const char *type, const char *id, int n, const char *policy,
                   int wait)
{
        return json_pack("{ss ss* s{si} ss* sb}", "type", type, "id", id,
                         "input", "n", n, "policy", policy, "wait", wait);
}

static json_int_t sum_of(keel_testenv_t *env, const char *id)
{
        json_t *r = keel_testenv_result(env, id);
        json_int_t s = r ? json_integer_value(json_object_get(r, "sum")) : -1;
        json_decref(r);
        return s;
}

static const json_t *field(const json_t *ev, const char *k)
{
        return json_object_get(json_object_get(ev, "record"), k);
}

static void test_child_results_reach_the_parent(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        const json_t *h;

        CU_ASSERT_EQUAL(
            keel_testenv_start(env, "p", "parent",
                               json_pack("{s[ooo]}", "children",
                                         kid("square", NULL, 2, NULL, 1),
                                         kid("square", NULL, 3, NULL, 1),
                                         kid("square", "sq-4", 4, NULL, 1))),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p"), "completed");
        CU_ASSERT_EQUAL(sum_of(env, "p"), 4 + 9 + 16);
        /* the child named by the parent, and its parent */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "sq-4"), "completed");
        h = keel_testenv_history(env, "sq-4");
        CU_ASSERT_STRING_EQUAL(json_string_value(field(json_array_get(h, 0),
                                                       "parent_workflow_id")),
                               "p");
        /* the parent's history: three initiated, three closed */
        {
                size_t i;
                const json_t *ev;
                int init = 0, closed = 0;
                json_array_foreach(keel_testenv_history(env, "p"), i, ev)
                {
                        const char *t =
                            json_string_value(json_object_get(ev, "type"));
                        init +=
                            !strcmp(t, "keel.history.ChildWorkflowInitiated");
                        closed +=
                            !strcmp(t, "keel.history.ChildWorkflowClosed");
                }
                CU_ASSERT_EQUAL(init, 3);
                CU_ASSERT_EQUAL(closed, 3);
        }
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_child_failure_and_start_failure_reach_the_parent(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *r, *f;

        /* "taken" is in use: the child cannot start */
        CU_ASSERT_EQUAL(keel_testenv_start(env, "taken", "waiter", NULL),
                        KEEL_OK);
        CU_ASSERT_EQUAL(
            keel_testenv_start(env, "p", "parent",
                               json_pack("{s[ooo]}", "children",
                                         kid("boom", NULL, 0, NULL, 1),
                                         kid("square", "taken", 5, NULL, 1),
                                         kid("square", NULL, 6, NULL, 1))),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p"), "completed");
        r = keel_testenv_result(env, "p");
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "sum")), 36);
        f = json_object_get(r, "failures");
        CU_ASSERT_EQUAL_FATAL(json_array_size(f), 2);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(f, 0), "type")),
            "Boom");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(f, 0), "message")),
            "it blew up");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(f, 1), "type")),
            "ChildWorkflowStartFailed");
        CU_ASSERT_PTR_NOT_NULL(strstr(
            json_string_value(json_object_get(json_array_get(f, 1), "message")),
            "already running"));
        /* the workflow already running was not touched */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "taken"), "running");
        json_decref(r);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_child_parent_close_policies(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);

        /* the parent waits for none of them and completes at once */
        CU_ASSERT_EQUAL(
            keel_testenv_start(
                env, "p", "parent",
                json_pack("{s[ooo]}", "children",
                          kid("waiter", "w-term", 0, NULL, 0),
                          kid("waiter", "w-cancel", 0, "cancel", 0),
                          kid("waiter", "w-abandon", 0, "abandon", 0))),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p"), "completed");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w-term"),
                               "terminated");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w-cancel"),
                               "cancelled");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w-abandon"),
                               "running");
        /* the abandoned child goes on by itself */
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "w-abandon", "go", NULL),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w-abandon"),
                               "completed");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_child_cancel_passes_to_children(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);

        CU_ASSERT_EQUAL(
            keel_testenv_start(env, "p", "parent",
                               json_pack("{s[oo]}", "children",
                                         kid("waiter", "w1", 0, NULL, 1),
                                         kid("waiter", "w2", 0, "abandon", 0))),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w1"), "running");
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "p", "customer left"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w1"), "cancelled");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p"), "cancelled");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w2"), "running");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_child_results_reach_the_parent",
     test_child_results_reach_the_parent},
    {"test_child_failure_and_start_failure_reach_the_parent",
     test_child_failure_and_start_failure_reach_the_parent},
    {"test_child_parent_close_policies", test_child_parent_close_policies},
    {"test_child_cancel_passes_to_children",
     test_child_cancel_passes_to_children},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("child", tests)
