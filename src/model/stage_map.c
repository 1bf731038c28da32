/* The stage map: lookups both ways and the checks an admin's map must
 * pass before it is stored. */
#include "model/stage_map.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *key;
    const char *label;
    enum stage_kind kind;
} default_stages[] = {
    {"new", "New", STAGE_OPEN},
    {"qualified", "Qualified", STAGE_OPEN},
    {"in_quote", "In Quote", STAGE_OPEN},
    {"won", "Won", STAGE_WON},
    {"lost", "Lost", STAGE_LOST},
};

void stage_map_clear(struct stage_map *m)
{
    for (size_t i = 0; i < m->n_stages; i++) {
        free(m->stages[i].key);
        free(m->stages[i].label);
    }
    for (size_t i = 0; i < m->n_crm; i++) {
        free(m->crm[i].pipeline_id);
        free(m->crm[i].id);
        free(m->crm[i].label);
    }
    for (size_t i = 0; i < m->n_links; i++) {
        free(m->links[i].crm_stage);
        free(m->links[i].key);
    }
    for (size_t i = 0; i < m->n_defaults; i++) {
        free(m->defaults[i].pipeline_id);
        free(m->defaults[i].key);
        free(m->defaults[i].crm_stage);
    }
    free(m->stages);
    free(m->crm);
    free(m->links);
    free(m->defaults);
    memset(m, 0, sizeof(*m));
}

void stage_map_default_stages(struct stage_map *m)
{
    size_t n = sizeof(default_stages) / sizeof(default_stages[0]);

    m->stages = xcalloc(n, sizeof(*m->stages));
    for (size_t i = 0; i < n; i++) {
        m->stages[i].key = xstrdup(default_stages[i].key);
        m->stages[i].label = xstrdup(default_stages[i].label);
        m->stages[i].kind = default_stages[i].kind;
    }
    m->n_stages = n;
}

const char *stage_kind_name(enum stage_kind kind)
{
    switch (kind) {
    case STAGE_WON:
        return "won";
    case STAGE_LOST:
        return "lost";
    case STAGE_OPEN:
        break;
    }
    return "open";
}

fs_result stage_kind_parse(const char *name, enum stage_kind *out)
{
    static const enum stage_kind kinds[] = {STAGE_OPEN, STAGE_WON, STAGE_LOST};

    for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(name, stage_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return FS_OK;
        }
    }
    return FS_ERR_INVALID;
}

const struct stage_def *stage_map_find(const struct stage_map *m,
                                       const char *key)
{
    for (size_t i = 0; key && i < m->n_stages; i++) {
        if (strcmp(m->stages[i].key, key) == 0)
            return &m->stages[i];
    }
    return NULL;
}

static const struct crm_stage_ref *crm_stage(const struct stage_map *m,
                                             const char *id)
{
    for (size_t i = 0; id && i < m->n_crm; i++) {
        if (strcmp(m->crm[i].id, id) == 0)
            return &m->crm[i];
    }
    return NULL;
}

const char *stage_map_key_of(const struct stage_map *m, const char *crm_stage)
{
    for (size_t i = 0; crm_stage && i < m->n_links; i++) {
        if (strcmp(m->links[i].crm_stage, crm_stage) == 0)
            return m->links[i].key;
    }
    return NULL;
}

const char *stage_map_pipeline_of(const struct stage_map *m,
                                  const char *crm_stage_id)
{
    const struct crm_stage_ref *s = crm_stage(m, crm_stage_id);

    return s ? s->pipeline_id : NULL;
}

const char **stage_map_crm_stages_of(const struct stage_map *m, const char *key,
                                     size_t *n)
{
    const char **out = xcalloc(m->n_links + 1, sizeof(*out));

    *n = 0;
    for (size_t i = 0; key && i < m->n_links; i++) {
        if (strcmp(m->links[i].key, key) == 0)
            out[(*n)++] = m->links[i].crm_stage;
    }
    return out;
}

