/*
 * test_ingress.c: the ingress's routes file and its mapping of source
 * records to keel.inbox commands (sdk/src/ingress.c), without a broker:
 * routes errors name what is wrong and where, every command is a record
 * the inbox schema takes, and a record a route cannot map is dead with a
 * reason that names the problem.
 */
#include "ingress_int.h"
#include "keel/codec.h"
#include "keel/error.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW    1700000000123LL
#define START  "keel.inbox.StartWorkflow"
#define SIGNAL "keel.inbox.SignalWorkflow"

/* ---- helpers ------------------------------------------------------------ */

/* Routes from JSON text; fails the test if they do not parse. */
static keel__ingress_routes_t *routes_of(const char *text)
{
        keel__ingress_routes_t *r = NULL;
        json_error_t je;
        char err[512] = "";
        json_t *doc = json_loads(text, 0, &je);

        if (!doc)
                fprintf(stderr, "\nbad JSON in the test: %s\n", je.text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
        if (keel__ingress_routes_parse(doc, &r, err, sizeof(err)) != KEEL_OK)
                fprintf(stderr, "\nroutes refused: %s\n", err);
        json_decref(doc);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        return r;
}

/* Parsing text is refused with KEEL_ERR_CONFIG, nothing to free, and a
 * message holding want and want2 (if not NULL). */
static void expect_refused(const char *text, const char *want,
                           const char *want2)
{
        keel__ingress_routes_t *r = (keel__ingress_routes_t *)&r;
        json_error_t je;
        char err[512] = "";
        json_t *doc = json_loads(text, JSON_DECODE_ANY, &je);
        int rc, ok;

        if (!doc)
                fprintf(stderr, "\nbad JSON in the test: %s\n", je.text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
        rc = keel__ingress_routes_parse(doc, &r, err, sizeof(err));
        json_decref(doc);
        ok = rc == KEEL_ERR_CONFIG && !r && strstr(err, want) &&
             (!want2 || strstr(err, want2));
        if (!ok)
                fprintf(stderr,
                        "\n%s\n  rc %d, message \"%s\"; wanted \"%s\"%s%s%s\n",
                        text, rc, err, want, want2 ? " and \"" : "",
                        want2 ? want2 : "", want2 ? "\"" : "");
        CU_ASSERT_EQUAL(rc, KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
        if (want2)
                CU_ASSERT_PTR_NOT_NULL(strstr(err, want2));
        if (rc == KEEL_OK)
                keel__ingress_routes_free(r);
}

/* A record on topic at partition 3, offset 42; key and value are text
 * (NULL: none). */
static keel__ingress_src_t src_of(const char *topic, const char *key,
                                  const char *value)
{
        keel__ingress_src_t src = {
            .topic = topic,
            .partition = 3,
            .offset = 42,
            .key = key,
            .key_len = key ? strlen(key) : 0,
            .value = value,
            .value_len = value ? strlen(value) : 0,
        };
        return src;
}

/* rec as the inbox's record of type: it encodes, and every field it holds
 * comes back from the decoder as it was (the encoder ignores members the
 * schema lacks, so a misspelt field would come back as its default). */
static void check_encodes(const char *type, const json_t *rec)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        char err[512] = "";
        const char *dtype = NULL, *key;
        json_t *back = NULL, *v;
        int rc = keel_codec_encode(type, rec, &buf, &len, err, sizeof(err));

        if (rc)
                fprintf(stderr, "\n%s does not encode: %s\n", type, err);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        rc = keel_codec_decode(buf, len, &dtype, &back, err, sizeof(err));
        free(buf);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(dtype, type);
        json_object_foreach((json_t *)rec, key, v)
        {
                if (!json_equal(v, json_object_get(back, key)))
                        fprintf(stderr, "\n%s.%s does not round-trip\n", type,
                                key);
                CU_ASSERT_TRUE(json_equal(v, json_object_get(back, key)));
        }
        json_decref(back);
}

/* keel__ingress_map, checking what holds for every verdict: a command is
 * a record the inbox schema takes; otherwise there is no record, and a
 * dead record has a reason. */
static keel__ingress_verdict_t map(const keel__ingress_routes_t *r,
                                   const keel__ingress_src_t *src,
                                   const char **type, json_t **rec, char *why,
                                   size_t whysize)
{
        keel__ingress_verdict_t v =
            keel__ingress_map(r, src, NOW, type, rec, why, whysize);
        if (v == KEEL__INGRESS_COMMAND) {
                CU_ASSERT_PTR_NOT_NULL_FATAL(*type);
                CU_ASSERT_PTR_NOT_NULL_FATAL(*rec);
                check_encodes(*type, *rec);
        } else {
                CU_ASSERT_PTR_NULL(*type);
                CU_ASSERT_PTR_NULL(*rec);
                if (v == KEEL__INGRESS_DEAD)
                        CU_ASSERT_NOT_EQUAL(why[0], '\0');
        }
        return v;
}

/* Map src, expecting a command; returns its record (the caller frees
 * it). */
static json_t *command(const keel__ingress_routes_t *r,
                       const keel__ingress_src_t *src, const char *want_type)
{
        const char *type = NULL;
        json_t *rec = NULL;
        char why[512] = "";
        keel__ingress_verdict_t v = map(r, src, &type, &rec, why, sizeof(why));

        if (v != KEEL__INGRESS_COMMAND)
                fprintf(stderr, "\nverdict %d (%s), wanted a command\n", v,
                        why);
        CU_ASSERT_EQUAL_FATAL(v, KEEL__INGRESS_COMMAND);
        CU_ASSERT_STRING_EQUAL(type, want_type);
        return rec;
}

/* Map src, expecting it dead with a reason holding want and want2 (if not
 * NULL). */
static void expect_dead(const keel__ingress_routes_t *r,
                        const keel__ingress_src_t *src, const char *want,
                        const char *want2)
{
        const char *type = NULL;
        json_t *rec = NULL;
        char why[512] = "";
        keel__ingress_verdict_t v = map(r, src, &type, &rec, why, sizeof(why));

        if (v != KEEL__INGRESS_DEAD || !strstr(why, want) ||
            (want2 && !strstr(why, want2)))
                fprintf(stderr,
                        "\nverdict %d, reason \"%s\"; wanted dead with "
                        "\"%s\"%s%s%s\n",
                        v, why, want, want2 ? " and \"" : "",
                        want2 ? want2 : "", want2 ? "\"" : "");
        CU_ASSERT_EQUAL(v, KEEL__INGRESS_DEAD);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
        if (want2)
                CU_ASSERT_PTR_NOT_NULL(strstr(why, want2));
        json_decref(rec);
}

static keel__ingress_verdict_t verdict_of(const keel__ingress_routes_t *r,
                                          const keel__ingress_src_t *src)
{
        const char *type = NULL;
        json_t *rec = NULL;
        char why[512] = "";
        keel__ingress_verdict_t v = map(r, src, &type, &rec, why, sizeof(why));
        json_decref(rec);
        return v;
}

/* A string member of rec, or "<absent>", so that a missing one fails an
 * assert instead of crashing it. */
static const char *str(const json_t *rec, const char *name)
{
        const char *s = json_string_value(json_object_get(rec, name));
        return s ? s : "<absent>";
}

/* ---- the routes file ---------------------------------------------------- */

static void test_ingress_routes_valid_document(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"name\": \"shop-orders_1.v2\", \"from\": \"latest\","
            " \"routes\": ["
            "  {\"topic\": \"orders\", \"start\": \"Order\","
            "   \"workflow_id\": \"key\"},"
            "  {\"topic\": \"orders\", \"signal\": \"paid\","
            "   \"workflow_id\": \"value.order.id\","
            "   \"input\": \"value.amount\","
            "   \"when\": {\"header.kind\": \"paid\"}},"
            "  {\"topic\": \"payments\", \"start\": \"Payment\","
            "   \"signal\": \"paid\", \"workflow_id\": \"header.pid\","
            "   \"id_prefix\": \"pay-\", \"input\": \"source\","
            "   \"id_reuse_policy\": \"REJECT_DUPLICATE\","
            "   \"id_conflict_policy\": \"FAIL\","
            "   \"when\": {\"value.type\": \"x\", \"key\": \"y\"}}]}");
        CU_ASSERT_STRING_EQUAL(keel__ingress_routes_name(r),
                               "shop-orders_1.v2");
        keel__ingress_routes_free(r);
        keel__ingress_routes_free(NULL);

        /* name and from are optional */
        r = routes_of("{\"routes\": [{\"topic\": \"t\", \"signal\": \"s\","
                      " \"workflow_id\": \"value\"}]}");
        CU_ASSERT_STRING_EQUAL(keel__ingress_routes_name(r), "default");
        keel__ingress_routes_free(r);
        r = routes_of("{\"from\": \"earliest\", \"routes\": [{\"topic\": "
                      "\"t\", \"start\": \"W\", \"workflow_id\": \"source\","
                      " \"id_reuse_policy\": \"ALLOW_DUPLICATE_FAILED_ONLY\","
                      " \"id_conflict_policy\": \"USE_EXISTING\"}]}");
        keel__ingress_routes_free(r);
        /* topics that only look like keel's or Kafka's are the user's */
        r = routes_of("{\"routes\": [{\"topic\": \"keelhaul\", \"start\": "
                      "\"W\", \"workflow_id\": \"key\"}, {\"topic\": "
                      "\"_private\", \"start\": \"W\", \"workflow_id\": "
                      "\"key\"}]}");
        keel__ingress_routes_free(r);
}

static void test_ingress_routes_document_errors(void)
{
        expect_refused("[]", "must be an object", NULL);
        expect_refused("\"routes\"", "must be an object", NULL);
        expect_refused("{}", "\"routes\" must be a non-empty array", NULL);
        expect_refused("{\"routes\": []}",
                       "\"routes\" must be a non-empty array", NULL);
        expect_refused("{\"routes\": {\"topic\": \"t\"}}",
                       "\"routes\" must be a non-empty array", NULL);
        expect_refused("{\"name\": \"x\", \"route\": [{\"topic\": \"t\"}]}",
                       "the document", "member 'route' is not one keel knows");
        expect_refused("{\"from\": \"beginning\", \"routes\": [{\"topic\": "
                       "\"t\", \"start\": \"W\", \"workflow_id\": \"key\"}]}",
                       "from 'beginning' is not one keel knows", NULL);
        expect_refused("{\"from\": 0, \"routes\": [{\"topic\": \"t\", "
                       "\"start\": \"W\", \"workflow_id\": \"key\"}]}",
                       "\"from\" must be a non-empty string", NULL);
        /* the name goes into command IDs, the group and transactional IDs */
        expect_refused("{\"name\": \"my shop\", \"routes\": [{\"topic\": "
                       "\"t\", \"start\": \"W\", \"workflow_id\": \"key\"}]}",
                       "\"name\" 'my shop' may hold only letters", NULL);
        expect_refused("{\"name\": \"a/b\", \"routes\": [{\"topic\": "
                       "\"t\", \"start\": \"W\", \"workflow_id\": \"key\"}]}",
                       "'a/b' may hold only", NULL);
        expect_refused("{\"name\": \"\", \"routes\": [{\"topic\": \"t\", "
                       "\"start\": \"W\", \"workflow_id\": \"key\"}]}",
                       "\"name\" must be a non-empty string", NULL);
}

static void test_ingress_routes_route_errors(void)
{
        expect_refused("{\"routes\": [5]}", "routes[0] is not an object", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow-id\": \"key\"}]}",
                       "routes[0]", "member 'workflow-id' is not one keel");
        /* the message names the route that is wrong */
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\"}, {\"topic\": \"u\", "
                       "\"start\": \"W\", \"workflow_id\": \"key\", "
                       "\"timeout\": 5}]}",
                       "routes[1]", "member 'timeout'");
        expect_refused("{\"routes\": [{\"start\": \"W\", \"workflow_id\": "
                       "\"key\"}]}",
                       "routes[0]", "\"topic\" is missing");
        expect_refused("{\"routes\": [{\"topic\": \"\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\"}]}",
                       "routes[0]", "\"topic\" must be a non-empty string");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\"}]}",
                       "routes[0]", "\"workflow_id\" is missing");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"workflow_id\": "
                       "\"key\"}]}",
                       "routes[0]", "\"start\"");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"workflow_id\": "
                       "\"key\"}]}",
                       "say what a record does", "\"signal\"");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": 7, "
                       "\"workflow_id\": \"key\"}]}",
                       "routes[0]", "\"start\" must be a non-empty string");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": "
                       "\"W\\nX\", \"workflow_id\": \"key\"}]}",
                       "routes[0]",
                       "the workflow type holds a control character");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\"}, {\"topic\": \"t\", "
                       "\"signal\": \"s\\u0001\", \"workflow_id\": \"key\"}]}",
                       "routes[1]",
                       "the signal name holds a control character");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_prefix\": 1}]}",
                       "routes[0]", "\"id_prefix\" must be a string");
        /* a prefix no workflow ID could start with: refused up front, not
         * a dead letter for every record */
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_prefix\": \"a\\tb\"}]}",
                       "routes[0]", "\"id_prefix\" holds a control character");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_prefix\": \"!x\"}]}",
                       "routes[0]", "\"id_prefix\" starts with '!'");
}

