/*
 * cli.h - the operator subcommands of the chronik binary other than
 * `server`: offline log tools now; cluster, topic and group commands talk to
 * a running broker over the Kafka protocol.
 */
#ifndef CHRONIK_ADMIN_CLI_H
#define CHRONIK_ADMIN_CLI_H

#define CLI_UNKNOWN_COMMAND 127

/* argv[0] is the subcommand ("log", ...). Returns the process exit code, or
 * CLI_UNKNOWN_COMMAND when argv[0] names no subcommand. */
int cli_main(int argc, char **argv);

#endif
