/*
 * test_search_attributes.c: search attributes in the test environment and
 * through the replayer: a start's initial set, keel_upsert_search_attributes()
 * merging into it and removing with null, one MarkerRecorded per upsert
 * however often the code replays, replays that match by marker, refused
 * input (the same answer on every replay, nothing recorded), refused
 * starts, and the payment example indexing the payments that name a
 * customer.
 */
#include "keel/client.h"
#include "keel/replay.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "payment.h"

#include <string.h>

#define HOUR (3600LL * 1000)

/* ---- workflows ---------------------------------------------------------- */

/* Upsert, wait for "go", upsert again (one change, one removal) and
 * return the set as the code sees it. The values of the second upsert
 * come from the signal, so a test can vary them. */
static keel_err_t indexer(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *go = NULL;
        int rc;
        (void)input;
        rc = keel_upsert_search_attributes(
            wf, json_pack("{ss ss}", "CustomerId", "c-42", "Stage", "new"));
        if (rc)
                return keel_fail(wf, "Refused", "first upsert", NULL);
        keel_wait_signal(wf, "go", -1, &go);
        rc = keel_upsert_search_attributes(
            wf, json_pack("{so sn}", "Stage",
                          json_is_string(go) ? json_incref(go)
                                             : json_string("paid"),
                          "Tier"));
        if (rc)
                return keel_fail(wf, "Refused", "second upsert", NULL);
        *result = json_deep_copy(keel_wf_search_attributes(wf));
        return KEEL_OK;
}

/* The indexer without its second upsert: a code change replay catches. */
static keel_err_t indexer_dropped(keel_wf_t *wf, const json_t *input,
                                  json_t **result)
{
        (void)input;
        keel_upsert_search_attributes(
            wf, json_pack("{ss ss}", "CustomerId", "c-42", "Stage", "new"));
        keel_wait_signal(wf, "go", -1, NULL);
        *result = json_deep_copy(keel_wf_search_attributes(wf));
        return KEEL_OK;
}

/* An object of n names K0..K(n-1), each with a string of `bytes` 'x'. */
static json_t *many(int from, int n, size_t bytes)
{
        json_t *o = json_object();
        char *v = calloc(1, bytes + 1);
        memset(v, 'x', bytes);
        for (int i = from; i < from + n; i++) {
                char k[16];
                snprintf(k, sizeof(k), "K%d", i);
                json_object_set_new(o, k, json_string(v));
        }
        free(v);
        return o;
}

/* Every kind of refused upsert, then a durable sleep (so that the code
 * runs again, replaying them), then the same again: the answers, as an
 * array, and the set in the end. Each refusal leaves the set as it was. */
static keel_err_t refuser(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *codes = keel_own(wf, json_array());
        char longname[KEEL_SEARCH_ATTR_NAME_MAX + 2];
        size_t before;
        (void)input;

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        /* A set near the limits: 100 names, about 38 KiB. */
        if (keel_upsert_search_attributes(wf, many(0, 19, 2000)) ||
            keel_upsert_search_attributes(wf, many(19, 81, 1)))
                return keel_fail(wf, "Refused", "the near-full set", NULL);
        before = json_object_size(keel_wf_search_attributes(wf));
        for (int pass = 0; pass < 2; pass++) {
                json_t *cases[] = {
                    NULL,                                   /* null */
                    json_pack("[i]", 1),                    /* an array */
                    json_object(),                          /* empty */
                    json_pack("{s{si}}", "Nested", "b", 1), /* object value */
                    json_pack("{s[i]}", "List", 1),         /* array value */
                    json_pack("{si}", "1st", 1),            /* digit first */
                    json_pack("{si}", "a-b", 1),            /* a '-' */
                    json_pack("{si}", "", 1),               /* no name */
                    json_pack("{si}", longname, 1),         /* 65 bytes */
                    many(0, 1, KEEL_SEARCH_ATTR_VALUE_MAX + 1), /* value */
                    many(200, 101, 1),            /* 101 names at once */
                    json_pack("{si}", "K100", 1), /* a 101st name */
                    many(19, 2, 2048),            /* over 40 KiB in all */
                    json_pack("{so}", "Note", json_stringn("a\0b", 3)),
                };
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                        json_array_append_new(
                            codes, json_integer(keel_upsert_search_attributes(
                                       wf, cases[i])));
                if (json_object_size(keel_wf_search_attributes(wf)) != before)
                        return keel_fail(wf, "Changed",
                                         "a refusal changed the set", NULL);
                if (!pass && keel_sleep(wf, 1000))
                        return KEEL_ERR_CANCELLED;
        }
        /* Removing names and adding others within the limits is fine. */
        json_array_append_new(
            codes, json_integer(keel_upsert_search_attributes(
                       wf, json_pack("{sn sn sn si sb sf}", "K97", "K98", "K99",
                                     "K100", 7, "Vip", 1, "Score", 0.5))));
        *result = json_pack("{sO sO}", "codes", codes, "set",
                            keel_wf_search_attributes(wf));
        return KEEL_OK;
}

