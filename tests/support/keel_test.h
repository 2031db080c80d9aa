/*
 * keel_test.h: what keel's CUnit suites share: a main() that runs one
 * suite and exits non-zero on any failure, and small helpers.
 *
 * Each test binary defines `static CU_TestInfo tests[]` and calls
 * KEEL_TEST_MAIN("suite name", tests). Every binary runs in its own
 * process under ctest with a TIMEOUT.
 */
#ifndef KEEL_TEST_H
#define KEEL_TEST_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#define KEEL_TEST_MAIN(suite_name, test_array)                                 \
        KEEL_TEST_MAIN_WITH(suite_name, test_array, NULL, NULL)

/* The same, with a suite set-up and clean-up (int (*)(void), 0 for
 * success); a set-up that fails fails the run. */
#define KEEL_TEST_MAIN_WITH(suite_name, test_array, init, clean)               \
        int main(void)                                                         \
        {                                                                      \
                CU_SuiteInfo suites[] = {                                      \
                    {suite_name, init, clean, NULL, NULL, test_array},         \
                    CU_SUITE_INFO_NULL};                                       \
                unsigned failed;                                               \
                if (CU_initialize_registry() != CUE_SUCCESS)                   \
                        return 2;                                              \
                if (CU_register_suites(suites) != CUE_SUCCESS) {               \
                        fprintf(stderr, "%s\n", CU_get_error_msg());           \
                        CU_cleanup_registry();                                 \
                        return 2;                                              \
                }                                                              \
                CU_basic_set_mode(CU_BRM_VERBOSE);                             \
                CU_basic_run_tests();                                          \
                failed = CU_get_number_of_tests_failed() +                     \
                         CU_get_number_of_failures() +                         \
                         CU_get_number_of_suites_failed();                     \
                if (CU_get_number_of_tests_run() == 0)                         \
                        failed = 1; /* a suite that ran nothing fails */       \
                CU_cleanup_registry();                                         \
                return failed ? 1 : 0;                                         \
        }

/* Path of a file the test fixture wrote (bootstrap address, ...): the
 * environment variable `var`, which ctest sets. Fails the test run with a
 * message when unset: integration tests never skip themselves. */
static inline const char *keel_test_env(const char *var)
{
        const char *v = getenv(var);
        if (!v || !*v) {
                fprintf(stderr, "%s is not set: run this test through ctest\n",
                        var);
                exit(2);
        }
        return v;
}

#endif