static void test_ingress_routes_selector_errors(void)
{
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"body.id\"}]}",
                       "routes[0]",
                       "'body.id' is none of key, value, value.<field>, "
                       "header.<name>, source");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"input\": \"values\"}]}",
                       "'values' is none of", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"header.\"}]}",
                       "'header.' is none of", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"value.a..b\"}]}",
                       "routes[0]", "'value.a..b' has an empty member name");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"value.\"}]}",
                       "'value.' has an empty member name", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"input\": \"value.a.\"}]}",
                       "'value.a.' has an empty member name", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"when\": {\"vaule.type\": "
                       "\"x\"}}]}",
                       "'vaule.type' is none of", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"when\": \"value.type\"}]}",
                       "routes[0]", "\"when\" must be an object");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"when\": [\"key\"]}]}",
                       "\"when\" must be an object", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"when\": {}}]}",
                       "\"when\" must be an object", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"when\": {\"key\": \"k\", "
                       "\"value.n\": 5}}]}",
                       "routes[0]", "when.value.n must be a string");
}

static void test_ingress_routes_policy_errors(void)
{
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_reuse_policy\": "
                       "\"ALLOW\"}]}",
                       "routes[0]",
                       "id_reuse_policy 'ALLOW' is not one keel knows");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_conflict_policy\": "
                       "\"TERMINATE_EXISTING\"}]}",
                       "routes[0]",
                       "id_conflict_policy 'TERMINATE_EXISTING' is not one");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"signal\": \"s\", \"workflow_id\": \"key\", "
                       "\"id_conflict_policy\": \"use_existing\"}]}",
                       "id_conflict_policy 'use_existing'", NULL);
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"start\": \"W\", "
                       "\"workflow_id\": \"key\", \"id_reuse_policy\": \"\"}]}",
                       "\"id_reuse_policy\" must be a non-empty string", NULL);
        /* a signal starts nothing: a policy there is a mistake */
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"signal\": \"s\", "
                       "\"workflow_id\": \"key\", \"id_reuse_policy\": "
                       "\"ALLOW_DUPLICATE\"}]}",
                       "routes[0]", "ID policies apply to starts only");
        expect_refused("{\"routes\": [{\"topic\": \"t\", \"signal\": \"s\", "
                       "\"workflow_id\": \"key\", \"id_conflict_policy\": "
                       "\"USE_EXISTING\"}]}",
                       "routes[0]", "ID policies apply to starts only");
}

