/*
 * keel/log.h: one log line per event, as key=value pairs or JSON.
 *
 * Every keel process logs to stderr through this: a timestamp, the level,
 * the component, then the caller's key=value text. With log.format=json
 * the same line is a JSON object ({"ts":..,"level":..,"component":..,
 * "msg":..}). Thread-safe.
 */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum keel_log_level_e {
        KEEL_LOG_DEBUG = 0,
        KEEL_LOG_INFO = 1,
        KEEL_LOG_WARN = 2,
        KEEL_LOG_ERROR = 3,
} keel_log_level_t;

/* Lines below `level` are dropped. */
void keel_log_set_level(keel_log_level_t level);

/* 1: JSON lines, 0: key=value (the default). */
void keel_log_set_json(int json);

/* Parse "debug|info|warn|error"; -1 if none of those. */
int keel_log_level_parse(const char *s);

/* Log one line. fmt should produce key=value pairs. */
void keel_log(keel_log_level_t level, const char *component, const char *fmt,
              ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
