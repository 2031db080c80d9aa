/*
 * codec.c: Avro binary encoding of keel's records, driven by the parsed
 * schemas of schema.c, to and from jansson values (keel/codec.h).
 *
 * The decoder reads bytes from outside, so every length, count, union
 * index and enum index is checked against the schema and against the
 * bytes that remain before anything is allocated for it.
 */
#include "keel/codec.h"
#include "codec_int.h"
#include "error_int.h"
#include "keel/error.h"
#include "schema_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
/* Array and map items one record may hold: bounds what a small record can
 * make the decoder allocate (each item becomes a JSON value). */
#define MAX_ITEMS 100000
#define MAGIC0    0xC3
#define MAGIC1    0x01

/* ---- encoding --------------------------------------------------------- */

typedef struct enc_s {
        unsigned char *buf;
        size_t len, cap;
        int err;
        char *errstr;
        size_t errsize;
        char path[256]; /* field path for error messages */
} enc_t;

static int put(enc_t *e, const void *p, size_t n)
{
        if (e->len + n > KEEL_RECORD_MAX_BYTES) {
                e->err = keel__fail(e->errstr, e->errsize, KEEL_ERR_TOO_LARGE,
                                    "record exceeds %d bytes",
                                    KEEL_RECORD_MAX_BYTES);
                return -1;
        }
        if (e->len + n > e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 256;
                unsigned char *b;
                while (cap < e->len + n)
                        cap *= 2;
                b = realloc(e->buf, cap);
                if (!b) {
                        e->err = keel__fail(e->errstr, e->errsize,
                                            KEEL_ERR_NOMEM, "out of memory");
                        return -1;
                }
                e->buf = b;
                e->cap = cap;
        }
        memcpy(e->buf + e->len, p, n);
        e->len += n;
        return 0;
}

static int put_long(enc_t *e, int64_t v)
{
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        unsigned char b[10];
        size_t n = 0;
        do {
                unsigned char c = z & 0x7f;
                z >>= 7;
                b[n++] = (unsigned char)(z ? (c | 0x80) : c);
        } while (z);
        return put(e, b, n);
}

static int enc_mismatch(enc_t *e, const char *want)
{
        e->err = keel__fail(e->errstr, e->errsize, KEEL_ERR_SCHEMA,
                            "field '%s': expected %s",
                            e->path[0] ? e->path : "(top)", want);
        return -1;
}

/* Write UTF-8 s as bytes 0-255 (Avro's JSON mapping of bytes and fixed):
 * with a length prefix for bytes, or exactly `fixed` bytes for a fixed. */
static int put_latin1(enc_t *e, const char *s, size_t n, size_t fixed)
{
        unsigned char *out = malloc(n ? n : 1);
        size_t k = 0;
        int rc;
        if (!out) {
                e->err = KEEL_ERR_NOMEM;
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x80) {
                        out[k++] = c;
                } else if ((c & 0xfe) == 0xc2 && i + 1 < n) {
                        out[k++] = (unsigned char)(((c & 0x03) << 6) |
                                                   (s[++i] & 0x3f));
                } else {
                        free(out);
                        return enc_mismatch(e, "bytes (code points 0-255)");
                }
        }
        if (fixed && k != fixed)
                rc = enc_mismatch(e, "fixed of its size");
        else if (fixed)
                rc = put(e, out, k);
        else
                rc = put_long(e, (int64_t)k) || put(e, out, k) ? -1 : 0;
        free(out);
        return rc;
}

static int json_matches(const keel__av_node_t *t, const json_t *v)
{
        switch (t->kind) {
        case KEEL__AV_NULL:
                return json_is_null(v);
        case KEEL__AV_BOOLEAN:
                return json_is_boolean(v);
        case KEEL__AV_INT:
                return json_is_integer(v) &&
                       json_integer_value(v) >= INT32_MIN &&
                       json_integer_value(v) <= INT32_MAX;
        case KEEL__AV_LONG:
                return json_is_integer(v);
        case KEEL__AV_FLOAT:
        case KEEL__AV_DOUBLE:
                return json_is_number(v);
        case KEEL__AV_BYTES:
        case KEEL__AV_STRING:
                return json_is_string(v);
        case KEEL__AV_FIXED:
                return json_is_string(v);
        case KEEL__AV_ENUM:
                if (!json_is_string(v))
                        return 0;
                for (size_t i = 0; i < t->n; i++)
                        if (!strcmp(t->symbols[i], json_string_value(v)))
                                return 1;
                return 0;
        case KEEL__AV_RECORD:
        case KEEL__AV_MAP:
                return json_is_object(v);
        case KEEL__AV_ARRAY:
                return json_is_array(v);
        case KEEL__AV_UNION:
                return 0;
        }
        return 0;
}