static void test_ingress_routes_refuse_reserved_topics(void)
{
        static const char *const topics[] = {
            "keel.inbox",         "keel.history",        "keel.tasks.default",
            "__consumer_offsets", "__transaction_state", NULL};
        char doc[512], want[128];

        for (size_t i = 0; topics[i]; i++) {
                snprintf(doc, sizeof(doc),
                         "{\"routes\": [{\"topic\": \"orders\", \"start\": "
                         "\"W\", \"workflow_id\": \"key\"}, {\"topic\": "
                         "\"%s\", \"start\": \"W\", \"workflow_id\": "
                         "\"key\"}]}",
                         topics[i]);
                snprintf(want, sizeof(want), "topic %s is keel's or Kafka's",
                         topics[i]);
                expect_refused(doc, "routes[1]", want);
        }
}

/* Write text to a new temporary file; its path goes to path. */
static void write_temp(char *path, const char *text)
{
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(text, f);
        fclose(f);
}

static void test_ingress_routes_load_file(void)
{
        char path[] = "/tmp/keel-test-ingress-XXXXXX", err[512] = "";
        keel__ingress_routes_t *r = (keel__ingress_routes_t *)&r;

        write_temp(path, "{\"name\": \"from-file\",\n"
                         " \"routes\": [{\"topic\": \"t\", \"start\": \"W\",\n"
                         "              \"workflow_id\": \"key\"}]}\n");
        CU_ASSERT_EQUAL(keel__ingress_routes_load(path, &r, err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_STRING_EQUAL(keel__ingress_routes_name(r), "from-file");
        keel__ingress_routes_free(r);
        unlink(path);

        /* a comma missing on line 4 */
        strcpy(path, "/tmp/keel-test-ingress-XXXXXX");
        write_temp(path, "{\n"
                         "  \"routes\": [\n"
                         "    {\"topic\": \"t\",\n"
                         "     \"start\": \"W\" \"workflow_id\": \"key\"}\n"
                         "  ]\n"
                         "}\n");
        r = (keel__ingress_routes_t *)&r;
        CU_ASSERT_EQUAL(keel__ingress_routes_load(path, &r, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 4"));
        unlink(path);

        /* a member given twice is refused, not silently the last one */
        strcpy(path, "/tmp/keel-test-ingress-XXXXXX");
        write_temp(path, "{\"routes\": [{\"topic\": \"a\", \"topic\": \"b\",\n"
                         " \"start\": \"W\", \"workflow_id\": \"key\"}]}\n");
        r = (keel__ingress_routes_t *)&r;
        CU_ASSERT_EQUAL(keel__ingress_routes_load(path, &r, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 1"));
        unlink(path);

        /* the document's own errors come through */
        strcpy(path, "/tmp/keel-test-ingress-XXXXXX");
        write_temp(path, "{\"routes\": []}\n");
        r = (keel__ingress_routes_t *)&r;
        CU_ASSERT_EQUAL(keel__ingress_routes_load(path, &r, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "non-empty array"));
        unlink(path);

        /* a file that is not there */
        r = (keel__ingress_routes_t *)&r;
        CU_ASSERT_EQUAL(keel__ingress_routes_load(path, &r, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
}

/* ---- mapping ------------------------------------------------------------ */

static void test_ingress_map_start_from_key(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"name\": \"shop\", \"routes\": [{\"topic\": \"orders\", "
            "\"start\": \"Order\", \"workflow_id\": \"key\"}]}");
        keel__ingress_src_t src =
            src_of("orders", "order-7", "{ \"total\" : 12 }");
        json_t *rec = command(r, &src, START);

        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "order-7");
        CU_ASSERT_STRING_EQUAL(str(rec, "command_id"),
                               "ingress/shop/orders/3/42");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(rec, "ts")), NOW);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_type"), "Order");
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "{\"total\":12}");
        CU_ASSERT_STRING_EQUAL(str(rec, "id_reuse_policy"), "ALLOW_DUPLICATE");
        CU_ASSERT_STRING_EQUAL(str(rec, "id_conflict_policy"), "FAIL");
        CU_ASSERT_TRUE(json_is_null(json_object_get(rec, "signal_name")));
        CU_ASSERT_STRING_EQUAL(str(rec, "signal_payload"), "null");
        json_decref(rec);

        /* the command ID is the record's position, so each record has its
         * own */
        src.partition = 0;
        src.offset = 12345678901LL;
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "command_id"),
                               "ingress/shop/orders/0/12345678901");
        json_decref(rec);
        keel__ingress_routes_free(r);

        /* without a name, the name is "default" */
        r = routes_of("{\"routes\": [{\"topic\": \"orders\", \"start\": "
                      "\"Order\", \"workflow_id\": \"key\", "
                      "\"id_reuse_policy\": \"REJECT_DUPLICATE\"}]}");
        src = src_of("orders", "order-8", "1");
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "command_id"),
                               "ingress/default/orders/3/42");
        CU_ASSERT_STRING_EQUAL(str(rec, "id_reuse_policy"), "REJECT_DUPLICATE");
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "1");
        json_decref(rec);
        keel__ingress_routes_free(r);
}