static const char *default_for(const struct stage_map *m, const char *pipeline,
                               const char *key)
{
    for (size_t i = 0; pipeline && i < m->n_defaults; i++) {
        if (strcmp(m->defaults[i].pipeline_id, pipeline) == 0 &&
            strcmp(m->defaults[i].key, key) == 0)
            return m->defaults[i].crm_stage;
    }
    return NULL;
}

fs_result stage_map_for_write(const struct stage_map *m, const char *key,
                              const char *current_crm_stage, const char **out)
{
    *out = NULL;
    if (!stage_map_find(m, key))
        return FS_ERR_NOT_FOUND;
    const char *current = stage_map_key_of(m, current_crm_stage);
    if (current && strcmp(current, key) == 0) {
        *out = current_crm_stage;
        return FS_OK;
    }
    const char *pipeline = stage_map_pipeline_of(m, current_crm_stage);
    if (!pipeline && m->n_crm > 0)
        pipeline = m->crm[0].pipeline_id;
    *out = default_for(m, pipeline, key);
    return *out ? FS_OK : FS_ERR_INVALID;
}

/* A key the API and the command line can carry as they are: lower-case
 * letters, digits and '_', starting with a letter. */
static bool key_ok(const char *key)
{
    size_t len = key ? strlen(key) : 0;

    if (len == 0 || len > STAGE_KEY_MAX || key[0] < 'a' || key[0] > 'z')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

fs_result stage_map_validate_stages(const struct stage_def *stages, size_t n,
                                    char **error)
{
    *error = NULL;
    if (n == 0 || n > STAGE_MAX_COUNT) {
        *error = xasprintf("an org has 1 to %d stages", STAGE_MAX_COUNT);
        return FS_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!key_ok(stages[i].key)) {
            *error =
                xasprintf("stage key \"%s\" must be 1 to %d of a-z, 0-9 "
                          "and _, starting with a letter",
                          stages[i].key ? stages[i].key : "", STAGE_KEY_MAX);
            return FS_ERR_INVALID;
        }
        if (!stages[i].label || !*stages[i].label ||
            strlen(stages[i].label) > STAGE_LABEL_MAX) {
            *error = xasprintf("stage %s needs a label of 1 to %d bytes",
                               stages[i].key, STAGE_LABEL_MAX);
            return FS_ERR_INVALID;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(stages[i].key, stages[j].key) == 0) {
                *error = xasprintf("stage %s is defined twice", stages[i].key);
                return FS_ERR_INVALID;
            }
        }
    }
    return FS_OK;
}

/* Each distinct pipeline of the CRM, in the order first seen. */
static const char **pipelines(const struct stage_map *m, size_t *n)
{
    const char **out = xcalloc(m->n_crm + 1, sizeof(*out));

    *n = 0;
    for (size_t i = 0; i < m->n_crm; i++) {
        size_t j = 0;
        while (j < *n && strcmp(out[j], m->crm[i].pipeline_id) != 0)
            j++;
        if (j == *n)
            out[(*n)++] = m->crm[i].pipeline_id;
    }
    return out;
}

/* What is wrong with a map, in the order found. */
struct problems {
    char **items;
    size_t n;
};

static void add_problem(struct problems *p, char *text)
{
    p->items = xrealloc(p->items, (p->n + 1) * sizeof(*p->items));
    p->items[p->n++] = text;
}

static void check_links(const struct stage_map *m, struct problems *p)
{
    for (size_t i = 0; i < m->n_links; i++) {
        const struct stage_link *l = &m->links[i];
        if (!crm_stage(m, l->crm_stage))
            add_problem(p,
                        xasprintf("the CRM has no stage \"%s\"", l->crm_stage));
        else if (!stage_map_find(m, l->key))
            add_problem(p, xasprintf("CRM stage %s maps to %s, which is not "
                                     "one of the org's stages",
                                     l->crm_stage, l->key));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->links[j].crm_stage, l->crm_stage) == 0) {
                add_problem(
                    p, xasprintf("CRM stage %s is mapped twice", l->crm_stage));
                break;
            }
        }
    }
}

/* A default that writes its stage as a CRM stage that reads back as a
 * stage of another kind (an open deal written as the CRM's Lost, a won
 * one as lost): a deal would change its outcome by the write. Another
 * stage of the same kind is allowed (DECISIONS.md, fewer stages). */