static int enc_value(enc_t *e, const keel__av_node_t *t, const json_t *v,
                     int depth);

static int enc_record(enc_t *e, const keel__av_node_t *t, const json_t *v,
                      int depth)
{
        size_t plen = strlen(e->path);
        for (size_t i = 0; i < t->n; i++) {
                const keel__av_field_t *f = &t->fields[i];
                const json_t *fv = json_object_get(v, f->name);
                snprintf(e->path + plen, sizeof(e->path) - plen, "%s%s",
                         plen ? "." : "", f->name);
                if (!fv)
                        fv = f->def;
                if (!fv) {
                        e->err =
                            keel__fail(e->errstr, e->errsize, KEEL_ERR_SCHEMA,
                                       "field '%s' is required", e->path);
                        return -1;
                }
                if (enc_value(e, f->type, fv, depth + 1))
                        return -1;
        }
        e->path[plen] = '\0';
        return 0;
}

static int enc_value(enc_t *e, const keel__av_node_t *t, const json_t *v,
                     int depth)
{
        if (depth > MAX_DEPTH)
                return enc_mismatch(e, "a less deeply nested value");
        if (t->kind != KEEL__AV_UNION && !json_matches(t, v)) {
                static const char *names[] = {
                    "null",   "boolean",      "int",    "long",   "float",
                    "double", "bytes",        "string", "object", "enum symbol",
                    "array",  "object (map)", "union",  "fixed"};
                return enc_mismatch(e, names[t->kind]);
        }
        switch (t->kind) {
        case KEEL__AV_NULL:
                return 0;
        case KEEL__AV_BOOLEAN: {
                unsigned char b = json_is_true(v) ? 1 : 0;
                return put(e, &b, 1);
        }
        case KEEL__AV_INT:
        case KEEL__AV_LONG:
                return put_long(e, (int64_t)json_integer_value(v));
        case KEEL__AV_FLOAT: {
                double dv = json_number_value(v);
                float f;
                if (dv > 3.4028234663852886e38 || dv < -3.4028234663852886e38)
                        return enc_mismatch(e, "a number in float range");
                f = (float)dv;
                unsigned char b[4];
                uint32_t u;
                memcpy(&u, &f, 4);
                for (int i = 0; i < 4; i++)
                        b[i] = (unsigned char)(u >> (8 * i));
                return put(e, b, 4);
        }
        case KEEL__AV_DOUBLE: {
                double d = json_number_value(v);
                unsigned char b[8];
                uint64_t u;
                memcpy(&u, &d, 8);
                for (int i = 0; i < 8; i++)
                        b[i] = (unsigned char)(u >> (8 * i));
                return put(e, b, 8);
        }
        case KEEL__AV_STRING:
                return put_long(e, (int64_t)json_string_length(v)) ||
                               put(e, json_string_value(v),
                                   json_string_length(v))
                           ? -1
                           : 0;
        case KEEL__AV_BYTES:
                return put_latin1(e, json_string_value(v),
                                  json_string_length(v), 0);
        case KEEL__AV_FIXED:
                return put_latin1(e, json_string_value(v),
                                  json_string_length(v), t->size);
        case KEEL__AV_ENUM:
                for (size_t i = 0; i < t->n; i++)
                        if (!strcmp(t->symbols[i], json_string_value(v)))
                                return put_long(e, (int64_t)i);
                return enc_mismatch(e, "enum symbol");
        case KEEL__AV_RECORD:
                return enc_record(e, t, v, depth);
        case KEEL__AV_ARRAY: {
                size_t i, n = json_array_size(v);
                const json_t *item;
                if (n && put_long(e, (int64_t)n))
                        return -1;
                json_array_foreach(v, i, item)
                {
                        if (enc_value(e, t->items, item, depth + 1))
                                return -1;
                }
                return put_long(e, 0);
        }
        case KEEL__AV_MAP: {
                const char *k;
                const json_t *item;
                size_t n = json_object_size(v);
                if (n && put_long(e, (int64_t)n))
                        return -1;
                json_object_foreach((json_t *)v, k, item)
                {
                        if (put_long(e, (int64_t)strlen(k)) ||
                            put(e, k, strlen(k)) ||
                            enc_value(e, t->items, item, depth + 1))
                                return -1;
                }
                return put_long(e, 0);
        }
        case KEEL__AV_UNION:
                for (size_t i = 0; i < t->n; i++) {
                        const keel__av_node_t *b = t->branches[i];
                        if (b->kind != KEEL__AV_UNION && json_matches(b, v))
                                return put_long(e, (int64_t)i) ||
                                               enc_value(e, b, v, depth + 1)
                                           ? -1
                                           : 0;
                }
                return enc_mismatch(e, "a value of one of the union's types");
        }
        return enc_mismatch(e, "a known type");
}

