/* The `evo` command: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "evo/core.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: evo <command> [args]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "evo: unknown command '%s'\n", argv[1]);
    return 2;
}
