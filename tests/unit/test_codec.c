/*
 * test_codec.c: every keel record type round-trips through the Avro
 * single-object codec; defaults, schema errors and schema evolution behave
 * as schemas/README.md says.
 */
#include "keel/codec.h"
#include "keel/error.h"
#include "keel_test.h"
#include "schema_int.h"

#include <string.h>

/* A value for every field of a record schema, built from its JSON text:
 * `full` fills optional (union) fields with their non-null branch, else
 * they are left out so their defaults apply. */
static json_t *sample(const json_t *t, int full, int depth);

static json_t *sample_named(const json_t *t, int full, int depth)
{
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type)
                return sample(json_object_get(t, "type"), full, depth);
        if (!strcmp(type, "record")) {
                json_t *o = json_object();
                size_t i;
                json_t *f;
                json_array_foreach(json_object_get(t, "fields"), i, f)
                {
                        const json_t *ft = json_object_get(f, "type");
                        if (!full && json_object_get(f, "default"))
                                continue;
                        json_object_set_new(
                            o, json_string_value(json_object_get(f, "name")),
                            sample(ft, full, depth + 1));
                }
                return o;
        }
        if (!strcmp(type, "enum")) {
                json_t *syms = json_object_get(t, "symbols");
                return json_incref(
                    json_array_get(syms, json_array_size(syms) - 1));
        }
        if (!strcmp(type, "array")) {
                json_t *a = json_array();
                for (int i = 0; i < 2; i++)
                        json_array_append_new(
                            a, sample(json_object_get(t, "items"), full,
                                      depth + 1));
                return a;
        }
        if (!strcmp(type, "long") && json_object_get(t, "logicalType"))
                return json_integer(1764032400123LL);
        return sample(json_object_get(t, "type"), full, depth);
}

static json_t *sample(const json_t *t, int full, int depth)
{
        if (depth > 10)
                return json_null();
        if (json_is_array(t)) /* union: the non-null branch */
                return sample(json_array_get(t, json_array_size(t) - 1), full,
                              depth + 1);
        if (json_is_object(t))
                return sample_named(t, full, depth);
        {
                const char *p = json_string_value(t);
                if (!strcmp(p, "string"))
                        return json_string("{\"k\": \"v\\u00e9 \\u2603\"}");
                if (!strcmp(p, "long"))
                        return json_integer(-9007199254740993LL);
                if (!strcmp(p, "int"))
                        return json_integer(-2147483647 - 1);
                if (!strcmp(p, "boolean"))
                        return json_true();
                if (!strcmp(p, "double"))
                        return json_real(2.5);
                if (!strcmp(p, "bytes"))
                        return json_string("\x01\xc3\xbf\x7f");
        }
        return json_null();
}

static json_t *schema_json(const char *type)
{
        const char *text;
        CU_ASSERT_EQUAL_FATAL(keel_schema_text(type, &text), KEEL_OK);
        return json_loads(text, 0, NULL);
}

