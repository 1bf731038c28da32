/* Territory figures: deals located per second against the 2,736 real
 * district polygons (STRtree and prepared geometries, beside the plain
 * GEOS scan of every polygon), and the preview and apply of a
 * reassignment that touches every one of a million deals (beside the raw
 * SQLite writes of as many owner changes). */
#include "bench.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "model/postcode.h"
#include "model/territory.h"
#include "services/geo_uk.h"
#include "services/territory.h"
#include "store/store.h"

#include <sqlite3.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGENTS 35
#define LOOKUP_MIN_US 1000000 /* each rate is measured over at least 1 s */
#define LINEAR_POINTS 200

static fs_result load_units(const char *geo_dir, struct store_centroid **units,
                            size_t *n)
{
    char *path = xasprintf("%s/uk_postcode_units_area_M.csv", geo_dir);
    struct buf csv = {0};
    struct territory_error err = {0};

    fs_result r = buf_read_file(&csv, path, TERRITORY_MAX_IMPORT_BYTES);
    free(path);
    if (r == FS_OK)
        r = territory_parse_centroids(csv.data, csv.len, units, n, &err);
    territory_error_clear(&err);
    buf_free(&csv);
    return r;
}

/* Lookups per second over the points, repeated for at least min_us. */
static double rate(struct territory_index *ix, const struct store_centroid *p,
                   size_t n, bool linear, int64_t min_us, int64_t *found)
{
    int64_t start = bench_now_us(), done = 0;

    *found = 0;
    do {
        for (size_t i = 0; i < n; i++) {
            struct territory_match m =
                linear
                    ? territory_index_find_linear(ix, p[i].lat, p[i].lng)
                    : territory_index_find(ix, NULL, true, p[i].lat, p[i].lng);
            *found += m.id != 0;
        }
        done += (int64_t)n;
    } while (bench_now_us() - start < min_us);
    double s = (double)(bench_now_us() - start) / 1e6;
    return (double)done / s;
}

static fs_result bench_lookups(const char *geo_dir, struct bench_results *res)
{
    char *path = xasprintf("%s/uk_postcode_districts.geojson", geo_dir);
    json_t *fc = json_load_file(path, 0, NULL);
    struct store_centroid *units = NULL;
    size_t n_units = 0;
    struct territory_index *ix = territory_index_new();
    size_t i;
    json_t *f;
    int64_t found = 0;

    free(path);
    fs_result r = fc ? load_units(geo_dir, &units, &n_units) : FS_ERR_IO;
    if (r != FS_OK)
        goto out;
    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        struct territory_problem pb = {0};
        r = territory_index_add(ix, (int64_t)i + 1, 0, NULL, 0,
                                json_object_get(f, "geometry"), true, &pb);
        territory_problem_clear(&pb);
        if (r != FS_OK)
            goto out;
    }
    res->lookup_polygons = json_array_size(json_object_get(fc, "features"));
    int64_t t0 = bench_now_us();
    r = territory_index_build(ix);
    res->lookup_build_ms = (double)(bench_now_us() - t0) / 1000.0;
    if (r != FS_OK)
        goto out;
    res->lookup_rate = rate(ix, units, n_units, false, LOOKUP_MIN_US, &found);
    res->lookup_points = n_units;
    res->lookup_found = found;
    res->linear_rate = rate(ix, units, LINEAR_POINTS, true, 0, &found);
    res->lookups_ok = true;

out:
    territory_index_free(ix);
    territory_centroids_free(units, n_units);
    json_decref(fc);
    return r;
}

/* ---- reassignment at a million deals ---- */

/* CPU seconds the process has used so far, every thread. */
static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static fs_result exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? FS_OK
                                                                : FS_ERR_DB;
}

/* Deals straight into the tables: deal i sits on unit (i * 7919) mod n,
 * every other one with its coordinates, the rest with the postcode only
 * (placed by its unit centroid); all owned by "0" in the CRM. */