/* Each record's command ID is its own, whatever the name: a cut-off ID
 * would make records at different offsets one command, and the
 * orchestrator would drop all but the first. A name too long for that is
 * refused. */
static void test_ingress_map_command_id_is_never_cut(void)
{
        char name[202], topic[250], doc[1024], want[1024];
        keel__ingress_routes_t *r;
        keel__ingress_src_t src;
        json_t *rec;

        /* the longest name, on a topic of Kafka's longest name (249) */
        memset(name, 'n', 200);
        name[200] = '\0';
        memset(topic, 't', 249);
        topic[249] = '\0';
        snprintf(doc, sizeof(doc),
                 "{\"name\": \"%s\", \"routes\": [{\"topic\": \"%s\", "
                 "\"start\": \"W\", \"workflow_id\": \"key\"}]}",
                 name, topic);
        r = routes_of(doc);
        src = src_of(topic, "k", "{}");
        src.partition = 2147483647;
        src.offset = 9223372036854775807LL;
        rec = command(r, &src, START);
        snprintf(want, sizeof(want), "ingress/%s/%s/2147483647/%s", name, topic,
                 "9223372036854775807");
        CU_ASSERT_STRING_EQUAL(str(rec, "command_id"), want);
        json_decref(rec);
        keel__ingress_routes_free(r);

        /* one byte more is refused */
        strcat(name, "n");
        snprintf(doc, sizeof(doc),
                 "{\"name\": \"%s\", \"routes\": [{\"topic\": \"t\", "
                 "\"start\": \"W\", \"workflow_id\": \"key\"}]}",
                 name);
        expect_refused(doc, "\"name\" is 201 bytes long",
                       "the most is 200 bytes");
}

