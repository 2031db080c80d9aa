/*
 * keel/codec.h: the wire format of every record on every keel topic.
 *
 * Each value is an Avro record in single-object encoding: the two bytes
 * C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint of the schema's
 * Parsing Canonical Form, then the Avro binary body. The schemas are the
 * .avsc files under schemas/, compiled into libkeel at build time; a record
 * type is named by its schema's full name ("keel.history.TimerFired").
 *
 * Records cross this API as jansson objects shaped like the schema: a
 * record is an object, a union is its plain value (null or the branch's
 * value), an enum is its symbol, bytes are a string of code points 0-255
 * (Avro's JSON mapping), timestamps are integers (milliseconds).
 *
 * The decoder takes bytes from outside: truncated, corrupt, oversized or
 * unknown input returns an error value, never a crash. Thread-safe.
 */
#ifndef KEEL_CODEC_H
#define KEEL_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest encoded record the codec writes or reads, in bytes. */
#define KEEL_RECORD_MAX_BYTES (4 * 1024 * 1024)

/* Length of the single-object header (C3 01 + 8-byte fingerprint). */
#define KEEL_RECORD_HEADER_BYTES 10

/*
 * Encode rec as a record of schema `type`. Fields rec omits take the
 * schema's default; a missing field without default, a value of the wrong
 * type or an unknown enum symbol is KEEL_ERR_SCHEMA with the field's path
 * in errstr. On success *out is a malloc'd buffer the caller frees with
 * free(). errstr may be NULL.
 */
int keel_codec_encode(const char *type, const json_t *rec, unsigned char **out,
                      size_t *out_len, char *errstr, size_t errstr_size);

/*
 * Decode a single-object record. On success *type is the record's schema
 * name (static, not to be freed) and *rec a new reference the caller
 * releases with json_decref(). A record written with an older version of a
 * schema is resolved to the current one (new fields take their defaults).
 * Errors: KEEL_ERR_TRUNCATED, KEEL_ERR_CORRUPT, KEEL_ERR_UNKNOWN_SCHEMA,
 * KEEL_ERR_TOO_LARGE, with details in errstr (which may be NULL).
 */
int keel_codec_decode(const void *buf, size_t len, const char **type,
                      json_t **rec, char *errstr, size_t errstr_size);

/* The record type a single-object buffer claims by its fingerprint, without
 * decoding the body. KEEL_ERR_UNKNOWN_SCHEMA if not known. */
int keel_codec_peek_type(const void *buf, size_t len, const char **type);

/* Number of current schemas compiled in, and the i-th one's full name. */
size_t keel_schema_count(void);
const char *keel_schema_name(size_t i);

/* The CRC-64-AVRO fingerprint of schema `type`'s canonical form. */
int keel_schema_fingerprint(const char *type, uint64_t *fp);

/* The Parsing Canonical Form of schema `type` (static string). */
int keel_schema_canonical(const char *type, const char **pcf);

/* The schema's original JSON text as found in schemas/ (static string). */
int keel_schema_text(const char *type, const char **text);

/* n bytes as a JSON string in Avro's JSON mapping of bytes (each byte a
 * code point 0-255), the form bytes fields take in records. A new
 * reference, or NULL if out of memory. */
json_t *keel_codec_bytes(const void *p, size_t n);

/*
 * A keel.dlq.DeadLetter record (new reference) for a record keel could not
 * process: where it came from, its key and value (may be NULL), the keel
 * error name, a human reason and the component ("orchestrator",
 * "worker"). NULL if out of memory.
 */
json_t *keel_codec_dead_letter(const char *source_topic, int32_t partition,
                               int64_t offset, const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const char *error, const char *reason,
                               const char *component, int64_t ts_ms);

/* CRC-64-AVRO (Rabin) fingerprint of len bytes, as the Avro spec defines. */
uint64_t keel_crc64_avro(const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
