/* The primary-CRM switch. Reads happen first (the new CRM's owners,
 * stages and deals, and per-field times where a linked deal differs);
 * then one transaction reloads the org's deals as they are by then (the
 * service keeps taking edits and CRM changes during the reads), relinks,
 * translates and queues everything, so a failure part-way leaves the org
 * on its old CRM untouched and no edit made meanwhile is written over. */
#include "services/switch.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "services/backstop.h"
#include "services/reconciler.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define SWITCH_PAGE 1000
#define SWITCH_HELD_ERROR                                                      \
    "not linked when the org switched CRM: the new CRM has a deal with the "   \
    "same match key that could not be told apart; look for a duplicate "       \
    "there, then retry to create it"
#define SWITCH_READ_BATCH 50
/* The coarsest CRM's time step: Pipedrive's lists time to the second. */
#define SWITCH_TIME_STEP_MS 1000

struct switch_ctx {
    struct store *store;
    struct provider_session *session;
    const struct provider *provider;
    const struct switch_options *opts;
    struct switch_report *report;
    int64_t org_id;
    struct connection old; /* id 0 when the org had no primary */
    const struct connection *neu;
    unsigned synced; /* fields the new connection syncs */
    struct stage_map old_map;
    struct stage_map new_map;
    json_t *owners; /* old owner id -> new owner id */

    struct record *records; /* the org's deals, tombstones too */
    size_t n_records;
    struct crm_deal *deals; /* the new CRM's live deals */
    size_t n_deals;
    ssize_t *record_of; /* deal index -> record index, or -1 */
    bool *linked;       /* record index -> linked to a deal */
    bool *held;         /* record index -> unlinked, its key ambiguous */
};

fs_result switch_parse_key(const char *text, struct switch_options *opts)
{
    opts->n_key_fields = 0;
    while (text && *text) {
        size_t len = strcspn(text, ",");
        char *name = xstrndup(text, len);
        int f = deal_field_by_name(name);
        free(name);
        if (f < 0 || opts->n_key_fields == SWITCH_MAX_KEY_FIELDS)
            return FS_ERR_INVALID;
        opts->key_fields[opts->n_key_fields++] = f;
        text += len;
        if (*text == ',')
            text++;
    }
    return FS_OK;
}

/* The new connection must be a standby of the org. */
static fs_result check_connections(struct switch_ctx *x, char **error)
{
    const struct connection *c = x->neu;

    if (c->org_id != x->org_id || c->active || !x->provider) {
        *error = xasprintf("connection %lld is not a standby of the org",
                           (long long)c->id);
        return FS_ERR_INVALID;
    }
    fs_result r = store_connection_for_org(x->store, x->org_id, &x->old);
    if (r == FS_ERR_NOT_FOUND) {
        memset(&x->old, 0, sizeof(x->old));
        r = FS_OK;
    }
    return r;
}

static fs_result load_maps(struct switch_ctx *x, char **error)
{
    fs_result r =
        store_stage_map_load(x->store, x->org_id, x->neu->id, &x->new_map);
    if (r == FS_OK && stage_map_validate(&x->new_map, error) != FS_OK) {
        char *why = *error;
        *error = xasprintf("map the new CRM's stages first "
                           "(fieldsync stages map --connection %lld): %s",
                           (long long)x->neu->id, why ? why : "");
        free(why);
        return FS_ERR_INVALID;
    }
    if (r == FS_OK && x->old.id)
        r = store_stage_map_load(x->store, x->org_id, x->old.id, &x->old_map);
    return r;
}

