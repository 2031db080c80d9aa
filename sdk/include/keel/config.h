/*
 * keel/config.h: one way to configure every keel process.
 *
 * Settings are key/value strings, applied in order of precedence:
 * built-in defaults, then a config file (`key = value` lines, `#`
 * comments; named by --config or KEEL_CONFIG), then environment variables
 * (KEEL_<KEY> with dots as underscores: KEEL_BOOTSTRAP, KEEL_CLUSTER_NAME),
 * then command-line flags. Keys starting with `kafka.` are passed through
 * to librdkafka without the prefix (kafka.security.protocol=SASL_SSL), so
 * SASL and TLS work on real clusters. An unknown key, a bad value or a
 * property librdkafka rejects is KEEL_ERR_CONFIG with a message naming the
 * key and where it came from.
 */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_config_s keel_config_t;

/* A new configuration holding the defaults; NULL if out of memory.
 * Free with keel_config_destroy(). */
keel_config_t *keel_config_new(void);

/* Frees cfg; accepts NULL. */
void keel_config_destroy(keel_config_t *cfg);

/* Set key to value (both copied). `origin` says where it came from, for
 * error messages ("flag", "file x.conf:3"); may be NULL. */
int keel_config_set(keel_config_t *cfg, const char *key, const char *value,
                    const char *origin, char *errstr, size_t errstr_size);

/* Apply a `key = value` file. A missing file is KEEL_ERR_IO. */
int keel_config_load_file(keel_config_t *cfg, const char *path, char *errstr,
                          size_t errstr_size);

/* Apply the KEEL_CONFIG file, if set, then every KEEL_* variable of the
 * environment. */
int keel_config_load_env(keel_config_t *cfg, char *errstr, size_t errstr_size);

/* The value of key (owned by cfg, valid until it changes), or NULL. */
const char *keel_config_get(const keel_config_t *cfg, const char *key);

/* The value of an integer key. */
int keel_config_get_int(const keel_config_t *cfg, const char *key,
                        int64_t *out);

/* Check that librdkafka accepts every kafka.* property. */
int keel_config_validate(const keel_config_t *cfg, char *errstr,
                         size_t errstr_size);

/* Call fn for every key that has a value, defaults included, in a stable
 * order (for `keel config show`). */
void keel_config_foreach(const keel_config_t *cfg,
                         void (*fn)(const char *key, const char *value,
                                    const char *origin, void *opaque),
                         void *opaque);

#ifdef __cplusplus
}
#endif
#endif
