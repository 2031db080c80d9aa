/*
 * test_codec_mutation.c: keel_codec_decode() survives whatever a topic may
 * hold. For every compiled-in schema the suite builds valid records by
 * walking the schema's .avsc text, encodes them, then feeds the decoder
 * well over 100,000 damaged copies: truncations at every length, bit
 * flips, corrupted headers and fingerprints, huge, negative and overlong
 * varints where lengths, counts and indexes go, appended junk, random
 * edits and buffers over KEEL_RECORD_MAX_BYTES. Every call must return
 * KEEL_OK or one of the four input errors with both out-parameters NULL,
 * and whatever decodes must re-encode to the same JSON. The PRNG is
 * seeded (KEEL_MUTATION_SEED) so a failure can be replayed; the number of
 * random mutations is KEEL_MUTATION_COUNT (default 100000). Leaks are left
 * to LeakSanitizer in the sanitizer build.
 * keel__codec_scan(), the restore's fast path, must agree with the
 * decoder on every one of them: the same result, and where it decodes,
 * the same values for every top-level field.
 */
#include "codec_int.h"
#include "keel/codec.h"
#include "keel/error.h"
#include "keel_test.h"
#include "schema_int.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SEED  0x6b65656c6d757431ULL
#define DEFAULT_COUNT 100000
#define VARIANTS      4  /* records built per schema */
#define MAX_NAMED     64 /* named types per schema */
#define MAX_MARKS     256
#define MAX_REPORTS   10

/* ---- reproducible randomness ------------------------------------------ */

typedef struct rng_s {
        uint64_t s;
} rng_t;