/* Owners are the same people in both CRMs when their emails match. */
static fs_result load_owner_translation(struct switch_ctx *x)
{
    struct store_owner *owners = NULL;
    size_t n = 0;

    x->owners = json_object();
    if (!x->old.id)
        return FS_OK;
    fs_result r = store_crm_owners_list(x->store, x->old.id, &owners, &n);
    for (size_t i = 0; r == FS_OK && i < n; i++) {
        char *id = NULL;
        fs_result found = store_crm_owner_by_email(x->store, x->neu->id,
                                                   owners[i].email, &id);
        if (found == FS_OK)
            json_object_set_new(x->owners, owners[i].id, json_string(id));
        else if (found != FS_ERR_NOT_FOUND)
            r = found;
        free(id);
    }
    store_owners_free(owners, n);
    return r;
}

static fs_result read_new_crm(struct switch_ctx *x)
{
    struct crm_cursor cursor = {0};
    size_t cap = 0;
    fs_result r = FS_OK;

    while (r == FS_OK && !cursor.done) {
        struct crm_deal *page = NULL;
        size_t n = 0;
        r = x->provider->list_deals(x->session, &cursor, &page, &n);
        for (size_t i = 0; r == FS_OK && i < n; i++) {
            if (page[i].archived)
                continue;
            if (x->n_deals == cap) {
                cap = cap ? cap * 2 : 256;
                x->deals = xrealloc(x->deals, cap * sizeof(*x->deals));
            }
            x->deals[x->n_deals++] = page[i];
            memset(&page[i], 0, sizeof(page[i]));
        }
        crm_deals_free(page, n);
    }
    crm_cursor_clear(&cursor);
    x->report->crm_deals = x->n_deals;
    return r;
}

static fs_result load_records(struct switch_ctx *x)
{
    size_t cap = 0;
    char *after = NULL;
    fs_result r = FS_OK;

    for (;;) {
        struct record *page = NULL;
        size_t n = 0;
        struct record_filter f = {.org_id = x->org_id,
                                  .after_id = after,
                                  .limit = SWITCH_PAGE,
                                  .include_deleted = true};
        r = store_records_list(x->store, &f, &page, &n);
        if (r != FS_OK)
            break;
        if (x->n_records + n > cap) {
            cap = (x->n_records + n) * 2;
            x->records = xrealloc(x->records, cap * sizeof(*x->records));
        }
        memcpy(x->records + x->n_records, page, n * sizeof(*page));
        x->n_records += n;
        free(after);
        after = n ? xstrdup(page[n - 1].id) : NULL;
        free(page);
        if (n < SWITCH_PAGE)
            break;
    }
    free(after);
    return r;
}

/* The match key of a set of values: each key field folded to lower case
 * with its outer blanks gone, joined; an empty field is part of the key
 * (a deal without a postcode matches one without a postcode); NULL when
 * every key field is empty. */
static char *match_key(const struct switch_options *opts,
                       const char *const *values)
{
    struct buf b = {0};
    bool any = false;

    buf_append(&b, "", 0);
    for (size_t i = 0; i < opts->n_key_fields; i++) {
        const char *v = values[opts->key_fields[i]];
        while (v && isspace((unsigned char)*v))
            v++;
        size_t len = v ? strlen(v) : 0;
        while (len > 0 && isspace((unsigned char)v[len - 1]))
            len--;
        any = any || len > 0;
        for (size_t j = 0; j < len; j++) {
            char c = (char)tolower((unsigned char)v[j]);
            buf_append(&b, &c, 1);
        }
        buf_append(&b, "\x1f", 1);
    }
    if (!any) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

static void record_values(const struct record *r, const char **values)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        values[f] = r->fields[f].value;
}

/* Counts how often each key occurs (json object key -> count). */
static void count_key(json_t *counts, const char *key)
{
    json_t *n = json_object_get(counts, key);
    json_object_set_new(counts, key,
                        json_integer(n ? json_integer_value(n) + 1 : 1));
}

/* Links the new CRM's deal d to record i. A deleted deal of ours stays
 * deleted and is linked, so the new CRM's copy is not imported, unless
 * that copy was changed after the delete: a write newer than the delete
 * wins, and the new CRM's deal is imported as its own (docs/DECISIONS.md,
 * switching the primary CRM). */
