/*
 * cli_group.h - `chronik group` (cli_group.c).
 */
#ifndef CHRONIK_ADMIN_CLI_GROUP_H
#define CHRONIK_ADMIN_CLI_GROUP_H

/* argv[0] is "group". Returns the exit code. */
int cli_group_main(int argc, char **argv);

#endif