static keel_registry_t *reg_of(keel_workflow_fn_t fn)
{
        keel_registry_t *r = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL_FATAL(keel_workflow_register(r, "indexed", fn),
                              KEEL_OK);
        return r;
}

/* How many MarkerRecorded "search_attributes" h holds; the details of
 * the last one (borrowed) in *last. */
static int upserts(const json_t *h, const char **last)
{
        size_t i;
        const json_t *ev;
        int n = 0;
        json_array_foreach(h, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const char *m =
                    json_string_value(json_object_get(rec, "marker_name"));
                if (m && !strcmp(m, "search_attributes")) {
                        n++;
                        if (last)
                                *last = json_string_value(
                                    json_object_get(rec, "details"));
                }
        }
        return n;
}

static int same_json(const json_t *a, const char *text)
{
        json_t *b = json_loads(text, 0, NULL);
        int eq = b && json_equal(a, b);
        if (!eq) {
                char *s = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
                fprintf(stderr, "got %s, want %s\n", s ? s : "NULL", text);
                free(s);
        }
        json_decref(b);
        return eq;
}

/* ---- tests --------------------------------------------------------------- */

static void test_search_attributes_upsert_merges_and_removes(void)
{
        keel_registry_t *r = reg_of(indexer);
        keel_testenv_t *env = keel_testenv_new(r, 0);
        json_t *initial = json_pack("{ss si}", "Region", "eu", "Tier", 1);
        keel_start_options_t o = {.search_attributes = initial};
        json_t *sa, *res;
        const char *last = NULL;

        CU_ASSERT_EQUAL(keel_testenv_start_ex(env, "i1", "indexed", NULL, &o),
                        KEEL_OK);
        json_decref(initial);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        sa = keel_testenv_search_attributes(env, "i1");
        CU_ASSERT(same_json(sa, "{\"Region\":\"eu\",\"Tier\":1,"
                                "\"CustomerId\":\"c-42\",\"Stage\":\"new\"}"));
        json_decref(sa);
        CU_ASSERT_EQUAL(upserts(keel_testenv_history(env, "i1"), NULL), 1);

        /* The second upsert changes Stage and removes Tier; the code runs
         * again from the start, and records the first upsert no more. */
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "i1", "go", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "i1"), "completed");
        sa = keel_testenv_search_attributes(env, "i1");
        CU_ASSERT(same_json(sa, "{\"Region\":\"eu\",\"CustomerId\":\"c-42\","
                                "\"Stage\":\"paid\"}"));
        json_decref(sa);
        CU_ASSERT_EQUAL(upserts(keel_testenv_history(env, "i1"), &last), 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(last);
        {
                json_t *d = json_loads(last, 0, NULL);
                CU_ASSERT(same_json(d, "{\"Stage\":\"paid\",\"Tier\":null}"));
                json_decref(d);
        }
        /* The code's own view is the recorded one. */
        res = keel_testenv_result(env, "i1");
        CU_ASSERT(same_json(res, "{\"Region\":\"eu\",\"CustomerId\":\"c-42\","
                                 "\"Stage\":\"paid\"}"));
        json_decref(res);
        CU_ASSERT_PTR_NULL(keel_testenv_search_attributes(env, "nope"));
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

static void test_search_attributes_replay_matches_markers(void)
{
        keel_registry_t *r = reg_of(indexer),
                        *dropped = reg_of(indexer_dropped);
        keel_testenv_t *env = keel_testenv_new(r, 0);
        keel_replay_report_t rep;
        json_t *h;

        keel_testenv_start(env, "i2", "indexed", NULL);
        keel_testenv_run(env);
        keel_testenv_signal(env, "i2", "go", json_string("shipped"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "i2"), "completed");
        h = json_deep_copy(keel_testenv_history(env, "i2"));
        keel_testenv_destroy(env);

        /* The same code replays; the markers are matched by name and ID,
         * not by value (the value came from the signal). */
        CU_ASSERT_EQUAL(keel_replay(r, h, &rep), KEEL_OK);
        /* Without the second upsert the code no longer reproduces it. */
        CU_ASSERT_EQUAL(keel_replay(dropped, h, &rep), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.expected, "search_attributes"));
        json_decref(h);
        keel_registry_destroy(r);
        keel_registry_destroy(dropped);
}

