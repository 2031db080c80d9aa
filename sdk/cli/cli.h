/*
 * cli.h: the subcommands of the `keel` command-line tool.
 */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>

int keel_cli_dev_broker(int argc, char **argv);
int keel_cli_topics(int argc, char **argv);
int keel_cli_schema(int argc, char **argv);
int keel_cli_codec(int argc, char **argv);
int keel_cli_partition(int argc, char **argv);
int keel_cli_config(int argc, char **argv);
int keel_cli_workflow(int argc, char **argv);
int keel_cli_replay(int argc, char **argv);
int keel_cli_ingress(int argc, char **argv);
int keel_cli_schedule(int argc, char **argv);

/* Shared by the workflow and schedule verbs (workflow_cmd.c). */

/* Seconds (a decimal number, 0 to a day) as milliseconds; -1 if bad. */
int64_t keel_cli_seconds_ms(const char *s);

/* Parse flag `name`'s JSON text (NULL: *out NULL, nothing to do) into
 * *out, a new reference. 0, or -1 after printing why as "<prog>: ...". */
int keel_cli_parse_json(const char *prog, const char *name, const char *text,
                        json_t **out);

/* Whether getopt_long's opt is one of own (0-terminated): 1, or 0 with
 * *name its long name in opts (NULL for an unknown option). */
int keel_cli_verb_option(const int *own, const struct option *opts, int opt,
                         const char **name);

/* The exit code (app.h) of a client call's keel error. */
int keel_cli_exit_code(int rc);

#endif
