/*
 * schema.c: the registry of compiled-in Avro schemas, with their Parsing
 * Canonical Form and CRC-64-AVRO fingerprints (Avro C 1.11 has neither).
 *
 * The .avsc files under schemas/ are embedded by the build (see
 * cmake/embed_schemas.cmake). Files under a folder named `archive/` are
 * older versions of a schema, kept so records they wrote still decode;
 * every other file is the current version of its record type.
 */
#include "schema_int.h"

#include "keel/codec.h"
#include "keel/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC-64-AVRO ------------------------------------------------------ */

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
        for (int i = 0; i < 256; i++) {
                uint64_t fp = (uint64_t)i;
                for (int j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (CRC64_EMPTY & (0 - (fp & 1)));
                crc_table[i] = fp;
        }
}

uint64_t keel_crc64_avro(const void *buf, size_t len)
{
        const unsigned char *p = buf;
        uint64_t fp = CRC64_EMPTY;

        pthread_once(&crc_once, crc_init);
        for (size_t i = 0; i < len; i++)
                fp = (fp >> 8) ^ crc_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/* ---- growable string -------------------------------------------------- */

typedef struct sbuf_s {
        char *s;
        size_t len, cap;
        int oom;
} sbuf_t;

static void sb_put(sbuf_t *sb, const char *s, size_t n)
{
        if (sb->oom)
                return;
        if (sb->len + n + 1 > sb->cap) {
                size_t cap = sb->cap ? sb->cap * 2 : 256;
                while (cap < sb->len + n + 1)
                        cap *= 2;
                char *p = realloc(sb->s, cap);
                if (!p) {
                        sb->oom = 1;
                        return;
                }
                sb->s = p;
                sb->cap = cap;
        }
        memcpy(sb->s + sb->len, s, n);
        sb->len += n;
        sb->s[sb->len] = '\0';
}

static void sb_str(sbuf_t *sb, const char *s)
{
        sb_put(sb, s, strlen(s));
}

/* A JSON string literal, escaped as JSON requires. */
static void sb_quoted(sbuf_t *sb, const char *s)
{
        json_t *j = json_string(s);
        char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        if (!q) {
                sb->oom = 1;
        } else {
                sb_str(sb, q);
        }
        free(q);
        json_decref(j);
}

/* ---- parsing ---------------------------------------------------------- */

typedef struct parse_s {
        keel__schema_t *schema;
        sbuf_t pcf;
        const char *err;
        char errbuf[256];
} parse_t;

static const struct {
        const char *name;
        keel__av_kind_t kind;
} primitives[] = {
    {"null", KEEL__AV_NULL},   {"boolean", KEEL__AV_BOOLEAN},
    {"int", KEEL__AV_INT},     {"long", KEEL__AV_LONG},
    {"float", KEEL__AV_FLOAT}, {"double", KEEL__AV_DOUBLE},
    {"bytes", KEEL__AV_BYTES}, {"string", KEEL__AV_STRING},
};

static int primitive_kind(const char *name, keel__av_kind_t *kind)
{
        for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]);
             i++) {
                if (!strcmp(name, primitives[i].name)) {
                        *kind = primitives[i].kind;
                        return 1;
                }
        }
        return 0;
}

static keel__av_node_t *node_new(parse_t *ps, keel__av_kind_t kind)
{
        keel__av_node_t *n = calloc(1, sizeof(*n));
        if (!n) {
                ps->err = "out of memory";
                return NULL;
        }
        n->kind = kind;
        n->next = ps->schema->nodes;
        ps->schema->nodes = n;
        return n;
}

static keel__av_node_t *find_named(parse_t *ps, const char *fullname)
{
        for (keel__av_node_t *n = ps->schema->nodes; n; n = n->next)
                if (n->fullname && !strcmp(n->fullname, fullname))
                        return n;
        return NULL;
}

/* fullname of `name` in namespace ns; malloc'd. */
static char *make_fullname(const char *name, const char *ns)
{
        size_t nl = strlen(name), sl = ns ? strlen(ns) : 0;
        char *s;

        if (strchr(name, '.') || !sl)
                return strdup(name);
        s = malloc(sl + 1 + nl + 1);
        if (s) {
                memcpy(s, ns, sl);
                s[sl] = '.';
                memcpy(s + sl + 1, name, nl + 1);
        }
        return s;
}

