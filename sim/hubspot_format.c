/* HubSpot's side of the simulated deal: property names, value formats
 * (closedate as epoch ms in webhooks and ISO in REST), change sources, and
 * the legacy webhook events and their v1 and v3 signatures. */
#include "hubspot_sim.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text value a property takes. */
#define MAX_VALUE_LEN 4096
#define DAY_MS 86400000LL

/* Fixed subscription ids, one per event type. */
enum {
    SUB_CREATION = 3001,
    SUB_PROPERTY_CHANGE = 3002,
    SUB_DELETION = 3003,
    SUB_RESTORE = 3004,
    SUB_MERGE = 3005,
};

const struct hubspot_prop hubspot_props[] = {
    {"dealname", DEAL_NAME, HUBSPOT_TEXT},
    {"dealstage", DEAL_STAGE, HUBSPOT_TEXT},
    {"pipeline", SIM_F_PIPELINE, HUBSPOT_TEXT},
    {"amount", DEAL_AMOUNT, HUBSPOT_TEXT},
    {"closedate", DEAL_CLOSE_DATE, HUBSPOT_DATETIME},
    {"hubspot_owner_id", DEAL_OWNER, HUBSPOT_TEXT},
    {"account_name", DEAL_ACCOUNT, HUBSPOT_TEXT},
    {"product_name", DEAL_PRODUCT, HUBSPOT_TEXT},
    {"engage_date", DEAL_ENGAGE_DATE, HUBSPOT_DATE},
    {"postcode", DEAL_POSTCODE, HUBSPOT_TEXT},
    {"location", DEAL_LOCATION, HUBSPOT_TEXT},
    {"fieldsync_id", SIM_F_OUR_ID, HUBSPOT_TEXT},
    {"createdate", -1, HUBSPOT_DERIVED},
    {"hs_lastmodifieddate", -1, HUBSPOT_DERIVED},
    {"hs_object_id", -1, HUBSPOT_DERIVED},
};

const size_t hubspot_prop_count =
    sizeof(hubspot_props) / sizeof(hubspot_props[0]);

const struct hubspot_prop *hubspot_prop_named(const char *name)
{
    for (size_t i = 0; name && i < hubspot_prop_count; i++)
        if (strcmp(hubspot_props[i].name, name) == 0)
            return &hubspot_props[i];
    return NULL;
}

const struct hubspot_prop *hubspot_prop_of_field(int field)
{
    for (size_t i = 0; i < hubspot_prop_count; i++)
        if (hubspot_props[i].field == field)
            return &hubspot_props[i];
    return NULL;
}

