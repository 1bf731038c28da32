/* The table of CRM entries the suite knows and the word lists they fill.
 * The table comes from CMake's FS_CRMS list: the generated
 * stack_crm_list.h holds one STACK_CRM(name) line per word. */
#include "stack_crm.h"

#include "base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STACK_CRM(name) extern const struct stack_crm stack_crm_##name;
#include "stack_crm_list.h"
#undef STACK_CRM

static const struct stack_crm *const entries[] = {
#define STACK_CRM(name) &stack_crm_##name,
#include "stack_crm_list.h"
#undef STACK_CRM
};

const struct stack_crm *stack_crm_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(entries) / sizeof(entries[0]); i++)
        if (strcmp(entries[i]->name, name) == 0)
            return entries[i];
    return NULL;
}

const char *stack_crm_default(void)
{
    const char *crm = getenv("FS_CRM");
    return crm && *crm ? crm : "hubspot";
}

static void make_room(struct stack_words *w)
{
    if (w->n >= STACK_WORDS_MAX) {
        fprintf(stderr, "stack: more than %d command-line words\n",
                STACK_WORDS_MAX);
        abort();
    }
}

void stack_words_add(struct stack_words *w, const char *word)
{
    make_room(w);
    w->w[w->n++] = word;
    w->w[w->n] = NULL;
}

void stack_words_addf(struct stack_words *w, const char *fmt, ...)
{
    va_list ap;
    char *word = NULL;

    make_room(w);
    va_start(ap, fmt);
    int len = vasprintf(&word, fmt, ap);
    va_end(ap);
    if (len < 0)
        abort();
    w->owned[w->n_owned++] = word;
    stack_words_add(w, word);
}

void stack_words_clear(struct stack_words *w)
{
    for (size_t i = 0; i < w->n_owned; i++)
        free(w->owned[i]);
    memset(w, 0, sizeof(*w));
}
