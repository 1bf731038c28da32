/* Pipedrive's side of the simulated deal: the v2 deal object (custom
 * fields under 40-character keys, won and lost as a status), and the
 * webhooks v2 events with current data, changed-only previous values,
 * merges as a delete and a change, and HTTP Basic auth. */
#include "pipedrive_sim.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The company's custom deal fields, as /dealFields lists them. */
const struct pipedrive_custom pipedrive_customs[] = {
    {"Account", "3c1f0e6a8b2d4f97a05e1c3b7d9f2a4c6e8b0d13", "varchar",
     DEAL_ACCOUNT},
    {"Product", "7d2e9a4c1b6f8e03d5a7c9b2e4f6a8c0d2e4f617", "varchar",
     DEAL_PRODUCT},
    {"Engage date", "a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a021", "date",
     DEAL_ENGAGE_DATE},
    {"Postcode", "b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b132", "varchar",
     DEAL_POSTCODE},
    {"Location", "c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c243", "varchar",
     DEAL_LOCATION},
    {"fieldsync_id", "d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d354", "varchar",
     SIM_F_OUR_ID},
};

const size_t pipedrive_custom_count =
    sizeof(pipedrive_customs) / sizeof(pipedrive_customs[0]);

const struct pipedrive_custom *pipedrive_custom_by_key(const char *key)
{
    for (size_t i = 0; key && i < pipedrive_custom_count; i++) {
        if (strcmp(pipedrive_customs[i].key, key) == 0)
            return &pipedrive_customs[i];
    }
    return NULL;
}

static const struct pipedrive_custom *custom_of_field(int field)
{
    for (size_t i = 0; i < pipedrive_custom_count; i++) {
        if (pipedrive_customs[i].field == field)
            return &pipedrive_customs[i];
    }
    return NULL;
}

void pipedrive_time(int64_t ms, char out[32])
{
    clock_format_iso(ms - ((ms % 1000) + 1000) % 1000, out);
    memcpy(out + 19, "Z", 2);
}

void pipedrive_time_v1(int64_t ms, char out[32])
{
    pipedrive_time(ms, out);
    out[10] = ' ';
    out[19] = '\0';
}

static json_t *time_json(int64_t ms)
{
    char buf[32];

    pipedrive_time(ms, buf);
    return json_string(buf);
}

const char *pipedrive_actor_user(const struct pipedrive_account *a,
                                 enum sim_actor_kind kind, const char *id)
{
    if (kind == SIM_ACTOR_USER && id)
        return id;
    return a->api_user_id;
}

const char *pipedrive_change_source(enum sim_actor_kind kind)
{
    return kind == SIM_ACTOR_TOKEN ? "api" : "app";
}

static bool closed_stage(const char *stage)
{
    return stage &&
           (strncmp(stage, "won-", 4) == 0 || strncmp(stage, "lost-", 5) == 0);
}

const char *pipedrive_stage_of(const struct sim_value *v)
{
    for (; v; v = v->prev) {
        if (v->value && !closed_stage(v->value))
            return v->value;
    }
    return "2";
}

static const char *status_of_value(const char *stage)
{
    if (stage && strncmp(stage, "won-", 4) == 0)
        return "won";
    if (stage && strncmp(stage, "lost-", 5) == 0)
        return "lost";
    return "open";
}

const char *pipedrive_stage_id(const struct sim_deal *deal)
{
    return pipedrive_stage_of(deal->fields[DEAL_STAGE]);
}

const char *pipedrive_status(const struct sim_deal *deal)
{
    return status_of_value(sim_deal_value(deal, DEAL_STAGE));
}

static json_t *id_json(const char *id)
{
    return json_integer((json_int_t)strtoll(id, NULL, 10));
}

static json_t *amount_json(const char *value)
{
    if (!value)
        return json_integer(0);
    if (!strchr(value, '.'))
        return json_integer((json_int_t)strtoll(value, NULL, 10));
    return json_real(strtod(value, NULL));
}

/* A custom field's value: plain in REST, typed in webhooks. */
static json_t *custom_json(const struct pipedrive_custom *c, const char *value,
                           enum pipedrive_shape shape)
{
    if (!value)
        return json_null();
    if (shape == PIPEDRIVE_REST)
        return json_string(value);
    return json_pack("{s:s, s:s}", "type", c->type, "value", value);
}

static bool key_wanted(const json_t *keys, const char *key)
{
    size_t i;
    const json_t *k;

    if (!keys)
        return true;
    json_array_foreach(keys, i, k)
    {
        if (json_string_value(k) && strcmp(json_string_value(k), key) == 0)
            return true;
    }
    return false;
}

