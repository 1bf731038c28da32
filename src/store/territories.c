/* Territories, postcode centroids and the placement of deals: what the
 * territory service reads and writes. A territory's postcode rules are
 * kept as one text of lines, its geometry as GeoJSON text. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

void territory_clear(struct territory *t)
{
    free(t->name);
    for (size_t i = 0; i < t->n_postcodes; i++)
        free(t->postcodes[i]);
    free(t->postcodes);
    free(t->geometry);
    memset(t, 0, sizeof(*t));
}

void territory_copy(struct territory *dst, const struct territory *src)
{
    *dst = *src;
    dst->name = src->name ? xstrdup(src->name) : NULL;
    dst->geometry = src->geometry ? xstrdup(src->geometry) : NULL;
    dst->postcodes = src->n_postcodes
                         ? xcalloc(src->n_postcodes, sizeof(*dst->postcodes))
                         : NULL;
    for (size_t i = 0; i < src->n_postcodes; i++)
        dst->postcodes[i] = xstrdup(src->postcodes[i]);
}

void store_territories_free(struct territory *list, size_t n)
{
    for (size_t i = 0; i < n && list; i++)
        territory_clear(&list[i]);
    free(list);
}

/* Postcode rules as one text, one rule a line (a canonical postcode has
 * no line break); NULL when none. */
static char *join_postcodes(const struct territory *t)
{
    struct buf b = {0};

    if (t->n_postcodes == 0)
        return NULL;
    for (size_t i = 0; i < t->n_postcodes; i++) {
        if (i > 0)
            buf_append(&b, "\n", 1);
        buf_append(&b, t->postcodes[i], strlen(t->postcodes[i]));
    }
    return buf_steal(&b);
}

static void split_postcodes(const char *text, struct territory *t)
{
    if (!text || !*text)
        return;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    t->postcodes = xcalloc(n, sizeof(*t->postcodes));
    const char *start = text;
    for (;;) {
        const char *end = strchr(start, '\n');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        t->postcodes[t->n_postcodes++] = xstrndup(start, len);
        if (!end)
            break;
        start = end + 1;
    }
}

