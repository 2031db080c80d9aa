/*
 * test_machine_input.c: inbox commands any producer may write, as the
 * orchestrator's state machine takes them (machine_int.h). A command that
 * is wrong (a workflow ID that is empty, too long, reserved or holds a
 * control character; a type or signal name with one; a signal for a
 * workflow that does not exist) is refused with the reason, which the
 * orchestrator dead-letters and counts; an activity result for an attempt
 * no longer current, or for an activity nobody scheduled, is dropped and
 * counted as stale. Nothing of the workflows already there is lost.
 */
#include "keel/keel.h"
#include "keel_test.h"
#include "machine_int.h"

#include <string.h>

static keel_err_t waiter(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const keel_activity_options_t opts = {.task_queue = "q",
                                                     .start_to_close_ms = 1000};
        json_t *sig = NULL;
        (void)input;
        if (keel_activity(wf, "work", json_null(), &opts, NULL))
                return keel_fail(wf, "WorkFailed", "", NULL);
        if (keel_wait_signal(wf, "go", -1, &sig))
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{sO}", "got", sig);
        return KEEL_OK;
}

typedef struct fx_s {
        keel_registry_t *reg;
        keel__machine_t *m;
        keel__out_t out;
        int64_t now;
} fx_t;

static void fx_init(fx_t *fx)
{
        fx->reg = keel_registry_new();
        CU_ASSERT_EQUAL_FATAL(keel_workflow_register(fx->reg, "w", waiter),
                              KEEL_OK);
        fx->m = keel__machine_new(fx->reg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx->m);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&fx->out), KEEL_OK);
        fx->now = 1767225600000LL;
}

static void fx_destroy(fx_t *fx)
{
        keel__out_destroy(&fx->out);
        keel__machine_destroy(fx->m);
        keel_registry_destroy(fx->reg);
}

/* Apply a command (rec stolen); the machine's return code. */
static int cmd(fx_t *fx, const char *type, json_t *rec)
{
        char full[64];
        int rc;
        snprintf(full, sizeof(full), "keel.inbox.%s", type);
        rc = keel__machine_command(fx->m, full, rec, fx->now++, &fx->out);
        json_decref(rec);
        return rc;
}

static json_t *start_rec(const char *id, const char *type, const char *cid)
{
        return json_pack(
            "{ss ss sI ss ss ss ss}", "workflow_id", id, "command_id", cid,
            "ts", (json_int_t)0, "workflow_type", type, "input", "{}",
            "id_reuse_policy", "ALLOW_DUPLICATE", "id_conflict_policy", "FAIL");
}

static json_t *signal_rec(const char *id, const char *name, const char *cid)
{
        return json_pack("{ss ss sI sn ss ss}", "workflow_id", id, "command_id",
                         cid, "ts", (json_int_t)0, "run_id", "signal_name",
                         name, "payload", "{\"x\":1}");
}

/* The last refusal's reason contains want, and its error is err. */
static void expect_refused(fx_t *fx, const char *err, const char *want)
{
        size_t n = json_array_size(fx->out.rejects);
        const json_t *r = json_array_get(fx->out.rejects, n ? n - 1 : 0);
        const char *reason = json_string_value(json_object_get(r, "reason"));
        CU_ASSERT_FATAL(n > 0);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "error")),
                               err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
        if (!strstr(reason, want))
                fprintf(stderr, "reason: %s (wanted %s)\n", reason, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(reason, want));
}

static int history_count(fx_t *fx)
{
        return (int)json_array_size(fx->out.history);
}

static void test_machine_input_bad_workflow_ids_are_refused(void)
{
        fx_t fx;
        char huge[1100];
        keel__run_info_t info;

        fx_init(&fx);
        /* empty: not a command at all (the orchestrator dead-letters it) */
        CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", start_rec("", "w", "c0")),
                        KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(
            cmd(&fx, "StartWorkflow", start_rec("a\x01z", "w", "c1")), KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG",
                       "the workflow ID holds a control character");
        CU_ASSERT_EQUAL(
            cmd(&fx, "StartWorkflow", start_rec("line\nbreak", "w", "c2")),
            KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG", "control character");
        memset(huge, 'x', 1001);
        huge[1001] = '\0';
        CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", start_rec(huge, "w", "c3")),
                        KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG", "1 to 1000 bytes");
        CU_ASSERT_EQUAL(
            cmd(&fx, "StartWorkflow", start_rec("!claim", "w", "c4")), KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG", "'!'");
        CU_ASSERT_EQUAL(
            cmd(&fx, "StartWorkflow", start_rec("ok-id", "bad\ttype", "c5")),
            KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG",
                       "the workflow type holds a control character");
        /* none of them made a run or wrote history */
        CU_ASSERT_EQUAL(json_array_size(fx.out.rejects), 5);
        CU_ASSERT_EQUAL(history_count(&fx), 0);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "ok-id", &info),
                        KEEL_ERR_NOT_FOUND);
        /* the longest allowed ID is fine */
        huge[1000] = '\0';
        CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", start_rec(huge, "w", "c7")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(fx.out.rejects), 5);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, huge, &info), KEEL_OK);
        fx_destroy(&fx);
}

