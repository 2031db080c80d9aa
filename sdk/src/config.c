/*
 * config.c: keel's configuration (keel/config.h): defaults, file,
 * environment and flags, with librdkafka properties passed through.
 */
#include "config_int.h"

#include "keel/error.h"
#include "keel/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef enum { T_STRING, T_INT, T_ENUM } ktype_t;

/* Every keel key, its type and default. Keep docs/configuration.md in
 * step with this table. */
static const struct {
        const char *key;
        ktype_t type;
        const char *def;
        const char *choices; /* T_ENUM: "|a|b|" */
        int64_t min, max;    /* T_INT */
} keys[] = {
    {"bootstrap", T_STRING, "127.0.0.1:9092", NULL, 0, 0},
    {"cluster.name", T_STRING, "keel", NULL, 0, 0},
    {"partitions", T_INT, "12", NULL, 1, 100000},
    {"replication", T_INT, "1", NULL, 1, 32767},
    {"log.level", T_ENUM, "info", "|debug|info|warn|error|", 0, 0},
    {"log.format", T_ENUM, "kv", "|kv|json|", 0, 0},
    {"metrics.listen", T_STRING, "127.0.0.1:0", NULL, 0, 0},
    {"http.listen", T_STRING, "127.0.0.1:8080", NULL, 0, 0},
    {"timeout.ms", T_INT, "30000", NULL, 1, 3600000},
    /* projector */
    {"http.token", T_STRING, "", NULL, 0, 0},
    {"http.auth.reads", T_ENUM, "false", "|false|true|", 0, 0},
    {"http.max.body.bytes", T_INT, "1048576", NULL, 1, 67108864},
    {"http.max.connections", T_INT, "256", NULL, 4, 65536},
    {"http.threads", T_INT, "0", NULL, 0, 1024},
    /* command line */
    {"projector.url", T_STRING, "http://127.0.0.1:8080", NULL, 0, 0},
    /* orchestrator */
    {"workflows", T_STRING, "", NULL, 0, 0},
    {"batch.max.commands", T_INT, "500", NULL, 1, 100000},
    {"batch.max.ms", T_INT, "0", NULL, 0, 10000},
    {"commit.threads", T_INT, "16", NULL, 1, 256},
    {"lifecycle.topic", T_STRING, "", NULL, 0, 0},
    {"ingress.routes", T_STRING, "", NULL, 0, 0},
    /* closed runs' histories, and limits of a run's (machine_limits.c);
     * retention.closed.ms.<type> takes retention.closed.ms's values */
    {"retention.closed.ms", T_INT, "604800000", NULL, -1, 3153600000000LL},
    {"history.max.events", T_INT, "50000", NULL, 10, 100000000},
    {"history.max.bytes", T_INT, "52428800", NULL, 4096, 68719476736LL},
    {"history.warn.percent", T_INT, "80", NULL, 1, 100},
    /* workers */
    {"worker.concurrency", T_INT, "8", NULL, 1, 4096},
    {"worker.grace.ms", T_INT, "30000", NULL, 0, 3600000},
    {"worker.id", T_STRING, "", NULL, 0, 0},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

typedef struct entry_s {
        char *key, *value, *origin;
} entry_t;

struct keel_config_s {
        entry_t *e;
        size_t n, cap;
};

static int fail(char *errstr, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errstr, size_t errsize, const char *fmt, ...)
{
        if (errstr && errsize) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errsize, fmt, ap);
                va_end(ap);
        }
        return KEEL_ERR_CONFIG;
}

keel_config_t *keel_config_new(void)
{
        return calloc(1, sizeof(keel_config_t));
}

void keel_config_destroy(keel_config_t *cfg)
{
        if (!cfg)
                return;
        for (size_t i = 0; i < cfg->n; i++) {
                free(cfg->e[i].key);
                free(cfg->e[i].value);
                free(cfg->e[i].origin);
        }
        free(cfg->e);
        free(cfg);
}

static int key_index(const char *key)
{
        for (size_t i = 0; i < NKEYS; i++)
                if (!strcmp(keys[i].key, key))
                        return (int)i;
        return -1;
}

/* A key of a family: retention.closed.ms.<type> is checked as
 * retention.closed.ms. Its index in keys[], or -1. */