int keel__codec_encode_with(const keel__schema_t *s, const json_t *rec,
                            unsigned char **out, size_t *out_len, char *errstr,
                            size_t errstr_size)
{
        enc_t e;
        unsigned char hdr[KEEL_RECORD_HEADER_BYTES];

        memset(&e, 0, sizeof(e));
        e.errstr = errstr;
        e.errsize = errstr_size;
        hdr[0] = MAGIC0;
        hdr[1] = MAGIC1;
        for (int i = 0; i < 8; i++)
                hdr[2 + i] = (unsigned char)(s->fp >> (8 * i));
        if (put(&e, hdr, sizeof(hdr)) || enc_value(&e, s->root, rec, 0)) {
                free(e.buf);
                return e.err;
        }
        *out = e.buf;
        *out_len = e.len;
        return KEEL_OK;
}

int keel_codec_encode(const char *type, const json_t *rec, unsigned char **out,
                      size_t *out_len, char *errstr, size_t errstr_size)
{
        const keel__schema_t *s;

        if (out)
                *out = NULL;
        if (out_len)
                *out_len = 0;
        if (!type || !rec || !out || !out_len)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "type, rec, out and out_len are required");
        s = keel__schema_by_name(type);
        if (!s)
                return keel__fail(errstr, errstr_size, KEEL_ERR_UNKNOWN_SCHEMA,
                                  "no schema named '%s'", type);
        return keel__codec_encode_with(s, rec, out, out_len, errstr,
                                       errstr_size);
}

/* ---- decoding --------------------------------------------------------- */

typedef struct dec_s {
        const unsigned char *p, *end;
        size_t items; /* array and map items so far */
        char *errstr;
        size_t errsize;
} dec_t;

static int get_long(dec_t *d, int64_t *v)
{
        uint64_t z = 0;
        for (int shift = 0; shift < 64; shift += 7) {
                unsigned char c;
                if (d->p >= d->end)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_TRUNCATED,
                                          "record ends inside a number");
                c = *d->p++;
                if (shift == 63 && (c & 0xfe))
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT,
                                          "number longer than 64 bits");
                z |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
                        return KEEL_OK;
                }
        }
        return keel__fail(d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                          "number longer than 64 bits");
}

/* A length or count: non-negative and at most the bytes that remain
 * (each item of a counted type takes at least min_item bytes). */
static int get_len(dec_t *d, size_t min_item, size_t *len, const char *what)
{
        int64_t v = 0;
        int rc = get_long(d, &v);
        if (rc)
                return rc;
        if (v < 0)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                                  "negative %s %lld", what, (long long)v);
        if (min_item && (uint64_t)v > (uint64_t)(d->end - d->p) / min_item)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_TRUNCATED,
                                  "%s %lld exceeds the %zu bytes left", what,
                                  (long long)v, (size_t)(d->end - d->p));
        *len = (size_t)v;
        return KEEL_OK;
}

/* Fewest bytes a value of type t can take (0 for null, empty records). */
static size_t min_size(const keel__av_node_t *t, int depth)
{
        size_t n = 0;
        if (depth > MAX_DEPTH)
                return 0;
        switch (t->kind) {
        case KEEL__AV_NULL:
                return 0;
        case KEEL__AV_FLOAT:
                return 4;
        case KEEL__AV_DOUBLE:
                return 8;
        case KEEL__AV_FIXED:
                return t->size;
        case KEEL__AV_RECORD:
                for (size_t i = 0; i < t->n; i++)
                        n += min_size(t->fields[i].type, depth + 1);
                return n;
        default:
                return 1;
        }
}