static void link_pair(struct switch_ctx *x, size_t d, size_t i, bool by_id)
{
    const struct record *r = &x->records[i];

    if (r->deleted_at && x->deals[d].modified > r->deleted_at) {
        x->report->deleted_revived++;
        return;
    }
    x->record_of[d] = (ssize_t)i;
    x->linked[i] = true;
    if (r->deleted_at)
        x->report->deleted_kept++;
    else if (by_id)
        x->report->linked_by_id++;
    else
        x->report->linked_by_key++;
}

/* The match key of record i (caller frees), or NULL when it is linked
 * already, when its key fields are empty or when it is live and tombs
 * asks for deleted ones (or the other way round). */
static char *record_key(struct switch_ctx *x, size_t i, bool tombs)
{
    const char *values[DEAL_FIELD_COUNT];

    if (x->linked[i] || (x->records[i].deleted_at != 0) != tombs)
        return NULL;
    record_values(&x->records[i], values);
    return match_key(x->opts, values);
}

/* Counts the keys of our unlinked deals (live ones, or deleted ones with
 * tombs) and notes the last record of each. */
static void index_keys(struct switch_ctx *x, bool tombs, json_t *counts,
                       json_t *index)
{
    for (size_t i = 0; i < x->n_records; i++) {
        char *key = record_key(x, i, tombs);
        if (key) {
            count_key(counts, key);
            json_object_set_new(index, key, json_integer((int)i));
        }
        free(key);
    }
}

/* Deleted deals of ours link by a key unique among them, among the new
 * CRM's unlinked deals and absent from our live deals. */
static void link_tombstones(struct switch_ctx *x, json_t *live_counts,
                            json_t *crm_counts)
{
    json_t *counts = json_object();
    json_t *index = json_object();

    index_keys(x, true, counts, index);
    for (size_t d = 0; d < x->n_deals; d++) {
        if (x->record_of[d] >= 0)
            continue;
        char *key = match_key(x->opts, (const char *const *)x->deals[d].values);
        json_t *tomb = key ? json_object_get(counts, key) : NULL;
        if (tomb && json_integer_value(tomb) == 1 &&
            json_integer_value(json_object_get(crm_counts, key)) == 1 &&
            !json_object_get(live_counts, key))
            link_pair(x, d,
                      (size_t)json_integer_value(json_object_get(index, key)),
                      false);
        free(key);
    }
    json_decref(counts);
    json_decref(index);
}

/* Links by our id first, then by a key unique on both sides. */
static void link_deals(struct switch_ctx *x)
{
    json_t *by_id = json_object();

    x->report->linked_by_id = x->report->linked_by_key = 0;
    x->report->ambiguous_crm = x->report->ambiguous_local = 0;
    x->report->deleted_kept = x->report->deleted_revived = 0;
    x->record_of = xcalloc(x->n_deals + 1, sizeof(*x->record_of));
    x->linked = xcalloc(x->n_records + 1, sizeof(*x->linked));
    x->held = xcalloc(x->n_records + 1, sizeof(*x->held));
    for (size_t i = 0; i < x->n_records; i++)
        json_object_set_new(by_id, x->records[i].id, json_integer((int)i));
    for (size_t d = 0; d < x->n_deals; d++) {
        x->record_of[d] = -1;
        json_t *hit = x->deals[d].our_id
                          ? json_object_get(by_id, x->deals[d].our_id)
                          : NULL;
        size_t i = hit ? (size_t)json_integer_value(hit) : 0;
        if (hit && !x->linked[i])
            link_pair(x, d, i, true);
    }
    json_decref(by_id);
    if (x->opts->n_key_fields == 0)
        return;

    json_t *local_counts = json_object();
    json_t *crm_counts = json_object();
    json_t *local_index = json_object();
    index_keys(x, false, local_counts, local_index);
    for (size_t d = 0; d < x->n_deals; d++) {
        char *key =
            x->record_of[d] < 0
                ? match_key(x->opts, (const char *const *)x->deals[d].values)
                : NULL;
        if (key)
            count_key(crm_counts, key);
        free(key);
    }
    for (size_t d = 0; d < x->n_deals; d++) {
        if (x->record_of[d] >= 0)
            continue;
        char *key = match_key(x->opts, (const char *const *)x->deals[d].values);
        json_t *local = key ? json_object_get(local_counts, key) : NULL;
        json_t *crm = key ? json_object_get(crm_counts, key) : NULL;
        if (local && json_integer_value(local) == 1 &&
            json_integer_value(crm) == 1) {
            link_pair(
                x, d,
                (size_t)json_integer_value(json_object_get(local_index, key)),
                false);
        } else if (local) {
            x->report->ambiguous_crm++;
        }
        free(key);
    }
    /* A local deal whose key the new CRM has on a deal it could not be
     * told apart from is not created there: it waits, failed, for the
     * admin to look. */
    for (size_t i = 0; i < x->n_records; i++) {
        char *key = record_key(x, i, false);
        if (key && json_object_get(crm_counts, key)) {
            x->held[i] = true;
            x->report->ambiguous_local++;
        }
        free(key);
    }
    link_tombstones(x, local_counts, crm_counts);
    json_decref(local_counts);
    json_decref(crm_counts);
    json_decref(local_index);
}