/* The namespace part of a fullname ("a.b.C" -> "a.b"); malloc'd or NULL. */
static char *namespace_of(const char *fullname)
{
        const char *dot = strrchr(fullname, '.');
        return dot ? strndup(fullname, (size_t)(dot - fullname)) : NULL;
}

static keel__av_node_t *parse_node(parse_t *ps, const json_t *j,
                                   const char *ns);

static keel__av_node_t *parse_named(parse_t *ps, const json_t *j,
                                    const char *type, const char *ns)
{
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *own_ns = json_string_value(json_object_get(j, "namespace"));
        keel__av_node_t *n;
        char *inner_ns;

        if (!name) {
                ps->err = "named type without a name";
                return NULL;
        }
        n = node_new(ps, !strcmp(type, "enum")    ? KEEL__AV_ENUM
                         : !strcmp(type, "fixed") ? KEEL__AV_FIXED
                                                  : KEEL__AV_RECORD);
        if (!n)
                return NULL;
        n->fullname = make_fullname(name, own_ns ? own_ns : ns);
        if (!n->fullname) {
                ps->err = "out of memory";
                return NULL;
        }
        sb_str(&ps->pcf, "{\"name\":");
        sb_quoted(&ps->pcf, n->fullname);
        sb_str(&ps->pcf, ",\"type\":");
        sb_quoted(&ps->pcf, type);

        if (n->kind == KEEL__AV_ENUM) {
                const json_t *syms = json_object_get(j, "symbols");
                size_t i;
                const json_t *s;
                if (!json_is_array(syms) || !json_array_size(syms)) {
                        ps->err = "enum without symbols";
                        return NULL;
                }
                n->n = json_array_size(syms);
                n->symbols = calloc(n->n, sizeof(char *));
                if (!n->symbols) {
                        ps->err = "out of memory";
                        return NULL;
                }
                sb_str(&ps->pcf, ",\"symbols\":[");
                json_array_foreach(syms, i, s)
                {
                        if (!json_is_string(s)) {
                                ps->err = "enum symbol is not a string";
                                return NULL;
                        }
                        n->symbols[i] = strdup(json_string_value(s));
                        if (i)
                                sb_str(&ps->pcf, ",");
                        sb_quoted(&ps->pcf, json_string_value(s));
                }
                sb_str(&ps->pcf, "]}");
                return n;
        }
        if (n->kind == KEEL__AV_FIXED) {
                json_int_t size =
                    json_integer_value(json_object_get(j, "size"));
                char num[32];
                if (size <= 0) {
                        ps->err = "fixed without a positive size";
                        return NULL;
                }
                n->size = (size_t)size;
                snprintf(num, sizeof(num), ",\"size\":%lld}", (long long)size);
                sb_str(&ps->pcf, num);
                return n;
        }

        /* record (or error) */
        const json_t *fields = json_object_get(j, "fields");
        size_t i;
        const json_t *f;
        if (!json_is_array(fields)) {
                ps->err = "record without fields";
                return NULL;
        }
        n->n = json_array_size(fields);
        n->fields = calloc(n->n ? n->n : 1, sizeof(*n->fields));
        inner_ns = namespace_of(n->fullname);
        if (!n->fields) {
                free(inner_ns);
                ps->err = "out of memory";
                return NULL;
        }
        sb_str(&ps->pcf, ",\"fields\":[");
        json_array_foreach(fields, i, f)
        {
                const char *fname =
                    json_string_value(json_object_get(f, "name"));
                json_t *def = json_object_get(f, "default");
                if (!fname) {
                        ps->err = "record field without a name";
                        break;
                }
                n->fields[i].name = strdup(fname);
                n->fields[i].def = def ? json_incref(def) : NULL;
                if (i)
                        sb_str(&ps->pcf, ",");
                sb_str(&ps->pcf, "{\"name\":");
                sb_quoted(&ps->pcf, fname);
                sb_str(&ps->pcf, ",\"type\":");
                n->fields[i].type =
                    parse_node(ps, json_object_get(f, "type"), inner_ns);
                if (!n->fields[i].type)
                        break;
                sb_str(&ps->pcf, "}");
        }
        free(inner_ns);
        if (ps->err)
                return NULL;
        sb_str(&ps->pcf, "]}");
        return n;
}