static void test_ingress_map_id_from_value_member(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": [{\"topic\": \"orders\", \"start\": \"Order\", "
            "\"workflow_id\": \"value.order.id\"}]}");
        keel__ingress_src_t src =
            src_of("orders", NULL, "{\"order\": {\"id\": \"o-1\"}}");
        json_t *rec = command(r, &src, START);

        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "o-1");
        json_decref(rec);

        /* an integer is written in decimal */
        src = src_of("orders", NULL, "{\"order\": {\"id\": 9007199254740993}}");
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "9007199254740993");
        json_decref(rec);
        src = src_of("orders", NULL, "{\"order\": {\"id\": -5}}");
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "-5");
        json_decref(rec);
        keel__ingress_routes_free(r);

        /* the whole value, when it is a string */
        r = routes_of("{\"routes\": [{\"topic\": \"t\", \"signal\": \"s\", "
                      "\"workflow_id\": \"value\"}]}");
        src = src_of("t", NULL, "\"wf-9\"");
        rec = command(r, &src, SIGNAL);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "wf-9");
        CU_ASSERT_STRING_EQUAL(str(rec, "payload"), "\"wf-9\"");
        json_decref(rec);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_id_from_header(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": [{\"topic\": \"orders\", \"start\": \"Order\", "
            "\"workflow_id\": \"header.wf-id\", \"input\": "
            "\"header.trace\"}]}");
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
        keel__ingress_src_t src = src_of("orders", "k", "{}");
        json_t *rec;

        rd_kafka_header_add(hdrs, "trace", -1, "t-1", -1);
        rd_kafka_header_add(hdrs, "wf-id", -1, "h-1", -1);
        src.headers = hdrs;
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "h-1");
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "\"t-1\"");
        json_decref(rec);

        /* a header given twice: the last one */
        rd_kafka_header_add(hdrs, "wf-id", -1, "h-2", 3);
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "h-2");
        json_decref(rec);
        rd_kafka_headers_destroy(hdrs);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_id_prefix(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": [{\"topic\": \"orders\", \"start\": \"Order\", "
            "\"workflow_id\": \"key\", \"id_prefix\": \"order-\"}, "
            "{\"topic\": \"refunds\", \"signal\": \"refund\", "
            "\"workflow_id\": \"value.order\", \"id_prefix\": \"order-\"}]}");
        keel__ingress_src_t src = src_of("orders", "7", "{}");
        json_t *rec = command(r, &src, START);

        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "order-7");
        json_decref(rec);
        src = src_of("refunds", NULL, "{\"order\": 7}");
        rec = command(r, &src, SIGNAL);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "order-7");
        json_decref(rec);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_input_selectors(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"whole\", \"start\": \"W\", \"workflow_id\": "
            "  \"key\"},"
            " {\"topic\": \"member\", \"start\": \"W\", \"workflow_id\": "
            "  \"key\", \"input\": \"value.order\"},"
            " {\"topic\": \"deep\", \"start\": \"W\", \"workflow_id\": "
            "  \"key\", \"input\": \"value.order.n\"},"
            " {\"topic\": \"source\", \"start\": \"W\", \"workflow_id\": "
            "  \"key\", \"input\": \"source\"},"
            " {\"topic\": \"key\", \"start\": \"W\", \"workflow_id\": "
            "  \"key\", \"input\": \"key\"}]}");
        const char *value = "{\"order\": {\"n\": 5, \"items\": [1, 2]}}";
        keel__ingress_src_t src = src_of("whole", "k", value);
        json_t *rec = command(r, &src, START), *in;
        json_error_t je;

        in = json_loads(str(rec, "input"), 0, &je);
        CU_ASSERT_PTR_NOT_NULL(in);
        CU_ASSERT_EQUAL(json_integer_value(
                            json_object_get(json_object_get(in, "order"), "n")),
                        5);
        CU_ASSERT_PTR_NULL(strchr(str(rec, "input"), ' ')); /* compact */
        json_decref(in);
        json_decref(rec);

        src.topic = "member";
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "{\"n\":5,\"items\":[1,2]}");
        json_decref(rec);

        src.topic = "deep";
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "5");
        json_decref(rec);

        /* source: topic/partition/offset, and the value need not be JSON */
        src = src_of("source", "k", "not json");
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "\"source/3/42\"");
        json_decref(rec);
        src.value = NULL;
        src.value_len = 0;
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "\"source/3/42\"");
        json_decref(rec);

        src = src_of("key", "k-1", NULL);
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "\"k-1\"");
        json_decref(rec);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_when_selects_records(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": [{\"topic\": \"orders\", \"start\": \"Order\", "
            "\"workflow_id\": \"value.id\", \"when\": {\"value.type\": "
            "\"created\", \"header.source\": \"web\", \"value.v\": "
            "\"2\"}}]}");
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        keel__ingress_src_t src =
            src_of("orders", NULL,
                   "{\"type\": \"created\", \"id\": \"o-1\", \"v\": 2}");
        json_t *rec;

        rd_kafka_header_add(hdrs, "source", -1, "web", -1);
        src.headers = hdrs;
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "o-1");
        json_decref(rec);

        /* any condition not met: skipped, not dead */
        src.value = "{\"type\": \"shipped\", \"id\": \"o-1\", \"v\": 2}";
        src.value_len = strlen(src.value);
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        src.value = "{\"type\": \"created\", \"id\": \"o-1\", \"v\": 3}";
        src.value_len = strlen(src.value);
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        src.value = "{\"type\": \"created\", \"id\": \"o-1\"}";
        src.value_len = strlen(src.value);
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        src.value = "{\"type\": \"created\", \"id\": \"o-1\", \"v\": 2}";
        src.value_len = strlen(src.value);
        src.headers = NULL;
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        src.headers = hdrs;
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_COMMAND);

        /* a value "when" cannot read: a tombstone has no member, so the
         * condition does not hold; a value that is not JSON cannot say
         * whether a route wants it, and is dead rather than dropped */
        src.value = NULL;
        src.value_len = 0;
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        src.value = "{\"type\": \"created\", ";
        src.value_len = strlen(src.value);
        expect_dead(r, &src, "when value.type", "not JSON");

        /* a topic no route names */
        src.value = "{\"type\": \"created\", \"id\": \"o-1\", \"v\": 2}";
        src.value_len = strlen(src.value);
        src.topic = "payments";
        CU_ASSERT_EQUAL(verdict_of(r, &src), KEEL__INGRESS_SKIP);
        rd_kafka_headers_destroy(hdrs);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_first_matching_route_wins(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"other\", \"start\": \"Other\", \"workflow_id\": "
            "  \"key\"},"
            " {\"topic\": \"orders\", \"signal\": \"paid\", \"workflow_id\": "
            "  \"value.id\", \"when\": {\"value.type\": \"paid\"}},"
            " {\"topic\": \"orders\", \"start\": \"Order\", \"workflow_id\": "
            "  \"value.id\"},"
            " {\"topic\": \"orders\", \"start\": \"Never\", \"workflow_id\": "
            "  \"key\"}]}");
        keel__ingress_src_t src =
            src_of("orders", "k", "{\"type\": \"paid\", \"id\": \"o-1\"}");
        json_t *rec = command(r, &src, SIGNAL);

        CU_ASSERT_STRING_EQUAL(str(rec, "signal_name"), "paid");
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "o-1");
        json_decref(rec);

        src.value = "{\"type\": \"created\", \"id\": \"o-2\"}";
        src.value_len = strlen(src.value);
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_type"), "Order");
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "o-2");
        json_decref(rec);

        /* the first route that wants a record decides, even if it cannot
         * map it: the record is dead, not handed to the next route */
        src.value = "{\"type\": \"created\"}";
        src.value_len = strlen(src.value);
        expect_dead(r, &src, "value.id", "no such member");
        keel__ingress_routes_free(r);
}

