/*
 * payment_v3_module.c: the next release of the payment workflow, as a
 * keel-orchestrator module (libkeel_payment_workflows_v3.so): "payment"
 * gains a fraud check behind keel_patched(), so payments already under
 * way keep their path, and "payment-saga" undoes its steps with the saga
 * helper. test_release_e2e deploys it over running payments.
 */
#include "payment.h"

int keel_module_init(keel_registry_t *reg);

int keel_module_init(keel_registry_t *reg)
{
        return payment_register_v3(reg);
}