/* A float or double (t's kind), finite. */
static int get_real(dec_t *d, const keel__av_node_t *t, double *dv)
{
        size_t w = t->kind == KEEL__AV_FLOAT ? 4 : 8;
        uint64_t u = 0;
        if ((size_t)(d->end - d->p) < w)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_TRUNCATED,
                                  "record ends inside a number");
        for (size_t i = 0; i < w; i++)
                u |= (uint64_t)d->p[i] << (8 * i);
        d->p += w;
        if (w == 4) {
                uint32_t u32 = (uint32_t)u;
                float f;
                memcpy(&f, &u32, 4);
                *dv = f;
        } else {
                memcpy(dv, &u, 8);
        }
        if (*dv != *dv || *dv - *dv != 0)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                                  "NaN or infinite number");
        return KEEL_OK;
}

/* The item count of the next block of array or map t (0: the end), each
 * item taking at least min_item bytes, checked against what remains. */
static int get_block(dec_t *d, const keel__av_node_t *t, size_t min_item,
                     size_t *n)
{
        int64_t cnt = 0;
        int rc = get_long(d, &cnt);
        *n = 0;
        if (rc)
                return rc;
        if (cnt == 0)
                return KEEL_OK;
        if (cnt < 0) {
                /* A negative count is followed by the block's size in
                 * bytes, which we do not need. */
                int64_t bytes;
                if (cnt == INT64_MIN)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT, "bad block count");
                cnt = -cnt;
                if ((rc = get_long(d, &bytes)))
                        return rc;
        }
        if (t->kind == KEEL__AV_MAP)
                min_item += 1; /* the key's length */
        if ((uint64_t)cnt >
            (uint64_t)(d->end - d->p) / (min_item ? min_item : 1))
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_TRUNCATED,
                                  "block of %lld items exceeds the record",
                                  (long long)cnt);
        if ((uint64_t)cnt > MAX_ITEMS - d->items)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_TOO_LARGE,
                                  "more than %d array or map items", MAX_ITEMS);
        d->items += (size_t)cnt;
        *n = (size_t)cnt;
        return KEEL_OK;
}

static int dec_value(dec_t *d, const keel__av_node_t *t, json_t **out,
                     int depth);

static int oom(dec_t *d)
{
        return keel__fail(d->errstr, d->errsize, KEEL_ERR_NOMEM,
                          "out of memory");
}

json_t *keel_codec_bytes(const void *bytes, size_t n)
{
        const unsigned char *p = bytes;
        char *s = malloc(2 * n + 1);
        size_t k = 0;
        json_t *j;
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < 0x80) {
                        s[k++] = (char)p[i];
                } else {
                        s[k++] = (char)(0xc0 | (p[i] >> 6));
                        s[k++] = (char)(0x80 | (p[i] & 0x3f));
                }
        }
        j = json_stringn_nocheck(s, k);
        free(s);
        return j;
}

static int utf8_valid(const char *s, size_t n)
{
        json_t *j = json_stringn(s, n);
        json_decref(j);
        return j != NULL;
}

static int dec_items(dec_t *d, const keel__av_node_t *t, json_t *coll,
                     int depth)
{
        size_t min_item = min_size(t->items, depth + 1);
        for (;;) {
                size_t n;
                int rc = get_block(d, t, min_item, &n);
                if (rc)
                        return rc;
                if (n == 0)
                        return KEEL_OK;
                for (size_t i = 0; i < n; i++) {
                        json_t *item = NULL;
                        char *key = NULL;
                        if (t->kind == KEEL__AV_MAP) {
                                size_t kl = 0;
                                if ((rc = get_len(d, 1, &kl, "map key length")))
                                        return rc;
                                key = strndup((const char *)d->p, kl);
                                if (!key)
                                        return oom(d);
                                if (strlen(key) != kl || !utf8_valid(key, kl)) {
                                        free(key);
                                        return keel__fail(
                                            d->errstr, d->errsize,
                                            KEEL_ERR_CORRUPT,
                                            "map key is not valid "
                                            "UTF-8 without NUL");
                                }
                                d->p += kl;
                        }
                        if ((rc = dec_value(d, t->items, &item, depth + 1))) {
                                free(key);
                                return rc;
                        }
                        rc = key ? json_object_set_new(coll, key, item)
                                 : json_array_append_new(coll, item);
                        free(key);
                        if (rc)
                                return oom(d);
                }
        }
}