/* A local value in the new CRM's terms; false when it has none there. */
static bool translate(struct switch_ctx *x, int field, const char *value,
                      const char *crm_current, char **out)
{
    *out = NULL;
    if (!value)
        return true;
    if (field == DEAL_STAGE) {
        const char *key = stage_map_key_of(&x->old_map, value);
        const char *crm = NULL;
        if (!key ||
            stage_map_for_write(&x->new_map, key, crm_current, &crm) != FS_OK)
            return false;
        *out = xstrdup(crm);
        return true;
    }
    if (field == DEAL_OWNER) {
        const char *id = json_string_value(json_object_get(x->owners, value));
        if (!id)
            return false;
        *out = xstrdup(id);
        return true;
    }
    *out = xstrdup(value);
    return true;
}

static void set_text(char **slot, const char *v)
{
    char *copy = v ? xstrdup(v) : NULL;
    free(*slot);
    *slot = copy;
}

/* A field the new CRM does not sync keeps its value, as if in sync, so it
 * is never pending there. */
static void keep_unsynced(struct field_state *f)
{
    set_text(&f->crm_value, f->value);
    f->crm_time = f->time;
    set_text(&f->pushed_value, NULL);
    f->has_pushed = false;
}

/* One field of a linked deal: the newer of the local value (in the new
 * CRM's terms) and the new CRM's. */
static void link_field(struct switch_ctx *x, struct field_state *f, int field,
                       const struct crm_deal *deal)
{
    const char *crm = deal->values[field];
    int64_t crm_time = deal->times[field] ? deal->times[field] : deal->modified;
    char *local = NULL;

    if (!translate(x, field, f->value, deal->values[DEAL_STAGE], &local)) {
        x->report->untranslated++;
        free(local);
        local = crm ? xstrdup(crm) : NULL;
    }
    set_text(&f->crm_value, crm);
    f->crm_time = crm_time;
    set_text(&f->pushed_value, NULL);
    f->has_pushed = false;
    if (!merge_value_equal(local, crm) && f->origin != ORIGIN_NONE &&
        f->time > crm_time) {
        set_text(&f->value, local);
        f->origin = ORIGIN_LOCAL;
        x->report->local_kept++;
    } else {
        if (!merge_value_equal(f->value, crm))
            x->report->crm_taken++;
        set_text(&f->value, crm);
        f->time = crm_time > f->time ? crm_time : f->time;
        f->origin = ORIGIN_CRM;
    }
    free(local);
}

