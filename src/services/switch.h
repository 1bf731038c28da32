/* Switching an org's primary CRM: the new CRM's deals are read and linked
 * to the org's deals (by our id where the CRM carries it, else by a match
 * key the admin chooses), every value is carried over in the new CRM's
 * terms, deals only fieldsync has are queued to be created there, and the
 * old connection stops, all in one transaction. Nothing local is lost:
 * a local value stands unless the new CRM holds a newer one. */
#ifndef FIELDSYNC_SERVICES_SWITCH_H
#define FIELDSYNC_SERVICES_SWITCH_H

#include "base/result.h"
#include "providers/provider.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

#define SWITCH_MAX_KEY_FIELDS 4

struct switch_options {
    /* Fields whose values, compared without regard to case and outer
     * blanks, link a deal without our id (e.g. name and postcode); none:
     * link by our id only. */
    int key_fields[SWITCH_MAX_KEY_FIELDS];
    size_t n_key_fields;
    bool dry_run; /* report what would happen, change nothing */
};

struct switch_report {
    size_t crm_deals;        /* deals read from the new CRM */
    size_t linked_by_id;     /* linked by the our id the CRM carries */
    size_t linked_by_key;    /* linked by the match key */
    size_t to_create;        /* fieldsync's deals queued for the new CRM */
    size_t imported;         /* the new CRM's deals fieldsync lacked */
    size_t ambiguous_crm;    /* the new CRM's deals whose key is shared by
                                several: imported, not linked */
    size_t ambiguous_local;  /* fieldsync's deals with such a key: held,
                                failed, until the admin retries */
    size_t local_kept;       /* fields where a local value stands */
    size_t crm_taken;        /* fields where the new CRM's newer value won */
    size_t untranslated;     /* stage or owner values with no equivalent */
    size_t users_reassigned; /* users given their owner id in the new CRM */
    size_t users_unmatched;  /* users whose owner has no match there */
};

/* Parses "name,postcode" into opts' key fields. FS_ERR_INVALID for an
 * unknown field or too many. */
fs_result switch_parse_key(const char *text, struct switch_options *opts);

/* Makes the session's connection (a standby of org_id) the org's primary
 * CRM. *error (the caller frees) says why when the switch is refused: the
 * connection is not a standby of the org, or its stage map does not
 * validate yet (map the new CRM's stages first). */
fs_result switch_primary(struct store *store, struct provider_session *session,
                         int64_t org_id, const struct switch_options *opts,
                         struct switch_report *report, char **error);

#endif