static keel__av_node_t *parse_node(parse_t *ps, const json_t *j, const char *ns)
{
        keel__av_kind_t kind;

        if (!j) {
                ps->err = "missing type";
                return NULL;
        }
        if (json_is_string(j)) {
                const char *name = json_string_value(j);
                keel__av_node_t *n;
                char *full;
                if (primitive_kind(name, &kind)) {
                        sb_quoted(&ps->pcf, name);
                        return node_new(ps, kind);
                }
                /* A reference to a named type defined earlier. */
                full = make_fullname(name, ns);
                n = full ? find_named(ps, full) : NULL;
                if (!n && full) {
                        snprintf(ps->errbuf, sizeof(ps->errbuf),
                                 "unknown type name '%s'", full);
                        ps->err = ps->errbuf;
                } else if (n) {
                        sb_quoted(&ps->pcf, full);
                }
                free(full);
                return n;
        }
        if (json_is_array(j)) {
                keel__av_node_t *n = node_new(ps, KEEL__AV_UNION);
                size_t i;
                const json_t *b;
                if (!n)
                        return NULL;
                n->n = json_array_size(j);
                n->branches = calloc(n->n ? n->n : 1, sizeof(*n->branches));
                if (!n->branches || !n->n) {
                        ps->err = n->n ? "out of memory" : "empty union";
                        return NULL;
                }
                sb_str(&ps->pcf, "[");
                json_array_foreach(j, i, b)
                {
                        if (i)
                                sb_str(&ps->pcf, ",");
                        n->branches[i] = parse_node(ps, b, ns);
                        if (!n->branches[i])
                                return NULL;
                }
                sb_str(&ps->pcf, "]");
                return n;
        }
        if (json_is_object(j)) {
                const char *type =
                    json_string_value(json_object_get(j, "type"));
                if (!type) {
                        /* {"type": {...}} nests a full schema. */
                        return parse_node(ps, json_object_get(j, "type"), ns);
                }
                if (primitive_kind(type, &kind)) {
                        /* logicalType and other attributes are not part of
                         * the canonical form. */
                        sb_quoted(&ps->pcf, type);
                        return node_new(ps, kind);
                }
                if (!strcmp(type, "record") || !strcmp(type, "error") ||
                    !strcmp(type, "enum") || !strcmp(type, "fixed"))
                        return parse_named(ps, j, type, ns);
                if (!strcmp(type, "array") || !strcmp(type, "map")) {
                        int is_array = !strcmp(type, "array");
                        keel__av_node_t *n = node_new(
                            ps, is_array ? KEEL__AV_ARRAY : KEEL__AV_MAP);
                        if (!n)
                                return NULL;
                        sb_str(&ps->pcf, is_array ? "{\"type\":\"array\","
                                                    "\"items\":"
                                                  : "{\"type\":\"map\","
                                                    "\"values\":");
                        n->items = parse_node(
                            ps,
                            json_object_get(j, is_array ? "items" : "values"),
                            ns);
                        if (!n->items)
                                return NULL;
                        sb_str(&ps->pcf, "}");
                        return n;
                }
                /* A named type referenced as {"type": "a.b.C"}. */
                return parse_node(ps, json_object_get(j, "type"), ns);
        }
        ps->err = "a type must be a string, an array or an object";
        return NULL;
}

static void schema_free_nodes(keel__schema_t *s)
{
        keel__av_node_t *n = s->nodes, *next;
        for (; n; n = next) {
                next = n->next;
                for (size_t i = 0; n->fields && i < n->n; i++) {
                        free(n->fields[i].name);
                        json_decref(n->fields[i].def);
                }
                for (size_t i = 0; n->symbols && i < n->n; i++)
                        free(n->symbols[i]);
                free(n->fields);
                free(n->symbols);
                free(n->branches);
                free(n->fullname);
                free(n);
        }
        s->nodes = NULL;
        s->root = NULL;
}

void keel__schema_clear(keel__schema_t *s)
{
        schema_free_nodes(s);
        free(s->pcf);
        free(s->fullname);
        s->pcf = NULL;
        s->fullname = NULL;
}