static void link_record(struct switch_ctx *x, struct record *r,
                        const struct crm_deal *deal)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (x->synced & (1u << f))
            link_field(x, &r->fields[f], f, deal);
        else
            keep_unsynced(&r->fields[f]);
    }
    r->connection_id = x->neu->id;
    set_text(&r->crm_id, deal->crm_id);
}

/* A deleted deal of ours linked to the new CRM's copy: it stays deleted,
 * knowing what that CRM holds, so nothing of it is pending there. */
static void link_tombstone(struct switch_ctx *x, struct record *r,
                           const struct crm_deal *deal)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        struct field_state *field = &r->fields[f];
        if (!(x->synced & (1u << f)))
            continue;
        set_text(&field->crm_value, deal->values[f]);
        field->crm_time = deal->times[f] ? deal->times[f] : deal->modified;
        set_text(&field->pushed_value, NULL);
        field->has_pushed = false;
    }
    r->connection_id = x->neu->id;
    set_text(&r->crm_id, deal->crm_id);
}

/* A deal only fieldsync has: everything it holds goes to the new CRM. */
static void queue_record(struct switch_ctx *x, struct record *r)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        struct field_state *field = &r->fields[f];
        if (!(x->synced & (1u << f))) {
            keep_unsynced(field);
            continue;
        }
        char *v = NULL;
        if (!translate(x, f, field->value, NULL, &v))
            x->report->untranslated++;
        set_text(&field->value, v);
        free(v);
        field->origin = field->value ? ORIGIN_LOCAL : ORIGIN_NONE;
        set_text(&field->crm_value, NULL);
        field->crm_time = 0;
        set_text(&field->pushed_value, NULL);
        field->has_pushed = false;
    }
    r->connection_id = x->neu->id;
    set_text(&r->crm_id, NULL);
    x->report->to_create++;
}

/* An unlinked deal the new CRM may already have: failed, with the reason,
 * so it is shown "couldn't sync to CRM" and created only after a retry. */
static fs_result hold_record(struct switch_ctx *x, const struct record *r)
{
    struct sync_state st = {
        .failed = true,
        .first_failure_at = clock_now_ms(),
        .last_error = (char *)SWITCH_HELD_ERROR,
    };

    x->report->to_create--;
    return store_sync_put(x->store, r->rowid, &st);
}

/* Whether a linked deal must be read again for each field's own time:
 * some value differs and the list's time cannot tell which is newer. */
static bool needs_field_times(struct switch_ctx *x, const struct record *r,
                              const struct crm_deal *deal)
{
    bool needed = false;

    for (int f = 0; !needed && f < DEAL_FIELD_COUNT; f++) {
        char *local = NULL;
        if (!(x->synced & (1u << f)))
            continue;
        bool same = translate(x, f, r->fields[f].value,
                              deal->values[DEAL_STAGE], &local) &&
                    merge_value_equal(local, deal->values[f]);
        free(local);
        /* The CRM's value is no newer than the deal's last change (the
         * start of its second on a CRM with whole seconds): a local value
         * after that second wins whatever the field's own time. */
        needed = !same && (r->fields[f].time == 0 ||
                           r->fields[f].time <=
                               deal->times[f] + SWITCH_TIME_STEP_MS - 1);
    }
    return needed;
}

/* Lists carry only a deal's modification time; a linked deal whose values
 * differ is read again with each field's own time, unless every local
 * value that differs is newer than that modification (on Pipedrive each
 * read is a changelog call of 20 tokens a deal: an org whose deals all
 * differ in one field would spend several days' budgets). */