static void test_machine_input_bad_signals_are_refused(void)
{
        fx_t fx;
        keel__run_info_t info;
        int before;

        fx_init(&fx);
        CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", start_rec("o", "w", "s")),
                        KEEL_OK);
        before = history_count(&fx);
        CU_ASSERT(before > 0);
        /* a signal to a workflow that does not exist */
        CU_ASSERT_EQUAL(
            cmd(&fx, "SignalWorkflow", signal_rec("nobody", "go", "g1")),
            KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_NOT_FOUND", "no run of workflow nobody");
        /* a signal name with a control character (bytes that are not
         * UTF-8 do not get this far: the codec refuses the record) */
        CU_ASSERT_EQUAL(
            cmd(&fx, "SignalWorkflow", signal_rec("o", "g\x1bo", "g2")),
            KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG",
                       "the signal name holds a control character");
        /* signal-with-start naming a bad signal */
        {
                json_t *rec = start_rec("p", "w", "sw");
                json_object_set_new(rec, "signal_name", json_string("a\x7f"));
                CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", rec), KEEL_OK);
                expect_refused(&fx, "KEEL_ERR_INVALID_ARG",
                               "the signal name holds a control character");
        }
        CU_ASSERT_EQUAL(json_array_size(fx.out.rejects), 3);
        /* the running workflow saw none of it */
        CU_ASSERT_EQUAL(history_count(&fx), before);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "o", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        fx_destroy(&fx);
}

/* The activity "work" of run o: its ID and run ID from the task. */
static void scheduled_task(fx_t *fx, char *act_id, char *run_id)
{
        const json_t *rec = json_array_get(fx->out.tasks, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        snprintf(act_id, 64, "%s",
                 json_string_value(json_object_get(rec, "activity_id")));
        snprintf(run_id, 64, "%s",
                 json_string_value(json_object_get(rec, "run_id")));
}

static json_t *result_rec(const char *run_id, const char *act_id, int attempt,
                          const char *result)
{
        return json_pack("{ss ss sI ss ss si ss ss}", "workflow_id", "o",
                         "command_id", "r", "ts", (json_int_t)0, "run_id",
                         run_id, "activity_id", act_id, "attempt", attempt,
                         "result", result, "worker_id", "t");
}

static void test_machine_input_results_for_unknown_attempts_are_dropped(void)
{
        fx_t fx;
        char act[64], run[64];
        keel__run_info_t info;
        int before;

        fx_init(&fx);
        CU_ASSERT_EQUAL(cmd(&fx, "StartWorkflow", start_rec("o", "w", "s")),
                        KEEL_OK);
        scheduled_task(&fx, act, run);
        before = history_count(&fx);
        /* another attempt, another activity, another run, another ID */
        CU_ASSERT_EQUAL(cmd(&fx, "ActivityCompleted",
                            result_rec(run, act, 7, "{\"late\":1}")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(cmd(&fx, "ActivityCompleted",
                            result_rec(run, "no-such-activity", 1, "{}")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(cmd(&fx, "ActivityCompleted",
                            result_rec("0000-other-run", act, 1, "{}")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(history_count(&fx), before);
        CU_ASSERT_EQUAL(json_array_size(fx.out.rejects), 0);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "o", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        /* a result that is not JSON, for the current attempt: refused,
         * and the activity still waits for a good one */
        CU_ASSERT_EQUAL(
            cmd(&fx, "ActivityCompleted", result_rec(run, act, 1, "{not json")),
            KEEL_OK);
        expect_refused(&fx, "KEEL_ERR_INVALID_ARG", "result is not JSON");
        CU_ASSERT_EQUAL(history_count(&fx), before);
        /* the real one is taken */
        CU_ASSERT_EQUAL(cmd(&fx, "ActivityCompleted",
                            result_rec(run, act, 1, "{\"ok\":true}")),
                        KEEL_OK);
        CU_ASSERT(history_count(&fx) > before);
        fx_destroy(&fx);
}

static CU_TestInfo tests[] = {
    {"test_machine_input_bad_workflow_ids_are_refused",
     test_machine_input_bad_workflow_ids_are_refused},
    {"test_machine_input_bad_signals_are_refused",
     test_machine_input_bad_signals_are_refused},
    {"test_machine_input_results_for_unknown_attempts_are_dropped",
     test_machine_input_results_for_unknown_attempts_are_dropped},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("machine_input", tests)