static int family_index(const char *key)
{
        size_t n = strlen(KEEL__RETENTION_TYPE_PREFIX);
        if (!strncmp(key, KEEL__RETENTION_TYPE_PREFIX, n) && key[n])
                return key_index("retention.closed.ms");
        return -1;
}

static entry_t *find(const keel_config_t *cfg, const char *key)
{
        for (size_t i = 0; i < cfg->n; i++)
                if (!strcmp(cfg->e[i].key, key))
                        return &cfg->e[i];
        return NULL;
}

static int parse_int(const char *s, int64_t *out)
{
        char *end;
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end)
                return -1;
        *out = v;
        return 0;
}

int keel_config_set(keel_config_t *cfg, const char *key, const char *value,
                    const char *origin, char *errstr, size_t errstr_size)
{
        int ki;
        entry_t *ent;
        char *k, *v, *o;
        const char *from = origin ? origin : "setting";

        if (!cfg || !key || !value)
                return fail(errstr, errstr_size, "key and value required");
        if (!strncmp(key, "kafka.", 6)) {
                if (!key[6])
                        return fail(errstr, errstr_size,
                                    "configuration key 'kafka.' (%s) names "
                                    "no librdkafka property",
                                    from);
        } else if ((ki = key_index(key)) < 0 && (ki = family_index(key)) < 0) {
                return fail(errstr, errstr_size,
                            "unknown configuration key '%s' (%s); librdkafka "
                            "properties take the prefix 'kafka.'",
                            key, from);
        } else if (keys[ki].type == T_INT) {
                int64_t iv;
                if (parse_int(value, &iv) || iv < keys[ki].min ||
                    iv > keys[ki].max)
                        return fail(errstr, errstr_size,
                                    "configuration key '%s' (%s): '%s' is "
                                    "not an integer from %lld to %lld",
                                    key, from, value, (long long)keys[ki].min,
                                    (long long)keys[ki].max);
        } else if (keys[ki].type == T_ENUM) {
                char pat[64];
                snprintf(pat, sizeof(pat), "|%s|", value);
                if (!*value || strchr(value, '|') ||
                    !strstr(keys[ki].choices, pat))
                        return fail(errstr, errstr_size,
                                    "configuration key '%s' (%s): '%s' is "
                                    "not one of %s",
                                    key, from, value, keys[ki].choices);
        } else if (!*value) {
                return fail(errstr, errstr_size,
                            "configuration key '%s' (%s) is empty", key, from);
        }

        k = strdup(key);
        v = strdup(value);
        o = strdup(from);
        if (!k || !v || !o) {
                free(k);
                free(v);
                free(o);
                return KEEL_ERR_NOMEM;
        }
        if ((ent = find(cfg, key))) {
                free(ent->key);
                free(ent->value);
                free(ent->origin);
        } else {
                if (cfg->n == cfg->cap) {
                        size_t cap = cfg->cap ? cfg->cap * 2 : 16;
                        entry_t *e = realloc(cfg->e, cap * sizeof(*e));
                        if (!e) {
                                free(k);
                                free(v);
                                free(o);
                                return KEEL_ERR_NOMEM;
                        }
                        cfg->e = e;
                        cfg->cap = cap;
                }
                ent = &cfg->e[cfg->n++];
        }
        ent->key = k;
        ent->value = v;
        ent->origin = o;
        return KEEL_OK;
}