static fs_result read_field_times(struct switch_ctx *x)
{
    const char **ids = xcalloc(SWITCH_READ_BATCH, sizeof(*ids));
    size_t *which = xcalloc(SWITCH_READ_BATCH, sizeof(*which));
    fs_result r = FS_OK;
    size_t n = 0;

    for (size_t d = 0; r == FS_OK && d <= x->n_deals; d++) {
        if (d < x->n_deals && x->record_of[d] >= 0 &&
            !x->records[x->record_of[d]].deleted_at &&
            needs_field_times(x, &x->records[x->record_of[d]], &x->deals[d])) {
            ids[n] = x->deals[d].crm_id;
            which[n++] = d;
        }
        if (n == 0 || (n < SWITCH_READ_BATCH && d < x->n_deals))
            continue;
        struct crm_deal *got = NULL;
        size_t n_got = 0;
        int64_t read_at = clock_now_ms();
        r = x->provider->read_deals(x->session, ids, n, &got, &n_got);
        for (size_t i = 0; r == FS_OK && i < n_got; i++) {
            for (size_t j = 0; j < n; j++) {
                struct crm_deal *old = &x->deals[which[j]];
                if (strcmp(old->crm_id, got[i].crm_id) != 0)
                    continue;
                crm_deal_clear(old);
                *old = got[i];
                old->read_at = read_at;
                memset(&got[i], 0, sizeof(got[i]));
                break;
            }
        }
        crm_deals_free(got, n_got);
        n = 0;
    }
    free(ids);
    free(which);
    return r;
}

/* Users keep their role; their owner id becomes the new CRM's. */
static fs_result reassign_users(struct switch_ctx *x)
{
    struct user *users = NULL;
    size_t n = 0;

    fs_result r = store_users_list(x->store, x->org_id, &users, &n);
    for (size_t i = 0; r == FS_OK && i < n; i++) {
        const char *old = users[i].crm_owner_id;
        if (!old)
            continue;
        const char *neu = json_string_value(json_object_get(x->owners, old));
        if (!neu) {
            x->report->users_unmatched++;
            continue;
        }
        /* Under the new CRM's provider: owner ids are kept per provider,
         * and the new one becomes the org's when the switch commits. */
        r = store_user_set_owner_id(x->store, x->org_id, users[i].id,
                                    x->neu->provider, neu);
        x->report->users_reassigned++;
    }
    for (size_t i = 0; i < n; i++)
        user_clear(&users[i]);
    free(users);
    return r;
}

/* The new CRM's deals fieldsync did not have become records, as in an
 * import. */
static fs_result import_unlinked(struct switch_ctx *x, int64_t *newest)
{
    struct reconcile_effects fx = {0};
    fs_result r = FS_OK;

    for (size_t d = 0; r == FS_OK && d < x->n_deals; d++) {
        if (x->deals[d].modified > *newest)
            *newest = x->deals[d].modified;
        if (x->record_of[d] >= 0)
            continue;
        bool needs_read = false;
        r = reconcile_deal(x->store, x->neu, &x->deals[d], true, &needs_read,
                           &fx);
        x->report->imported++;
    }
    reconcile_effects_flush(&fx, x->store, false);
    return r;
}

static void links_clear(struct switch_ctx *x)
{
    store_records_free(x->records, x->n_records);
    x->records = NULL;
    x->n_records = 0;
    free(x->record_of);
    free(x->linked);
    free(x->held);
    x->record_of = NULL;
    x->linked = x->held = NULL;
}

/* The org's deals as they are now, inside the transaction, linked again:
 * what the reads took minutes to learn is merged into them, not into the
 * copy taken before, which edits made and pushed meanwhile have left
 * behind. A deal that differs only since then keeps the list's times. */
static fs_result reload(struct switch_ctx *x)
{
    links_clear(x);
    fs_result r = load_records(x);
    if (r == FS_OK)
        link_deals(x);
    return r;
}