static uint64_t splitmix64(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static uint64_t base_seed(void)
{
        const char *v = getenv("KEEL_MUTATION_SEED");
        return v && *v ? strtoull(v, NULL, 0) : DEFAULT_SEED;
}

static unsigned long mutation_count(void)
{
        const char *v = getenv("KEEL_MUTATION_COUNT");
        return v && *v ? strtoul(v, NULL, 0) : DEFAULT_COUNT;
}

/* An independent stream per purpose, so one test's draws do not depend on
 * what the tests before it drew. */
static void rng_init(rng_t *r, uint64_t stream)
{
        r->s = splitmix64(base_seed() ^ splitmix64(stream));
        if (!r->s)
                r->s = DEFAULT_SEED;
}

static uint64_t rng_next(rng_t *r)
{
        uint64_t x = r->s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r->s = x;
        return x;
}

static size_t rng_below(rng_t *r, size_t n)
{
        return n ? (size_t)(rng_next(r) % n) : 0;
}

/* ---- outcomes --------------------------------------------------------- */

typedef struct stats_s {
        unsigned long calls, ok, truncated, corrupt, unknown, too_large;
        unsigned long bad; /* contract violations */
} stats_t;

static stats_t stats;

static void report(const char *what, const unsigned char *buf, size_t len,
                   const char *errstr)
{
        if (stats.bad++ >= MAX_REPORTS)
                return;
        fprintf(stderr, "\n%s (seed %#" PRIx64 ", %zu bytes: %s):", what,
                base_seed(), len, errstr);
        for (size_t i = 0; i < len && i < 64; i++)
                fprintf(stderr, " %02x", buf[i]);
        fprintf(stderr, "%s\n", len > 64 ? " ..." : "");
}

/* Is field f of record type t a string (or a union with a string)? */
static int string_field(const keel__av_field_t *f)
{
        const keel__av_node_t *t = f->type;
        if (t->kind == KEEL__AV_UNION)
                for (size_t i = 0; i < t->n; i++)
                        if (t->branches[i]->kind == KEEL__AV_STRING)
                                return 1;
        return t->kind == KEEL__AV_STRING;
}

/* keel__codec_scan() on buf agrees with the decoder's result rc, type
 * and rec (NULL on error). */
static void check_scan(const unsigned char *buf, size_t len, int rc,
                       const char *type, const json_t *rec)
{
        keel__scan_field_t f[64];
        const keel__schema_t *s = type ? keel__schema_by_name(type) : NULL;
        const keel__av_node_t *root = s ? s->root : NULL;
        size_t n = 0;
        const char *stype = "unset";
        char err[256] = "";
        int src;

        /* Fields to ask for: the record's, else those every event has. */
        if (root && root->kind == KEEL__AV_RECORD)
                for (; n < root->n && n < 64; n++)
                        f[n].name = root->fields[n].name;
        else
                for (const char *const *k =
                         (const char *const[]){"workflow_id", "run_id", "seq",
                                               "epoch", "ts", NULL};
                     *k; k++)
                        f[n++].name = *k;
        src = keel__codec_scan(buf, len, &stype, f, n, err, sizeof(err));
        if (src != rc) {
                report("scan and decode disagree", buf, len, err);
                CU_FAIL("keel__codec_scan must return what the decoder does");
                return;
        }
        if (rc != KEEL_OK)
                return;
        if (!stype || strcmp(stype, type)) {
                report("scan names another type", buf, len, stype);
                CU_FAIL("keel__codec_scan must name the decoder's type");
                return;
        }
        for (size_t i = 0; root && i < n; i++) {
                const json_t *v = json_object_get(rec, f[i].name);
                int ok = 1;
                if (!v || json_is_null(v))
                        ok = !f[i].found;
                else if (json_is_integer(v))
                        ok = f[i].found && f[i].i == json_integer_value(v);
                else if (json_is_boolean(v))
                        ok = f[i].found && f[i].i == json_is_true(v);
                else if (json_is_string(v) && string_field(&root->fields[i]))
                        ok = f[i].found && f[i].n == json_string_length(v) &&
                             !memcmp(f[i].s, json_string_value(v), f[i].n);
                else
                        ok = f[i].found;
                if (!ok) {
                        report("scan read another value", buf, len, f[i].name);
                        CU_FAIL("keel__codec_scan must read the decoder's "
                                "values");
                }
        }
}

/* Decode buf and check the contract. Returns the decoder's result. */
static int check_decode(const unsigned char *buf, size_t len)
{
        static json_t sentinel_rec;
        char err[256] = "";
        const char *type = "unset";
        json_t *rec = &sentinel_rec;
        int rc = keel_codec_decode(buf, len, &type, &rec, err, sizeof(err));

        check_scan(buf, len, rc, rc ? NULL : type, rc ? NULL : rec);
        stats.calls++;
        switch (rc) {
        case KEEL_OK:
                stats.ok++;
                break;
        case KEEL_ERR_TRUNCATED:
                stats.truncated++;
                break;
        case KEEL_ERR_CORRUPT:
                stats.corrupt++;
                break;
        case KEEL_ERR_UNKNOWN_SCHEMA:
                stats.unknown++;
                break;
        case KEEL_ERR_TOO_LARGE:
                stats.too_large++;
                break;
        default:
                report("unexpected result", buf, len, keel_err_name(rc));
                CU_FAIL("keel_codec_decode returned an unexpected error");
                break;
        }
        if (rc != KEEL_OK) {
                if (type || rec) {
                        report("out-parameter set on error", buf, len, err);
                        CU_FAIL("*type and *rec must be NULL on error");
                }
                return rc;
        }
        if (!type || !rec || rec == &sentinel_rec) {
                report("out-parameter unset on success", buf, len, err);
                CU_FAIL("*type and *rec must be set on success");
                return rc;
        }

        /* What decodes must survive a second trip unchanged. */
        {
                unsigned char *out = NULL;
                size_t out_len = 0;
                const char *type2 = NULL;
                json_t *rec2 = NULL;
                int rc2 = keel_codec_encode(type, rec, &out, &out_len, err,
                                            sizeof(err));
                if (rc2 != KEEL_OK) {
                        report("decoded record does not re-encode", buf, len,
                               err);
                        CU_FAIL("a decoded record must re-encode");
                } else if ((rc2 = keel_codec_decode(out, out_len, &type2, &rec2,
                                                    err, sizeof(err))) !=
                           KEEL_OK) {
                        report("re-encoded record does not decode", buf, len,
                               err);
                        CU_FAIL("a re-encoded record must decode");
                } else if (strcmp(type, type2) || !json_equal(rec, rec2)) {
                        report("second trip changed the record", buf, len,
                               type2);
                        CU_FAIL("re-encoding must not change the record");
                }
                json_decref(rec2);
                free(out);
        }
        json_decref(rec);
        return rc;
}

/* Expect one exact result (the decoder's contract checks still apply). */
static void expect_decode(const unsigned char *buf, size_t len, int want,
                          const char *what)
{
        int rc = check_decode(buf, len);
        if (rc != want) {
                report(what, buf, len, keel_err_name(rc));
                CU_FAIL(what);
        }
}

/* ---- walking a schema's JSON text ------------------------------------- */

typedef struct named_s {
        const json_t *def;
        char fullname[256];
} named_t;

typedef struct schema_walk_s {
        named_t named[MAX_NAMED];
        size_t n_named;
} schema_walk_t;

static const char *const primitive_names[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string"};

static int is_primitive(const char *s)
{
        for (size_t i = 0; i < sizeof(primitive_names) / sizeof(char *); i++)
                if (!strcmp(s, primitive_names[i]))
                        return 1;
        return 0;
}

static void make_fullname(const json_t *def, const char *ns, char *buf,
                          size_t size)
{
        const char *name = json_string_value(json_object_get(def, "name"));
        const char *own = json_string_value(json_object_get(def, "namespace"));
        if (!name)
                name = "";
        if (own)
                ns = own;
        if (strchr(name, '.') || !ns || !*ns)
                snprintf(buf, size, "%s", name);
        else
                snprintf(buf, size, "%s.%s", ns, name);
}

/* Namespace of a fullname, into buf ("" for none). */
static void namespace_of(const char *fullname, char *buf, size_t size)
{
        const char *dot = strrchr(fullname, '.');
        size_t n = dot ? (size_t)(dot - fullname) : 0;
        if (n >= size)
                n = size - 1;
        memcpy(buf, fullname, n);
        buf[n] = '\0';
}

static void register_named(schema_walk_t *w, const json_t *t, const char *ns)
{
        const char *type;
        char inner[256];
        size_t i;
        const json_t *v;

        if (json_is_array(t)) {
                json_array_foreach(t, i, v) register_named(w, v, ns);
                return;
        }
        if (!json_is_object(t))
                return;
        v = json_object_get(t, "type");
        if (!json_is_string(v)) {
                register_named(w, v, ns);
                return;
        }
        type = json_string_value(v);
        if (!strcmp(type, "array")) {
                register_named(w, json_object_get(t, "items"), ns);
                return;
        }
        if (!strcmp(type, "map")) {
                register_named(w, json_object_get(t, "values"), ns);
                return;
        }
        if (strcmp(type, "record") && strcmp(type, "error") &&
            strcmp(type, "enum") && strcmp(type, "fixed"))
                return;
        CU_ASSERT_FATAL(w->n_named < MAX_NAMED);
        w->named[w->n_named].def = t;
        make_fullname(t, ns, w->named[w->n_named].fullname,
                      sizeof(w->named[0].fullname));
        namespace_of(w->named[w->n_named].fullname, inner, sizeof(inner));
        w->n_named++;
        if (strcmp(type, "record") && strcmp(type, "error"))
                return;
        json_array_foreach(json_object_get(t, "fields"), i, v)
            register_named(w, json_object_get(v, "type"), inner);
}

static const named_t *named_by_def(const schema_walk_t *w, const json_t *def)
{
        for (size_t i = 0; i < w->n_named; i++)
                if (w->named[i].def == def)
                        return &w->named[i];
        return NULL;
}

static const named_t *named_by_name(const schema_walk_t *w, const char *name,
                                    const char *ns)
{
        char full[256];
        if (!strchr(name, '.') && ns && *ns)
                snprintf(full, sizeof(full), "%s.%s", ns, name);
        else
                snprintf(full, sizeof(full), "%s", name);
        for (size_t i = 0; i < w->n_named; i++)
                if (!strcmp(w->named[i].fullname, full) ||
                    !strcmp(w->named[i].fullname, name))
                        return &w->named[i];
        return NULL;
}

/* Follow references and {"type": {...}} wrappers down to a primitive name,
 * a union (JSON array) or a type object; NULL if the schema is unreadable.
 * *kind is the type's name ("union" for a union). */
static const json_t *deref(const schema_walk_t *w, const json_t *t,
                           const char *ns, const char **kind)
{
        for (int hops = 0; t && hops < 16; hops++) {
                const json_t *inner;
                const named_t *nt;
                if (json_is_array(t)) {
                        *kind = "union";
                        return t;
                }
                if (json_is_string(t)) {
                        if (is_primitive(json_string_value(t))) {
                                *kind = json_string_value(t);
                                return t;
                        }
                        nt = named_by_name(w, json_string_value(t), ns);
                        t = nt ? nt->def : NULL;
                        continue;
                }
                inner = json_object_get(t, "type");
                if (!json_is_string(inner)) {
                        t = inner;
                        continue;
                }
                *kind = json_string_value(inner);
                if (is_primitive(*kind) || !strcmp(*kind, "record") ||
                    !strcmp(*kind, "error") || !strcmp(*kind, "enum") ||
                    !strcmp(*kind, "fixed") || !strcmp(*kind, "array") ||
                    !strcmp(*kind, "map"))
                        return t;
                t = inner; /* {"type": "a.b.Named"} */
        }
        return NULL;
}

/* ---- building valid records ------------------------------------------- */

typedef struct gen_s {
        const schema_walk_t *w;
        rng_t *rng;
        int variant; /* 0: nulls and empties, 1: everything set, 2+: random */
} gen_t;

/* Text with ASCII, multi-byte UTF-8, JSON escapes and the odd NUL. */
static json_t *gen_string(gen_t *g)
{
        static const char *const pieces[] = {"a",
                                             "Z",
                                             "7",
                                             "-",
                                             " ",
                                             "\"",
                                             "\\",
                                             "/",
                                             "\xc3\xa9",
                                             "\xe2\x82\xac",
                                             "\xf0\x9f\x98\x80",
                                             "\n",
                                             "order-",
                                             "{\"k\":1}"};
        char buf[256];
        size_t n = 0, count;
        if (g->variant == 0)
                return json_string("");
        count = g->variant == 1 ? 12 : rng_below(g->rng, 10);
        for (size_t i = 0; i < count; i++) {
                const char *p;
                size_t pl;
                if (rng_below(g->rng, 40) == 0) {
                        buf[n++] = '\0';
                        continue;
                }
                p = pieces[rng_below(g->rng, sizeof(pieces) / sizeof(char *))];
                pl = strlen(p);
                memcpy(buf + n, p, pl);
                n += pl;
        }
        return json_stringn(buf, n);
}

/* n bytes as Avro's JSON mapping writes them: code points 0-255. */
static json_t *gen_bytes(gen_t *g, size_t n)
{
        char buf[512];
        size_t k = 0;
        for (size_t i = 0; i < n && i < 256; i++) {
                unsigned c = (unsigned)rng_below(g->rng, 256);
                if (c < 0x80) {
                        buf[k++] = (char)c;
                } else {
                        buf[k++] = (char)(0xc0 | (c >> 6));
                        buf[k++] = (char)(0x80 | (c & 0x3f));
                }
        }
        return json_stringn(buf, k);
}

static json_int_t gen_int(gen_t *g, int is_long)
{
        static const int64_t edges[] = {0, -1, 1, 63, -64, 64, 8191, -8193};
        if (g->variant == 0)
                return 0;
        if (g->variant == 1)
                return is_long ? INT64_MAX : INT32_MIN;
        switch (rng_below(g->rng, 4)) {
        case 0:
                return edges[rng_below(g->rng, sizeof(edges) / sizeof(*edges))];
        case 1:
                return is_long ? INT64_MIN : INT32_MAX;
        default:
                return is_long ? (json_int_t)rng_next(g->rng)
                               : (json_int_t)(int32_t)rng_next(g->rng);
        }
}

static json_t *gen_value(gen_t *g, const json_t *t, const char *ns, int depth);

static json_t *gen_record(gen_t *g, const json_t *def, int depth)
{
        const named_t *nt = named_by_def(g->w, def);
        char inner[256];
        json_t *obj = json_object();
        size_t i;
        const json_t *f;

        CU_ASSERT_PTR_NOT_NULL_FATAL(nt);
        namespace_of(nt->fullname, inner, sizeof(inner));
        json_array_foreach(json_object_get(def, "fields"), i, f)
        {
                json_t *v =
                    gen_value(g, json_object_get(f, "type"), inner, depth + 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(v);
                json_object_set_new(
                    obj, json_string_value(json_object_get(f, "name")), v);
        }
        return obj;
}

static json_t *gen_value(gen_t *g, const json_t *t, const char *ns, int depth)
{
        const char *kind = NULL;
        const json_t *d = deref(g->w, t, ns, &kind);

        if (!d || depth > 32)
                return NULL;
        if (!strcmp(kind, "null"))
                return json_null();
        if (!strcmp(kind, "boolean"))
                return json_boolean(g->variant == 1 ||
                                    (g->variant > 1 && rng_below(g->rng, 2)));
        if (!strcmp(kind, "int") || !strcmp(kind, "long"))
                return json_integer(gen_int(g, !strcmp(kind, "long")));
        if (!strcmp(kind, "float") || !strcmp(kind, "double"))
                /* Exact in a float, so a float field round-trips. */
                return json_real(g->variant == 0
                                     ? 0.0
                                     : (double)(int16_t)rng_next(g->rng) / 8);
        if (!strcmp(kind, "string"))
                return gen_string(g);
        if (!strcmp(kind, "bytes"))
                return gen_bytes(g,
                                 g->variant == 0 ? 0 : rng_below(g->rng, 24));
        if (!strcmp(kind, "fixed"))
                return gen_bytes(
                    g, (size_t)json_integer_value(json_object_get(d, "size")));
        if (!strcmp(kind, "enum")) {
                const json_t *syms = json_object_get(d, "symbols");
                size_t n = json_array_size(syms);
                size_t k = g->variant == 0   ? 0
                           : g->variant == 1 ? n - 1
                                             : rng_below(g->rng, n);
                return json_copy(json_array_get(syms, k));
        }
        if (!strcmp(kind, "union")) {
                size_t n = json_array_size(d), k = 0, null_at = n;
                for (size_t i = 0; i < n; i++) {
                        const char *bk = "";
                        if (deref(g->w, json_array_get(d, i), ns, &bk) &&
                            !strcmp(bk, "null"))
                                null_at = i;
                }
                if (g->variant == 0 && null_at < n)
                        k = null_at;
                else if (g->variant == 1)
                        k = null_at == 0 && n > 1 ? 1 : 0;
                else
                        k = rng_below(g->rng, n);
                return gen_value(g, json_array_get(d, k), ns, depth + 1);
        }
        if (!strcmp(kind, "record") || !strcmp(kind, "error"))
                return gen_record(g, d, depth);
        if (!strcmp(kind, "array") || !strcmp(kind, "map")) {
                int is_array = !strcmp(kind, "array");
                const json_t *it =
                    json_object_get(d, is_array ? "items" : "values");
                size_t n = g->variant == 0   ? 0
                           : g->variant == 1 ? 3
                                             : rng_below(g->rng, 4);
                json_t *coll = is_array ? json_array() : json_object();
                for (size_t i = 0; i < n; i++) {
                        json_t *v = gen_value(g, it, ns, depth + 1);
                        char key[32];
                        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
                        snprintf(key, sizeof(key), "key-%zu", i);
                        if (is_array)
                                json_array_append_new(coll, v);
                        else
                                json_object_set_new(coll, key, v);
                }
                return coll;
        }
        return NULL;
}

/* ---- where the lengths are ------------------------------------------- */

typedef enum mark_kind_e {
        MARK_LEN,   /* string or bytes length */
        MARK_COUNT, /* array or map block count */
        MARK_INDEX, /* union branch or enum symbol */
} mark_kind_t;

typedef struct mark_s {
        size_t at, width; /* offset of the varint and its size in bytes */
        mark_kind_t kind;
} mark_t;

typedef struct scan_s {
        const schema_walk_t *w;
        const unsigned char *buf;
        size_t len, pos;
        mark_t marks[MAX_MARKS];
        size_t n_marks;
        int bad;
} scan_t;

static int64_t scan_long(scan_t *s, int mark, mark_kind_t kind)
{
        uint64_t z = 0;
        size_t start = s->pos;
        for (int shift = 0; shift < 64 && s->pos < s->len; shift += 7) {
                unsigned char c = s->buf[s->pos++];
                z |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        if (mark && s->n_marks < MAX_MARKS) {
                                s->marks[s->n_marks].at = start;
                                s->marks[s->n_marks].width = s->pos - start;
                                s->marks[s->n_marks++].kind = kind;
                        }
                        return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
                }
        }
        s->bad = 1;
        return 0;
}

static void scan_skip(scan_t *s, size_t n)
{
        if (n > s->len - s->pos)
                s->bad = 1;
        else
                s->pos += n;
}

/* Walk a valid encoding of type t, noting every length, count and index.
 * Only ever given what keel_codec_encode wrote. */
static void scan_value(scan_t *s, const json_t *t, const char *ns, int depth)
{
        const char *kind = NULL;
        const json_t *d = deref(s->w, t, ns, &kind);
        if (!d || depth > 32 || s->bad) {
                s->bad = 1;
                return;
        }
        if (!strcmp(kind, "null"))
                return;
        if (!strcmp(kind, "boolean"))
                scan_skip(s, 1);
        else if (!strcmp(kind, "int") || !strcmp(kind, "long"))
                scan_long(s, 0, MARK_LEN);
        else if (!strcmp(kind, "float"))
                scan_skip(s, 4);
        else if (!strcmp(kind, "double"))
                scan_skip(s, 8);
        else if (!strcmp(kind, "string") || !strcmp(kind, "bytes"))
                scan_skip(s, (size_t)scan_long(s, 1, MARK_LEN));
        else if (!strcmp(kind, "fixed"))
                scan_skip(
                    s, (size_t)json_integer_value(json_object_get(d, "size")));
        else if (!strcmp(kind, "enum"))
                scan_long(s, 1, MARK_INDEX);
        else if (!strcmp(kind, "union"))
                scan_value(
                    s, json_array_get(d, (size_t)scan_long(s, 1, MARK_INDEX)),
                    ns, depth + 1);
        else if (!strcmp(kind, "record") || !strcmp(kind, "error")) {
                const named_t *nt = named_by_def(s->w, d);
                char inner[256];
                size_t i;
                const json_t *f;
                namespace_of(nt ? nt->fullname : "", inner, sizeof(inner));
                json_array_foreach(json_object_get(d, "fields"), i, f)
                    scan_value(s, json_object_get(f, "type"), inner, depth + 1);
        } else if (!strcmp(kind, "array") || !strcmp(kind, "map")) {
                int is_map = !strcmp(kind, "map");
                const json_t *it =
                    json_object_get(d, is_map ? "values" : "items");
                int64_t n;
                while (!s->bad && (n = scan_long(s, 1, MARK_COUNT)) > 0) {
                        for (int64_t i = 0; i < n && !s->bad; i++) {
                                if (is_map)
                                        scan_skip(s, (size_t)scan_long(
                                                         s, 1, MARK_LEN));
                                scan_value(s, it, ns, depth + 1);
                        }
                }
        } else {
                s->bad = 1;
        }
}

/* ---- the samples ------------------------------------------------------ */

typedef struct sample_s {
        const char *type;
        json_t *rec;
        unsigned char *buf;
        size_t len;
        mark_t marks[MAX_MARKS];
        size_t n_marks;
} sample_t;

static sample_t *samples;
static size_t n_samples;

static void samples_free(void)
{
        for (size_t i = 0; i < n_samples; i++) {
                json_decref(samples[i].rec);
                free(samples[i].buf);
        }
        free(samples);
        samples = NULL;
        n_samples = 0;
}

static void build_sample(sample_t *sm, const char *type, int variant,
                         rng_t *rng)
{
        const char *text = NULL;
        json_t *schema;
        json_error_t jerr;
        schema_walk_t *w = calloc(1, sizeof(*w));
        gen_t g;
        scan_t *sc = calloc(1, sizeof(*sc));
        char err[256] = "";
        int rc;

        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
        CU_ASSERT_EQUAL_FATAL(keel_schema_text(type, &text), KEEL_OK);
        schema = json_loads(text, 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
        register_named(w, schema, NULL);
        g.w = w;
        g.rng = rng;
        g.variant = variant;
        sm->type = type;
        sm->rec = gen_value(&g, schema, NULL, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sm->rec);
        rc = keel_codec_encode(type, sm->rec, &sm->buf, &sm->len, err,
                               sizeof(err));
        if (rc != KEEL_OK)
                fprintf(stderr, "\n%s variant %d: %s: %s\n", type, variant,
                        keel_err_name(rc), err);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);

        sc->w = w;
        sc->buf = sm->buf;
        sc->len = sm->len;
        sc->pos = KEEL_RECORD_HEADER_BYTES;
        scan_value(sc, schema, NULL, 0);
        if (sc->bad || sc->pos != sc->len)
                fprintf(stderr, "\n%s variant %d: could not walk the body\n",
                        type, variant);
        CU_ASSERT_FATAL(!sc->bad && sc->pos == sc->len);
        memcpy(sm->marks, sc->marks, sizeof(sm->marks));
        sm->n_marks = sc->n_marks;
        json_decref(schema);
        free(sc);
        free(w);
}

static void samples_ensure(void)
{
        rng_t rng;
        size_t n = keel_schema_count();

        if (samples)
                return;
        CU_ASSERT_FATAL(n > 0);
        samples = calloc(n * VARIANTS, sizeof(*samples));
        CU_ASSERT_PTR_NOT_NULL_FATAL(samples);
        atexit(samples_free);
        rng_init(&rng, 1);
        for (size_t i = 0; i < n; i++)
                for (int v = 0; v < VARIANTS; v++)
                        build_sample(&samples[n_samples++], keel_schema_name(i),
                                     v, &rng);
}

/* ---- mutations -------------------------------------------------------- */

/* Varints put where a length, count or index goes, with the result each
 * must give there. A union or enum index: always KEEL_ERR_CORRUPT. */
#define ANY_ERROR 1 /* some error, no matter which */
#define ANYTHING  2 /* a negative count starts a valid block: may decode */

typedef struct pattern_s {
        unsigned char bytes[12];
        size_t len;
        const char *name;
        int as_len;   /* in place of a string or bytes length */
        int as_count; /* in place of an array or map block count */
} pattern_t;

static const pattern_t patterns[] = {
    {{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
     10,
     "INT64_MAX",
     KEEL_ERR_TRUNCATED,
     KEEL_ERR_TRUNCATED},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
     10,
     "INT64_MIN",
     KEEL_ERR_CORRUPT,
     KEEL_ERR_CORRUPT},
    {{0xfe, 0xff, 0xff, 0xff, 0x0f},
     5,
     "INT32_MAX",
     KEEL_ERR_TRUNCATED,
     KEEL_ERR_TRUNCATED},
    {{0xff, 0xff, 0xff, 0xff, 0x0f},
     5,
     "INT32_MIN",
     KEEL_ERR_CORRUPT,
     ANY_ERROR},
    {{0x80, 0x80, 0x80, 0x80, 0x10},
     5,
     "2^31",
     KEEL_ERR_TRUNCATED,
     KEEL_ERR_TRUNCATED},
    {{0x01}, 1, "-1", KEEL_ERR_CORRUPT, ANYTHING},
    {{0x03}, 1, "-2", KEEL_ERR_CORRUPT, ANYTHING},
    {{0xff, 0x7f}, 2, "-8192", KEEL_ERR_CORRUPT, ANY_ERROR},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
     10,
     "over 64 bits",
     KEEL_ERR_CORRUPT,
     KEEL_ERR_CORRUPT},
    {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
     11,
     "11-byte varint",
     KEEL_ERR_CORRUPT,
     KEEL_ERR_CORRUPT},
};

#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

/* Buffers are allocated to their exact size, so ASan sees a read one byte
 * past the end. */
static unsigned char *dup_with_room(const unsigned char *p, size_t len,
                                    size_t room)
{
        unsigned char *b = malloc(len + room ? len + room : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        memcpy(b, p, len);
        return b;
}

/* buf[at, at+cut) replaced by ins[0, ins_len); result in a new buffer. */
static unsigned char *splice(const unsigned char *p, size_t len, size_t at,
                             size_t cut, const unsigned char *ins,
                             size_t ins_len, size_t *out_len)
{
        size_t n = len - cut + ins_len;
        unsigned char *b = malloc(n ? n : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        memcpy(b, p, at);
        memcpy(b + at, ins, ins_len);
        memcpy(b + at + ins_len, p + at + cut, len - at - cut);
        *out_len = n;
        return b;
}

/* One random edit of *bp (length *lenp), in place or reallocated. */
static void mutate_once(rng_t *r, unsigned char **bp, size_t *lenp)
{
        unsigned char *b = *bp, *nb;
        size_t len = *lenp, at = rng_below(r, len + 1), n;
        unsigned char junk[16];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (unsigned char)rng_next(r);
        switch (rng_below(r, 11)) {
        case 0: /* flip a bit */
                if (len)
                        b[at % len] ^= (unsigned char)(1u << rng_below(r, 8));
                return;
        case 1: /* replace a byte */
                if (len)
                        b[at % len] = junk[0];
                return;
        case 2: /* replace a byte with an edge value */
                if (len) {
                        static const unsigned char edge[] = {0x00, 0x01, 0x7f,
                                                             0x80, 0xfe, 0xff};
                        b[at % len] = edge[rng_below(r, sizeof(edge))];
                }
                return;
        case 3: /* insert random bytes */
                n = 1 + rng_below(r, 8);
                nb = splice(b, len, at, 0, junk, n, lenp);
                break;
        case 4: /* delete a range */
                n = rng_below(r, len - at + 1);
                if (n > 16)
                        n = 1 + n % 16;
                nb = splice(b, len, at, n, junk, 0, lenp);
                break;
        case 5: /* truncate */
                *lenp = at;
                return;
        case 6: /* append junk */
                n = 1 + rng_below(r, sizeof(junk));
                nb = splice(b, len, len, 0, junk, n, lenp);
                break;
        case 7: /* a hostile varint in place of a byte */
        case 8: {
                const pattern_t *pt = &patterns[rng_below(r, N_PATTERNS)];
                n = at < len ? 1 : 0;
                nb = splice(b, len, at, n, pt->bytes, pt->len, lenp);
                break;
        }
        case 9: /* duplicate a range */
                n = rng_below(r, len - at + 1) % 24;
                nb = splice(b, len, at, 0, b + at, n, lenp);
                break;
        default: /* overwrite the fingerprint or the magic */
                if (len >= KEEL_RECORD_HEADER_BYTES)
                        b[rng_below(r, KEEL_RECORD_HEADER_BYTES)] = junk[1];
                return;
        }
        free(b);
        *bp = nb;
}

/* ---- tests ------------------------------------------------------------ */

static void test_codec_mutation_samples_roundtrip(void)
{
        size_t marks = 0;

        samples_ensure();
        CU_ASSERT_EQUAL(n_samples, keel_schema_count() * VARIANTS);
        for (size_t i = 0; i < n_samples; i++) {
                const char *type = NULL;
                json_t *rec = NULL;
                char err[256] = "";
                int rc = keel_codec_decode(samples[i].buf, samples[i].len,
                                           &type, &rec, err, sizeof(err));
                CU_ASSERT_EQUAL(rc, KEEL_OK);
                if (rc != KEEL_OK) {
                        fprintf(stderr, "\n%s: %s\n", samples[i].type, err);
                        continue;
                }
                CU_ASSERT_STRING_EQUAL(type, samples[i].type);
                CU_ASSERT(json_equal(rec, samples[i].rec));
                json_decref(rec);
                /* The walker kept every length the record holds. */
                CU_ASSERT(samples[i].n_marks < MAX_MARKS);
                marks += samples[i].n_marks;
        }
        CU_ASSERT(marks > n_samples);
}

static void test_codec_truncated_at_every_length(void)
{
        samples_ensure();
        for (size_t i = 0; i < n_samples; i++) {
                const sample_t *sm = &samples[i];
                /* A fresh allocation of exactly n bytes, so ASan sees any
                 * read past the end. */
                for (size_t n = 0; n < sm->len; n++) {
                        unsigned char *b = malloc(n ? n : 1);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
                        memcpy(b, sm->buf, n);
                        expect_decode(b, n, KEEL_ERR_TRUNCATED,
                                      "a truncated record must be TRUNCATED");
                        free(b);
                }
        }
}

static void test_codec_every_bit_flipped(void)
{
        samples_ensure();
        for (size_t i = 0; i < n_samples; i++) {
                const sample_t *sm = &samples[i];
                unsigned char *b = dup_with_room(sm->buf, sm->len, 0);
                for (size_t at = 0; at < sm->len; at++) {
                        for (int bit = 0; bit < 8; bit++) {
                                b[at] ^= (unsigned char)(1u << bit);
                                if (at < 2)
                                        expect_decode(
                                            b, sm->len, KEEL_ERR_CORRUPT,
                                            "a bad magic must be CORRUPT");
                                else if (at < KEEL_RECORD_HEADER_BYTES)
                                        expect_decode(
                                            b, sm->len, KEEL_ERR_UNKNOWN_SCHEMA,
                                            "a bad fingerprint must be "
                                            "UNKNOWN_SCHEMA");
                                else
                                        check_decode(b, sm->len);
                                b[at] ^= (unsigned char)(1u << bit);
                        }
                }
                free(b);
        }
}

static void test_codec_header_corrupted(void)
{
        size_t n_types = keel_schema_count();
        rng_t r;

        samples_ensure();
        rng_init(&r, 2);
        for (size_t i = 0; i < n_samples; i++) {
                const sample_t *sm = &samples[i];
                unsigned char *b = dup_with_room(sm->buf, sm->len, 0);

                /* Every other magic. */
                for (unsigned m = 0; m < 0x10000; m += 0x101) {
                        b[0] = (unsigned char)(m >> 8);
                        b[1] = (unsigned char)m;
                        if (b[0] != 0xc3 || b[1] != 0x01)
                                expect_decode(b, sm->len, KEEL_ERR_CORRUPT,
                                              "a bad magic must be CORRUPT");
                }
                b[0] = 0xc3;
                b[1] = 0x01;
                /* Random fingerprints. */
                for (int k = 0; k < 64; k++) {
                        uint64_t fp = rng_next(&r);
                        for (int j = 0; j < 8; j++)
                                b[2 + j] = (unsigned char)(fp >> (8 * j));
                        check_decode(b, sm->len);
                }
                /* This body under every other schema's fingerprint. */
                for (size_t t = 0; t < n_types; t++) {
                        uint64_t fp = 0;
                        CU_ASSERT_EQUAL(
                            keel_schema_fingerprint(keel_schema_name(t), &fp),
                            KEEL_OK);
                        for (int j = 0; j < 8; j++)
                                b[2 + j] = (unsigned char)(fp >> (8 * j));
                        check_decode(b, sm->len);
                }
                /* The fingerprint byte-swapped (big-endian by mistake). */
                for (int j = 0; j < 8; j++)
                        b[2 + j] = sm->buf[9 - j];
                if (memcmp(b + 2, sm->buf + 2, 8))
                        expect_decode(b, sm->len, KEEL_ERR_UNKNOWN_SCHEMA,
                                      "a swapped fingerprint must be "
                                      "UNKNOWN_SCHEMA");
                free(b);
        }
}

static void test_codec_hostile_lengths(void)
{
        samples_ensure();
        for (size_t i = 0; i < n_samples; i++) {
                const sample_t *sm = &samples[i];
                for (size_t m = 0; m < sm->n_marks; m++) {
                        const mark_t *mk = &sm->marks[m];
                        size_t len, left;
                        unsigned char *b;
                        unsigned char just_over[10];
                        size_t jo = 0;
                        uint64_t z;

                        for (size_t p = 0; p < N_PATTERNS; p++) {
                                const pattern_t *pt = &patterns[p];
                                /* In place of the varint ... */
                                int want =
                                    mk->kind == MARK_INDEX ? KEEL_ERR_CORRUPT
                                    : mk->kind == MARK_LEN ? pt->as_len
                                                           : pt->as_count;
                                int rc;
                                b = splice(sm->buf, sm->len, mk->at, mk->width,
                                           pt->bytes, pt->len, &len);
                                rc = check_decode(b, len);
                                if (want == ANY_ERROR
                                        ? rc == KEEL_OK
                                        : want != ANYTHING && rc != want) {
                                        report("hostile varint", b, len,
                                               pt->name);
                                        fprintf(stderr,
                                                "  %s at %zu of %s: %s\n",
                                                pt->name, mk->at, sm->type,
                                                keel_err_name(rc));
                                        CU_FAIL("a hostile length, count or "
                                                "index");
                                }
                                free(b);
                                /* ... and in front of it. */
                                b = splice(sm->buf, sm->len, mk->at, 0,
                                           pt->bytes, pt->len, &len);
                                check_decode(b, len);
                                free(b);
                        }

                        /* A length one byte more than what is left. */
                        if (mk->kind != MARK_LEN)
                                continue;
                        left = sm->len - mk->at - mk->width;
                        z = (uint64_t)(left + 1) << 1;
                        do {
                                just_over[jo++] =
                                    (unsigned char)((z & 0x7f) |
                                                    (z >> 7 ? 0x80 : 0));
                                z >>= 7;
                        } while (z);
                        b = splice(sm->buf, sm->len, mk->at, mk->width,
                                   just_over, jo, &len);
                        expect_decode(b, len, KEEL_ERR_TRUNCATED,
                                      "a length past the end must be "
                                      "TRUNCATED");
                        free(b);
                        /* A varint that never ends. */
                        for (size_t k = 1; k <= 9; k++) {
                                static const unsigned char ff[9] = {
                                    0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff};
                                b = splice(sm->buf, mk->at, mk->at, 0, ff, k,
                                           &len);
                                expect_decode(b, len, KEEL_ERR_TRUNCATED,
                                              "an unfinished varint must be "
                                              "TRUNCATED");
                                free(b);
                        }
                }
        }
}

static void test_codec_junk_appended(void)
{
        rng_t r;

        samples_ensure();
        rng_init(&r, 3);
        for (size_t i = 0; i < n_samples; i++) {
                const sample_t *sm = &samples[i];
                for (size_t n = 1; n <= 32; n++) {
                        unsigned char *b = dup_with_room(sm->buf, sm->len, n);
                        for (size_t k = 0; k < n; k++)
                                b[sm->len + k] = (unsigned char)rng_next(&r);
                        expect_decode(b, sm->len + n, KEEL_ERR_CORRUPT,
                                      "trailing bytes must be CORRUPT");
                        free(b);
                }
        }
}

/* A copy of sm's record with its first string field grown so the record
 * encodes to exactly `want` bytes (plus `extra` string bytes); NULL if
 * the record has no string field. */
static json_t *grown_to(const sample_t *sm, size_t want, size_t extra)
{
        const char *key, *found = NULL;
        json_t *v, *rec = json_deep_copy(sm->rec);
        unsigned char *out = NULL;
        size_t len = 0, pad;
        char *s;

        json_object_foreach(rec, key, v)
        {
                if (json_is_string(v)) {
                        found = key;
                        break;
                }
        }
        if (!found || want < sm->len + 16) {
                json_decref(rec);
                return NULL;
        }
        /* The length prefix grows too: aim low, then close the gap. */
        pad = want - sm->len - 16;
        for (int round = 0; round < 4; round++) {
                s = malloc(pad + 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(s);
                memset(s, 'x', pad);
                json_object_set_new(rec, found, json_stringn(s, pad));
                free(s);
                free(out);
                out = NULL;
                CU_ASSERT_EQUAL_FATAL(
                    keel_codec_encode(sm->type, rec, &out, &len, NULL, 0),
                    KEEL_OK);
                if (len == want)
                        break;
                pad = pad + want - len;
        }
        free(out);
        CU_ASSERT_EQUAL(len, want);
        if (extra) {
                s = malloc(pad + extra + 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(s);
                memset(s, 'x', pad + extra);
                json_object_set_new(rec, found, json_stringn(s, pad + extra));
                free(s);
        }
        return rec;
}

static void test_codec_oversized_buffers(void)
{
        const size_t max = KEEL_RECORD_MAX_BYTES;
        const sample_t *sm = NULL;
        unsigned char *b, *out = NULL;
        size_t len = 0, i;
        json_t *rec = NULL;
        char err[256];

        samples_ensure();
        for (i = 0; i < n_samples && !rec; i++) {
                sm = &samples[i];
                rec = grown_to(sm, max, 0);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);

        /* Exactly the limit: written and read. */
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_encode(sm->type, rec, &out, &len, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL(len, max);
        expect_decode(out, len, KEEL_OK, "a record of the maximum size");

        /* One byte over: refused both ways. */
        b = dup_with_room(out, len, 1);
        b[len] = 0;
        expect_decode(b, len + 1, KEEL_ERR_TOO_LARGE,
                      "a buffer over the maximum must be TOO_LARGE");
        free(b);
        free(out);
        out = NULL;
        json_decref(rec);
        rec = grown_to(sm, max, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        CU_ASSERT_EQUAL(
            keel_codec_encode(sm->type, rec, &out, &len, err, sizeof(err)),
            KEEL_ERR_TOO_LARGE);
        CU_ASSERT_PTR_NULL(out);
        free(out);
        json_decref(rec);

        /* A small valid record padded to the limit and past it. */
        sm = &samples[0];
        b = calloc(1, 2 * max);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        memcpy(b, sm->buf, sm->len);
        expect_decode(b, max, KEEL_ERR_CORRUPT,
                      "padding up to the maximum must be CORRUPT");
        expect_decode(b, max + 1, KEEL_ERR_TOO_LARGE, "max + 1 is TOO_LARGE");
        expect_decode(b, 2 * max, KEEL_ERR_TOO_LARGE, "2 max is TOO_LARGE");
        free(b);

        /* A length that claims more than the limit, in a small record. */
        for (i = 0; i < sm->n_marks; i++) {
                static const unsigned char huge_len[] = {0x80, 0x80, 0x80,
                                                         0x08}; /* 2^23 */
                if (sm->marks[i].kind != MARK_LEN)
                        continue;
                b = splice(sm->buf, sm->len, sm->marks[i].at,
                           sm->marks[i].width, huge_len, sizeof(huge_len),
                           &len);
                expect_decode(b, len, KEEL_ERR_TRUNCATED,
                              "a length over the maximum is TRUNCATED");
                free(b);
        }
}

static void test_codec_random_mutations(void)
{
        unsigned long count = mutation_count();
        rng_t r;

        samples_ensure();
        rng_init(&r, 4);
        for (unsigned long k = 0; k < count; k++) {
                const sample_t *sm = &samples[rng_below(&r, n_samples)];
                size_t len = sm->len;
                unsigned char *b = dup_with_room(sm->buf, sm->len, 0);
                size_t edits = 1 + rng_below(&r, 4);
                unsigned long bad = stats.bad;

                /* Mostly body edits: keep the header intact three times in
                 * four so mutations reach the body decoder. */
                for (size_t e = 0; e < edits; e++) {
                        unsigned char hdr[KEEL_RECORD_HEADER_BYTES];
                        int keep = rng_below(&r, 4) != 0 &&
                                   len >= KEEL_RECORD_HEADER_BYTES;
                        if (keep)
                                memcpy(hdr, b, sizeof(hdr));
                        mutate_once(&r, &b, &len);
                        if (keep && len >= KEEL_RECORD_HEADER_BYTES)
                                memcpy(b, hdr, sizeof(hdr));
                }
                /* Exactly len bytes, so ASan sees any overread. */
                {
                        unsigned char *exact = malloc(len ? len : 1);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
                        memcpy(exact, b, len);
                        free(b);
                        b = exact;
                }
                check_decode(b, len);
                if (stats.bad != bad && stats.bad <= MAX_REPORTS)
                        fprintf(stderr, "  (random mutation #%lu)\n", k);
                free(b);
        }
}

/* Last: the mutations above reached every kind of decoder error. */
static void test_codec_mutation_outcomes_seen(void)
{
        unsigned long random_count = mutation_count();

        fprintf(stderr,
                "\n  seed %#" PRIx64 ": %lu decodes: %lu ok, %lu truncated, "
                "%lu corrupt, %lu unknown schema, %lu too large, %lu "
                "violations\n",
                base_seed(), stats.calls, stats.ok, stats.truncated,
                stats.corrupt, stats.unknown, stats.too_large, stats.bad);
        CU_ASSERT_EQUAL(stats.bad, 0);
        CU_ASSERT(stats.calls >= random_count);
        if (random_count >= DEFAULT_COUNT)
                CU_ASSERT(stats.calls >= 100000);
        CU_ASSERT(stats.ok > 0);
        CU_ASSERT(stats.truncated > 0);
        CU_ASSERT(stats.corrupt > 0);
        CU_ASSERT(stats.unknown > 0);
        CU_ASSERT(stats.too_large > 0);
}

static CU_TestInfo tests[] = {
    {"codec_mutation_samples_roundtrip", test_codec_mutation_samples_roundtrip},
    {"codec_truncated_at_every_length", test_codec_truncated_at_every_length},
    {"codec_every_bit_flipped", test_codec_every_bit_flipped},
    {"codec_header_corrupted", test_codec_header_corrupted},
    {"codec_hostile_lengths", test_codec_hostile_lengths},
    {"codec_junk_appended", test_codec_junk_appended},
    {"codec_oversized_buffers", test_codec_oversized_buffers},
    {"codec_random_mutations", test_codec_random_mutations},
    {"codec_mutation_outcomes_seen", test_codec_mutation_outcomes_seen},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("codec mutation", tests)
