/* Stage management: the JSON views and changes behind the admin API and
 * the command line. */
#include "services/stages.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* The org's connection by id (0: its active one, or id 0 when it has
 * none). FS_ERR_NOT_FOUND for another org's. */
static fs_result org_connection(struct store *store, int64_t org_id, int64_t id,
                                struct connection *conn)
{
    if (id == 0) {
        fs_result r = store_connection_for_org(store, org_id, conn);
        return r == FS_ERR_NOT_FOUND ? FS_OK : r;
    }
    fs_result r = store_connection_get(store, id, conn);
    if (r == FS_OK && conn->org_id != org_id) {
        connection_clear(conn);
        r = FS_ERR_NOT_FOUND;
    }
    return r;
}

static json_t *stage_defs_json(const struct stage_map *m)
{
    json_t *list = json_array();

    for (size_t i = 0; i < m->n_stages; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s}", "key", m->stages[i].key, "label",
                            m->stages[i].label, "kind",
                            stage_kind_name(m->stages[i].kind)));
    return list;
}

static json_t *crm_stage_json(const struct stage_map *m,
                              const struct crm_stage_ref *s)
{
    const char *key = stage_map_key_of(m, s->id);
    json_t *defaults = json_array();

    for (size_t i = 0; i < m->n_defaults; i++) {
        if (strcmp(m->defaults[i].crm_stage, s->id) == 0 &&
            strcmp(m->defaults[i].pipeline_id, s->pipeline_id) == 0)
            json_array_append_new(defaults, json_string(m->defaults[i].key));
    }
    return json_pack("{s:s, s:o, s:o, s:o}", "id", s->id, "label",
                     s->label ? json_string(s->label) : json_null(), "maps_to",
                     key ? json_string(key) : json_null(), "default_for",
                     defaults);
}

static json_t *crm_json(const struct stage_map *m,
                        const struct connection *conn)
{
    json_t *pipelines = json_array();
    json_t *current = NULL;
    const char *current_id = NULL;

    for (size_t i = 0; i < m->n_crm; i++) {
        const struct crm_stage_ref *s = &m->crm[i];
        if (!current_id || strcmp(current_id, s->pipeline_id) != 0) {
            current = json_pack("{s:s, s:[]}", "id", s->pipeline_id, "stages");
            json_array_append_new(pipelines, current);
            current_id = s->pipeline_id;
        }
        json_array_append_new(json_object_get(current, "stages"),
                              crm_stage_json(m, s));
    }
    return json_pack("{s:I, s:s, s:o}", "connection", (json_int_t)conn->id,
                     "provider", conn->provider, "pipelines", pipelines);
}

/* The filter for the org's live deals in a CRM stage mapped to none of
 * its stages; stages is freed by the caller. */
static void unmapped_filter(const struct stage_map *m, int64_t org_id,
                            const char **stages, struct record_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->org_id = org_id;
    f->by_stage = true;
    f->stage_not_in = true;
    for (size_t i = 0; i < m->n_links; i++)
        stages[i] = m->links[i].crm_stage;
    f->stages = stages;
    f->n_stages = m->n_links;
}

fs_result stages_view(struct store *store, int64_t org_id,
                      int64_t connection_id, json_t **out)
{
    struct connection conn = {0};
    struct stage_map m = {0};
    int64_t unmapped = 0;

    *out = NULL;
    fs_result r = org_connection(store, org_id, connection_id, &conn);
    if (r == FS_OK)
        r = store_stage_map_load(store, org_id, conn.id, &m);
    if (r != FS_OK)
        goto out;

    const char **stages = xcalloc(m.n_links + 1, sizeof(*stages));
    struct record_filter f;
    unmapped_filter(&m, org_id, stages, &f);
    r = conn.active ? store_records_count(store, &f, &unmapped) : FS_OK;
    free(stages);
    if (r != FS_OK)
        goto out;

    json_t *problems = json_array();
    size_t n_problems = 0;
    char **found = conn.id ? stage_map_problems(&m, &n_problems) : NULL;
    for (size_t i = 0; i < n_problems; i++) {
        json_array_append_new(problems, json_string(found[i]));
        free(found[i]);
    }
    free(found);
    *out =
        json_pack("{s:o, s:o, s:o, s:I}", "stages", stage_defs_json(&m), "crm",
                  conn.id ? crm_json(&m, &conn) : json_null(), "problems",
                  problems, "unmapped_deals", (json_int_t)unmapped);
out:
    stage_map_clear(&m);
    connection_clear(&conn);
    return r;
}

/* Reads body's "stages" into m's org stages. */
static fs_result parse_stage_defs(json_t *body, struct stage_map *m,
                                  char **error)
{
    const json_t *list = json_object_get(body, "stages");
    size_t i;
    const json_t *item;

    if (!json_is_array(list)) {
        *error = xstrdup("\"stages\" must be an array of {key, label, kind}");
        return FS_ERR_INVALID;
    }
    if (json_array_size(list) > STAGE_MAX_COUNT) {
        *error = xasprintf("an org has at most %d stages", STAGE_MAX_COUNT);
        return FS_ERR_INVALID;
    }
    m->stages = xcalloc(json_array_size(list) + 1, sizeof(*m->stages));
    json_array_foreach(list, i, item)
    {
        const char *key = json_string_value(json_object_get(item, "key"));
        const char *label = json_string_value(json_object_get(item, "label"));
        const json_t *kind = json_object_get(item, "kind");
        struct stage_def *d = &m->stages[m->n_stages++];
        d->key = xstrdup(key ? key : "");
        d->label = xstrdup(label ? label : "");
        d->kind = STAGE_OPEN;
        if (!json_is_object(item) ||
            (kind &&
             stage_kind_parse(json_string_value(kind), &d->kind) != FS_OK)) {
            *error = xasprintf("stage %zu: kind must be open, won or lost", i);
            return FS_ERR_INVALID;
        }
    }
    return stage_map_validate_stages(m->stages, m->n_stages, error);
}