static fs_result apply(struct switch_ctx *x)
{
    int64_t newest = 0;
    fs_result r = store_begin(x->store);

    if (r == FS_OK)
        r = reload(x);
    for (size_t d = 0; r == FS_OK && d < x->n_deals; d++) {
        if (x->record_of[d] < 0)
            continue;
        struct record *rec = &x->records[x->record_of[d]];
        if (rec->deleted_at)
            link_tombstone(x, rec, &x->deals[d]);
        else
            link_record(x, rec, &x->deals[d]);
        r = store_record_save(x->store, rec);
        if (r == FS_OK && !rec->deleted_at)
            r = store_sync_clear(x->store, rec->rowid);
    }
    for (size_t i = 0; r == FS_OK && i < x->n_records; i++) {
        if (x->linked[i] || x->records[i].deleted_at)
            continue;
        queue_record(x, &x->records[i]);
        r = store_record_save(x->store, &x->records[i]);
        if (r == FS_OK)
            r = x->held[i] ? hold_record(x, &x->records[i])
                           : store_sync_clear(x->store, x->records[i].rowid);
    }
    if (r == FS_OK)
        r = import_unlinked(x, &newest);
    if (r == FS_OK)
        r = reassign_users(x);
    if (r == FS_OK && x->old.id)
        r = store_connection_set_active(x->store, x->old.id, false);
    if (r == FS_OK)
        r = store_connection_set_active(x->store, x->neu->id, true);
    if (r == FS_OK && newest > 0)
        r = store_connection_set_watermark(x->store, x->neu->id, newest);
    if (r == FS_OK) {
        char *detail =
            xasprintf("from=%lld to=%lld linked=%zu created=%zu imported=%zu "
                      "deleted_kept=%zu deleted_revived=%zu",
                      (long long)x->old.id, (long long)x->neu->id,
                      x->report->linked_by_id + x->report->linked_by_key,
                      x->report->to_create, x->report->imported,
                      x->report->deleted_kept, x->report->deleted_revived);
        r = store_audit_add(x->store, x->org_id, "crm_switch", NULL, NULL,
                            detail);
        free(detail);
    }
    if (r == FS_OK && !x->opts->dry_run)
        return store_commit(x->store);
    store_rollback(x->store);
    return r;
}

static void ctx_clear(struct switch_ctx *x)
{
    connection_clear(&x->old);
    stage_map_clear(&x->old_map);
    stage_map_clear(&x->new_map);
    json_decref(x->owners);
    links_clear(x);
    crm_deals_free(x->deals, x->n_deals);
}

fs_result switch_primary(struct store *store, struct provider_session *session,
                         int64_t org_id, const struct switch_options *opts,
                         struct switch_report *report, char **error)
{
    struct switch_ctx x = {
        .store = store,
        .session = session,
        .provider = provider_by_name(session->conn->provider),
        .opts = opts,
        .report = report,
        .org_id = org_id,
        .neu = session->conn,
        .synced = provider_synced_fields(session->conn),
    };

    memset(report, 0, sizeof(*report));
    *error = NULL;
    fs_result r = check_connections(&x, error);
    if (r == FS_OK)
        r = import_crm_meta(store, session);
    if (r == FS_OK)
        r = load_maps(&x, error);
    if (r == FS_OK)
        r = load_owner_translation(&x);
    if (r == FS_OK)
        r = read_new_crm(&x);
    if (r == FS_OK)
        r = load_records(&x);
    if (r == FS_OK) {
        link_deals(&x);
        r = read_field_times(&x);
    }
    if (r == FS_OK)
        r = apply(&x);
    if (r == FS_OK)
        log_notice("event=crm_switched org=%lld from=%lld to=%lld linked=%zu "
                   "created=%zu imported=%zu ambiguous=%zu deleted_kept=%zu "
                   "deleted_revived=%zu dry_run=%d",
                   (long long)org_id, (long long)x.old.id,
                   (long long)session->conn->id,
                   report->linked_by_id + report->linked_by_key,
                   report->to_create, report->imported,
                   report->ambiguous_local + report->ambiguous_crm,
                   report->deleted_kept, report->deleted_revived,
                   opts->dry_run ? 1 : 0);
    ctx_clear(&x);
    return r;
}
