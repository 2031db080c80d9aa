/*
 * agent_module.c: the AI agent workflow as a module for keel-orchestrator
 * (--workflows build/lib/libkeel_agent_workflows.so).
 */
#include "agent.h"

int keel_module_init(keel_registry_t *reg);

int keel_module_init(keel_registry_t *reg)
{
        return agent_register_workflow(reg);
}
