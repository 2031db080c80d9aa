/*
 * consumer.c: a program built outside keel's tree against an installed
 * keel, as a user would build one (tests/install/install_consumer.sh
 * builds it with pkg-config and with find_package(keel)). It registers a
 * workflow that runs one activity and sleeps a virtual day, runs it to
 * completion in the test environment (keel/testing.h) and prints
 * `result: <JSON>`. Any failure prints why and exits 1.
 */
#include <keel/keel.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const keel_activity_options_t opts = {.start_to_close_ms = 5000};

static keel_err_t greet_workflow(keel_wf_t *wf, const json_t *input,
                                 json_t **result)
{
        json_t *greeting = NULL;
        int64_t t0 = keel_now(wf);
        int rc = keel_activity(wf, "greet", json_incref((json_t *)input), &opts,
                               &greeting);
        if (rc)
                return keel_fail(wf, "GreetFailed", keel_err_str(rc), NULL);
        rc = keel_sleep(wf, 24LL * 3600 * 1000);
        if (rc)
                return rc;
        /* greeting belongs to the run's arena: copy its text. */
        *result = json_pack("{sssI}", "greeting", json_string_value(greeting),
                            "slept_ms", (json_int_t)(keel_now(wf) - t0));
        return KEEL_OK;
}

static int greet(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        const char *name = json_string_value(json_object_get(input, "name"));
        char buf[256];
        if (!name)
                return keel_activity_fail(ctx, "BadInput", "no name", NULL, 1);
        snprintf(buf, sizeof(buf), "hello, %s", name);
        *result = json_string(buf);
        return KEEL_OK;
}

static int check(int rc, const char *what)
{
        if (rc)
                fprintf(stderr, "consumer: %s: %s\n", what, keel_err_str(rc));
        return rc;
}

int main(void)
{
        keel_registry_t *reg = keel_registry_new();
        keel_testenv_t *env = NULL;
        json_t *result = NULL;
        const char *status;
        char *text = NULL;
        int ok = 0;

        printf("keel %s\n", keel_version());
        if (!reg || check(keel_workflow_register(reg, "greet", greet_workflow),
                          "register workflow"))
                goto out;
        env = keel_testenv_new(reg, 0);
        if (!env) {
                fprintf(stderr, "consumer: keel_testenv_new failed\n");
                goto out;
        }
        if (check(keel_testenv_register_activity(env, "greet", greet, NULL),
                  "register activity") ||
            check(keel_testenv_start(env, "greet-1", "greet",
                                     json_pack("{ss}", "name", "keel")),
                  "start") ||
            check(keel_testenv_run(env), "run"))
                goto out;
        status = keel_testenv_status(env, "greet-1");
        if (!status || strcmp(status, "completed")) {
                fprintf(stderr, "consumer: status %s, not completed\n",
                        status ? status : "(none)");
                goto out;
        }
        result = keel_testenv_result(env, "greet-1");
        text =
            result ? json_dumps(result, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        if (!text) {
                fprintf(stderr, "consumer: no result\n");
                goto out;
        }
        printf("result: %s\n", text);
        ok = 1;
out:
        free(text);
        json_decref(result);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
        return ok ? 0 : 1;
}
