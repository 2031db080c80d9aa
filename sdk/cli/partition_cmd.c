/*
 * partition_cmd.c: `keel partition`: the partition of workflow IDs, as
 * Kafka's default partitioner computes it.
 */
#include "cli.h"

#include "app.h"
#include "keel/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: keel partition --partitions P [WORKFLOW_ID ...]\n"
    "Print '<id>\\t<partition>' for each ID (from stdin, one per line, when\n"
    "none is given), using Kafka's murmur2 partitioner.\n";

int keel_cli_partition(int argc, char **argv)
{
        long p = 0;
        int first = 1;
        char line[4096];

        if (argc >= 3 && !strcmp(argv[1], "--partitions")) {
                char *end;
                p = strtol(argv[2], &end, 10);
                if (*end || p <= 0 || p > 100000)
                        p = 0;
                first = 3;
        }
        if (argc >= 2 &&
            (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
                fputs(usage, stdout);
                return KEEL_EXIT_OK;
        }
        if (p <= 0) {
                fputs(usage, stderr);
                return KEEL_EXIT_USAGE;
        }
        for (int i = first; i < argc; i++)
                printf("%s\t%d\n", argv[i],
                       keel_partition_of(argv[i], strlen(argv[i]), (int32_t)p));
        if (first < argc)
                return KEEL_EXIT_OK;
        while (fgets(line, sizeof(line), stdin)) {
                size_t n = strcspn(line, "\r\n");
                line[n] = '\0';
                printf("%s\t%d\n", line,
                       keel_partition_of(line, n, (int32_t)p));
        }
        return KEEL_EXIT_OK;
}