static int dec_value(dec_t *d, const keel__av_node_t *t, json_t **out,
                     int depth)
{
        int rc;
        int64_t v = 0;
        size_t n;

        *out = NULL;
        if (depth > MAX_DEPTH)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                                  "nesting too deep");
        switch (t->kind) {
        case KEEL__AV_NULL:
                *out = json_null();
                return KEEL_OK;
        case KEEL__AV_BOOLEAN:
                if (d->p >= d->end)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_TRUNCATED,
                                          "record ends inside a boolean");
                if (*d->p > 1)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT, "boolean byte %u",
                                          *d->p);
                *out = json_boolean(*d->p++);
                return KEEL_OK;
        case KEEL__AV_INT:
        case KEEL__AV_LONG:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (t->kind == KEEL__AV_INT && (v < INT32_MIN || v > INT32_MAX))
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT, "int out of range");
                *out = json_integer((json_int_t)v);
                break;
        case KEEL__AV_FLOAT:
        case KEEL__AV_DOUBLE: {
                double dv;
                if ((rc = get_real(d, t, &dv)))
                        return rc;
                *out = json_real(dv);
                break;
        }
        case KEEL__AV_STRING:
                if ((rc = get_len(d, 1, &n, "string length")))
                        return rc;
                *out = json_stringn((const char *)d->p, n);
                if (!*out)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT,
                                          "string is not valid UTF-8");
                d->p += n;
                return KEEL_OK;
        case KEEL__AV_BYTES:
                if ((rc = get_len(d, 1, &n, "bytes length")))
                        return rc;
                *out = keel_codec_bytes(d->p, n);
                d->p += n;
                break;
        case KEEL__AV_FIXED:
                if ((size_t)(d->end - d->p) < t->size)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_TRUNCATED,
                                          "record ends inside a fixed");
                *out = keel_codec_bytes(d->p, t->size);
                d->p += t->size;
                break;
        case KEEL__AV_ENUM:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (v < 0 || (uint64_t)v >= t->n)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT,
                                          "enum index %lld out of range for %s",
                                          (long long)v, t->fullname);
                *out = json_string(t->symbols[v]);
                break;
        case KEEL__AV_UNION:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (v < 0 || (uint64_t)v >= t->n)
                        return keel__fail(
                            d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                            "union branch %lld out of range", (long long)v);
                return dec_value(d, t->branches[v], out, depth + 1);
        case KEEL__AV_RECORD:
                *out = json_object();
                if (!*out)
                        return oom(d);
                for (size_t i = 0; i < t->n; i++) {
                        json_t *fv;
                        if ((rc = dec_value(d, t->fields[i].type, &fv,
                                            depth + 1)) ||
                            json_object_set_new(*out, t->fields[i].name, fv)) {
                                json_decref(*out);
                                *out = NULL;
                                return rc ? rc : oom(d);
                        }
                }
                return KEEL_OK;
        case KEEL__AV_ARRAY:
        case KEEL__AV_MAP:
                *out = t->kind == KEEL__AV_ARRAY ? json_array() : json_object();
                if (!*out)
                        return oom(d);
                if ((rc = dec_items(d, t, *out, depth))) {
                        json_decref(*out);
                        *out = NULL;
                }
                return rc;
        }
        return *out ? KEEL_OK : oom(d);
}

/* Shape a record written with an older schema like the current one:
 * fields the writer did not know take their defaults, fields the reader
 * no longer has are dropped. A reader field with neither a value nor a
 * default cannot be filled: NULL (Avro's resolution rules make that an
 * error). */
static json_t *resolve(const keel__av_node_t *reader, json_t *v, int depth,
                       const char **missing)
{
        json_t *r;
        if (depth > MAX_DEPTH || reader->kind != KEEL__AV_RECORD ||
            !json_is_object(v))
                return json_incref(v);
        r = json_object();
        for (size_t i = 0; r && i < reader->n; i++) {
                const keel__av_field_t *f = &reader->fields[i];
                json_t *fv = json_object_get(v, f->name);
                const keel__av_node_t *ft = f->type;
                if (fv) {
                        json_t *sub;
                        if (ft->kind == KEEL__AV_UNION && !json_is_null(fv))
                                for (size_t b = 0; b < ft->n; b++)
                                        if (ft->branches[b]->kind ==
                                            KEEL__AV_RECORD)
                                                ft = ft->branches[b];
                        sub = resolve(ft, fv, depth + 1, missing);
                        if (!sub || json_object_set_new(r, f->name, sub)) {
                                json_decref(r);
                                return NULL;
                        }
                } else if (f->def) {
                        json_object_set(r, f->name, f->def);
                } else {
                        *missing = f->name;
                        json_decref(r);
                        return NULL;
                }
        }
        return r;
}

