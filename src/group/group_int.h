/*
 * group_int.h - what the files of src/group share. Not included outside it.
 */
#ifndef CHRONIK_GROUP_INT_H
#define CHRONIK_GROUP_INT_H

#include "group/group.h"

/* Owned copies; NULL stays NULL (gdup). gmemdup never returns NULL. */
char *gdup(const char *s);
uint8_t *gmemdup(const uint8_t *p, int32_t len);
bool gstreq(const char *a, const char *b); /* NULL equals only NULL */

/* A new completion for w with err; the caller fills the rest of it. */
group_result *group_out_push(group_out *out, group_waiter *w, int16_t err);

group_member *member_add(group *g, const char *id, const char *instance_id, const char *client_id,
                         const char *client_host);
void member_remove(group *g, group_member *m); /* no waiters left */
void member_rename(group *g, group_member *m, const char *new_id);
void member_set_protocols(group_member *m, const group_protocol_in *ps, int32_t n);
void member_set_assignment(group_member *m, const uint8_t *p, int32_t len);

/* Answer the member's JoinGroup / SyncGroup (err 0: with the group's
 * current generation, protocol and, for the leader, the members). */
void member_complete_join(group *g, group_member *m, int16_t err, group_out *out);
void member_complete_sync(group *g, group_member *m, int16_t err, group_out *out);

void offsets_free(group *g);

#endif
