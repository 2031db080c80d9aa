/*
 * codec_int.h: reading a few fields of a record without decoding it
 * (codec.c), for the orchestrator's restore, which reads millions of
 * history records and needs only the leading fields of most of them.
 */
#ifndef KEEL_CODEC_INT_H
#define KEEL_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>

/* One top-level field of a record that keel__codec_scan() reads. */
typedef struct keel__scan_field_s {
        const char *name; /* in: the field's name */
        int found;        /* out: it is there and not null */
        int64_t i;        /* out: int, long, boolean or enum index */
        const char *s;    /* out: string or bytes, borrowed from the record
                             (or from the schema, for a default), not
                             NUL-terminated; n bytes */
        size_t n;
} keel__scan_field_t;

/*
 * Check a single-object record as keel_codec_decode() does, with the same
 * result for the same bytes, without building it: *type is its schema's
 * full name (the current version's). Fields asked for (nfields of them)
 * are filled in; a field the record's writer did not have takes its
 * default. KEEL_OK, or keel_codec_decode()'s error with errstr.
 */
int keel__codec_scan(const void *buf, size_t len, const char **type,
                     keel__scan_field_t *fields, size_t nfields, char *errstr,
                     size_t errstr_size);

#endif
