/*
 * cli_data.h - `chronik produce` and `chronik consume` (cli_data.c).
 */
#ifndef CHRONIK_ADMIN_CLI_DATA_H
#define CHRONIK_ADMIN_CLI_DATA_H

/* argv[0] is "produce" / "consume". Return the exit code. */
int cli_produce_main(int argc, char **argv);
int cli_consume_main(int argc, char **argv);

#endif