static void test_search_attributes_invalid_input_refused(void)
{
        keel_registry_t *r = reg_of(refuser);
        keel_testenv_t *env = keel_testenv_new(r, 0);
        json_t *res, *codes, *set;
        size_t i;
        const json_t *c;
        keel_replay_report_t rep;

        keel_testenv_start(env, "bad", "indexed", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        /* Not blocked: every replay got the same answers. */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "bad"), "completed");
        res = keel_testenv_result(env, "bad");
        CU_ASSERT_PTR_NOT_NULL_FATAL(res);
        codes = json_object_get(res, "codes");
        CU_ASSERT_EQUAL(json_array_size(codes), 29);
        json_array_foreach(codes, i, c)
        {
                int want = i + 1 < json_array_size(codes) ? KEEL_ERR_INVALID_ARG
                                                          : KEEL_OK;
                if (json_integer_value(c) != want)
                        fprintf(stderr, "answer %zu: %lld\n", i,
                                (long long)json_integer_value(c));
                CU_ASSERT_EQUAL(json_integer_value(c), want);
        }
        /* Only the accepted upserts are recorded: the two that built the
         * set and the last. */
        CU_ASSERT_EQUAL(upserts(keel_testenv_history(env, "bad"), NULL), 3);
        set = keel_testenv_search_attributes(env, "bad");
        CU_ASSERT_TRUE(json_equal(set, json_object_get(res, "set")));
        CU_ASSERT_EQUAL(json_object_size(set), KEEL_SEARCH_ATTRS_MAX_KEYS);
        CU_ASSERT_PTR_NULL(json_object_get(set, "K99"));
        CU_ASSERT_EQUAL(json_string_length(json_object_get(set, "K0")), 2000);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(set, "K100")), 7);
        CU_ASSERT_TRUE(json_is_true(json_object_get(set, "Vip")));
        CU_ASSERT_EQUAL(json_real_value(json_object_get(set, "Score")), 0.5);
        CU_ASSERT_EQUAL(keel_replay(r, keel_testenv_history(env, "bad"), &rep),
                        KEEL_OK);
        json_decref(set);
        json_decref(res);
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