static void roundtrip_all(int full)
{
        for (size_t i = 0; i < keel_schema_count(); i++) {
                const char *name = keel_schema_name(i), *got_type;
                json_t *sj = schema_json(name);
                json_t *rec = sample(sj, full, 0), *back = NULL;
                unsigned char *buf = NULL;
                size_t len = 0;
                char err[256] = "";
                uint64_t fp, hfp = 0;
                int rc =
                    keel_codec_encode(name, rec, &buf, &len, err, sizeof(err));
                if (rc)
                        fprintf(stderr, "%s: %s\n", name, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
                /* single-object header: C3 01 + fingerprint, LE */
                CU_ASSERT_EQUAL(buf[0], 0xC3);
                CU_ASSERT_EQUAL(buf[1], 0x01);
                keel_schema_fingerprint(name, &fp);
                for (int b = 0; b < 8; b++)
                        hfp |= (uint64_t)buf[2 + b] << (8 * b);
                CU_ASSERT_EQUAL(hfp, fp);
                rc = keel_codec_decode(buf, len, &got_type, &back, err,
                                       sizeof(err));
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
                CU_ASSERT_STRING_EQUAL(got_type, name);
                if (full) {
                        CU_ASSERT(json_equal(rec, back));
                } else {
                        /* Every field is present after decoding, the
                         * omitted ones with their defaults. */
                        CU_ASSERT(
                            json_object_size(back) ==
                            json_array_size(json_object_get(sj, "fields")));
                }
                free(buf);
                json_decref(back);
                json_decref(rec);
                json_decref(sj);
        }
}

static void test_codec_roundtrip_every_type_full(void)
{
        roundtrip_all(1);
}

static void test_codec_roundtrip_every_type_defaults(void)
{
        roundtrip_all(0);
}

static void test_codec_known_bytes(void)
{
        /* TimerFired{"w","r",1,2,3,"t"}: each string is zigzag length + bytes,
         * each long a zigzag varint (1 -> 02, 2 -> 04, 3 -> 06). */
        static const unsigned char body[] = {0x02, 'w',  0x02, 'r', 0x02,
                                             0x04, 0x06, 0x02, 't'};
        json_t *rec =
            json_pack("{ss ss sI sI sI ss}", "workflow_id", "w", "run_id", "r",
                      "seq", (json_int_t)1, "epoch", (json_int_t)2, "ts",
                      (json_int_t)3, "timer_id", "t");
        unsigned char *buf;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.history.TimerFired", rec,
                                                &buf, &len, NULL, 0),
                              KEEL_OK);
        CU_ASSERT_EQUAL(len, KEEL_RECORD_HEADER_BYTES + sizeof(body));
        CU_ASSERT(!memcmp(buf + KEEL_RECORD_HEADER_BYTES, body, sizeof(body)));
        free(buf);
        json_decref(rec);
}

static void test_codec_defaults_fill_omitted_fields(void)
{
        json_t *rec =
            json_pack("{ss ss sI ss}", "workflow_id", "order-1", "command_id",
                      "c1", "ts", (json_int_t)5, "workflow_type", "payment");
        json_t *back;
        const char *type;
        unsigned char *buf;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.inbox.StartWorkflow", rec,
                                                &buf, &len, NULL, 0),
                              KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_decode(buf, len, &type, &back, NULL, 0), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(back, "input")), "null");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(back, "id_reuse_policy")),
            "ALLOW_DUPLICATE");
        CU_ASSERT(json_is_null(json_object_get(back, "run_timeout_ms")));
        free(buf);
        json_decref(rec);
        json_decref(back);
}

static void expect_schema_error(const char *type, json_t *rec, const char *path)
{
        unsigned char *buf = (unsigned char *)"x";
        size_t len = 7;
        char err[256] = "";
        CU_ASSERT_EQUAL(
            keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)),
            KEEL_ERR_SCHEMA);
        CU_ASSERT_PTR_NULL(buf);
        CU_ASSERT_EQUAL(len, 0);
        if (!strstr(err, path))
                fprintf(stderr, "error '%s' does not name '%s'\n", err, path);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
        json_decref(rec);
}

static void test_codec_encode_errors_name_the_field(void)
{
        /* required field missing */
        expect_schema_error("keel.history.TimerFired",
                            json_pack("{ss ss sI sI sI}", "workflow_id", "w",
                                      "run_id", "r", "seq", (json_int_t)1,
                                      "epoch", (json_int_t)1, "ts",
                                      (json_int_t)1),
                            "timer_id");
        /* wrong type */
        expect_schema_error("keel.history.TimerFired",
                            json_pack("{ss ss ss sI sI ss}", "workflow_id", "w",
                                      "run_id", "r", "seq", "one", "epoch",
                                      (json_int_t)1, "ts", (json_int_t)1,
                                      "timer_id", "t"),
                            "seq");
        /* unknown enum symbol */
        expect_schema_error("keel.inbox.StartWorkflow",
                            json_pack("{ss ss sI ss ss}", "workflow_id", "w",
                                      "command_id", "c", "ts", (json_int_t)1,
                                      "workflow_type", "p", "id_reuse_policy",
                                      "SOMETIMES"),
                            "id_reuse_policy");
        /* nested field of a nested record */
        expect_schema_error("keel.inbox.ActivityFailed",
                            json_pack("{ss ss sI ss ss si s{ss si}}",
                                      "workflow_id", "w", "command_id", "c",
                                      "ts", (json_int_t)1, "run_id", "r",
                                      "activity_id", "a", "attempt", 1,
                                      "failure", "type", "X", "message", 3),
                            "failure.message");
        /* int out of range */
        expect_schema_error("keel.history.PartitionClaim",
                            json_pack("{sI sI ss sI}", "partition",
                                      (json_int_t)1 << 40, "epoch",
                                      (json_int_t)1, "owner", "o", "ts",
                                      (json_int_t)1),
                            "partition");
}