static fs_result insert_deals(const char *db_path, int64_t org, int64_t conn,
                              const struct store_centroid *units,
                              size_t n_units, int64_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *rec = NULL, *fld = NULL;
    fs_result r = FS_ERR_DB;

    if (sqlite3_open(db_path, &db) != SQLITE_OK)
        goto out;
    exec(db, "PRAGMA synchronous=OFF");
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO records (id, org_id, connection_id, "
                           "crm_id, created_at, updated_at) VALUES (?1, ?2, "
                           "?3, ?4, 1000, 1000)",
                           -1, &rec, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO record_fields (record, field, value, "
                           "time, origin, crm_value, crm_time) VALUES (?1, "
                           "?2, ?3, 1000, 1, ?3, 1000)",
                           -1, &fld, NULL) != SQLITE_OK ||
        exec(db, "BEGIN") != FS_OK)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        const struct store_centroid *u =
            &units[(size_t)((i * 7919) % (int64_t)n_units)];
        char id[40], crm[24];
        snprintf(id, sizeof(id), "%032llx", (unsigned long long)i + 1);
        snprintf(crm, sizeof(crm), "%lld", (long long)i + 1);
        sqlite3_bind_text(rec, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(rec, 2, org);
        sqlite3_bind_int64(rec, 3, conn);
        sqlite3_bind_text(rec, 4, crm, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(rec) != SQLITE_DONE)
            goto out;
        sqlite3_reset(rec);
        int64_t rowid = sqlite3_last_insert_rowid(db);
        char *loc_text = i % 2 ? NULL : location_format(u->lat, u->lng);
        const char *values[3] = {"0", u->postcode, loc_text};
        int fields[3] = {DEAL_OWNER, DEAL_POSTCODE, DEAL_LOCATION};
        for (int k = 0; k < 3; k++) {
            if (!values[k])
                continue;
            sqlite3_bind_int64(fld, 1, rowid);
            sqlite3_bind_int(fld, 2, fields[k]);
            sqlite3_bind_text(fld, 3, values[k], -1, SQLITE_TRANSIENT);
            int rc = sqlite3_step(fld);
            sqlite3_reset(fld);
            if (rc != SQLITE_DONE) {
                free(loc_text);
                goto out;
            }
        }
        free(loc_text);
    }
    r = exec(db, "COMMIT");

out:
    sqlite3_finalize(rec);
    sqlite3_finalize(fld);
    sqlite3_close(db);
    return r;
}

/* The floor: as many owner changes written with plain prepared UPDATEs
 * of the owner row and the record row, in one transaction. */
static fs_result raw_owner_writes(const char *db_path, int64_t n,
                                  double *seconds, double *cpu)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *f = NULL, *rec = NULL;
    fs_result r = FS_ERR_DB;

    if (sqlite3_open(db_path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE record_fields SET value = ?2, time = ?3, "
                           "origin = 2 WHERE record = ?1 AND field = 4",
                           -1, &f, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE records SET pending = 1, updated_at = ?2 "
                           "WHERE rowid = ?1",
                           -1, &rec, NULL) != SQLITE_OK)
        goto out;
    int64_t t0 = bench_now_us();
    double c0 = cpu_seconds();
    if (exec(db, "BEGIN IMMEDIATE") != FS_OK)
        goto out;
    for (int64_t i = 1; i <= n; i++) {
        sqlite3_bind_int64(f, 1, i);
        sqlite3_bind_text(f, 2, "raw", -1, SQLITE_STATIC);
        sqlite3_bind_int64(f, 3, 2000);
        sqlite3_bind_int64(rec, 1, i);
        sqlite3_bind_int64(rec, 2, 2000);
        bool ok =
            sqlite3_step(f) == SQLITE_DONE && sqlite3_step(rec) == SQLITE_DONE;
        sqlite3_reset(f);
        sqlite3_reset(rec);
        if (!ok)
            goto out;
    }
    r = exec(db, "ROLLBACK");
    *seconds = (double)(bench_now_us() - t0) / 1e6;
    *cpu = cpu_seconds() - c0;

out:
    sqlite3_finalize(f);
    sqlite3_finalize(rec);
    sqlite3_close(db);
    return r;
}

static fs_result timed_run(struct store *s, int64_t org,
                           const struct territory_change *ch, bool apply,
                           double *seconds, double *cpu, size_t *moves)
{
    struct territory_plan plan;
    struct territory_error err = {0};
    int64_t t0 = bench_now_us();
    double c0 = cpu_seconds();
    fs_result r = territory_change_run(s, org, ch, apply, &plan, &err);

    *seconds = (double)(bench_now_us() - t0) / 1e6;
    if (cpu)
        *cpu = cpu_seconds() - c0;
    if (r == FS_OK) {
        *moves = plan.n_moves;
        territory_plan_clear(&plan);
    } else {
        fprintf(stderr, "fsbench: territory change: %s %s\n",
                err.field ? err.field : "", err.message ? err.message : "");
    }
    territory_error_clear(&err);
    return r;
}

