/*
 * fuzz_config.c: a libFuzzer target for keel's configuration parser
 * (sdk/src/config.c, keel/config.h). The first byte of an input picks how
 * the rest reaches a fresh configuration (its value modulo 3; the seeds
 * use '0', '1', '2'):
 *
 *  0  as a config file (`key = value` lines, `#` comments), written to a
 *     scratch file and read with keel_config_load_file();
 *  1  as `key=value` lines, each given to keel_config_set() as a -X flag
 *     would be;
 *  2  as `NAME=value` lines, set as environment variables KEEL_NAME and
 *     read with keel_config_load_env() (KEEL_CONFIG is never set: a file
 *     named by the input could be any file).
 *
 * Promises checked: an error is KEEL_ERR_CONFIG with a message (never a
 * crash); a setting that was accepted reads back as given (for a file:
 * the last line for a key wins; lines too long for the parser's line
 * buffer or holding a NUL byte are not checked, see CONFIG_LINE_MAX);
 * integers read back as integers; keel_config_validate() hands every
 * kafka.* key to librdkafka and answers KEEL_OK or KEEL_ERR_CONFIG.
 * A broken promise aborts, which libFuzzer reports as a crash. Built only
 * with KEEL_FUZZ=ON under clang (tests/fuzz/CMakeLists.txt); run it with
 * tests/fuzz/run-fuzz.sh.
 */
#include "keel/config.h"
#include "keel/error.h"
#include "keel/log.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The longest line keel_config_load_file() reads whole (its buffer less
 * the NUL). */
#define CONFIG_LINE_MAX 4095
#define MAX_LINES       1024

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

static void broken(const char *what, const char *detail)
{
        fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
        abort();
}