static void test_codec_unknown_type_and_bad_args(void)
{
        json_t *rec = json_object();
        unsigned char *buf;
        size_t len;
        const char *type;
        json_t *out;
        CU_ASSERT_EQUAL(
            keel_codec_encode("keel.NoSuch", rec, &buf, &len, NULL, 0),
            KEEL_ERR_UNKNOWN_SCHEMA);
        CU_ASSERT_EQUAL(keel_codec_encode(NULL, rec, &buf, &len, NULL, 0),
                        KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel_codec_decode(NULL, 3, &type, &out, NULL, 0),
                        KEEL_ERR_INVALID_ARG);
        json_decref(rec);
}

static void test_codec_rejects_oversized(void)
{
        size_t big = KEEL_RECORD_MAX_BYTES + 1;
        char *s = malloc(big);
        json_t *rec;
        unsigned char *buf;
        size_t len;
        const char *type;
        json_t *out;
        memset(s, 'a', big - 1);
        s[big - 1] = '\0';
        rec = json_pack("{ss ss sI sI sI ss}", "workflow_id", "w", "run_id",
                        "r", "seq", (json_int_t)1, "epoch", (json_int_t)1, "ts",
                        (json_int_t)1, "timer_id", s);
        CU_ASSERT_EQUAL(keel_codec_encode("keel.history.TimerFired", rec, &buf,
                                          &len, NULL, 0),
                        KEEL_ERR_TOO_LARGE);
        CU_ASSERT_EQUAL(keel_codec_decode(s, big, &type, &out, NULL, 0),
                        KEEL_ERR_TOO_LARGE);
        CU_ASSERT_PTR_NULL(out);
        json_decref(rec);
        free(s);
}

static void test_codec_decode_errors(void)
{
        unsigned char *buf;
        size_t len;
        const char *type = "x";
        json_t *out, *rec = json_pack("{ss ss sI sI sI ss}", "workflow_id", "w",
                                      "run_id", "r", "seq", (json_int_t)1,
                                      "epoch", (json_int_t)1, "ts",
                                      (json_int_t)1, "timer_id", "t");
        char err[256];
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.history.TimerFired", rec,
                                                &buf, &len, NULL, 0),
                              KEEL_OK);
        /* every proper prefix is truncated */
        for (size_t n = 0; n < len; n++) {
                int rc =
                    keel_codec_decode(buf, n, &type, &out, err, sizeof(err));
                CU_ASSERT_EQUAL(rc, KEEL_ERR_TRUNCATED);
                CU_ASSERT_PTR_NULL(out);
                CU_ASSERT_PTR_NULL(type);
        }
        /* trailing bytes */
        {
                unsigned char *longer = malloc(len + 1);
                memcpy(longer, buf, len);
                longer[len] = 0;
                CU_ASSERT_EQUAL(keel_codec_decode(longer, len + 1, &type, &out,
                                                  err, sizeof(err)),
                                KEEL_ERR_CORRUPT);
                free(longer);
        }
        /* unknown fingerprint */
        buf[5] ^= 0x40;
        CU_ASSERT_EQUAL(
            keel_codec_decode(buf, len, &type, &out, err, sizeof(err)),
            KEEL_ERR_UNKNOWN_SCHEMA);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "fingerprint"));
        buf[5] ^= 0x40;
        /* bad magic */
        buf[0] = 0x00;
        CU_ASSERT_EQUAL(
            keel_codec_decode(buf, len, &type, &out, err, sizeof(err)),
            KEEL_ERR_CORRUPT);
        buf[0] = 0xC3;
        /* a string length far beyond the record */
        buf[KEEL_RECORD_HEADER_BYTES] = 0xfe;
        CU_ASSERT_EQUAL(
            keel_codec_decode(buf, len, &type, &out, err, sizeof(err)),
            KEEL_ERR_TRUNCATED);
        /* a negative string length */
        buf[KEEL_RECORD_HEADER_BYTES] = 0x01;
        CU_ASSERT_EQUAL(
            keel_codec_decode(buf, len, &type, &out, err, sizeof(err)),
            KEEL_ERR_CORRUPT);
        free(buf);
        json_decref(rec);
}