static void test_ingress_map_signal(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"name\": \"pay\", \"routes\": [{\"topic\": \"payments\", "
            "\"signal\": \"paid\", \"workflow_id\": \"value.order\", "
            "\"input\": \"value.amount\"}]}");
        keel__ingress_src_t src = src_of(
            "payments", NULL, "{\"order\": \"o-1\", \"amount\": {\"eur\": 5}}");
        json_t *rec = command(r, &src, SIGNAL);

        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "o-1");
        CU_ASSERT_STRING_EQUAL(str(rec, "command_id"),
                               "ingress/pay/payments/3/42");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(rec, "ts")), NOW);
        CU_ASSERT_STRING_EQUAL(str(rec, "signal_name"), "paid");
        CU_ASSERT_STRING_EQUAL(str(rec, "payload"), "{\"eur\":5}");
        /* the workflow's current run */
        CU_ASSERT_PTR_NOT_NULL(json_object_get(rec, "run_id"));
        CU_ASSERT_TRUE(json_is_null(json_object_get(rec, "run_id")));
        CU_ASSERT_PTR_NULL(json_object_get(rec, "workflow_type"));
        json_decref(rec);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_signal_with_start(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"a\", \"start\": \"Order\", \"signal\": \"item\", "
            "  \"workflow_id\": \"key\", \"input\": \"value.item\"},"
            " {\"topic\": \"b\", \"start\": \"Order\", \"signal\": \"item\", "
            "  \"workflow_id\": \"key\", \"id_conflict_policy\": \"FAIL\", "
            "  \"id_reuse_policy\": \"REJECT_DUPLICATE\"}]}");
        keel__ingress_src_t src =
            src_of("a", "cart-1", "{\"item\": {\"sku\": \"x\"}}");
        json_t *rec = command(r, &src, START);

        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_id"), "cart-1");
        CU_ASSERT_STRING_EQUAL(str(rec, "workflow_type"), "Order");
        CU_ASSERT_STRING_EQUAL(str(rec, "signal_name"), "item");
        CU_ASSERT_STRING_EQUAL(str(rec, "input"), "{\"sku\":\"x\"}");
        CU_ASSERT_STRING_EQUAL(str(rec, "signal_payload"), "{\"sku\":\"x\"}");
        /* signals a running workflow instead of failing */
        CU_ASSERT_STRING_EQUAL(str(rec, "id_conflict_policy"), "USE_EXISTING");
        CU_ASSERT_STRING_EQUAL(str(rec, "id_reuse_policy"), "ALLOW_DUPLICATE");
        json_decref(rec);

        /* policies given are kept */
        src.topic = "b";
        rec = command(r, &src, START);
        CU_ASSERT_STRING_EQUAL(str(rec, "id_conflict_policy"), "FAIL");
        CU_ASSERT_STRING_EQUAL(str(rec, "id_reuse_policy"), "REJECT_DUPLICATE");
        CU_ASSERT_STRING_EQUAL(str(rec, "signal_payload"),
                               "{\"item\":{\"sku\":\"x\"}}");
        json_decref(rec);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_dead_value(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"t\", \"start\": \"W\", \"workflow_id\": "
            "  \"value.order.id\"},"
            " {\"topic\": \"k\", \"start\": \"W\", \"workflow_id\": \"key\", "
            "  \"input\": \"value.payload\"}]}");
        keel__ingress_src_t src = src_of("t", "k", "{\"order\": ");

        expect_dead(r, &src, "no workflow ID", "the value is not JSON");
        src.value = "";
        src.value_len = 0;
        expect_dead(r, &src, "the value is not JSON", NULL);
        src.value = NULL;
        expect_dead(r, &src, "no value", "tombstone");
        src = src_of("t", "k", "{\"order\": {\"number\": 1}}");
        expect_dead(r, &src, "value.order.id", "the value has no such member");
        src = src_of("t", "k", "{\"order\": \"o-1\"}");
        expect_dead(r, &src, "value.order.id",
                    "the value is not an object there");
        src = src_of("t", "k", "[{\"order\": {\"id\": \"o-1\"}}]");
        expect_dead(r, &src, "value.order.id", "not an object there");

        /* the same for the input */
        src = src_of("k", "k", "{\"id\": 1}");
        expect_dead(r, &src, "no input", "value.payload: the value has no");
        src = src_of("k", "k", "{bad");
        expect_dead(r, &src, "no input", "not JSON");
        src = src_of("k", "k", NULL);
        expect_dead(r, &src, "no input", "tombstone");

        /* an input too large for keel.inbox: dead, not a transaction the
         * broker refuses for ever; one byte less is fine */
        {
                size_t n = KEEL__INGRESS_MAX_INPUT + 20;
                char *big = malloc(n + 1);
                const char *type;
                json_t *rec;
                char why[600];
                CU_ASSERT_PTR_NOT_NULL_FATAL(big);
                /* {"payload":"xxx...x"}: the input is the quoted string */
                memcpy(big, "{\"payload\":\"", 12);
                memset(big + 12, 'x', n - 14);
                memcpy(big + n - 2, "\"}", 2);
                big[n] = '\0';
                src = src_of("k", "k", big);
                expect_dead(r, &src, "input from value.payload is", "limit");
                /* the quoted input is n - 12 bytes: cut it to the limit */
                memset(big + 12, 'x', KEEL__INGRESS_MAX_INPUT - 2);
                memcpy(big + 12 + KEEL__INGRESS_MAX_INPUT - 2, "\"}", 3);
                src = src_of("k", "k", big);
                CU_ASSERT_EQUAL(keel__ingress_map(r, &src, 0, &type, &rec, why,
                                                  sizeof(why)),
                                KEEL__INGRESS_COMMAND);
                json_decref(rec);
                free(big);
        }
        keel__ingress_routes_free(r);
}

