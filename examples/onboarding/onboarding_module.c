/*
 * onboarding_module.c: the onboarding workflow as a module for
 * keel-orchestrator (--workflows build/lib/libkeel_onboarding_workflows.so).
 */
#include "onboarding.h"

int keel_module_init(keel_registry_t *reg);

int keel_module_init(keel_registry_t *reg)
{
        return onboarding_register_workflow(reg);
}