static void test_codec_decodes_records_of_an_older_schema(void)
{
        /* An older CancelWorkflow without `reason`: its records decode as
         * the current CancelWorkflow, with reason's default. */
        static const char old_text[] =
            "{\"type\":\"record\",\"name\":\"CancelWorkflow\",\"namespace\":"
            "\"keel.inbox\",\"fields\":[{\"name\":\"workflow_id\",\"type\":"
            "\"string\"},{\"name\":\"command_id\",\"type\":\"string\"},"
            "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"run_id\","
            "\"type\":[\"null\",\"string\"],\"default\":null}]}";
        keel__schema_t old;
        const keel__schema_t *cur =
            keel__schema_by_name("keel.inbox.CancelWorkflow");
        char err[256];
        json_t *rec = json_pack("{ss ss sI}", "workflow_id", "w1", "command_id",
                                "c1", "ts", (json_int_t)9);
        json_t *back;
        unsigned char *buf;
        size_t len;

        CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
        CU_ASSERT_EQUAL_FATAL(keel__schema_parse(&old, "archive/old.avsc",
                                                 old_text, err, sizeof(err)),
                              0);
        CU_ASSERT_NOT_EQUAL(old.fp, cur->fp);
        CU_ASSERT_EQUAL_FATAL(
            keel__codec_encode_with(&old, rec, &buf, &len, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            keel__codec_decode_with(&old, cur, buf + KEEL_RECORD_HEADER_BYTES,
                                    len - KEEL_RECORD_HEADER_BYTES, &back, err,
                                    sizeof(err)),
            KEEL_OK);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(back, "workflow_id")), "w1");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(back, "reason")), "");
        CU_ASSERT(json_is_null(json_object_get(back, "run_id")));
        free(buf);
        json_decref(back);
        json_decref(rec);
        keel__schema_clear(&old);
}

static int contains(const unsigned char *buf, size_t len, const char *pat,
                    size_t n)
{
        for (size_t i = 0; i + n <= len; i++)
                if (!memcmp(buf + i, pat, n))
                        return 1;
        return 0;
}

static void test_codec_bytes_and_unicode(void)
{
        /* DeadLetter.value is bytes: code points 0-255 map to bytes. */
        json_t *rec = json_pack(
            "{ss si sI sn ss ss ss ss sI}", "source_topic", "keel.inbox",
            "source_partition", 3, "source_offset", (json_int_t)42, "key",
            "value", "\xc3\x83\x01\xc3\xbf", "error", "KEEL_ERR_CORRUPT",
            "reason", "caf\xc3\xa9 \xe2\x98\x83", "component", "orchestrator",
            "ts", (json_int_t)1);
        json_t *back, *notlatin;
        const char *type;
        unsigned char *buf;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_encode("keel.dlq.DeadLetter", rec, &buf, &len, NULL, 0),
            KEEL_OK);
        /* the value's 3 bytes C3 01 FF are in the body */
        CU_ASSERT(contains(buf, len, "\x06\xc3\x01\xff", 4));
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_decode(buf, len, &type, &back, NULL, 0), KEEL_OK);
        CU_ASSERT(json_equal(rec, back));
        free(buf);
        json_decref(back);
        /* a code point above 255 is not a byte */
        notlatin =
            json_pack("{ss si sI ss ss ss ss sI}", "source_topic", "t",
                      "source_partition", 0, "source_offset", (json_int_t)0,
                      "value", "\xe2\x98\x83", "error", "e", "reason", "r",
                      "component", "c", "ts", (json_int_t)1);
        CU_ASSERT_EQUAL(keel_codec_encode("keel.dlq.DeadLetter", notlatin, &buf,
                                          &len, NULL, 0),
                        KEEL_ERR_SCHEMA);
        json_decref(notlatin);
        json_decref(rec);
}