int keel__schema_parse(keel__schema_t *s, const char *path, const char *text,
                       char *err, size_t errsize)
{
        json_error_t jerr;
        json_t *j;
        parse_t ps;

        memset(s, 0, sizeof(*s));
        s->path = path;
        s->text = text;
        j = json_loads(text, 0, &jerr);
        memset(&ps, 0, sizeof(ps));
        ps.schema = s;
        if (!j) {
                snprintf(err, errsize, "%s: line %d: %s", s->path, jerr.line,
                         jerr.text);
                return -1;
        }
        s->root = parse_node(&ps, j, NULL);
        json_decref(j);
        if (!s->root || ps.err || ps.pcf.oom) {
                snprintf(err, errsize, "%s: %s", s->path,
                         ps.err ? ps.err : "out of memory");
                free(ps.pcf.s);
                schema_free_nodes(s);
                return -1;
        }
        if (s->root->kind != KEEL__AV_RECORD) {
                snprintf(err, errsize, "%s: top level must be a record",
                         s->path);
                free(ps.pcf.s);
                schema_free_nodes(s);
                return -1;
        }
        s->pcf = ps.pcf.s;
        s->fullname = strdup(s->root->fullname);
        s->fp = keel_crc64_avro(s->pcf, strlen(s->pcf));
        return 0;
}

/* ---- registry --------------------------------------------------------- */

static keel__schema_t *registry;
static size_t registry_cnt;
static size_t current_cnt;
static const keel__schema_t **currents;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static int is_archived(const char *path)
{
        return !strncmp(path, "archive/", 8) || strstr(path, "/archive/");
}

static void registry_init(void)
{
        char err[512];
        keel__schema_t *r = calloc(keel__schema_srcs_cnt, sizeof(*r));
        const keel__schema_t **cur =
            calloc(keel__schema_srcs_cnt, sizeof(*cur));
        size_t ncur = 0;

        if (!r || !cur) {
                free(r);
                free(cur);
                return;
        }
        for (size_t i = 0; i < keel__schema_srcs_cnt; i++) {
                if (keel__schema_parse(&r[i], keel__schema_srcs[i].path,
                                       keel__schema_srcs[i].text, err,
                                       sizeof(err)) == -1) {
                        fprintf(stderr, "keel: invalid schema %s\n", err);
                        /* A build defect: refuse to encode or decode. */
                        while (i > 0)
                                keel__schema_clear(&r[--i]);
                        free(r);
                        free(cur);
                        return;
                }
                if (!is_archived(r[i].path))
                        cur[ncur++] = &r[i];
        }
        for (size_t i = 0; i < keel__schema_srcs_cnt; i++) {
                for (size_t k = 0; k < ncur; k++)
                        if (!strcmp(cur[k]->fullname, r[i].fullname))
                                r[i].current = cur[k];
        }
        registry = r;
        registry_cnt = keel__schema_srcs_cnt;
        currents = cur;
        current_cnt = ncur;
}

static void registry_ensure(void)
{
        pthread_once(&registry_once, registry_init);
}

const keel__schema_t *keel__schema_by_name(const char *fullname)
{
        registry_ensure();
        for (size_t i = 0; fullname && i < current_cnt; i++)
                if (!strcmp(currents[i]->fullname, fullname))
                        return currents[i];
        return NULL;
}

const keel__schema_t *keel__schema_by_fp(uint64_t fp)
{
        registry_ensure();
        for (size_t i = 0; i < registry_cnt; i++)
                if (registry[i].fp == fp)
                        return &registry[i];
        return NULL;
}

size_t keel_schema_count(void)
{
        registry_ensure();
        return current_cnt;
}

const char *keel_schema_name(size_t i)
{
        registry_ensure();
        return i < current_cnt ? currents[i]->fullname : NULL;
}

int keel_schema_fingerprint(const char *type, uint64_t *fp)
{
        const keel__schema_t *s = keel__schema_by_name(type);
        if (!s)
                return KEEL_ERR_UNKNOWN_SCHEMA;
        *fp = s->fp;
        return KEEL_OK;
}

int keel_schema_canonical(const char *type, const char **pcf)
{
        const keel__schema_t *s = keel__schema_by_name(type);
        *pcf = NULL;
        if (!s)
                return KEEL_ERR_UNKNOWN_SCHEMA;
        *pcf = s->pcf;
        return KEEL_OK;
}

int keel_schema_text(const char *type, const char **text)
{
        const keel__schema_t *s = keel__schema_by_name(type);
        *text = NULL;
        if (!s)
                return KEEL_ERR_UNKNOWN_SCHEMA;
        *text = s->text;
        return KEEL_OK;
}