fs_result stages_define(struct store *store, int64_t org_id, json_t *body,
                        char **error)
{
    struct stage_map m = {0};
    char *in_use = NULL;

    *error = NULL;
    fs_result r = parse_stage_defs(body, &m, error);
    if (r == FS_OK)
        r = store_org_stages_replace(store, org_id, m.stages, m.n_stages,
                                     &in_use);
    if (r == FS_ERR_CONFLICT)
        *error = xasprintf("stage %s is still mapped from the CRM; map its "
                           "CRM stages elsewhere first",
                           in_use ? in_use : "");
    free(in_use);
    stage_map_clear(&m);
    return r;
}

/* Replaces m's links and defaults with body's. */
static fs_result parse_links(json_t *body, struct stage_map *m, char **error)
{
    json_t *map = json_object_get(body, "map");
    json_t *defaults = json_object_get(body, "defaults");
    const char *name;
    json_t *v;

    const char *name_seen;
    json_t *ignored;
    json_object_foreach(body, name_seen, ignored)
    {
        if (strcmp(name_seen, "map") != 0 &&
            strcmp(name_seen, "defaults") != 0) {
            *error = xasprintf("unknown key \"%s\"", name_seen);
            return FS_ERR_INVALID;
        }
    }
    if (!json_is_object(map) || (defaults && !json_is_object(defaults))) {
        *error = xstrdup("\"map\" must be an object of CRM stage: org stage, "
                         "\"defaults\" one of pipeline: {org stage: CRM "
                         "stage}");
        return FS_ERR_INVALID;
    }
    for (size_t i = 0; i < m->n_links; i++) {
        free(m->links[i].crm_stage);
        free(m->links[i].key);
    }
    m->n_links = 0;
    m->links =
        xrealloc(m->links, (json_object_size(map) + 1) * sizeof(*m->links));
    json_object_foreach(map, name, v)
    {
        if (!json_is_string(v)) {
            *error =
                xasprintf("CRM stage %s must map to an org stage's key", name);
            return FS_ERR_INVALID;
        }
        m->links[m->n_links++] =
            (struct stage_link){xstrdup(name), xstrdup(json_string_value(v))};
    }

    for (size_t i = 0; i < m->n_defaults; i++) {
        free(m->defaults[i].pipeline_id);
        free(m->defaults[i].key);
        free(m->defaults[i].crm_stage);
    }
    m->n_defaults = 0;
    json_object_foreach(defaults, name, v)
    {
        const char *key;
        json_t *crm;
        if (!json_is_object(v)) {
            *error =
                xasprintf("defaults of pipeline %s must be an object", name);
            return FS_ERR_INVALID;
        }
        json_object_foreach(v, key, crm)
        {
            if (!json_is_string(crm)) {
                *error = xasprintf("default of %s in pipeline %s must be a "
                                   "CRM stage id",
                                   key, name);
                return FS_ERR_INVALID;
            }
            m->defaults = xrealloc(m->defaults,
                                   (m->n_defaults + 1) * sizeof(*m->defaults));
            m->defaults[m->n_defaults++] = (struct stage_default){
                xstrdup(name), xstrdup(key), xstrdup(json_string_value(crm))};
        }
    }
    return FS_OK;
}

fs_result stages_map(struct store *store, int64_t org_id, int64_t connection_id,
                     json_t *body, char **error)
{
    struct connection conn = {0};
    struct stage_map m = {0};

    *error = NULL;
    fs_result r = org_connection(store, org_id, connection_id, &conn);
    if (r == FS_ERR_NOT_FOUND)
        *error = xstrdup("no such connection in the org");
    if (r == FS_OK && conn.id == 0) {
        *error = xstrdup("the org has no CRM connection");
        r = FS_ERR_NOT_FOUND;
    }
    if (r == FS_OK)
        r = store_stage_map_load(store, org_id, conn.id, &m);
    if (r == FS_OK && m.n_crm == 0) {
        *error = xstrdup("no stages have been read from the CRM yet; import "
                         "first");
        r = FS_ERR_INVALID;
    }
    if (r == FS_OK)
        r = parse_links(body, &m, error);
    if (r == FS_OK) {
        stage_map_derive_defaults(&m);
        r = stage_map_validate(&m, error);
    }
    if (r == FS_OK)
        r = store_stage_links_replace(store, conn.id, &m);
    stage_map_clear(&m);
    connection_clear(&conn);
    return r;
}

fs_result stages_unmapped_deals(struct store *store, int64_t org_id,
                                const char *after, int limit,
                                struct record **out, size_t *n)
{
    struct connection conn = {0};
    struct stage_map m = {0};

    *out = NULL;
    *n = 0;
    fs_result r = org_connection(store, org_id, 0, &conn);
    if (r == FS_OK && conn.id)
        r = store_stage_map_load(store, org_id, conn.id, &m);
    if (r == FS_OK && conn.id) {
        const char **stages = xcalloc(m.n_links + 1, sizeof(*stages));
        struct record_filter f;
        unmapped_filter(&m, org_id, stages, &f);
        f.after_id = after;
        f.limit = limit;
        r = store_records_list(store, &f, out, n);
        free(stages);
    }
    stage_map_clear(&m);
    connection_clear(&conn);
    return r;
}