int keel__codec_decode_with(const keel__schema_t *writer,
                            const keel__schema_t *reader, const void *body,
                            size_t len, json_t **rec, char *errstr,
                            size_t errstr_size)
{
        dec_t d;
        json_t *v = NULL;
        int rc;

        *rec = NULL;
        memset(&d, 0, sizeof(d));
        d.p = body;
        d.end = d.p + len;
        d.errstr = errstr;
        d.errsize = errstr_size;
        rc = dec_value(&d, writer->root, &v, 0);
        if (!rc && d.p != d.end)
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_CORRUPT,
                                "%zu bytes left after the record",
                                (size_t)(d.end - d.p));
        if (rc) {
                json_decref(v);
                return rc;
        }
        if (reader != writer) {
                const char *missing = NULL;
                json_t *r = resolve(reader->root, v, 0, &missing);
                json_decref(v);
                v = r;
                if (!v && missing)
                        return keel__fail(
                            errstr, errstr_size, KEEL_ERR_SCHEMA,
                            "record of an older %s lacks field '%s', "
                            "which has no default",
                            reader->fullname, missing);
        }
        if (!v)
                return keel__fail(errstr, errstr_size, KEEL_ERR_NOMEM,
                                  "out of memory");
        *rec = v;
        return KEEL_OK;
}

/* Check the single-object header and find the writer's schema. */
static int read_header(const unsigned char *p, size_t len,
                       const keel__schema_t **s, char *errstr,
                       size_t errstr_size)
{
        uint64_t fp = 0;

        *s = NULL;
        if (len > KEEL_RECORD_MAX_BYTES)
                return keel__fail(errstr, errstr_size, KEEL_ERR_TOO_LARGE,
                                  "record of %zu bytes exceeds %d", len,
                                  KEEL_RECORD_MAX_BYTES);
        if (len < KEEL_RECORD_HEADER_BYTES)
                return keel__fail(errstr, errstr_size, KEEL_ERR_TRUNCATED,
                                  "record of %zu bytes is shorter than the "
                                  "single-object header",
                                  len);
        if (p[0] != MAGIC0 || p[1] != MAGIC1)
                return keel__fail(errstr, errstr_size, KEEL_ERR_CORRUPT,
                                  "not an Avro single-object record (starts "
                                  "%02x %02x, not c3 01)",
                                  p[0], p[1]);
        for (int i = 0; i < 8; i++)
                fp |= (uint64_t)p[2 + i] << (8 * i);
        *s = keel__schema_by_fp(fp);
        if (!*s)
                return keel__fail(errstr, errstr_size, KEEL_ERR_UNKNOWN_SCHEMA,
                                  "unknown schema fingerprint %016llx",
                                  (unsigned long long)fp);
        return KEEL_OK;
}

int keel_codec_peek_type(const void *buf, size_t len, const char **type)
{
        const keel__schema_t *s;
        int rc;

        *type = NULL;
        if (!buf)
                return KEEL_ERR_INVALID_ARG;
        if ((rc = read_header(buf, len, &s, NULL, 0)))
                return rc;
        *type = s->current ? s->current->fullname : s->fullname;
        return KEEL_OK;
}

int keel_codec_decode(const void *buf, size_t len, const char **type,
                      json_t **rec, char *errstr, size_t errstr_size)
{
        const keel__schema_t *s, *reader;
        int rc;

        if (type)
                *type = NULL;
        if (rec)
                *rec = NULL;
        if (!buf || !type || !rec)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "buf, type and rec are required");
        if ((rc = read_header(buf, len, &s, errstr, errstr_size)))
                return rc;
        reader = s->current ? s->current : s;
        rc = keel__codec_decode_with(
            s, reader, (const unsigned char *)buf + KEEL_RECORD_HEADER_BYTES,
            len - KEEL_RECORD_HEADER_BYTES, rec, errstr, errstr_size);
        if (!rc)
                *type = reader->fullname;
        return rc;
}

/* ---- scanning: checked like dec_value(), nothing built ---------------- */

/* Is s (n bytes) what json_stringn() accepts? ASCII at once, the rest as
 * jansson checks it. */
static int text_valid(const unsigned char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] >= 0x80)
                        return utf8_valid((const char *)s, n);
        return 1;
}

