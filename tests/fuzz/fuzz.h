/* What every fuzz target shares: the libFuzzer entry points it defines,
 * and small helpers to cut one input into the parts a target needs and to
 * stop loudly when an invariant of the code under test breaks. The same
 * target file builds against libFuzzer (`make fuzz`) and against
 * replay_main.c, which feeds it each file of its corpus (`make check`). */
#ifndef FIELDSYNC_TESTS_FUZZ_FUZZ_H
#define FIELDSYNC_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called once per input; returns 0. Defined by each target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Called once before the first input; defined by the targets that set up
 * state (a store), else by nobody. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The part of an input not yet taken. */
struct fuzz_input {
    const uint8_t *data;
    size_t size;
};

/* The bytes up to the next sep (or all that is left when there is none)
 * as a new NUL-terminated string, and moves past them and sep. NULL when
 * nothing is left. The caller frees. */
char *fuzz_take(struct fuzz_input *in, const char *sep);

/* All that is left as a new NUL-terminated string (it may hold NULs of
 * its own; *len is its length). Never NULL. The caller frees. */
char *fuzz_rest(struct fuzz_input *in, size_t *len);

/* A copy of data as a NUL-terminated string. The caller frees. */
char *fuzz_text(const uint8_t *data, size_t size);

/* The value (NULL: absent) values[i] of the header names[i] that name
 * is, in any case, among n: a webhook_request's header lookup. */
const char *fuzz_header_value(const char *const *names,
                              const char *const *values, int n,
                              const char *name);

struct crm_deal;
struct crm_write;
struct crm_write_result;

/* Checks a deal a provider read: it has an id, our id is absent or not
 * empty, every value and overwritten edit is canonical. */
void fuzz_check_read_deal(const struct crm_deal *d);

/* Checks the outcome a provider read from the answer, at status, to the
 * write w (a create without crm_id): it is done; a success (2xx only)
 * names its record and no error, a failure says why and names none;
 * values the CRM filled in are a create's unset fields, canonical. */
void fuzz_check_write_result(const struct crm_write *w, long status,
                             const struct crm_write_result *res);

/* Whether value is valid for the field and already in its canonical
 * form (deal_field_canonical gives it back unchanged). */
bool fuzz_is_canonical(int field, const char *value);

/* The object and stage attribute ids of Attio's documentation examples,
 * which the Attio targets' connection maps. */
#define FUZZ_ATTIO_OBJECT "97052eb9-e65e-443f-a297-f2d9a4a7f795"
#define FUZZ_ATTIO_STAGE "41252299-f8c7-4b5e-99c9-4ff8321d2f96"

/* The settings of an Attio connection with the default map of the
 * standard deals object (attio_map_build on its attributes), as connect
 * writes them. Built once, shared: not to be changed or freed. */
char *fuzz_attio_settings(void);

/* The custom field keys of the Pipedrive targets' connection. */
#define FUZZ_PD_PRODUCT "5e8c2d0a1f3b4c6d7e8f9a0b1c2d3e4f5a6b7c8d"
#define FUZZ_PD_OURS "ffff0000ffff0000ffff0000ffff0000ffff0000"

/* The settings of a Pipedrive connection as connect learns them from
 * /dealFields: account, engage date, postcode and location as custom
 * fields, the product an option field (41, 42), our id. Shared: not to
 * be changed or freed. */
char *fuzz_pipedrive_settings(void);

/* Aborts with the message when cond is false: the code under test broke a
 * promise its header makes, which libFuzzer reports as a crash. */
#define FUZZ_CHECK(cond, msg)                                                  \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__FILE__, __LINE__, (msg));                              \
    } while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *msg);

#endif