static fs_result bench_reassign(const char *geo_dir, const char *work_dir,
                                int64_t n_deals, struct bench_results *res)
{
    char *db_path = xasprintf("%s/territory.db", work_dir);
    char *districts = xasprintf("%s/uk_postcode_districts.geojson", geo_dir);
    char *centroids =
        xasprintf("%s/uk_postcode_district_centroids.csv", geo_dir);
    struct store *s = NULL;
    struct store_centroid *units = NULL;
    size_t n_units = 0;
    int64_t org = 0, conn_id = 0;
    char *owners[AGENTS] = {NULL};
    char *rotated[AGENTS] = {NULL};
    json_t *fc = NULL;
    struct territory_change ch = {0};
    struct territory_error err = {0};
    struct connection conn = {0};
    char *text = NULL;

    unlink(db_path);
    fs_result r = load_units(geo_dir, &units, &n_units);
    if (r == FS_OK)
        r = store_open(db_path, &s);
    if (r == FS_OK)
        r = store_org_add(s, "bench", &org);
    conn.org_id = org;
    conn.provider = "hubspot";
    conn.base_url = "http://127.0.0.1:1";
    conn.account_id = "1";
    conn.token = "t";
    conn.active = true;
    if (r == FS_OK)
        r = store_connection_add(s, &conn, &conn_id);
    for (int i = 0; r == FS_OK && i < AGENTS; i++) {
        char *token = NULL, *name = xasprintf("agent%02d", i);
        char *owner_id = xasprintf("%d", 70000 + i);
        r = store_user_add(s, org, name, NULL, USER_ROLE_REP, owner_id, NULL,
                           &token);
        owners[i] = name;
        free(owner_id);
        free(token);
    }
    if (r == FS_OK)
        r = territory_load_centroids(s, org, units, n_units, true);
    if (r != FS_OK)
        goto out;
    int64_t t0 = bench_now_us();
    r = insert_deals(db_path, org, conn_id, units, n_units, n_deals);
    res->reassign_insert_s = (double)(bench_now_us() - t0) / 1e6;
    if (r != FS_OK)
        goto out;

    /* First placement: every deal gets its territory's owner. */
    r = geo_uk_territories(districts, centroids, (const char *const *)owners,
                           AGENTS, &fc);
    if (r == FS_OK) {
        text = json_dumps(fc, JSON_COMPACT);
        r = territory_parse_import(text, strlen(text), "territory", &ch, &err);
        ch.repair = true;
    }
    if (r == FS_OK)
        r = timed_run(s, org, &ch, true, &res->reassign_first_s, NULL,
                      &res->reassign_first_moves);
    territory_change_clear(&ch);
    json_decref(fc);
    fc = NULL;
    free(text);
    text = NULL;
    if (r != FS_OK)
        goto out;

    /* The measured change: every territory goes to the next agent, so
     * every placed deal changes owner. */
    for (int i = 0; i < AGENTS; i++)
        rotated[i] = owners[(i + 1) % AGENTS];
    r = geo_uk_territories(districts, centroids, (const char *const *)rotated,
                           AGENTS, &fc);
    if (r == FS_OK) {
        text = json_dumps(fc, JSON_COMPACT);
        r = territory_parse_import(text, strlen(text), "territory", &ch, &err);
        ch.repair = true;
    }
    if (r == FS_OK)
        r = timed_run(s, org, &ch, false, &res->reassign_preview_s,
                      &res->reassign_preview_cpu_s, &res->reassign_moves);
    size_t applied = 0;
    if (r == FS_OK)
        r = timed_run(s, org, &ch, true, &res->reassign_apply_s,
                      &res->reassign_apply_cpu_s, &applied);
    if (r == FS_OK && applied != res->reassign_moves)
        r = FS_ERR_INVALID; /* preview and apply must agree */
    if (r == FS_OK)
        r = raw_owner_writes(db_path, n_deals, &res->reassign_raw_s,
                             &res->reassign_raw_cpu_s);
    res->reassign_deals = n_deals;
    res->reassign_ok = r == FS_OK;

out:
    territory_change_clear(&ch);
    territory_error_clear(&err);
    json_decref(fc);
    free(text);
    for (int i = 0; i < AGENTS; i++)
        free(owners[i]);
    territory_centroids_free(units, n_units);
    store_close(s);
    territory_cache_clear();
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char *file = xasprintf("%s%s", db_path, suffixes[i]);
        unlink(file);
        free(file);
    }
    free(db_path);
    free(districts);
    free(centroids);
    return r;
}

fs_result bench_territory(const struct bench_options *opt, const char *work_dir,
                          struct bench_results *res)
{
    char *geo = opt->geo_dir ? xstrdup(opt->geo_dir)
                             : xasprintf("%s/../geo_uk", opt->data_dir);
    fs_result r = bench_lookups(geo, res);

    if (r == FS_OK)
        r = bench_reassign(geo, work_dir, opt->territory_deals, res);
    free(geo);
    return r;
}