static void test_ingress_map_dead_key_or_header(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"k\", \"start\": \"W\", \"workflow_id\": \"key\"},"
            " {\"topic\": \"h\", \"signal\": \"s\", \"workflow_id\": "
            "  \"header.wf\"}]}");
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        keel__ingress_src_t src = src_of("k", NULL, "{}");

        expect_dead(r, &src, "no workflow ID", "the record has no key");
        src = src_of("k", "\xff\xfe", "{}");
        expect_dead(r, &src, "key is not UTF-8", NULL);
        src = src_of("k", "a", "{}");
        src.key = "a\0b";
        src.key_len = 3;
        expect_dead(r, &src, "key holds a NUL byte", NULL);

        src = src_of("h", "k", "{}");
        expect_dead(r, &src, "the record has no header wf", NULL);
        rd_kafka_header_add(hdrs, "other", -1, "x", 1);
        src.headers = hdrs;
        expect_dead(r, &src, "the record has no header wf", NULL);
        rd_kafka_header_add(hdrs, "wf", -1, NULL, 0);
        expect_dead(r, &src, "the record has no header wf", NULL);
        rd_kafka_header_add(hdrs, "wf", -1, "\xc3\x28", 2);
        expect_dead(r, &src, "header.wf is not UTF-8", NULL);
        rd_kafka_headers_destroy(hdrs);
        keel__ingress_routes_free(r);
}