static void remove_scratch(void)
{
        if (path[0])
                unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *tmp = getenv("TMPDIR");
        int fd;

        (void)argc;
        (void)argv;
        keel_log_set_level(KEEL_LOG_ERROR);
        snprintf(path, sizeof(path), "%s/keel-fuzz-config.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(path);
        if (fd < 0)
                broken("set-up", "cannot make a scratch file");
        close(fd);
        atexit(remove_scratch);
        unsetenv("KEEL_CONFIG");
        return 0;
}

/* Every accepted setting reads back: integers as integers, and what
 * validate() says is one of its two answers. */
static void check_keys(const char *key, const char *value, const char *origin,
                       void *opaque)
{
        keel_config_t *cfg = opaque;
        int64_t n;
        if (!key || !value || !origin)
                broken("foreach gave a NULL", key ? key : "(key)");
        if (strcmp(keel_config_get(cfg, key), value))
                broken("foreach and get disagree", key);
        if (keel_config_get_int(cfg, key, &n) == KEEL_OK &&
            !strcmp(key, "timeout.ms") && (n < 1 || n > 3600000))
                broken("timeout.ms out of its range", value);
}

static void check_config(keel_config_t *cfg)
{
        static const char *const ints[] = {
            "partitions",          "replication",          "timeout.ms",
            "http.max.body.bytes", "http.max.connections", "batch.max.commands",
            "batch.max.ms",        "worker.concurrency",   "worker.grace.ms"};
        char err[512] = "";
        int64_t n;
        int rc;

        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
                if (keel_config_get_int(cfg, ints[i], &n))
                        broken("an integer setting does not read back",
                               ints[i]);
        keel_config_foreach(cfg, check_keys, cfg);
        rc = keel_config_validate(cfg, err, sizeof(err));
        if (rc != KEEL_OK && (rc != KEEL_ERR_CONFIG || !err[0]))
                broken("validate", keel_err_name(rc));
}

static void check_error(int rc, const char *err)
{
        if (rc != KEEL_ERR_CONFIG)
                broken("unexpected error", keel_err_name(rc));
        if (!err[0])
                broken("an error without a message", keel_err_name(rc));
}

/* s without the white space (the C locale's) at either end, in place. */
static char *trim(char *s)
{
        static const char ws[] = " \t\n\v\f\r";
        size_t n;
        s += strspn(s, ws);
        for (n = strlen(s); n && strchr(ws, s[n - 1]); n--)
                ;
        s[n] = '\0';
        return s;
}

/* Split text (NUL-terminated, len bytes) into lines; the count. */
static size_t lines(char *text, char **line, size_t max)
{
        size_t n = 0;
        char *s = text, *nl;
        while (n < max) {
                line[n++] = s;
                if (!(nl = strchr(s, '\n')))
                        break;
                *nl = '\0';
                s = nl + 1;
        }
        return n;
}

/* ---- 0: a file ---------------------------------------------------------- */

static void from_file(const char *text, size_t len)
{
        keel_config_t *cfg = keel_config_new();
        char err[512] = "", *copy, *line[MAX_LINES];
        size_t n;
        int fd, rc, checkable;

        fd = open(path, O_WRONLY | O_TRUNC);
        if (!cfg || fd < 0 || write(fd, text, len) != (ssize_t)len)
                broken("set-up", "cannot write the scratch file");
        close(fd);
        rc = keel_config_load_file(cfg, path, err, sizeof(err));
        if (rc) {
                check_error(rc, err);
                keel_config_destroy(cfg);
                return;
        }
        check_config(cfg);

        /* The file as the documentation reads it: each line's setting is
         * there (the last one for a key). */
        copy = strndup(text, len);
        if (!copy)
                broken("out of memory", "copy");
        checkable = strlen(copy) == len;
        n = lines(copy, line, MAX_LINES);
        if (n == MAX_LINES)
                checkable = 0; /* the last one holds the rest */
        for (size_t i = 0; i < n && checkable; i++)
                if (strlen(line[i]) >= CONFIG_LINE_MAX)
                        checkable = 0;
        for (size_t i = 0; i < n && checkable; i++) {
                char *s = trim(line[i]), *eq, *key, *value;
                const char *got;
                int later = 0;
                if (!*s || *s == '#' || !(eq = strchr(s, '=')))
                        continue;
                *eq = '\0';
                key = trim(s);
                value = trim(eq + 1);
                for (size_t j = i + 1; j < n && !later; j++) {
                        char *t = line[j];
                        size_t kl = strlen(key);
                        while (isspace((unsigned char)*t))
                                t++;
                        if (!strncmp(t, key, kl)) {
                                t += kl;
                                while (isspace((unsigned char)*t))
                                        t++;
                                later = *t == '=';
                        }
                }
                got = keel_config_get(cfg, key);
                if (!later && (!got || strcmp(got, value)))
                        broken("a line of the file did not take", key);
        }
        free(copy);
        keel_config_destroy(cfg);
}

/* ---- 1: flags ----------------------------------------------------------- */

static void from_flags(char *text)
{
        keel_config_t *cfg = keel_config_new();
        char *line[MAX_LINES], err[512];
        size_t n = lines(text, line, MAX_LINES);

        if (!cfg)
                broken("out of memory", "config");
        for (size_t i = 0; i < n; i++) {
                char *eq = strchr(line[i], '=');
                const char *got;
                int rc;
                if (eq)
                        *eq = '\0';
                err[0] = '\0';
                rc = keel_config_set(cfg, line[i], eq ? eq + 1 : NULL, "flag",
                                     err, sizeof(err));
                if (rc) {
                        check_error(rc, err);
                        continue;
                }
                got = keel_config_get(cfg, line[i]);
                if (!got || strcmp(got, eq + 1))
                        broken("a setting did not take", line[i]);
        }
        check_config(cfg);
        keel_config_destroy(cfg);
}

/* ---- 2: the environment ------------------------------------------------- */

/* The setting KEEL_<name> names: lower case, '_' as '.'. */
static void env_key(const char *name, char *key, size_t size)
{
        size_t i = 0;
        for (; name[i] && i + 1 < size; i++)
                key[i] = name[i] == '_' ? '.'
                                        : (char)tolower((unsigned char)name[i]);
        key[i] = '\0';
}

static void from_env(char *text)
{
        keel_config_t *cfg = keel_config_new();
        char *line[8], *value[8], names[8][260], keys[8][260], err[512] = "";
        size_t n = lines(text, line, 8), set = 0;
        int rc;

        if (!cfg)
                broken("out of memory", "config");
        for (size_t i = 0; i < n; i++) {
                char *eq = strchr(line[i], '=');
                if (!eq || eq == line[i] || (size_t)(eq - line[i]) > 250)
                        continue;
                *eq = '\0';
                snprintf(names[set], sizeof(names[set]), "KEEL_%s", line[i]);
                if (!strcmp(names[set], "KEEL_CONFIG") ||
                    setenv(names[set], eq + 1, 1))
                        continue;
                env_key(line[i], keys[set], sizeof(keys[set]));
                value[set++] = eq + 1;
        }
        rc = keel_config_load_env(cfg, err, sizeof(err));
        for (size_t i = 0; i < set; i++)
                unsetenv(names[i]);
        if (rc) {
                check_error(rc, err);
                keel_config_destroy(cfg);
                return;
        }
        check_config(cfg);
        /* A variable for a known key or a kafka.* property took, unless
         * another one named the same key. */
        for (size_t i = 0; i < set; i++) {
                int known = !strncmp(keys[i], "kafka.", 6) ||
                            keel_config_get(NULL, keys[i]);
                int twice = 0;
                const char *got = keel_config_get(cfg, keys[i]);
                for (size_t j = 0; j < set; j++)
                        twice |= j != i && !strcmp(keys[i], keys[j]);
                if (known && !twice && (!got || strcmp(got, value[i])))
                        broken("an environment variable did not take",
                               names[i]);
        }
        keel_config_destroy(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;

        if (!size)
                return 0;
        text = malloc(size);
        if (!text)
                broken("out of memory", "input");
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        switch (data[0] % 3) {
        case 0:
                from_file(text, size - 1);
                break;
        case 1:
                from_flags(text);
                break;
        default:
                from_env(text);
                break;
        }
        free(text);
        return 0;
}