static void test_search_attributes_invalid_start_refused(void)
{
        keel_registry_t *r = reg_of(indexer);
        keel_testenv_t *env = keel_testenv_new(r, 0);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *c;
        char err[512] = "";
        json_t *bad[] = {json_pack("{s{si}}", "Nested", "b", 1),
                         json_pack("[s]", "CustomerId"),
                         json_pack("{si}", "no-dash", 1)};

        /* The orchestrator refuses such a start: no run. */
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                keel_start_options_t o = {.search_attributes = bad[i]};
                CU_ASSERT_EQUAL(
                    keel_testenv_start_ex(env, "s", "indexed", NULL, &o),
                    KEEL_ERR_INVALID_ARG);
                CU_ASSERT_PTR_NULL(keel_testenv_status(env, "s"));
        }
        /* The client refuses it before sending anything (nothing listens
         * at that address). */
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        keel_config_set(cfg, "bootstrap", "127.0.0.1:1", NULL, NULL, 0);
        c = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                keel_start_options_t o = {.search_attributes = bad[i]};
                err[0] = '\0';
                CU_ASSERT_EQUAL(keel_client_start(c, "s", "indexed", NULL, &o,
                                                  NULL, err, sizeof(err)),
                                KEEL_ERR_INVALID_ARG);
                CU_ASSERT_PTR_NOT_NULL(strstr(err, "search attribute"));
                json_decref(bad[i]);
        }
        keel_client_destroy(c);
        keel_config_destroy(cfg);
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

/* The payment example indexes a payment that names a customer: by
 * customer, and by stage, "charging" until its outcome. */
static void test_search_attributes_payment_indexed(void)
{
        keel_registry_t *r = keel_registry_new();
        keel_testenv_t *env;
        json_t *sa;

        payment_register_workflow(r);
        env = keel_testenv_new(r, 0);
        for (size_t i = 0; i < payment_activities_cnt; i++)
                keel_testenv_register_activity(env, payment_activities[i].name,
                                               payment_activities[i].fn, NULL);
        keel_testenv_start(env, "p1", PAYMENT_WORKFLOW,
                           json_pack("{ss si ss}", "order", "o-1", "amount", 5,
                                     "customer", "c-42"));
        keel_testenv_start(env, "p2", PAYMENT_WORKFLOW,
                           json_pack("{ss si}", "order", "o-2", "amount", 5));
        keel_testenv_run_until(env, keel_testenv_now(env) + HOUR);
        sa = keel_testenv_search_attributes(env, "p1");
        CU_ASSERT(same_json(sa, "{\"CustomerId\":\"c-42\","
                                "\"Stage\":\"charging\"}"));
        json_decref(sa);
        keel_testenv_signal(env, "p1", "refundApproved", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p1"), "completed");
        sa = keel_testenv_search_attributes(env, "p1");
        CU_ASSERT(same_json(sa, "{\"CustomerId\":\"c-42\","
                                "\"Stage\":\"refunded\"}"));
        json_decref(sa);
        CU_ASSERT_EQUAL(upserts(keel_testenv_history(env, "p1"), NULL), 2);
        /* Without a customer, no search attributes and no upsert. */
        sa = keel_testenv_search_attributes(env, "p2");
        CU_ASSERT(same_json(sa, "{}"));
        json_decref(sa);
        CU_ASSERT_EQUAL(upserts(keel_testenv_history(env, "p2"), NULL), 0);
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

static CU_TestInfo tests[] = {
    {"test_search_attributes_upsert_merges_and_removes",
     test_search_attributes_upsert_merges_and_removes},
    {"test_search_attributes_replay_matches_markers",
     test_search_attributes_replay_matches_markers},
    {"test_search_attributes_invalid_input_refused",
     test_search_attributes_invalid_input_refused},
    {"test_search_attributes_invalid_start_refused",
     test_search_attributes_invalid_start_refused},
    {"test_search_attributes_payment_indexed",
     test_search_attributes_payment_indexed},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("search_attributes", tests)
