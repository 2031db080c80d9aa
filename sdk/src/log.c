/*
 * log.c: keel's line logger (keel/log.h).
 */
#include "keel/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int min_level = KEEL_LOG_INFO;
static atomic_int as_json = 0;

static const char *names[] = {"debug", "info", "warn", "error"};

void keel_log_set_level(keel_log_level_t level)
{
        atomic_store(&min_level, (int)level);
}

void keel_log_set_json(int json)
{
        atomic_store(&as_json, json ? 1 : 0);
}

int keel_log_level_parse(const char *s)
{
        for (int i = 0; s && i < 4; i++)
                if (!strcmp(s, names[i]))
                        return i;
        return -1;
}

/* The message's key=value pairs (a value may be "quoted") as fields of o;
 * 0, or -1 if the message is not made of such pairs only. */
static int kv_fields(const char *s, json_t *o)
{
        char key[64], val[2048];
        while (*s) {
                size_t k = 0, v = 0;
                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                       *s == '_' || *s == '.') {
                        if (k + 1 >= sizeof(key))
                                return -1;
                        key[k++] = *s++;
                }
                if (!k || *s != '=')
                        return -1;
                key[k] = '\0';
                s++;
                if (*s == '"') {
                        /* Up to the quote that ends the value: one followed
                         * by a space or the end. */
                        const char *e = s + 1;
                        while (*e && !(*e == '"' && (!e[1] || e[1] == ' ')))
                                e++;
                        if (!*e)
                                return -1;
                        for (s++; s < e && v + 1 < sizeof(val); s++)
                                val[v++] = *s;
                        s = e + 1;
                } else {
                        while (*s && *s != ' ' && v + 1 < sizeof(val))
                                val[v++] = *s++;
                }
                val[v] = '\0';
                /* ts, level and component are the logger's own. */
                if (!strcmp(key, "ts") || !strcmp(key, "level") ||
                    !strcmp(key, "component"))
                        return -1;
                if (json_object_set_new(o, key, json_string(val)))
                        return -1;
        }
        return 0;
}

void keel_log(keel_log_level_t level, const char *component, const char *fmt,
              ...)
{
        char msg[2048], ts[96];
        struct timespec now;
        struct tm tm;
        va_list ap;

        if ((int)level < atomic_load(&min_level) || level > KEEL_LOG_ERROR)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
        if (atomic_load(&as_json)) {
                json_t *j = json_pack("{ss ss ss}", "ts", ts, "level",
                                      names[level], "component", component);
                json_t *f = json_object();
                /* key=value messages become fields; anything else, or
                 * text that is not UTF-8, is kept whole in "msg". */
                if (j && f && !kv_fields(msg, f))
                        json_object_update(j, f);
                else if (j)
                        json_object_set_new(j, "msg", json_string(msg));
                json_decref(f);
                char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (s)
                        fprintf(stderr, "%s\n", s);
                free(s);
                json_decref(j);
        } else {
                fprintf(stderr, "ts=%s level=%s component=%s %s\n", ts,
                        names[level], component, msg);
        }
}
