/*
 * payment_module.c: the payment workflow as a module for
 * keel-orchestrator (--workflows build/lib/libkeel_payment_workflows.so).
 */
#include "payment.h"

int keel_module_init(keel_registry_t *reg);

int keel_module_init(keel_registry_t *reg)
{
        return payment_register_workflow(reg);
}
