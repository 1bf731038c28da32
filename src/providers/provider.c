/* Helpers shared by every provider: freeing what they return, and finding
 * a provider by its name. */
#include "providers/provider.h"

#include "base/alloc.h"

#include "providers/attio.h"
#include "providers/hubspot.h"
#include "providers/pipedrive.h"

#include <stdlib.h>
#include <string.h>

void webhook_items_free(struct webhook_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].dedup_key);
        free(items[i].account_id);
        free(items[i].app_id);
        free(items[i].body);
    }
    free(items);
}

void crm_event_clear(struct crm_event *event)
{
    if (!event)
        return;
    free(event->crm_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(event->values[f]);
    for (size_t i = 0; i < event->merged_count; i++)
        free(event->merged_ids[i]);
    free(event->merged_ids);
    free(event->new_id);
    free(event->ignored_type);
    memset(event, 0, sizeof(*event));
}

void crm_deal_clear(struct crm_deal *deal)
{
    free(deal->crm_id);
    free(deal->our_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        free(deal->values[f]);
        free(deal->others[f].value);
    }
    memset(deal, 0, sizeof(*deal));
}

void crm_deals_free(struct crm_deal *deals, size_t n)
{
    if (!deals)
        return;
    for (size_t i = 0; i < n; i++)
        crm_deal_clear(&deals[i]);
    free(deals);
}

struct crm_deal *crm_deal_list_add(struct crm_deal_list *l)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    memset(&l->items[l->count], 0, sizeof(*l->items));
    return &l->items[l->count++];
}

void crm_deal_list_drop_last(struct crm_deal_list *l)
{
    crm_deal_clear(&l->items[--l->count]);
}

void crm_deal_list_give(struct crm_deal_list *l, struct crm_deal **out,
                        size_t *count)
{
    if (l->count == 0) {
        free(l->items);
        l->items = NULL;
    }
    *out = l->items;
    *count = l->count;
    memset(l, 0, sizeof(*l));
}

void crm_write_results_clear(struct crm_write_result *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++) {
        free(results[i].crm_id);
        free(results[i].error);
        free(results[i].writer_id);
        for (int f = 0; f < DEAL_FIELD_COUNT; f++)
            free(results[i].defaults[f]);
        memset(&results[i], 0, sizeof(results[i]));
    }
}

void crm_owners_free(struct crm_owner *owners, size_t n)
{
    if (!owners)
        return;
    for (size_t i = 0; i < n; i++) {
        free(owners[i].id);
        free(owners[i].email);
        free(owners[i].name);
    }
    free(owners);
}

void crm_stages_free(struct crm_stage *stages, size_t n)
{
    if (!stages)
        return;
    for (size_t i = 0; i < n; i++) {
        free(stages[i].pipeline_id);
        free(stages[i].id);
        free(stages[i].label);
    }
    free(stages);
}

void crm_cursor_clear(struct crm_cursor *cursor)
{
    if (!cursor)
        return;
    free(cursor->after);
    for (size_t i = 0; i < cursor->seen_count; i++)
        free(cursor->seen_at_mark[i]);
    free(cursor->seen_at_mark);
    memset(cursor, 0, sizeof(*cursor));
}

const struct provider *provider_by_name(const char *name)
{
    static const struct provider *const all[] = {
        &hubspot_provider, &attio_provider, &pipedrive_provider};

    for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    }
    return NULL;
}

unsigned provider_synced_fields(const struct connection *conn)
{
    const struct provider *p = provider_by_name(conn->provider);

    if (p && p->synced_fields)
        return p->synced_fields(conn);
    return (1u << DEAL_FIELD_COUNT) - 1;
}

void provider_budget(const struct connection *conn, enum call_class cls,
                     struct rate_budget *out)
{
    const struct provider *p = provider_by_name(conn->provider);

    memset(out, 0, sizeof(*out));
    if (p && p->rate_budget)
        p->rate_budget(conn, cls, out);
}

void provider_session_open(const struct connection *conn, long timeout_ms,
                           struct provider_session *out)
{
    const struct provider *p = provider_by_name(conn->provider);
    struct rate_budget budget;

    memset(out, 0, sizeof(*out));
    out->conn = conn;
    out->http = http_client_new();
    out->timeout_ms = timeout_ms;
    provider_budget(conn, CALL_READ, &budget);
    out->governor = rate_governor_new(&budget);
    if (p && p->separate_write_budget) {
        provider_budget(conn, CALL_WRITE, &budget);
        out->write_governor = rate_governor_new(&budget);
    }
    if (p && p->separate_search_budget) {
        provider_budget(conn, CALL_SEARCH, &budget);
        out->search_governor = rate_governor_new(&budget);
    }
}

void provider_session_close(struct provider_session *s)
{
    http_client_free(s->http);
    rate_governor_free(s->governor);
    rate_governor_free(s->write_governor);
    rate_governor_free(s->search_governor);
    memset(s, 0, sizeof(*s));
}

struct rate_governor *provider_session_governor(struct provider_session *s,
                                                enum call_class cls)
{
    if (cls == CALL_WRITE && s->write_governor)
        return s->write_governor;
    if (cls == CALL_SEARCH && s->search_governor)
        return s->search_governor;
    return s->governor;
}