/* Fill field f with value v of type t, found at d->p before it was read. */
static void scan_take(keel__scan_field_t *f, const keel__av_node_t *t,
                      const unsigned char *at, int64_t v, size_t n)
{
        if (!f)
                return;
        f->found = t->kind != KEEL__AV_NULL;
        f->i = v;
        f->s = (const char *)at;
        f->n = n;
}

static int scan_value(dec_t *d, const keel__av_node_t *t, int depth,
                      keel__scan_field_t *f);

static int scan_items(dec_t *d, const keel__av_node_t *t, int depth)
{
        size_t min_item = min_size(t->items, depth + 1);
        for (;;) {
                size_t n;
                int rc = get_block(d, t, min_item, &n);
                if (rc)
                        return rc;
                if (n == 0)
                        return KEEL_OK;
                for (size_t i = 0; i < n; i++) {
                        if (t->kind == KEEL__AV_MAP) {
                                size_t kl = 0;
                                if ((rc = get_len(d, 1, &kl, "map key length")))
                                        return rc;
                                if (memchr(d->p, 0, kl) ||
                                    !text_valid(d->p, kl))
                                        return keel__fail(
                                            d->errstr, d->errsize,
                                            KEEL_ERR_CORRUPT,
                                            "map key is not valid "
                                            "UTF-8 without NUL");
                                d->p += kl;
                        }
                        if ((rc = scan_value(d, t->items, depth + 1, NULL)))
                                return rc;
                }
        }
}

static int scan_value(dec_t *d, const keel__av_node_t *t, int depth,
                      keel__scan_field_t *f)
{
        const unsigned char *at = d->p;
        int rc;
        int64_t v = 0;
        size_t n;

        if (depth > MAX_DEPTH)
                return keel__fail(d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                                  "nesting too deep");
        switch (t->kind) {
        case KEEL__AV_NULL:
                scan_take(f, t, at, 0, 0);
                return KEEL_OK;
        case KEEL__AV_BOOLEAN:
                if (d->p >= d->end)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_TRUNCATED,
                                          "record ends inside a boolean");
                if (*d->p > 1)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT, "boolean byte %u",
                                          *d->p);
                scan_take(f, t, at, *d->p++, 0);
                return KEEL_OK;
        case KEEL__AV_INT:
        case KEEL__AV_LONG:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (t->kind == KEEL__AV_INT && (v < INT32_MIN || v > INT32_MAX))
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT, "int out of range");
                scan_take(f, t, at, v, 0);
                return KEEL_OK;
        case KEEL__AV_FLOAT:
        case KEEL__AV_DOUBLE: {
                double dv;
                if ((rc = get_real(d, t, &dv)))
                        return rc;
                (void)dv;
                scan_take(f, t, at, 0, 0);
                return KEEL_OK;
        }
        case KEEL__AV_STRING:
                if ((rc = get_len(d, 1, &n, "string length")))
                        return rc;
                if (!text_valid(d->p, n))
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT,
                                          "string is not valid UTF-8");
                scan_take(f, t, d->p, 0, n);
                d->p += n;
                return KEEL_OK;
        case KEEL__AV_BYTES:
                if ((rc = get_len(d, 1, &n, "bytes length")))
                        return rc;
                scan_take(f, t, d->p, 0, n);
                d->p += n;
                return KEEL_OK;
        case KEEL__AV_FIXED:
                if ((size_t)(d->end - d->p) < t->size)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_TRUNCATED,
                                          "record ends inside a fixed");
                scan_take(f, t, d->p, 0, t->size);
                d->p += t->size;
                return KEEL_OK;
        case KEEL__AV_ENUM:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (v < 0 || (uint64_t)v >= t->n)
                        return keel__fail(d->errstr, d->errsize,
                                          KEEL_ERR_CORRUPT,
                                          "enum index %lld out of range for %s",
                                          (long long)v, t->fullname);
                scan_take(f, t, at, v, 0);
                return KEEL_OK;
        case KEEL__AV_UNION:
                if ((rc = get_long(d, &v)))
                        return rc;
                if (v < 0 || (uint64_t)v >= t->n)
                        return keel__fail(
                            d->errstr, d->errsize, KEEL_ERR_CORRUPT,
                            "union branch %lld out of range", (long long)v);
                return scan_value(d, t->branches[v], depth + 1, f);
        case KEEL__AV_RECORD:
                scan_take(f, t, at, 0, 0);
                for (size_t i = 0; i < t->n; i++)
                        if ((rc = scan_value(d, t->fields[i].type, depth + 1,
                                             NULL)))
                                return rc;
                return KEEL_OK;
        case KEEL__AV_ARRAY:
        case KEEL__AV_MAP:
                scan_take(f, t, at, 0, 0);
                return scan_items(d, t, depth);
        }
        return KEEL_OK;
}