json_t *pipedrive_deal_json(const struct sim_deal *deal,
                            const struct pipedrive_account *a,
                            enum pipedrive_shape shape, const json_t *keys)
{
    json_t *obj = json_object();
    json_t *custom = json_object();
    const char *stage = sim_deal_value(deal, DEAL_STAGE);
    const char *status = status_of_value(stage);
    const char *owner = sim_deal_value(deal, DEAL_OWNER);
    const char *close = sim_deal_value(deal, DEAL_CLOSE_DATE);
    const struct sim_value *creator = deal->fields[DEAL_NAME];
    int64_t stage_time = sim_deal_time(deal, DEAL_STAGE);

    while (creator && creator->prev)
        creator = creator->prev;
    json_object_set_new(obj, "id", id_json(deal->id));
    json_object_set_new(obj, "title",
                        json_string(sim_deal_value(deal, DEAL_NAME)
                                        ? sim_deal_value(deal, DEAL_NAME)
                                        : ""));
    json_object_set_new(
        obj, "creator_user_id",
        id_json(creator
                    ? pipedrive_actor_user(a, creator->actor, creator->actor_id)
                    : a->api_user_id));
    if (owner)
        json_object_set_new(obj, "owner_id", id_json(owner));
    json_object_set_new(obj, "value",
                        amount_json(sim_deal_value(deal, DEAL_AMOUNT)));
    json_object_set_new(obj, "currency", json_string("EUR"));
    json_object_set_new(obj, "stage_id",
                        id_json(pipedrive_stage_of(deal->fields[DEAL_STAGE])));
    json_object_set_new(obj, "pipeline_id", id_json(PIPEDRIVE_SIM_PIPELINE));
    json_object_set_new(obj, "add_time", time_json(deal->created_ms));
    json_object_set_new(obj, "update_time", time_json(deal->modified_ms));
    json_object_set_new(obj, "stage_change_time",
                        time_json(stage_time ? stage_time : deal->created_ms));
    json_object_set_new(obj, "is_deleted", json_boolean(deal->archived));
    json_object_set_new(obj, "is_archived", json_false());
    json_object_set_new(obj, "status", json_string(status));
    json_object_set_new(obj, "probability", json_null());
    json_object_set_new(obj, "lost_reason", json_null());
    json_object_set_new(obj, "visible_to", json_integer(3));
    if (strcmp(status, "open") != 0) {
        json_object_set_new(obj, "close_time", time_json(stage_time));
        json_object_set_new(obj, status[0] == 'w' ? "won_time" : "lost_time",
                            time_json(stage_time));
    } else {
        json_object_set_new(obj, "close_time", json_null());
    }
    if (close)
        json_object_set_new(obj, "expected_close_date", json_string(close));
    json_object_set_new(obj, "label_ids", json_array());
    json_object_set_new(obj, "origin",
                        json_string(deal->seed ? "Import" : "ManuallyCreated"));
    json_object_set_new(obj, "origin_id", json_null());
    json_object_set_new(obj, "channel", json_null());
    json_object_set_new(obj, "channel_id", json_null());
    for (size_t i = 0; i < pipedrive_custom_count; i++) {
        const struct pipedrive_custom *c = &pipedrive_customs[i];
        if (key_wanted(keys, c->key))
            json_object_set_new(
                custom, c->key,
                custom_json(c, sim_deal_value(deal, c->field), shape));
    }
    json_object_set_new(obj, "custom_fields", custom);
    return obj;
}

/* ---- webhooks ---- */

/* The old value of a changed field under its key in previous (deal: the
 * deal after the change). */
