/* cli.c - operator subcommands (cli.h). */
#include "admin/cli.h"

#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return CLI_UNKNOWN_COMMAND;
}