const char *hubspot_shown(const struct hubspot_prop *p, const char *value,
                          bool webhook, char buf[32])
{
    int64_t ms;

    if (!value || p->kind != HUBSPOT_DATETIME ||
        clock_parse_iso(value, &ms) != 0)
        return value;
    if (webhook)
        snprintf(buf, 32, "%" PRId64, ms);
    else
        clock_format_iso(ms, buf);
    return buf;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Epoch ms from epoch-ms digits or ISO date or datetime text. */
static bool parse_time(const char *text, int64_t *out)
{
    if (all_digits(text) && strlen(text) <= 15) {
        *out = strtoll(text, NULL, 10);
        return true;
    }
    return clock_parse_iso(text, out) == 0;
}

/* A date or datetime as its UTC day, "YYYY-MM-DD"; NULL when it is not
 * one, or (midnight_only) not at midnight UTC. */
static char *day_of(const char *text, bool midnight_only)
{
    int64_t ms;
    char iso[32];

    if (!parse_time(text, &ms) || (midnight_only && ms % DAY_MS != 0))
        return NULL;
    ms -= ((ms % DAY_MS) + DAY_MS) % DAY_MS;
    clock_format_iso(ms, iso);
    return xstrndup(iso, 10);
}

static const char *refusal_code(const struct hubspot_prop *p, enum sim_bad why)
{
    switch (why) {
    case SIM_BAD_STAGE:
    case SIM_BAD_PIPELINE:
        return "INVALID_OPTION";
    case SIM_BAD_OWNER:
        return "INVALID_OWNER_ID";
    case SIM_BAD_TOO_LONG:
        return "INVALID_LENGTH";
    case SIM_BAD_VALUE:
        break;
    }
    if (p->field == DEAL_AMOUNT)
        return "INVALID_INTEGER";
    if (p->kind == HUBSPOT_DATE || p->kind == HUBSPOT_DATETIME)
        return "INVALID_DATE";
    return "INVALID_VALUE";
}

const char *hubspot_take(const struct sim_store *store,
                         const struct hubspot_prop *p, const char *text,
                         struct sim_write *w)
{
    enum sim_bad why = SIM_BAD_VALUE;
    char *day = NULL;

    if (strlen(text) > MAX_VALUE_LEN)
        return "INVALID_LENGTH";
    if (*text && (p->kind == HUBSPOT_DATE || p->kind == HUBSPOT_DATETIME)) {
        day = day_of(text, p->kind == HUBSPOT_DATE);
        if (!day)
            return "INVALID_DATE";
    }
    fs_result r = sim_write_set(store, w, p->field, day ? day : text, &why);
    free(day);
    return r == FS_OK ? NULL : refusal_code(p, why);
}

const char *hubspot_source_type(enum sim_actor_kind kind)
{
    switch (kind) {
    case SIM_ACTOR_IMPORT:
        return "IMPORT";
    case SIM_ACTOR_USER:
        return "CRM_UI";
    case SIM_ACTOR_TOKEN:
        return "INTEGRATION";
    }
    return "UNKNOWN";
}

const char *hubspot_source_id(enum sim_actor_kind kind, const char *id,
                              char buf[80])
{
    if (kind == SIM_ACTOR_IMPORT || !id)
        return "import";
    if (kind == SIM_ACTOR_TOKEN)
        return id;
    snprintf(buf, 80, "userId:%s", id);
    return buf;
}

/* ---- webhooks ---- */

static json_t *deal_id_json(const struct sim_deal *deal)
{
    return json_integer((json_int_t)strtoll(deal->id, NULL, 10));
}

static json_t *event_json(struct hubspot_webhooks *h, const char *type,
                          int sub_id, const struct sim_deal *deal,
                          const struct sim_event *ev)
{
    char buf[80];
    json_t *obj = json_object();

    json_object_set_new(obj, "eventId", json_integer(h->next_event_id++));
    json_object_set_new(obj, "subscriptionId", json_integer(sub_id));
    json_object_set_new(obj, "portalId", json_integer(h->portal_id));
    json_object_set_new(obj, "appId", json_integer(h->app_id));
    json_object_set_new(obj, "occurredAt", json_integer(ev->time_ms));
    json_object_set_new(obj, "subscriptionType", json_string(type));
    json_object_set_new(obj, "attemptNumber", json_integer(0));
    json_object_set_new(obj, "objectId", deal_id_json(deal));
    json_object_set_new(obj, "changeSource",
                        json_string(hubspot_source_type(ev->actor.kind)));
    json_object_set_new(
        obj, "sourceId",
        json_string(hubspot_source_id(ev->actor.kind, ev->actor.id, buf)));
    return obj;
}

/* One deal.propertyChange for each changed field HubSpot has a property
 * for. */
static void property_changes(struct hubspot_webhooks *h,
                             const struct sim_event *ev, json_t *events)
{
    char buf[32];

    for (size_t i = 0; i < ev->change_count; i++) {
        const struct sim_change *ch = &ev->changes[i];
        const struct hubspot_prop *p = hubspot_prop_of_field(ch->field);
        if (!p)
            continue;
        const char *v = hubspot_shown(p, ch->new_value, true, buf);
        json_t *obj = event_json(h, "deal.propertyChange", SUB_PROPERTY_CHANGE,
                                 ev->deal, ev);
        json_object_set_new(obj, "propertyName", json_string(p->name));
        json_object_set_new(obj, "propertyValue", json_string(v ? v : ""));
        json_array_append_new(events, obj);
    }
}

static json_t *merge_json(struct hubspot_webhooks *h,
                          const struct sim_event *ev)
{
    json_t *obj = event_json(h, "deal.merge", SUB_MERGE, ev->deal, ev);
    json_t *merged = json_array();

    for (size_t i = 0; i < ev->merged_count; i++)
        json_array_append_new(merged, deal_id_json(ev->merged[i]));
    json_object_set_new(obj, "primaryObjectId", deal_id_json(ev->primary));
    json_object_set_new(obj, "mergedObjectIds", merged);
    json_object_set_new(obj, "newObjectId", deal_id_json(ev->deal));
    json_object_set_new(obj, "numberOfPropertiesMoved",
                        json_integer((json_int_t)ev->change_count));
    return obj;
}

static void on_event(void *ctx, const struct sim_event *ev, json_t *events)
{
    struct hubspot_webhooks *h = ctx;
    json_t *obj = NULL;

    switch (ev->kind) {
    case SIM_EV_CREATED:
        obj = event_json(h, "deal.creation", SUB_CREATION, ev->deal, ev);
        json_object_set_new(obj, "changeFlag", json_string("CREATED"));
        break;
    case SIM_EV_CHANGED:
        break;
    case SIM_EV_DELETED:
        obj = event_json(h, "deal.deletion", SUB_DELETION, ev->deal, ev);
        break;
    case SIM_EV_RESTORED:
        obj = event_json(h, "deal.restore", SUB_RESTORE, ev->deal, ev);
        break;
    case SIM_EV_MERGED:
        obj = merge_json(h, ev);
        break;
    }
    if (obj)
        json_array_append_new(events, obj);
    property_changes(h, ev, events);
}

/* base64 HMAC-SHA256(secret, method + url + body + timestamp). */
static char *sign_v3(const char *secret, const char *url, const char *body,
                     size_t body_len, const char *timestamp)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    struct buf msg = {0};

    buf_append_str(&msg, "POST");
    buf_append_str(&msg, url);
    buf_append(&msg, body, body_len);
    buf_append_str(&msg, timestamp);
    crypto_hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
    buf_free(&msg);
    return crypto_base64(mac, sizeof(mac));
}