static char *trim(char *s)
{
        char *end;
        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

int keel_config_load_file(keel_config_t *cfg, const char *path, char *errstr,
                          size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        char line[4096], origin[512];
        int lineno = 0, rc = KEEL_OK;

        if (!f) {
                fail(errstr, errstr_size, "config file %s: %s", path,
                     strerror(errno));
                return KEEL_ERR_IO;
        }
        while (fgets(line, sizeof(line), f)) {
                char *s, *eq;
                lineno++;
                if (!strchr(line, '\n') && !feof(f)) {
                        /* Never read the rest as a line of its own, and
                         * never quote it: it may be a secret. */
                        rc = fail(errstr, errstr_size,
                                  "file %s:%d: the line is longer than %zu "
                                  "bytes",
                                  path, lineno, sizeof(line) - 1);
                        break;
                }
                s = trim(line);
                if (!*s || *s == '#')
                        continue;
                eq = strchr(s, '=');
                snprintf(origin, sizeof(origin), "file %s:%d", path, lineno);
                if (!eq) {
                        rc = fail(errstr, errstr_size,
                                  "%s: expected 'key = value', got '%s'",
                                  origin, s);
                        break;
                }
                *eq = '\0';
                rc = keel_config_set(cfg, trim(s), trim(eq + 1), origin, errstr,
                                     errstr_size);
                if (rc)
                        break;
        }
        fclose(f);
        return rc;
}

int keel_config_load_env(keel_config_t *cfg, char *errstr, size_t errstr_size)
{
        const char *file = getenv("KEEL_CONFIG");
        int rc;

        if (file && *file &&
            (rc = keel_config_load_file(cfg, file, errstr, errstr_size)))
                return rc;
        for (char **ep = environ; *ep; ep++) {
                const char *eq = strchr(*ep, '=');
                char key[256], origin[300];
                size_t n;
                if (strncmp(*ep, "KEEL_", 5) || !eq)
                        continue;
                n = (size_t)(eq - *ep) - 5;
                if (!n || n >= sizeof(key))
                        continue;
                for (size_t i = 0; i < n; i++) {
                        char c = (*ep)[5 + i];
                        key[i] =
                            c == '_' ? '.' : (char)tolower((unsigned char)c);
                }
                key[n] = '\0';
                if (!strcmp(key, "config"))
                        continue;
                snprintf(origin, sizeof(origin), "environment %.*s",
                         (int)(eq - *ep), *ep);
                /* KEEL_* variables that are not keel's settings (set for
                 * tests and scripts) are left alone unless they look like
                 * ours: a known key or a kafka.* property. */
                if (key_index(key) < 0 && family_index(key) < 0 &&
                    strncmp(key, "kafka.", 6))
                        continue;
                rc = keel_config_set(cfg, key, eq + 1, origin, errstr,
                                     errstr_size);
                if (rc)
                        return rc;
        }
        return KEEL_OK;
}

const char *keel_config_get(const keel_config_t *cfg, const char *key)
{
        entry_t *e = cfg ? find(cfg, key) : NULL;
        int ki;
        if (e)
                return e->value;
        ki = key_index(key);
        return ki >= 0 ? keys[ki].def : NULL;
}

int keel_config_get_int(const keel_config_t *cfg, const char *key, int64_t *out)
{
        const char *v = keel_config_get(cfg, key);
        *out = 0;
        if (!v)
                return KEEL_ERR_NOT_FOUND;
        return parse_int(v, out) ? KEEL_ERR_CONFIG : KEEL_OK;
}

void keel_config_foreach(const keel_config_t *cfg,
                         void (*fn)(const char *key, const char *value,
                                    const char *origin, void *opaque),
                         void *opaque)
{
        for (size_t i = 0; i < NKEYS; i++) {
                entry_t *e = find(cfg, keys[i].key);
                fn(keys[i].key, e ? e->value : keys[i].def,
                   e ? e->origin : "default", opaque);
        }
        for (size_t i = 0; i < cfg->n; i++)
                if (key_index(cfg->e[i].key) < 0)
                        fn(cfg->e[i].key, cfg->e[i].value, cfg->e[i].origin,
                           opaque);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        (void)rk;
        keel_log(level <= 3   ? KEEL_LOG_ERROR
                 : level <= 5 ? KEEL_LOG_WARN
                 : level <= 6 ? KEEL_LOG_INFO
                              : KEEL_LOG_DEBUG,
                 "kafka", "facility=%s msg=\"%s\"", fac, buf);
}

/* librdkafka properties of one kind of client only, by prefix. */
static const char *const consumer_only[] = {"group.",
                                            "session.timeout.ms",
                                            "heartbeat.interval.ms",
                                            "partition.assignment.strategy",
                                            "max.poll.interval.ms",
                                            "auto.commit.",
                                            "auto.offset.reset",
                                            "enable.auto.",
                                            "fetch.",
                                            "queued.",
                                            "isolation.level",
                                            "check.crcs",
                                            "enable.partition.eof",
                                            "consume.callback.max.messages",
                                            "coordinator.query.interval.ms",
                                            "allow.auto.create.topics"};
static const char *const producer_only[] = {"transactional.id",
                                            "transaction.timeout.ms",
                                            "enable.idempotence",
                                            "enable.gapless.guarantee",
                                            "linger.ms",
                                            "queue.buffering.",
                                            "batch.",
                                            "compression.",
                                            "acks",
                                            "request.required.acks",
                                            "message.timeout.ms",
                                            "delivery.timeout.ms",
                                            "retries",
                                            "message.send.max.retries",
                                            "partitioner",
                                            "sticky.partitioning.linger.ms",
                                            "queuing.strategy",
                                            "dr_msg_cb",
                                            "dr_cb"};

static int has_prefix(const char *key, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!strncmp(key, list[i], strlen(list[i])))
                        return 1;
        return 0;
}