static void put_previous(json_t *previous, const struct sim_deal *deal,
                         const struct sim_change *ch)
{
    const struct pipedrive_custom *c = custom_of_field(ch->field);
    const char *old = ch->old_value;

    if (c) {
        json_t *custom = json_object_get(previous, "custom_fields");
        if (!custom) {
            custom = json_object();
            json_object_set_new(previous, "custom_fields", custom);
        }
        json_object_set_new(custom, c->key,
                            custom_json(c, old, PIPEDRIVE_WEBHOOK));
        return;
    }
    switch (ch->field) {
    case DEAL_NAME:
        json_object_set_new(previous, "title",
                            old ? json_string(old) : json_null());
        break;
    case DEAL_AMOUNT:
        json_object_set_new(previous, "value", amount_json(old));
        break;
    case DEAL_CLOSE_DATE:
        json_object_set_new(previous, "expected_close_date",
                            old ? json_string(old) : json_null());
        break;
    case DEAL_OWNER:
        json_object_set_new(previous, "owner_id",
                            old ? id_json(old) : json_null());
        break;
    case DEAL_STAGE: {
        const char *was = status_of_value(old);
        const char *now = status_of_value(ch->new_value);
        const struct sim_value *v = deal->fields[DEAL_STAGE];
        if (strcmp(was, now) != 0)
            json_object_set_new(previous, "status", json_string(was));
        if (old && !closed_stage(old) &&
            (!ch->new_value || strcmp(old, ch->new_value) != 0) &&
            !closed_stage(ch->new_value))
            json_object_set_new(previous, "stage_id", id_json(old));
        /* Reopened into another stage than it was closed in: the stage_id
         * changed too (v is this change's value, over the one it took). */
        if (closed_stage(old) && ch->new_value &&
            !closed_stage(ch->new_value) && v && v->value == ch->new_value &&
            v->prev && v->prev->value == old &&
            strcmp(pipedrive_stage_of(v->prev), ch->new_value) != 0)
            json_object_set_new(previous, "stage_id",
                                id_json(pipedrive_stage_of(v->prev)));
        break;
    }
    case SIM_F_PIPELINE:
        json_object_set_new(previous, "pipeline_id",
                            old ? id_json(old) : json_null());
        break;
    default:
        break;
    }
}

static json_t *changes_previous(const struct sim_event *ev)
{
    json_t *previous = json_object();

    for (size_t i = 0; i < ev->change_count; i++)
        put_previous(previous, ev->deal, &ev->changes[i]);
    return previous;
}

/* One event: meta as far as the change tells it (on_format adds the id,
 * attempt and the rest), data and previous. */
static json_t *event_json(struct pipedrive_account *a, const char *action,
                          const struct sim_deal *deal,
                          const struct sim_event *ev, json_t *data,
                          json_t *previous)
{
    char ts[32];
    json_t *meta = json_object();

    clock_format_iso(ev->time_ms, ts);
    json_object_set_new(meta, "action", json_string(action));
    json_object_set_new(meta, "entity", json_string("deal"));
    json_object_set_new(meta, "entity_id", json_string(deal->id));
    json_object_set_new(
        meta, "user_id",
        json_string(pipedrive_actor_user(a, ev->actor.kind, ev->actor.id)));
    json_object_set_new(meta, "timestamp", json_string(ts));
    json_object_set_new(meta, "change_source",
                        json_string(pipedrive_change_source(ev->actor.kind)));
    return json_pack("{s:o, s:o, s:o}", "meta", meta, "data",
                     data ? data : json_null(), "previous",
                     previous ? previous : json_null());
}

static void merged_events(struct pipedrive_account *a,
                          const struct sim_event *ev, json_t *events)
{
    for (size_t i = 0; i < ev->merged_count; i++) {
        const struct sim_deal *loser = ev->merged[i];
        if (loser == ev->deal)
            continue;
        json_t *del =
            event_json(a, "delete", loser, ev, NULL,
                       pipedrive_deal_json(loser, a, PIPEDRIVE_WEBHOOK, NULL));
        json_object_set_new(json_object_get(del, "meta"), "merged_to_id",
                            json_string(ev->deal->id));
        json_array_append_new(events, del);
        json_t *change = event_json(
            a, "change", ev->deal, ev,
            pipedrive_deal_json(ev->deal, a, PIPEDRIVE_WEBHOOK, NULL),
            changes_previous(ev));
        json_object_set_new(json_object_get(change, "meta"), "merged_from_id",
                            json_string(loser->id));
        json_array_append_new(events, change);
    }
}

static void wire_events(struct pipedrive_account *a, const struct sim_event *ev,
                        json_t *events);

/* Whether the webhook's event_action takes the action. */
static bool subscribed(struct pipedrive_account *a, const char *action)
{
    pthread_mutex_lock(&a->mu);
    bool yes = !a->event_action || strcmp(a->event_action, "*") == 0 ||
               strcmp(a->event_action, action) == 0;
    pthread_mutex_unlock(&a->mu);
    return yes;
}

static void on_event(void *ctx, const struct sim_event *ev, json_t *events)
{
    struct pipedrive_account *a = ctx;
    json_t *all = json_array();
    size_t i;
    json_t *one;

    wire_events(a, ev, all);
    json_array_foreach(all, i, one)
    {
        const char *action = json_string_value(
            json_object_get(json_object_get(one, "meta"), "action"));
        if (action && subscribed(a, action))
            json_array_append(events, one);
    }
    json_decref(all);
}