/* hex SHA-256(secret + body). */
static char *sign_v1(const char *secret, const char *body, size_t body_len)
{
    uint8_t digest[CRYPTO_SHA256_LEN];
    struct buf msg = {0};

    buf_append_str(&msg, secret);
    buf_append(&msg, body, body_len);
    crypto_sha256(msg.data, msg.len, digest);
    buf_free(&msg);
    return crypto_hex(digest, sizeof(digest));
}

static void on_format(void *ctx, json_t *events, int attempt,
                      const char *delivery_id, const char *url,
                      struct webhook_post *out)
{
    struct hubspot_webhooks *h = ctx;
    char ts[32];
    size_t i;
    json_t *ev;

    json_array_foreach(events, i, ev)
        json_object_set_new(ev, "attemptNumber", json_integer(attempt));
    out->body = json_dumps(events, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->body_len = strlen(out->body);
    snprintf(ts, sizeof(ts), "%" PRId64, clock_now_ms());
    char *v3 = sign_v3(h->client_secret, url, out->body, out->body_len, ts);
    char *v1 = sign_v1(h->client_secret, out->body, out->body_len);
    webhook_post_add_header(out, "Content-Type: application/json");
    webhook_post_add_header(out, "X-HubSpot-Signature-v3: %s", v3);
    webhook_post_add_header(out, "X-HubSpot-Request-Timestamp: %s", ts);
    webhook_post_add_header(out, "X-HubSpot-Signature-Version: v1");
    webhook_post_add_header(out, "X-HubSpot-Signature: %s", v1);
    webhook_post_add_header(out, "User-Agent: HubSpot Connect 2.0 (crmsim)");
    free(v1);
    free(v3);
}

void hubspot_webhook_format(struct hubspot_webhooks *hooks,
                            struct webhook_format *out)
{
    memset(out, 0, sizeof(*out));
    out->batch_max = HUBSPOT_SIM_BATCH_MAX;
    out->collect_ms = HUBSPOT_SIM_COLLECT_MS;
    out->on_event = on_event;
    out->on_format = on_format;
    out->ctx = hooks;
}
