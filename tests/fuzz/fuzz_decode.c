/*
 * fuzz_decode.c: a libFuzzer target for keel_codec_decode(), the function
 * that reads every record keel takes from a topic. Any input must give
 * KEEL_OK or one of the four input errors (never a crash, a leak or an
 * other error), with both out-parameters NULL on error; a record that
 * decodes must encode again and decode to the same JSON. A broken
 * promise aborts, which libFuzzer reports as a crash. Built only with
 * KEEL_FUZZ=ON under clang (tests/fuzz/CMakeLists.txt); run it with
 * tests/fuzz/run-fuzz.sh.
 */
#include "keel/codec.h"
#include "keel/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *detail)
{
        fprintf(stderr, "fuzz_decode: %s: %s\n", what, detail);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t empty[1];
        char err[256] = "";
        const char *type = "unset", *type2 = NULL;
        json_t *rec = NULL, *rec2 = NULL;
        unsigned char *out = NULL;
        size_t out_len = 0;
        int rc;

        rc = keel_codec_decode(data ? data : empty, size, &type, &rec, err,
                               sizeof(err));
        switch (rc) {
        case KEEL_OK:
                break;
        case KEEL_ERR_TRUNCATED:
        case KEEL_ERR_CORRUPT:
        case KEEL_ERR_UNKNOWN_SCHEMA:
        case KEEL_ERR_TOO_LARGE:
                if (type || rec)
                        broken("out-parameter set on error", err);
                return 0;
        default:
                broken("unexpected error", keel_err_name(rc));
        }
        if (!type || !rec)
                broken("out-parameter unset on success", "");

        rc = keel_codec_encode(type, rec, &out, &out_len, err, sizeof(err));
        if (rc != KEEL_OK)
                broken("decoded record does not re-encode", err);
        rc = keel_codec_decode(out, out_len, &type2, &rec2, err, sizeof(err));
        if (rc != KEEL_OK)
                broken("re-encoded record does not decode", err);
        if (strcmp(type, type2) || !json_equal(rec, rec2))
                broken("second trip changed the record", type);
        json_decref(rec2);
        json_decref(rec);
        free(out);
        return 0;
}