/* The librdkafka property a kafka.* key sets for `kind`, or NULL when it
 * is not for this kind of client. */
static const char *kafka_key_for(const char *key, keel__client_kind_t kind)
{
        const char *k = key + 6; /* past "kafka." */
        if (!strncmp(k, "producer.", 9))
                return kind == KEEL__PRODUCER ? k + 9 : NULL;
        if (!strncmp(k, "consumer.", 9))
                return kind == KEEL__CONSUMER ? k + 9 : NULL;
        if (kind == KEEL__PRODUCER &&
            has_prefix(k, consumer_only,
                       sizeof(consumer_only) / sizeof(consumer_only[0])))
                return NULL;
        if (kind == KEEL__CONSUMER &&
            has_prefix(k, producer_only,
                       sizeof(producer_only) / sizeof(producer_only[0])))
                return NULL;
        return k;
}

rd_kafka_conf_t *keel__kafka_conf_new(const keel_config_t *cfg,
                                      keel__client_kind_t kind, char *errstr,
                                      size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char rderr[512];

        if (!conf) {
                fail(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (rd_kafka_conf_set(conf, "bootstrap.servers",
                              keel_config_get(cfg, "bootstrap"), rderr,
                              sizeof(rderr)) != RD_KAFKA_CONF_OK) {
                fail(errstr, errstr_size, "configuration key 'bootstrap': %s",
                     rderr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
        for (size_t i = 0; i < cfg->n; i++) {
                const entry_t *e = &cfg->e[i];
                const char *k;
                if (strncmp(e->key, "kafka.", 6) ||
                    !(k = kafka_key_for(e->key, kind)))
                        continue;
                if (rd_kafka_conf_set(conf, k, e->value, rderr,
                                      sizeof(rderr)) != RD_KAFKA_CONF_OK) {
                        fail(errstr, errstr_size,
                             "configuration key '%s' (%s): %s", e->key,
                             e->origin, rderr);
                        rd_kafka_conf_destroy(conf);
                        return NULL;
                }
        }
        return conf;
}

int keel_config_validate(const keel_config_t *cfg, char *errstr,
                         size_t errstr_size)
{
        for (int kind = KEEL__PRODUCER; kind <= KEEL__CONSUMER; kind++) {
                rd_kafka_conf_t *conf = keel__kafka_conf_new(
                    cfg, (keel__client_kind_t)kind, errstr, errstr_size);
                if (!conf)
                        return KEEL_ERR_CONFIG;
                rd_kafka_conf_destroy(conf);
        }
        return KEEL_OK;
}

int keel__kafka_conf_default(rd_kafka_conf_t *conf, const keel_config_t *cfg,
                             const char *key, const char *value, char *errstr,
                             size_t errstr_size)
{
        char k[300], kp[300], kc[300];
        snprintf(k, sizeof(k), "kafka.%s", key);
        snprintf(kp, sizeof(kp), "kafka.producer.%s", key);
        snprintf(kc, sizeof(kc), "kafka.consumer.%s", key);
        if (find(cfg, k) || find(cfg, kp) || find(cfg, kc))
                return 0;
        return rd_kafka_conf_set(conf, key, value, errstr, errstr_size) ==
                       RD_KAFKA_CONF_OK
                   ? 0
                   : -1;
}

int keel__kafka_err(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
                return KEEL_OK;
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__RESOLVE:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
                return KEEL_ERR_TRANSPORT;
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
                return KEEL_ERR_TOO_LARGE;
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
                return KEEL_ERR_NOT_FOUND;
        case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
        case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
                return KEEL_ERR_UNSUPPORTED;
        default:
                return KEEL_ERR_KAFKA;
        }
}