/* Every wire event of a store change, before the webhook's filter. */
static void wire_events(struct pipedrive_account *a, const struct sim_event *ev,
                        json_t *events)
{
    const struct sim_deal *deal = ev->deal;
    json_t *data = NULL;

    switch (ev->kind) {
    case SIM_EV_CREATED:
        data = pipedrive_deal_json(deal, a, PIPEDRIVE_WEBHOOK, NULL);
        json_array_append_new(events,
                              event_json(a, "create", deal, ev, data, NULL));
        break;
    case SIM_EV_CHANGED:
        data = pipedrive_deal_json(deal, a, PIPEDRIVE_WEBHOOK, NULL);
        json_array_append_new(events, event_json(a, "change", deal, ev, data,
                                                 changes_previous(ev)));
        break;
    case SIM_EV_DELETED:
        json_array_append_new(
            events,
            event_json(a, "delete", deal, ev, NULL,
                       pipedrive_deal_json(deal, a, PIPEDRIVE_WEBHOOK, NULL)));
        break;
    case SIM_EV_RESTORED:
        data = pipedrive_deal_json(deal, a, PIPEDRIVE_WEBHOOK, NULL);
        json_array_append_new(events,
                              event_json(a, "change", deal, ev, data,
                                         json_pack("{s:b}", "is_deleted", 1)));
        break;
    case SIM_EV_MERGED:
        merged_events(a, ev, events);
        break;
    }
}

static void on_format(void *ctx, json_t *events, int attempt,
                      const char *delivery_id, const char *url,
                      struct webhook_post *out)
{
    struct pipedrive_account *a = ctx;
    json_t *event = json_array_get(events, 0);
    json_t *meta = json_object_get(event, "meta");
    char company[32], hook[32], host[160];
    char *user = NULL, *password = NULL;

    pthread_mutex_lock(&a->mu);
    snprintf(hook, sizeof(hook), "%" PRId64, a->webhook_id ? a->webhook_id : 1);
    if (a->hook_user && a->hook_password) {
        user = xstrdup(a->hook_user);
        password = xstrdup(a->hook_password);
    }
    pthread_mutex_unlock(&a->mu);
    snprintf(company, sizeof(company), "%" PRId64, a->company_id);
    snprintf(host, sizeof(host), "%s.pipedrive.com", a->company_domain);
    /* The delivery id is the same on every try: Pipedrive's meta.id. */
    json_object_set_new(meta, "id", json_string(delivery_id));
    json_object_set_new(meta, "company_id", json_string(company));
    json_object_set_new(meta, "correlation_id", json_string(delivery_id));
    json_object_set_new(meta, "webhook_id", json_string(hook));
    json_object_set_new(meta, "webhook_owner_id", json_string(a->api_user_id));
    json_object_set_new(meta, "version", json_string("2.0"));
    json_object_set_new(meta, "type", json_string("general"));
    json_object_set_new(meta, "is_bulk_edit", json_false());
    json_object_set_new(meta, "attempt", json_integer(attempt + 1));
    json_object_set_new(meta, "host", json_string(host));
    json_object_set_new(meta, "permitted_user_ids",
                        json_pack("[s]", a->api_user_id));
    out->body = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->body_len = strlen(out->body);
    webhook_post_add_header(out, "Content-Type: application/json");
    webhook_post_add_header(out, "User-Agent: Pipedrive Webhooks (crmsim)");
    if (user) {
        char *pair = xasprintf("%s:%s", user, password);
        char *b64 = crypto_base64((const uint8_t *)pair, strlen(pair));
        webhook_post_add_header(out, "Authorization: Basic %s", b64);
        free(b64);
        free(pair);
    }
    free(user);
    free(password);
}

static const int64_t retry_delays_ms[] = {3000, 30000, 150000};

void pipedrive_webhook_format(struct pipedrive_account *a,
                              struct webhook_format *out)
{
    memset(out, 0, sizeof(*out));
    out->batch_max = 1;
    out->collect_ms = 0;
    out->max_attempts = 4;
    out->timeout_ms = PIPEDRIVE_SIM_TIMEOUT_MS;
    out->retry_delays_ms = retry_delays_ms;
    out->retry_delay_count = sizeof(retry_delays_ms) / sizeof(*retry_delays_ms);
    out->ban_after_failures = PIPEDRIVE_SIM_BAN_AFTER;
    out->ban_ms = a->ban_ms;
    out->on_event = on_event;
    out->on_format = on_format;
    out->ctx = a;
}