static void test_ingress_map_dead_bad_workflow_id(void)
{
        keel__ingress_routes_t *r = routes_of(
            "{\"routes\": ["
            " {\"topic\": \"k\", \"start\": \"W\", \"workflow_id\": \"key\"},"
            " {\"topic\": \"p\", \"start\": \"W\", \"workflow_id\": \"key\", "
            "  \"id_prefix\": \"p-\"},"
            " {\"topic\": \"v\", \"start\": \"W\", \"workflow_id\": "
            "  \"value.id\"}]}");
        static const char *const not_ids[] = {
            "{\"id\": {\"a\": 1}}", "{\"id\": [\"a\"]}", "{\"id\": true}",
            "{\"id\": null}",       "{\"id\": 1.5}",     NULL};
        char key[1200];
        keel__ingress_src_t src = src_of("k", "a\tb", "{}");
        json_t *rec;

        expect_dead(r, &src, "bad workflow ID from key",
                    "holds a control character");
        src = src_of("k", "a\x7f", "{}");
        expect_dead(r, &src, "control character", NULL);
        src = src_of("k", "!system", "{}");
        expect_dead(r, &src, "bad workflow ID from key", "starts with '!'");
        src = src_of("k", "a!", "{}");
        rec = command(r, &src, START);
        json_decref(rec);

        /* 1000 bytes is the most */
        memset(key, 'x', 1000);
        key[1000] = '\0';
        src = src_of("k", key, "{}");
        rec = command(r, &src, START);
        CU_ASSERT_EQUAL(strlen(str(rec, "workflow_id")), 1000);
        json_decref(rec);
        key[1000] = 'x';
        key[1001] = '\0';
        src = src_of("k", key, "{}");
        expect_dead(r, &src, "1001 bytes", NULL);
        memset(key, 'x', sizeof(key) - 1);
        key[sizeof(key) - 1] = '\0';
        src = src_of("k", key, "{}");
        expect_dead(r, &src, "1199 bytes", NULL);
        /* the prefix counts */
        key[999] = '\0';
        src = src_of("p", key, "{}");
        expect_dead(r, &src, "bad workflow ID from key", "1001 bytes long");
        key[998] = '\0';
        src = src_of("p", key, "{}");
        rec = command(r, &src, START);
        CU_ASSERT_EQUAL(strlen(str(rec, "workflow_id")), 1000);
        CU_ASSERT_EQUAL(strncmp(str(rec, "workflow_id"), "p-x", 3), 0);
        json_decref(rec);

        for (size_t i = 0; not_ids[i]; i++) {
                src = src_of("v", "k", not_ids[i]);
                expect_dead(r, &src, "no workflow ID",
                            "value.id is not a string or an integer");
        }
        src = src_of("v", "k", "{\"id\": \"\"}");
        expect_dead(r, &src, "the workflow ID is empty", NULL);
        keel__ingress_routes_free(r);
}

static CU_TestInfo tests[] = {
    {"test_ingress_routes_valid_document", test_ingress_routes_valid_document},
    {"test_ingress_routes_document_errors",
     test_ingress_routes_document_errors},
    {"test_ingress_routes_route_errors", test_ingress_routes_route_errors},
    {"test_ingress_routes_selector_errors",
     test_ingress_routes_selector_errors},
    {"test_ingress_routes_policy_errors", test_ingress_routes_policy_errors},
    {"test_ingress_routes_refuse_reserved_topics",
     test_ingress_routes_refuse_reserved_topics},
    {"test_ingress_routes_load_file", test_ingress_routes_load_file},
    {"test_ingress_map_start_from_key", test_ingress_map_start_from_key},
    {"test_ingress_map_command_id_is_never_cut",
     test_ingress_map_command_id_is_never_cut},
    {"test_ingress_map_id_from_value_member",
     test_ingress_map_id_from_value_member},
    {"test_ingress_map_id_from_header", test_ingress_map_id_from_header},
    {"test_ingress_map_id_prefix", test_ingress_map_id_prefix},
    {"test_ingress_map_input_selectors", test_ingress_map_input_selectors},
    {"test_ingress_map_when_selects_records",
     test_ingress_map_when_selects_records},
    {"test_ingress_map_first_matching_route_wins",
     test_ingress_map_first_matching_route_wins},
    {"test_ingress_map_signal", test_ingress_map_signal},
    {"test_ingress_map_signal_with_start", test_ingress_map_signal_with_start},
    {"test_ingress_map_dead_value", test_ingress_map_dead_value},
    {"test_ingress_map_dead_key_or_header",
     test_ingress_map_dead_key_or_header},
    {"test_ingress_map_dead_bad_workflow_id",
     test_ingress_map_dead_bad_workflow_id},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("ingress", tests)