static keel__scan_field_t *scan_find(keel__scan_field_t *fields, size_t n,
                                     const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (fields[i].name[0] == name[0] &&
                    !strcmp(fields[i].name, name))
                        return &fields[i];
        return NULL;
}

int keel__codec_scan(const void *buf, size_t len, const char **type,
                     keel__scan_field_t *fields, size_t nfields, char *errstr,
                     size_t errstr_size)
{
        const keel__schema_t *s, *reader;
        const keel__av_node_t *root;
        dec_t d;
        int rc;

        *type = NULL;
        for (size_t i = 0; i < nfields; i++) {
                fields[i].found = 0;
                fields[i].i = 0;
                fields[i].s = NULL;
                fields[i].n = 0;
        }
        if (!buf)
                return keel__fail(errstr, errstr_size, KEEL_ERR_INVALID_ARG,
                                  "buf is required");
        if ((rc = read_header(buf, len, &s, errstr, errstr_size)))
                return rc;
        reader = s->current ? s->current : s;
        if (reader != s) {
                /* An older version: resolving it may fail, which only the
                 * decoder tells. Rare: decode it once to know. */
                json_t *rec;
                if ((rc = keel__codec_decode_with(
                         s, reader,
                         (const unsigned char *)buf + KEEL_RECORD_HEADER_BYTES,
                         len - KEEL_RECORD_HEADER_BYTES, &rec, errstr,
                         errstr_size)))
                        return rc;
                json_decref(rec);
        }
        memset(&d, 0, sizeof(d));
        d.p = (const unsigned char *)buf + KEEL_RECORD_HEADER_BYTES;
        d.end = (const unsigned char *)buf + len;
        d.errstr = errstr;
        d.errsize = errstr_size;
        root = s->root;
        if (root->kind != KEEL__AV_RECORD) {
                rc = scan_value(&d, root, 0, NULL);
        } else {
                for (size_t i = 0; i < root->n; i++) {
                        const keel__av_field_t *fd = &root->fields[i];
                        if ((rc = scan_value(
                                 &d, fd->type, 1,
                                 scan_find(fields, nfields, fd->name))))
                                break;
                }
        }
        if (!rc && d.p != d.end)
                rc = keel__fail(errstr, errstr_size, KEEL_ERR_CORRUPT,
                                "%zu bytes left after the record",
                                (size_t)(d.end - d.p));
        if (rc)
                return rc;
        if (reader != s && reader->root->kind == KEEL__AV_RECORD) {
                /* Fields the writer did not have: their defaults. */
                for (size_t i = 0; i < reader->root->n; i++) {
                        const keel__av_field_t *fd = &reader->root->fields[i];
                        keel__scan_field_t *f =
                            scan_find(fields, nfields, fd->name);
                        int in_writer = 0;
                        for (size_t k = 0; k < root->n; k++)
                                in_writer |=
                                    !strcmp(root->fields[k].name, fd->name);
                        if (!f || in_writer || !fd->def)
                                continue;
                        f->found = !json_is_null(fd->def);
                        f->i = json_is_integer(fd->def)
                                   ? (int64_t)json_integer_value(fd->def)
                                   : json_is_true(fd->def);
                        f->s = json_string_value(fd->def);
                        f->n = f->s ? strlen(f->s) : 0;
                }
        }
        *type = reader->fullname;
        return KEEL_OK;
}

json_t *keel_codec_dead_letter(const char *source_topic, int32_t partition,
                               int64_t offset, const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const char *error, const char *reason,
                               const char *component, int64_t ts_ms)
{
        return json_pack(
            "{ss si sI so so ss ss ss sI}", "source_topic", source_topic,
            "source_partition", (int)partition, "source_offset",
            (json_int_t)offset, "key",
            key ? keel_codec_bytes(key, key_len) : json_null(), "value",
            value ? keel_codec_bytes(value, value_len) : json_null(), "error",
            error, "reason", reason, "component", component, "ts",
            (json_int_t)ts_ms);
}
