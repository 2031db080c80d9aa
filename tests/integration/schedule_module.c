/*
 * schedule_module.c: the workflow module of test_schedule_e2e, loaded by
 * keel-orchestrator (--workflows build/lib/libkeel_test_schedule_workflows.so).
 * "tick", the action of the test's schedule, emits one record to the
 * topic its input names, keyed by its own workflow ID (the schedule names
 * it after the occurrence's time), and completes: a read_committed reader
 * of that topic sees each run of each action once, so a key seen twice is
 * an occurrence started twice.
 */
#include "keel/keel.h"

int keel_module_init(keel_registry_t *reg);

static keel_err_t tick(keel_wf_t *wf, const json_t *input, json_t **result)
{
        const char *topic = json_string_value(json_object_get(input, "topic"));
        int rc = keel_emit(wf, topic ? topic : "schedule.ticks", keel_wf_id(wf),
                           json_pack("{ss ss sI}", "id", keel_wf_id(wf), "run",
                                     keel_wf_run_id(wf), "at",
                                     (json_int_t)keel_now(wf)));
        if (rc)
                return keel_fail(wf, "EmitRefused", keel_err_name(rc), NULL);
        *result = json_pack("{ss}", "status", "ticked");
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, "tick", tick);
}
