/*
 * cli.h: the subcommands of the `keel` command-line tool.
 */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

int keel_cli_dev_broker(int argc, char **argv);
int keel_cli_topics(int argc, char **argv);
int keel_cli_schema(int argc, char **argv);
int keel_cli_codec(int argc, char **argv);
int keel_cli_partition(int argc, char **argv);
int keel_cli_config(int argc, char **argv);
int keel_cli_workflow(int argc, char **argv);
int keel_cli_replay(int argc, char **argv);
int keel_cli_ingress(int argc, char **argv);

#endif
