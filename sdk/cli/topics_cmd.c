/*
 * topics_cmd.c: `keel topics create|describe`.
 */
#include "cli.h"

#include "app.h"
#include "keel/error.h"
#include "keel/topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: keel topics create [OPTIONS]\n"
    "       keel topics describe [OPTIONS]\n"
    "create: create every keel topic that is missing (keel.inbox,\n"
    "keel.history compacted, keel.dlq, keel.tasks.<queue>) through the Kafka\n"
    "Admin API; topics that exist must have the same partition count and\n"
    "cleanup policy. describe: print keel's topics on the cluster.\n\n"
    "  --partitions P      partition count of every topic (default: the\n"
    "                      'partitions' setting, 12)\n"
    "  --replication R     replicas per partition (default: 'replication', 1)\n"
    "  --task-queue Q      task queue to create keel.tasks.Q for\n"
    "                      (repeatable; default: "
    "'default')\n" KEEL_APP_COMMON_HELP
    "\nExit codes: 0 ok, 1 failed or mismatch, 2 usage or config,\n"
    "3 broker unreachable or without the Admin API.\n";

static void report(const keel_topic_spec_t *spec, keel_topic_outcome_t outcome,
                   void *opaque)
{
        (void)opaque;
        printf("%-28s %-8s %s\n", spec->name,
               outcome == KEEL_TOPIC_CREATED ? "created" : "exists",
               spec->cleanup_policy);
}

static void describe(const keel_topic_info_t *ti, void *opaque)
{
        (void)opaque;
        printf("%-28s partitions=%-4d replication=%-2d cleanup.policy=%s",
               ti->name, ti->partitions, ti->replication,
               ti->cleanup_policy[0] ? ti->cleanup_policy : "?");
        if (ti->retention_ms >= 0)
                printf(" retention.ms=%lld", (long long)ti->retention_ms);
        printf("\n");
}

static int exit_code(int rc)
{
        return rc == KEEL_ERR_TRANSPORT || rc == KEEL_ERR_UNSUPPORTED ||
                       rc == KEEL_ERR_TIMEOUT
                   ? KEEL_EXIT_UNAVAILABLE
               : rc == KEEL_ERR_CONFIG || rc == KEEL_ERR_INVALID_ARG
                   ? KEEL_EXIT_USAGE
                   : KEEL_EXIT_FAILURE;
}

int keel_cli_topics(int argc, char **argv)
{
        static const struct option opts[] = {
            {"partitions", required_argument, NULL, 'p'},
            {"replication", required_argument, NULL, 'r'},
            {"task-queue", required_argument, NULL, 'q'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        keel_app_t app;
        const char *queues[32];
        size_t nq = 0;
        int opt, rc;
        int64_t partitions, replication;
        char err[1024];
        const char *verb;

        keel__app_init(&app, "keel topics");
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                switch (opt) {
                case 'p':
                        keel__app_flag(&app, "partitions", optarg);
                        break;
                case 'r':
                        keel__app_flag(&app, "replication", optarg);
                        break;
                case 'q':
                        if (nq < sizeof(queues) / sizeof(queues[0]))
                                queues[nq++] = optarg;
                        break;
                default:
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        if (optind >= argc || (strcmp(argv[optind], "create") &&
                               strcmp(argv[optind], "describe"))) {
                fputs(usage, stderr);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        verb = argv[optind];
        keel__app_configure(&app);
        keel_config_get_int(app.cfg, "partitions", &partitions);
        keel_config_get_int(app.cfg, "replication", &replication);
        if (!strcmp(verb, "create"))
                rc = keel_topics_create(app.cfg, (int32_t)partitions,
                                        (int16_t)replication, queues, nq,
                                        report, NULL, err, sizeof(err));
        else
                rc = keel_topics_describe(app.cfg, describe, NULL, err,
                                          sizeof(err));
        if (rc)
                fprintf(stderr, "keel topics %s: %s: %s\n", verb,
                        keel_err_name(rc), err);
        keel__app_destroy(&app);
        return rc ? exit_code(rc) : KEEL_EXIT_OK;
}
