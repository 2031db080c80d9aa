/*
 * schema_cmd.c: `keel schema` (list, show, canonical, fingerprint) and
 * `keel codec` (encode, decode): keel's wire format from the shell.
 */
#include "cli.h"

#include "app.h"
#include "keel/codec.h"
#include "keel/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_usage[] =
    "Usage: keel schema list\n"
    "       keel schema show TYPE          the .avsc text\n"
    "       keel schema canonical TYPE     its Parsing Canonical Form\n"
    "       keel schema fingerprint TYPE   its CRC-64-AVRO fingerprint (hex)\n"
    "TYPE is a full name such as keel.history.TimerFired.\n";

int keel_cli_schema(int argc, char **argv)
{
        const char *s;
        uint64_t fp;

        if (argc == 2 && !strcmp(argv[1], "list")) {
                for (size_t i = 0; i < keel_schema_count(); i++) {
                        keel_schema_fingerprint(keel_schema_name(i), &fp);
                        printf("%016llx %s\n", (unsigned long long)fp,
                               keel_schema_name(i));
                }
                return KEEL_EXIT_OK;
        }
        if (argc == 2 &&
            (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
                fputs(schema_usage, stdout);
                return KEEL_EXIT_OK;
        }
        if (argc != 3) {
                fputs(schema_usage, stderr);
                return KEEL_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "show") && !keel_schema_text(argv[2], &s)) {
                fputs(s, stdout);
                return KEEL_EXIT_OK;
        }
        if (!strcmp(argv[1], "canonical") &&
            !keel_schema_canonical(argv[2], &s)) {
                printf("%s\n", s);
                return KEEL_EXIT_OK;
        }
        if (!strcmp(argv[1], "fingerprint") &&
            !keel_schema_fingerprint(argv[2], &fp)) {
                printf("%016llx\n", (unsigned long long)fp);
                return KEEL_EXIT_OK;
        }
        if (keel_schema_fingerprint(argv[2], &fp)) {
                fprintf(stderr,
                        "keel schema: no schema named '%s' (see "
                        "'keel schema list')\n",
                        argv[2]);
                return KEEL_EXIT_FAILURE;
        }
        fputs(schema_usage, stderr);
        return KEEL_EXIT_USAGE;
}

static const char codec_usage[] =
    "Usage: keel codec encode TYPE < record.json > record.bin\n"
    "       keel codec decode < record.bin\n"
    "encode: a JSON object shaped like schema TYPE to one Avro single-object\n"
    "record; decode: one record to a JSON object "
    "{\"type\":..,\"record\":..}.\n";

/* Read all of stdin (at most max bytes + 1, to detect oversize). */
static unsigned char *read_stdin(size_t max, size_t *len)
{
        size_t cap = 65536, n = 0;
        unsigned char *buf = malloc(cap);
        while (buf) {
                size_t r;
                if (n == cap) {
                        unsigned char *b;
                        if (cap > max)
                                break;
                        b = realloc(buf, cap * 2);
                        if (!b) {
                                free(buf);
                                return NULL;
                        }
                        buf = b;
                        cap *= 2;
                }
                r = fread(buf + n, 1, cap - n, stdin);
                n += r;
                if (!r)
                        break;
        }
        *len = n;
        return buf;
}

int keel_cli_codec(int argc, char **argv)
{
        char err[512];
        size_t len;
        unsigned char *in;
        int rc;

        if (argc == 2 &&
            (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
                fputs(codec_usage, stdout);
                return KEEL_EXIT_OK;
        }
        if (!((argc == 3 && !strcmp(argv[1], "encode")) ||
              (argc == 2 && !strcmp(argv[1], "decode")))) {
                fputs(codec_usage, stderr);
                return KEEL_EXIT_USAGE;
        }
        in = read_stdin(KEEL_RECORD_MAX_BYTES, &len);
        if (!in) {
                fprintf(stderr, "keel codec: out of memory\n");
                return KEEL_EXIT_FAILURE;
        }
        if (!strcmp(argv[1], "encode")) {
                json_error_t jerr;
                json_t *j = json_loadb((const char *)in, len, 0, &jerr);
                unsigned char *out;
                size_t out_len;
                free(in);
                if (!j) {
                        fprintf(stderr,
                                "keel codec: input is not JSON: "
                                "line %d: %s\n",
                                jerr.line, jerr.text);
                        return KEEL_EXIT_FAILURE;
                }
                rc = keel_codec_encode(argv[2], j, &out, &out_len, err,
                                       sizeof(err));
                json_decref(j);
                if (rc) {
                        fprintf(stderr, "keel codec: %s: %s\n",
                                keel_err_name(rc), err);
                        return KEEL_EXIT_FAILURE;
                }
                fwrite(out, 1, out_len, stdout);
                free(out);
                return KEEL_EXIT_OK;
        } else {
                const char *type;
                json_t *rec, *j;
                char *s;
                rc = keel_codec_decode(in, len, &type, &rec, err, sizeof(err));
                free(in);
                if (rc) {
                        fprintf(stderr, "keel codec: %s: %s\n",
                                keel_err_name(rc), err);
                        return KEEL_EXIT_FAILURE;
                }
                j = json_pack("{ss so}", "type", type, "record", rec);
                s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(j);
                return s ? KEEL_EXIT_OK : KEEL_EXIT_FAILURE;
        }
}