fs_result store_territories_list(struct store *s, int64_t org_id,
                                 struct territory **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT id, org_id, name, owner_user_id, priority, postcodes, "
        "geometry, created_at, updated_at FROM territories WHERE org_id = ?1 "
        "ORDER BY id";
    sqlite3_stmt *st = NULL;
    struct territory *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        struct territory *t = &list[n++];
        memset(t, 0, sizeof(*t));
        t->id = sqlite3_column_int64(st, 0);
        t->org_id = sqlite3_column_int64(st, 1);
        t->name = store_column_text(st, 2);
        t->owner_user_id = sqlite3_column_int64(st, 3);
        t->priority = sqlite3_column_int(st, 4);
        split_postcodes((const char *)sqlite3_column_text(st, 5), t);
        t->geometry = store_column_text(st, 6);
        t->created_at = sqlite3_column_int64(st, 7);
        t->updated_at = sqlite3_column_int64(st, 8);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_territories_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

static fs_result territory_write(struct store *s, struct territory *t,
                                 bool insert)
{
    static const char insert_sql[] =
        "INSERT INTO territories (id, org_id, name, owner_user_id, priority, "
        "postcodes, geometry, created_at, updated_at) "
        "VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";
    static const char update_sql[] =
        "UPDATE territories SET name = ?2, owner_user_id = ?3, priority = ?4, "
        "postcodes = ?5, geometry = ?6, updated_at = ?7 "
        "WHERE org_id = ?1 AND id = ?8";
    sqlite3_stmt *st = NULL;
    int64_t now = clock_now_ms();

    fs_result r = store_prepare(s, insert ? insert_sql : update_sql, &st);
    if (r != FS_OK)
        return r;
    char *postcodes = join_postcodes(t);
    sqlite3_bind_int64(st, 1, t->org_id);
    store_bind_text(st, 2, t->name);
    sqlite3_bind_int64(st, 3, t->owner_user_id);
    sqlite3_bind_int(st, 4, t->priority);
    store_bind_text(st, 5, postcodes);
    store_bind_text(st, 6, t->geometry);
    sqlite3_bind_int64(st, 7, now);
    if (t->id)
        sqlite3_bind_int64(st, 8, t->id);
    else
        sqlite3_bind_null(st, 8);
    r = store_step_done(st);
    free(postcodes);
    if (r != FS_OK)
        return r;
    if (insert) {
        t->id = sqlite3_last_insert_rowid(s->db);
        t->created_at = now;
    } else if (sqlite3_changes(s->db) == 0) {
        return FS_ERR_NOT_FOUND;
    }
    t->updated_at = now;
    return FS_OK;
}

fs_result store_territory_insert(struct store *s, struct territory *t)
{
    return territory_write(s, t, true);
}

fs_result store_territory_update(struct store *s, struct territory *t)
{
    return territory_write(s, t, false);
}

fs_result store_territory_next_id(struct store *s, int64_t *id_out)
{
    static const char sql[] =
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
        "WHERE name = 'territories'), 0), "
        "coalesce((SELECT max(id) FROM territories), 0)) + 1";
    sqlite3_stmt *st = NULL;

    *id_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id_out = sqlite3_column_int64(st, 0);
    else
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_territory_delete(struct store *s, int64_t org_id, int64_t id)
{
    static const char sql[] =
        "DELETE FROM territories WHERE org_id = ?1 AND id = ?2";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    sqlite3_bind_int64(st, 2, id);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_territory_revision(struct store *s, int64_t org_id,
                                   int64_t *revision_out)
{
    static const char sql[] =
        "SELECT revision FROM territory_revisions WHERE org_id = ?1";
    sqlite3_stmt *st = NULL;

    *revision_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *revision_out = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_territory_bump(struct store *s, int64_t org_id)
{
    static const char sql[] =
        "INSERT INTO territory_revisions (org_id, revision) VALUES (?1, 1) "
        "ON CONFLICT (org_id) DO UPDATE SET revision = revision + 1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    return store_step_done(st);
}

fs_result store_territory_deal_counts(struct store *s, int64_t org_id,
                                      int64_t **ids_out, int64_t **counts_out,
                                      size_t *n_out)
{
    static const char sql[] =
        "SELECT territory_id, count(*) FROM records WHERE org_id = ?1 AND "
        "deleted_at = 0 GROUP BY territory_id ORDER BY territory_id";
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL, *counts = NULL;
    size_t n = 0;
    int rc;

    *ids_out = NULL;
    *counts_out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = xrealloc(ids, (n + 1) * sizeof(*ids));
        counts = xrealloc(counts, (n + 1) * sizeof(*counts));
        ids[n] = sqlite3_column_int64(st, 0);
        counts[n++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(ids);
        free(counts);
        return store_map_rc(rc);
    }
    *ids_out = ids;
    *counts_out = counts;
    *n_out = n;
    return FS_OK;
}

/* ---- centroids ---- */

fs_result store_centroids_put(struct store *s, int64_t org_id,
                              const struct store_centroid *list, size_t n)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO postcode_centroids (org_id, postcode, lat, "
        "lng) VALUES (?1, ?2, ?3, ?4)";
    sqlite3_stmt *st = NULL;
    bool own = false;

    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        r = store_prepare(s, sql, &st);
        if (r != FS_OK)
            break;
        sqlite3_bind_int64(st, 1, org_id);
        store_bind_text(st, 2, list[i].postcode);
        sqlite3_bind_double(st, 3, list[i].lat);
        sqlite3_bind_double(st, 4, list[i].lng);
        r = store_step_done(st);
    }
    return store_txn_leave(s, own, r);
}

fs_result store_centroids_clear(struct store *s, int64_t org_id)
{
    static const char sql[] =
        "DELETE FROM postcode_centroids WHERE org_id = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    return store_step_done(st);
}

fs_result store_centroids_each(struct store *s, int64_t org_id,
                               store_on_centroid on_centroid, void *ctx)
{
    static const char sql[] =
        "SELECT postcode, lat, lng FROM postcode_centroids WHERE org_id = ?1";
    sqlite3_stmt *st = NULL;
    int rc;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *pc = (const char *)sqlite3_column_text(st, 0);
        on_centroid(ctx, pc ? pc : "", sqlite3_column_double(st, 1),
                    sqlite3_column_double(st, 2));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

fs_result store_centroid_get(struct store *s, int64_t org_id,
                             const char *postcode, double *lat, double *lng)
{
    static const char sql[] = "SELECT lat, lng FROM postcode_centroids "
                              "WHERE org_id = ?1 AND postcode = ?2";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    store_bind_text(st, 2, postcode);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *lat = sqlite3_column_double(st, 0);
        *lng = sqlite3_column_double(st, 1);
    } else {
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    }
    sqlite3_reset(st);
    return r;
}

fs_result store_centroids_count(struct store *s, int64_t org_id, int64_t *n_out)
{
    static const char sql[] =
        "SELECT count(*) FROM postcode_centroids WHERE org_id = ?1";
    sqlite3_stmt *st = NULL;

    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n_out = sqlite3_column_int64(st, 0);
    else
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

/* ---- placements ---- */

void deal_placement_clear(struct deal_placement *p)
{
    free(p->id);
    field_state_clear(&p->owner);
    free(p->postcode);
    free(p->location);
    memset(p, 0, sizeof(*p));
}

static void read_placement(sqlite3_stmt *st, struct deal_placement *p)
{
    memset(p, 0, sizeof(*p));
    p->rowid = sqlite3_column_int64(st, 0);
    p->id = store_column_text(st, 1);
    p->has_crm_id = sqlite3_column_int(st, 2) != 0;
    p->pending = sqlite3_column_int(st, 3) != 0;
    p->updated_at = sqlite3_column_int64(st, 4);
    p->territory_id = sqlite3_column_int64(st, 5);
    p->located = sqlite3_column_type(st, 6) != SQLITE_NULL &&
                 sqlite3_column_type(st, 7) != SQLITE_NULL;
    p->lat = p->located ? sqlite3_column_double(st, 6) : 0;
    p->lng = p->located ? sqlite3_column_double(st, 7) : 0;
    p->owner.value = store_column_text(st, 8);
    p->owner.time = sqlite3_column_int64(st, 9);
    int origin = sqlite3_column_int(st, 10);
    p->owner.origin = origin == ORIGIN_CRM     ? ORIGIN_CRM
                      : origin == ORIGIN_LOCAL ? ORIGIN_LOCAL
                                               : ORIGIN_NONE;
    p->owner.crm_value = store_column_text(st, 11);
    p->owner.crm_time = sqlite3_column_int64(st, 12);
    p->owner.pushed_value = store_column_text(st, 13);
    p->owner.has_pushed = sqlite3_column_int(st, 14) != 0;
    p->postcode = store_column_text(st, 15);
    p->location = store_column_text(st, 16);
}

fs_result store_placements_scan(struct store *s, int64_t org_id,
                                store_on_placement on_deal, void *ctx)
{
    static const char sql[] =
        "SELECT r.rowid, r.id, r.crm_id IS NOT NULL, r.pending, r.updated_at, "
        "r.territory_id, r.geo_lat, r.geo_lng, o.value, o.time, o.origin, "
        "o.crm_value, o.crm_time, o.pushed_value, o.has_pushed, p.value, "
        "l.value FROM records r "
        "LEFT JOIN record_fields o ON o.record = r.rowid AND o.field = ?2 "
        "LEFT JOIN record_fields p ON p.record = r.rowid AND p.field = ?3 "
        "LEFT JOIN record_fields l ON l.record = r.rowid AND l.field = ?4 "
        "WHERE r.org_id = ?1 AND r.deleted_at = 0 ORDER BY r.rowid";
    sqlite3_stmt *st = NULL;
    struct deal_placement p;
    int rc;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    sqlite3_bind_int(st, 2, DEAL_OWNER);
    sqlite3_bind_int(st, 3, DEAL_POSTCODE);
    sqlite3_bind_int(st, 4, DEAL_LOCATION);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_placement(st, &p);
        r = on_deal(ctx, &p);
        deal_placement_clear(&p);
        if (r != FS_OK)
            break;
    }
    sqlite3_reset(st);
    if (r != FS_OK)
        return r;
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

/* The owner row rewritten in place (cheaper than the insert-or-replace
 * of a whole save), or inserted when the deal had none. */
static fs_result save_owner(struct store *s, int64_t rowid,
                            const struct field_state *f)
{
    static const char sql[] =
        "UPDATE record_fields SET value = ?3, time = ?4, origin = ?5, "
        "crm_value = ?6, crm_time = ?7, pushed_value = ?8, has_pushed = ?9 "
        "WHERE record = ?1 AND field = ?2";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, DEAL_OWNER);
    store_bind_text(st, 3, f->value);
    sqlite3_bind_int64(st, 4, f->time);
    sqlite3_bind_int(st, 5, (int)f->origin);
    store_bind_text(st, 6, f->crm_value);
    sqlite3_bind_int64(st, 7, f->crm_time);
    store_bind_text(st, 8, f->pushed_value);
    sqlite3_bind_int(st, 9, f->has_pushed ? 1 : 0);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = store_field_save(s, rowid, DEAL_OWNER, f);
    return r;
}

fs_result store_placement_save(struct store *s, const struct deal_placement *p,
                               bool pending, int64_t updated_at,
                               bool owner_changed)
{
    /* An UPDATE that names a column rewrites the entries of every index
     * on it even when the value stays (updated_at: records_org_updated
     * and records_pending; pending: both partial indexes), so each is
     * named only when it changes. */
    static const char *const sql[4] = {
        "UPDATE records SET territory_id = ?2, geo_lat = ?3, geo_lng = ?4 "
        "WHERE rowid = ?1",
        "UPDATE records SET territory_id = ?2, geo_lat = ?3, geo_lng = ?4, "
        "updated_at = ?5 WHERE rowid = ?1",
        "UPDATE records SET territory_id = ?2, geo_lat = ?3, geo_lng = ?4, "
        "pending = ?6 WHERE rowid = ?1",
        "UPDATE records SET territory_id = ?2, geo_lat = ?3, geo_lng = ?4, "
        "updated_at = ?5, pending = ?6 WHERE rowid = ?1",
    };
    sqlite3_stmt *st = NULL;
    bool new_time = updated_at != p->updated_at;
    bool new_flag = pending != p->pending;

    fs_result r =
        store_prepare(s, sql[(new_flag ? 2 : 0) | (new_time ? 1 : 0)], &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, p->rowid);
    sqlite3_bind_int64(st, 2, p->territory_id);
    if (p->located) {
        sqlite3_bind_double(st, 3, p->lat);
        sqlite3_bind_double(st, 4, p->lng);
    } else {
        sqlite3_bind_null(st, 3);
        sqlite3_bind_null(st, 4);
    }
    if (new_time)
        sqlite3_bind_int64(st, 5, updated_at);
    if (new_flag)
        sqlite3_bind_int(st, 6, pending ? 1 : 0);
    r = store_step_done(st);
    if (r == FS_OK && owner_changed)
        r = save_owner(s, p->rowid, &p->owner);
    return r;
}

fs_result store_record_place_values(struct store *s, int64_t rowid,
                                    char **postcode_out, char **location_out)
{
    static const char sql[] = "SELECT field, value FROM record_fields "
                              "WHERE record = ?1 AND field IN (?2, ?3)";
    sqlite3_stmt *st = NULL;
    int rc;

    *postcode_out = NULL;
    *location_out = NULL;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, DEAL_POSTCODE);
    sqlite3_bind_int(st, 3, DEAL_LOCATION);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **dst = sqlite3_column_int(st, 0) == DEAL_POSTCODE ? postcode_out
                                                                : location_out;
        free(*dst);
        *dst = store_column_text(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return FS_OK;
    free(*postcode_out);
    free(*location_out);
    *postcode_out = NULL;
    *location_out = NULL;
    return store_map_rc(rc);
}
