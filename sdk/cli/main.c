/*
 * main.c: the `keel` command-line tool: dispatch to its subcommands.
 */
#include "cli.h"

#include "app.h"
#include "keel/version.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: keel COMMAND [OPTIONS]\n"
    "keel: durable execution for teams that run Kafka.\n\n"
    "Commands:\n"
    "  dev-broker    run an in-memory broker with keel's topics (demo, tests)\n"
    "  topics        create or describe keel's topics on a Kafka cluster\n"
    "  schema        list keel's record schemas, their canonical forms and\n"
    "                fingerprints\n"
    "  codec         encode JSON to a keel record, or decode one to JSON\n"
    "  partition     the partition of a workflow ID\n"
    "  config        show the effective configuration and where it came from\n"
    "  workflow      start, signal, cancel or terminate a workflow; list,\n"
    "                describe, show the history or the result of workflows\n"
    "  replay        replay recorded histories against workflow code\n"
    "  ingress       start and signal workflows from records of your "
    "topics\n"
    "  schedule      create, pause, resume, trigger, update, delete and list\n"
    "                schedules: workflows started by cron or interval\n"
    "\n"
    "Run 'keel COMMAND --help' for a command's options.\n"
    "  -h, --help     this help\n"
    "  -V, --version  print the version\n";

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {
            {"dev-broker", keel_cli_dev_broker},
            {"topics", keel_cli_topics},
            {"schema", keel_cli_schema},
            {"codec", keel_cli_codec},
            {"partition", keel_cli_partition},
            {"config", keel_cli_config},
            {"workflow", keel_cli_workflow},
            {"replay", keel_cli_replay},
            {"ingress", keel_cli_ingress},
            {"schedule", keel_cli_schedule},
        };

        if (argc < 2) {
                fputs(usage, stderr);
                return KEEL_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
            !strcmp(argv[1], "help")) {
                fputs(usage, stdout);
                return KEEL_EXIT_OK;
        }
        if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
                printf("keel %s\n", keel_version());
                return KEEL_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcmp(argv[1], cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "keel: unknown command '%s'\n\n%s", argv[1], usage);
        return KEEL_EXIT_USAGE;
}
