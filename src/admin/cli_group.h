/*
 * cli_group.h - `chronik group` (cli_group.c), and the coordinator, offset
 * fetch and commit that `chronik consume -g` reuses.
 */
#ifndef CHRONIK_ADMIN_CLI_GROUP_H
#define CHRONIK_ADMIN_CLI_GROUP_H

/* argv[0] is "group". Returns the exit code. */
int cli_group_main(int argc, char **argv);

#include "admin/cli_kafka.h"

/* The coordinator of group `name` (retrying while it loads or moves):
 * 0 and *kc, or an exit code after the error is printed. */
int cli_group_coordinator(cli_kafka *k, const char *name, kclient_t **kc);
/* The offsets group `name` has committed, of every topic (OffsetFetch v2-7
 * layout). *r holds *out. */
int cli_group_offsets(cli_kafka *k, kclient_t *kc, const char *name, const OffsetFetchResponse **out,
                      kclient_resp_t **r);
/* 0 when group `name` has no members; else exit code 1 after saying so:
 * "... stop its consumers before <before>" (a live consumer would commit
 * over what a standalone commit wrote). */
int cli_group_check_empty(cli_kafka *k, kclient_t *kc, const char *name, const char *before);
/* Commit to[i] for t->Partitions.items[i] (entries below 0 are skipped) as a
 * standalone consumer: generation -1, empty member id. */
int cli_group_commit(cli_kafka *k, kclient_t *kc, const char *group, const MetadataResponse_MetadataResponseTopic *t,
                     const int64_t *to);

#endif