static void check_default_kind(const struct stage_map *m,
                               const struct stage_default *d,
                               struct problems *p)
{
    const struct stage_def *want = stage_map_find(m, d->key);
    const char *back_key = stage_map_key_of(m, d->crm_stage);
    const struct stage_def *back =
        back_key ? stage_map_find(m, back_key) : NULL;

    if (!want || !back || back->kind == want->kind)
        return;
    add_problem(p, xasprintf("stage %s (%s) cannot be written as CRM stage %s "
                             "in pipeline %s: it reads back as %s (%s); write "
                             "it as a CRM stage that reads as a stage of kind "
                             "%s",
                             want->key, stage_kind_name(want->kind),
                             d->crm_stage, d->pipeline_id, back->key,
                             stage_kind_name(back->kind),
                             stage_kind_name(want->kind)));
}

static void check_defaults(const struct stage_map *m, struct problems *p)
{
    for (size_t i = 0; i < m->n_defaults; i++) {
        const struct stage_default *d = &m->defaults[i];
        const struct crm_stage_ref *s = crm_stage(m, d->crm_stage);
        if (!stage_map_find(m, d->key))
            add_problem(p, xasprintf("a default names %s, which is not one "
                                     "of the org's stages",
                                     d->key));
        else if (!s || strcmp(s->pipeline_id, d->pipeline_id) != 0)
            add_problem(p, xasprintf("pipeline %s has no CRM stage \"%s\"",
                                     d->pipeline_id, d->crm_stage));
        else
            check_default_kind(m, d, p);
    }

    size_t n_pipes = 0;
    const char **pipes = pipelines(m, &n_pipes);
    for (size_t i = 0; i < n_pipes; i++) {
        for (size_t k = 0; k < m->n_stages; k++) {
            if (!default_for(m, pipes[i], m->stages[k].key))
                add_problem(p, xasprintf("stage %s has no CRM stage to write "
                                         "in pipeline %s",
                                         m->stages[k].key, pipes[i]));
        }
    }
    free(pipes);
}

static void check_map(const struct stage_map *m, struct problems *p)
{
    char *error = NULL;

    if (stage_map_validate_stages(m->stages, m->n_stages, &error) != FS_OK) {
        add_problem(p, error);
        return;
    }
    check_links(m, p);
    check_defaults(m, p);
}

fs_result stage_map_validate(const struct stage_map *m, char **error)
{
    struct problems p = {0};

    check_map(m, &p);
    *error = p.n ? p.items[0] : NULL;
    for (size_t i = 1; i < p.n; i++)
        free(p.items[i]);
    free(p.items);
    return p.n ? FS_ERR_INVALID : FS_OK;
}

char **stage_map_problems(const struct stage_map *m, size_t *n)
{
    struct problems p = {0};

    check_map(m, &p);
    *n = p.n;
    return p.items;
}

void stage_map_derive_defaults(struct stage_map *m)
{
    size_t n_pipes = 0;
    const char **pipes = pipelines(m, &n_pipes);

    for (size_t p = 0; p < n_pipes; p++) {
        for (size_t k = 0; k < m->n_stages; k++) {
            const char *key = m->stages[k].key;
            const char *only = NULL;
            size_t count = 0;
            if (default_for(m, pipes[p], key))
                continue;
            for (size_t i = 0; i < m->n_links; i++) {
                if (strcmp(m->links[i].key, key) == 0 &&
                    strcmp(stage_map_pipeline_of(m, m->links[i].crm_stage)
                               ? stage_map_pipeline_of(m, m->links[i].crm_stage)
                               : "",
                           pipes[p]) == 0) {
                    only = m->links[i].crm_stage;
                    count++;
                }
            }
            if (count != 1)
                continue;
            m->defaults = xrealloc(m->defaults,
                                   (m->n_defaults + 1) * sizeof(*m->defaults));
            m->defaults[m->n_defaults++] = (struct stage_default){
                xstrdup(pipes[p]), xstrdup(key), xstrdup(only)};
        }
    }
    free(pipes);
}
