/*
 * cli_topic.h - `chronik topic` (cli_topic.c), and the two topic look-ups
 * the group and data subcommands reuse.
 */
#ifndef CHRONIK_ADMIN_CLI_TOPIC_H
#define CHRONIK_ADMIN_CLI_TOPIC_H

#include "admin/cli_kafka.h"

/* argv[0] is "topic". Returns the exit code. */
int cli_topic_main(int argc, char **argv);

/* Metadata of one topic; an unknown topic is reported ("chronik: unknown
 * topic 'x'") and returned as exit code 1. *r holds *t (free it). */
int cli_topic_metadata(cli_kafka *k, const char *name, const MetadataResponse_MetadataResponseTopic **t,
                       kclient_resp_t **r);

/* ListOffsets at ts (-2 earliest, -1 latest, else a timestamp in ms) of
 * every partition of t, asked of each leader: out[i] for t->Partitions.items[i]
 * (-1 when unknown). Returns 0 or an exit code. */
int cli_topic_offsets(cli_kafka *k, const MetadataResponse_MetadataResponseTopic *t, int64_t ts, int64_t *out);

#endif
