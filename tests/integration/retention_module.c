/*
 * retention_module.c: the workflow module of test_retention_e2e, loaded by
 * keel-orchestrator (--workflows
 * build/lib/libkeel_test_retention_workflows.so). Workflow type "retained"
 * waits for the signal "finish" and completes with its payload. A type of its
 * own, so that the short retention the test sets for it
 * (retention.closed.ms.retained) touches no other test's workflows on the
 * shared broker.
 */
#include "keel/keel.h"

int keel_module_init(keel_registry_t *reg);

static keel_err_t retained(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *payload = NULL;
        (void)input;
        if (keel_wait_signal(wf, "finish", -1, &payload))
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{sO}", "finished", payload);
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, "retained", retained);
}