static void test_codec_item_count_is_bounded(void)
{
        /* A small record claiming a huge array of empty strings must not
         * make the decoder allocate without bound. */
        json_t *rec =
            json_pack("{ss ss sI sI sI ss ss ss ss s{s[]}}", "workflow_id", "w",
                      "run_id", "r", "seq", (json_int_t)1, "epoch",
                      (json_int_t)1, "ts", (json_int_t)1, "activity_id", "a",
                      "activity_type", "t", "task_queue", "q", "input", "null",
                      "retry_policy", "non_retryable_error_types");
        unsigned char *buf, *big;
        size_t len, n = 200000, blen;
        const char *type;
        json_t *out;
        char err[256];

        CU_ASSERT_EQUAL_FATAL(
            keel_codec_encode("keel.history.ActivityScheduled", rec, &buf, &len,
                              NULL, 0),
            KEEL_OK);
        /* The record ends with the empty array (a single 0 byte) and the
         * boolean `cancellable` (01). Replace the array by a block of n
         * empty strings. */
        CU_ASSERT_EQUAL_FATAL(buf[len - 2], 0);
        CU_ASSERT_EQUAL_FATAL(buf[len - 1], 1);
        big = malloc(len - 2 + 4 + n + 2);
        memcpy(big, buf, len - 2);
        blen = len - 2;
        {
                uint64_t z = (uint64_t)n << 1; /* zigzag of a positive */
                while (z >= 0x80) {
                        big[blen++] = (unsigned char)(z | 0x80);
                        z >>= 7;
                }
                big[blen++] = (unsigned char)z;
        }
        memset(big + blen, 0, n); /* n empty strings */
        blen += n;
        big[blen++] = 0; /* end of blocks */
        big[blen++] = 1; /* cancellable */
        CU_ASSERT_EQUAL(
            keel_codec_decode(big, blen, &type, &out, err, sizeof(err)),
            KEEL_ERR_TOO_LARGE);
        CU_ASSERT_PTR_NULL(out);
        free(big);
        free(buf);
        json_decref(rec);
}

static void test_codec_older_record_lacking_required_field_fails(void)
{
        /* A writer schema without a field the reader requires (no
         * default): Avro's resolution rules make that an error. */
        static const char old_text[] =
            "{\"type\":\"record\",\"name\":\"TimerFired\",\"namespace\":"
            "\"keel.history\",\"fields\":[{\"name\":\"workflow_id\","
            "\"type\":\"string\"}]}";
        keel__schema_t old;
        const keel__schema_t *cur =
            keel__schema_by_name("keel.history.TimerFired");
        json_t *rec = json_pack("{ss}", "workflow_id", "w"), *back;
        unsigned char *buf;
        size_t len;
        char err[256] = "";

        CU_ASSERT_EQUAL_FATAL(keel__schema_parse(&old, "archive/t.avsc",
                                                 old_text, err, sizeof(err)),
                              0);
        CU_ASSERT_EQUAL_FATAL(
            keel__codec_encode_with(&old, rec, &buf, &len, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel__codec_decode_with(&old, cur,
                                                buf + KEEL_RECORD_HEADER_BYTES,
                                                len - KEEL_RECORD_HEADER_BYTES,
                                                &back, err, sizeof(err)),
                        KEEL_ERR_SCHEMA);
        CU_ASSERT_PTR_NULL(back);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "run_id"));
        free(buf);
        json_decref(rec);
        keel__schema_clear(&old);
}

static CU_TestInfo tests[] = {
    {"test_codec_item_count_is_bounded", test_codec_item_count_is_bounded},
    {"test_codec_older_record_lacking_required_field_fails",
     test_codec_older_record_lacking_required_field_fails},
    {"test_codec_roundtrip_every_type_full",
     test_codec_roundtrip_every_type_full},
    {"test_codec_roundtrip_every_type_defaults",
     test_codec_roundtrip_every_type_defaults},
    {"test_codec_known_bytes", test_codec_known_bytes},
    {"test_codec_defaults_fill_omitted_fields",
     test_codec_defaults_fill_omitted_fields},
    {"test_codec_encode_errors_name_the_field",
     test_codec_encode_errors_name_the_field},
    {"test_codec_unknown_type_and_bad_args",
     test_codec_unknown_type_and_bad_args},
    {"test_codec_rejects_oversized", test_codec_rejects_oversized},
    {"test_codec_decode_errors", test_codec_decode_errors},
    {"test_codec_decodes_records_of_an_older_schema",
     test_codec_decodes_records_of_an_older_schema},
    {"test_codec_bytes_and_unicode", test_codec_bytes_and_unicode},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("codec", tests)
