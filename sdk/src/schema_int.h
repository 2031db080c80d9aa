/*
 * schema_int.h: the parsed form of keel's Avro schemas, shared by the
 * schema registry (schema.c) and the binary codec (codec.c).
 */
#ifndef KEEL_SCHEMA_INT_H
#define KEEL_SCHEMA_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum keel__av_kind_e {
        KEEL__AV_NULL,
        KEEL__AV_BOOLEAN,
        KEEL__AV_INT,
        KEEL__AV_LONG,
        KEEL__AV_FLOAT,
        KEEL__AV_DOUBLE,
        KEEL__AV_BYTES,
        KEEL__AV_STRING,
        KEEL__AV_RECORD,
        KEEL__AV_ENUM,
        KEEL__AV_ARRAY,
        KEEL__AV_MAP,
        KEEL__AV_UNION,
        KEEL__AV_FIXED,
} keel__av_kind_t;

typedef struct keel__av_node_s keel__av_node_t;

typedef struct keel__av_field_s {
        char *name;
        keel__av_node_t *type;
        json_t *def; /* default value, or NULL when the field has none */
} keel__av_field_t;

struct keel__av_node_s {
        keel__av_kind_t kind;
        char *fullname;             /* named types only */
        size_t n;                   /* fields, symbols or branches */
        keel__av_field_t *fields;   /* record */
        char **symbols;             /* enum */
        keel__av_node_t **branches; /* union */
        keel__av_node_t *items;     /* array items, map values */
        size_t size;                /* fixed */
        keel__av_node_t *next;      /* list of all nodes of a schema */
};

/* One schema as compiled in: current or an older version kept to read
 * records written before a field was added. */
typedef struct keel__schema_s {
        const char *path; /* path under schemas/ */
        const char *text; /* the .avsc text */
        char *fullname;
        char *pcf;
        uint64_t fp;
        keel__av_node_t *root;
        keel__av_node_t *nodes;               /* every node, for freeing */
        const struct keel__schema_s *current; /* newest of that name */
} keel__schema_t;

/* Parse one schema text into s (path and text are kept, not copied).
 * Returns 0, or -1 with a message in err. Free with keel__schema_clear(). */
int keel__schema_parse(keel__schema_t *s, const char *path, const char *text,
                       char *err, size_t errsize);
void keel__schema_clear(keel__schema_t *s);

/* Encode rec with schema s; the single-object header carries s's
 * fingerprint. See keel_codec_encode(). */
int keel__codec_encode_with(const keel__schema_t *s, const json_t *rec,
                            unsigned char **out, size_t *out_len, char *errstr,
                            size_t errstr_size);

/* Decode the body of a single-object record (buf points past the header)
 * written with schema `writer`, shaped like `reader` (the same schema, or a
 * newer version of it). */
int keel__codec_decode_with(const keel__schema_t *writer,
                            const keel__schema_t *reader, const void *body,
                            size_t len, json_t **rec, char *errstr,
                            size_t errstr_size);

/* The registry, built once on first use. NULL only if out of memory or a
 * compiled-in schema is invalid (a build defect; logged to stderr). */
const keel__schema_t *keel__schema_by_name(const char *fullname);
const keel__schema_t *keel__schema_by_fp(uint64_t fp);

/* The compiled-in schema files, generated from schemas/ by the build. */
typedef struct keel__schema_src_s {
        const char *path;
        const char *text;
} keel__schema_src_t;
extern const keel__schema_src_t keel__schema_srcs[];
extern const size_t keel__schema_srcs_cnt;

#endif
