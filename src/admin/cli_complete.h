/*
 * cli_complete.h - `chronik completion` (cli_complete.c).
 */
#ifndef CHRONIK_ADMIN_CLI_COMPLETE_H
#define CHRONIK_ADMIN_CLI_COMPLETE_H

#include <stdbool.h>

/* argv[0] is "completion". Returns the exit code. */
int cli_completion_main(int argc, char **argv);

#endif
