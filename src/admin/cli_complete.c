/*
 * cli_complete.c - `chronik completion bash|zsh`: print a shell completion
 * script for the subcommands and their options. Install with e.g.
 *   chronik completion bash > /etc/bash_completion.d/chronik
 *   chronik completion zsh > "${fpath[1]}/_chronik"
 * Exit status: 0 printed, 2 unknown shell.
 */
#include "admin/cli_complete.h"

#include <stdio.h>
#include <string.h>

/* The words completed after each subcommand (one table for both shells). */
static const char *const complete_words[][2] = {
    {"", "server log cluster wait-ready topic group produce consume completion help version"},
    {"log", "check dump repair"},
    {"cluster", "status local --admin --json --help"},
    {"wait-ready", "--admin --timeout --pid --help"},
    {"topic", "create list describe alter delete -p -r -c -d --bootstrap --request-timeout --json --help"},
    {"group", "list describe reset-offsets delete --topic --to-earliest --to-latest --to-offset --to-datetime "
              "--dry-run --bootstrap --request-timeout --json --help"},
    {"produce", "-k -H -f -p --bootstrap --request-timeout --json --help"},
    {"consume", "-g -n --from-beginning --format --timeout --bootstrap --request-timeout --json --help"},
    {"completion", "bash zsh"},
};

/* One case line per subcommand, in the shell's syntax (fmt takes the
 * subcommand and its words). */
static void print_cases(const char *fmt)
{
    for (size_t i = 1; i < sizeof complete_words / sizeof complete_words[0]; i++)
        printf(fmt, complete_words[i][0], complete_words[i][1]);
}

static void print_bash(void)
{
    printf("# bash completion for chronik\n_chronik() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} words=\"\"\n"
           "    if [ \"$COMP_CWORD\" -eq 1 ]; then words=\"%s\"; else\n"
           "    case \"${COMP_WORDS[1]}\" in\n",
           complete_words[0][1]);
    print_cases("        %s) words=\"%s\" ;;\n");
    printf("    esac; fi\n"
           "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
           "}\ncomplete -o default -F _chronik chronik\n");
}

static void print_zsh(void)
{
    printf("#compdef chronik\n# zsh completion for chronik\n_chronik() {\n"
           "    local -a words_\n"
           "    if (( CURRENT == 2 )); then words_=(%s); else\n"
           "    case $words[2] in\n",
           complete_words[0][1]);
    print_cases("        %s) words_=(%s) ;;\n");
    printf("    esac; fi\n"
           "    compadd -a words_\n    _files\n"
           "}\ncompdef _chronik chronik\n");
}

int cli_completion_main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "bash") == 0) {
        print_bash();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "zsh") == 0) {
        print_zsh();
        return 0;
    }
    bool help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    fprintf(help ? stdout : stderr, "usage: chronik completion bash|zsh\n\n"
                                    "Prints a completion script for the shell, e.g.\n"
                                    "  source <(chronik completion bash)\n"
                                    "Exit status: 0 printed, 2 unknown shell.\n");
    return help ? 0 : 2;
}
