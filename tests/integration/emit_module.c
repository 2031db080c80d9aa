/*
 * emit_module.c: the workflow module of test_emit_e2e, loaded by
 * keel-orchestrator (--workflows build/lib/libkeel_test_emit_workflows.so).
 * Workflow type "emitter" emits records to the topic its input names
 * (default payments.completed), keyed by the workflow ID: one, then after
 * a durable timer one or input "parts" more. Those come from a later step,
 * whose replay of the first must not emit it again. Input "outcome"
 * makes a run fail or wait to be cancelled or terminated instead, after
 * its first record.
 */
#include "keel/keel.h"

#include <string.h>

int keel_module_init(keel_registry_t *reg);

static int emit_stage(keel_wf_t *wf, const char *topic, const json_t *input,
                      const char *stage, int part)
{
        return keel_emit(
            wf, topic, keel_wf_id(wf),
            json_pack("{ss sI ss si}", "order", keel_wf_id(wf), "amount",
                      json_integer_value(json_object_get(input, "amount")),
                      "stage", stage, "part", part));
}

static keel_err_t emitter(keel_wf_t *wf, const json_t *input, json_t **result)
{
        const char *topic = json_string_value(json_object_get(input, "topic"));
        json_int_t parts = json_integer_value(json_object_get(input, "parts"));
        const char *outcome =
            json_string_value(json_object_get(input, "outcome"));
        int rc;

        if (!outcome)
                outcome = "complete";
        if (!topic)
                topic = "payments.completed";
        if ((rc = emit_stage(wf, topic, input, "accepted", 0)))
                return keel_fail(wf, "EmitRefused", keel_err_name(rc), NULL);
        if (keel_sleep(wf, json_integer_value(json_object_get(
                               input, "sleep_ms"))) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        /* "outcome": "fail" fails here; "wait" waits for a cancel or a
         * terminate; otherwise the run completes. */
        if (!strcmp(outcome, "fail"))
                return keel_fail(wf, "PaymentDeclined", "declined",
                                 json_pack("{sI}", "amount",
                                           json_integer_value(json_object_get(
                                               input, "amount"))));
        if (!strcmp(outcome, "wait") &&
            keel_wait_signal(wf, "never", -1, NULL) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        /* "parts": emit that many records in this one step (default 1),
         * a batch that takes a while to write. */
        for (json_int_t i = 0; i < (parts > 0 ? parts : 1); i++)
                if ((rc = emit_stage(wf, topic, input, "completed", (int)i)))
                        return keel_fail(wf, "EmitRefused", keel_err_name(rc),
                                         NULL);
        *result = json_pack("{ss}", "status", "completed");
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, "emitter", emitter);
}
