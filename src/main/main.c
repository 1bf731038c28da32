/* fieldsync command line entry point. */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("fieldsync: not built yet\n", stderr);
    return 1;
}
