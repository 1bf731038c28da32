/* Loading the seed CSVs into the simulator's store and placing the seed
 * deals on a postcode table. */
#include "sim_seed.h"

#include "sim_csv.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "model/postcode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One row of the postcode table, canonical. */
struct place {
    char *postcode;
    char *location;
};

struct places {
    struct place *items;
    size_t count;
};

/* 64-bit FNV-1a: small, fixed and easy to recompute anywhere, which is
 * all the placement rule needs. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

enum sim_place sim_seed_place(const char *opportunity_id, size_t n,
                              size_t *index)
{
    uint64_t h = fnv1a(opportunity_id);
    uint64_t bucket = h % 100;

    *index = 0;
    if (n == 0 ||
        bucket >= SIM_SEED_LOCATED_PERCENT + SIM_SEED_POSTCODE_ONLY_PERCENT)
        return SIM_PLACE_NONE;
    *index = (size_t)((h / 100) % n);
    return bucket < SIM_SEED_LOCATED_PERCENT ? SIM_PLACE_LOCATED
                                             : SIM_PLACE_POSTCODE_ONLY;
}

bool sim_seed_in_share(const char *opportunity_id, int percent)
{
    /* The hash mixed again (MurmurHash3's 64-bit finaliser), so the share
     * does not follow the placement's h mod 100 and h div 100. */
    uint64_t x = fnv1a(opportunity_id);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (int)(x % 100) < percent;
}

static FILE *open_file(const char *path, char **err)
{
    FILE *in = fopen(path, "r");
    if (!in)
        *err = xasprintf("cannot open %s: %s", path, strerror(errno));
    return in;
}

static FILE *open_csv(const char *dir, const char *name, char **err)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *in = open_file(path, err);
    free(path);
    return in;
}

/* Reads every data row of a CSV whose header passes on_header, handing
 * each to on_row; blank lines are skipped. */
struct csv_reader {
    const char *name;
    bool (*on_header)(void *ctx, const struct sim_csv_row *row);
    bool (*on_row)(void *ctx, const struct sim_csv_row *row);
    void *ctx;
};

static fs_result read_csv(FILE *in, const struct csv_reader *r, char **err)
{
    struct sim_csv_row row = {0};
    fs_result result;
    size_t line = 0;

    while ((result = sim_csv_next(in, &row)) == FS_OK) {
        line++;
        if (line == 1 ? !r->on_header(r->ctx, &row)
                      : !(row.count == 1 && !*row.fields[0]) &&
                            !r->on_row(r->ctx, &row)) {
            line--; /* the refused row is the one counted last */
            result = FS_ERR_INVALID;
            break;
        }
    }
    if (result == FS_ERR_NOT_FOUND) {
        result = FS_OK;
    } else {
        *err = xasprintf("%s line %zu is malformed", r->name, line + 1);
        result = FS_ERR_INVALID;
    }
    sim_csv_row_clear(&row);
    return result;
}

/* ---- owners ---- */

static bool teams_header(void *ctx, const struct sim_csv_row *row)
{
    return row->count >= 1 && strcmp(row->fields[0], "sales_agent") == 0;
}

static bool teams_row(void *ctx, const struct sim_csv_row *row)
{
    if (row->count < 3 || !*row->fields[0])
        return false;
    sim_store_add_owner(ctx, row->fields[0]);
    return true;
}

/* ---- postcodes ---- */

struct postcode_columns {
    struct places *places;
    int postcode, latitude, longitude;
};

static int column(const struct sim_csv_row *row, const char *name)
{
    for (size_t i = 0; i < row->count; i++)
        if (strcasecmp(row->fields[i], name) == 0)
            return (int)i;
    return -1;
}

static bool postcodes_header(void *ctx, const struct sim_csv_row *row)
{
    struct postcode_columns *c = ctx;
    c->postcode = column(row, "postcode");
    c->latitude = column(row, "latitude");
    c->longitude = column(row, "longitude");
    return c->postcode >= 0 && c->latitude >= 0 && c->longitude >= 0;
}

/* A row without coordinates is left out; a postcode or coordinate that
 * is there but not valid makes the file malformed. */
static bool postcodes_row(void *ctx, const struct sim_csv_row *row)
{
    struct postcode_columns *c = ctx;
    struct places *p = c->places;
    int need = c->postcode > c->latitude ? c->postcode : c->latitude;
    need = need > c->longitude ? need : c->longitude;
    char *postcode = NULL;
    double lat, lng;

    if ((int)row->count <= need || p->count >= SIM_SEED_POSTCODES_MAX)
        return false;
    const char *la = row->fields[c->latitude];
    const char *lo = row->fields[c->longitude];
    if (!*la || !*lo)
        return true;
    char *text = xasprintf("%s,%s", la, lo);
    bool ok = location_parse(text, &lat, &lng) == FS_OK &&
              deal_field_canonical(DEAL_POSTCODE, row->fields[c->postcode],
                                   &postcode) == FS_OK &&
              postcode;
    free(text);
    if (!ok) {
        free(postcode);
        return false;
    }
    if (p->count % 4096 == 0)
        p->items = xrealloc(p->items, (p->count + 4096) * sizeof(*p->items));
    p->items[p->count++] = (struct place){postcode, location_format(lat, lng)};
    return true;
}

static int compare_places(const void *a, const void *b)
{
    const struct place *x = a, *y = b;
    int c = strcmp(x->postcode, y->postcode);
    return c ? c : strcmp(x->location, y->location);
}

static void places_free(struct places *p)
{
    for (size_t i = 0; i < p->count; i++) {
        free(p->items[i].postcode);
        free(p->items[i].location);
    }
    free(p->items);
}

/* The table sorted by postcode, each postcode once, so the placement
 * does not depend on the file's order. */
static fs_result load_places(FILE *in, const char *name, struct places *p,
                             char **err)
{
    struct postcode_columns c = {.places = p};
    struct csv_reader r = {name, postcodes_header, postcodes_row, &c};

    fs_result result = read_csv(in, &r, err);
    if (result != FS_OK)
        return result;
    if (p->count > 1)
        qsort(p->items, p->count, sizeof(*p->items), compare_places);
    size_t kept = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (kept > 0 &&
            strcmp(p->items[kept - 1].postcode, p->items[i].postcode) == 0) {
            free(p->items[i].postcode);
            free(p->items[i].location);
            continue;
        }
        p->items[kept++] = p->items[i];
    }
    p->count = kept;
    return FS_OK;
}

/* ---- deals ---- */

struct deal_loader {
    struct sim_store *store;
    const struct places *places;
    int placed_percent;
};

static bool pipeline_header(void *ctx, const struct sim_csv_row *row)
{
    return row->count >= 8 && strcmp(row->fields[0], "opportunity_id") == 0;
}

static const struct sim_stage *seed_stage(const struct sim_store *store,
                                          const char *name)
{
    const struct sim_pipeline *p = sim_store_pipeline(store);
    for (size_t i = 0; i < p->stage_count; i++)
        if (strcmp(p->stages[i].seed_name, name) == 0)
            return &p->stages[i];
    return NULL;
}

static bool put(struct deal_loader *l, struct sim_write *w, int field,
                const char *value)
{
    enum sim_bad why;
    return sim_write_set(l->store, w, field, value, &why) == FS_OK;
}

static void place(const struct deal_loader *l, const char *key,
                  struct sim_write *w)
{
    size_t i;
    enum sim_place how = sim_seed_place(key, l->places->count, &i);

    if (how == SIM_PLACE_NONE || !sim_seed_in_share(key, l->placed_percent))
        return;
    w->values[DEAL_POSTCODE] = xstrdup(l->places->items[i].postcode);
    if (how == SIM_PLACE_LOCATED)
        w->values[DEAL_LOCATION] = xstrdup(l->places->items[i].location);
}

/* One sales_pipeline.csv row as a deal: the opportunity_id is its name,
 * empty account, product, amount and engage date are written empty, an
 * unknown agent leaves it without owner. */
static bool pipeline_row(void *ctx, const struct sim_csv_row *row)
{
    struct deal_loader *l = ctx;
    struct sim_write w = {0};
    char *const *f = row->fields;
    int64_t created = 0;

    /* A short row has no stage or agent to look up. */
    if (row->count < 8)
        return false;
    const struct sim_stage *stage = seed_stage(l->store, f[4]);
    const struct sim_owner *owner = sim_store_owner_named(l->store, f[1]);
    bool ok =
        stage && *f[0] && put(l, &w, DEAL_NAME, f[0]) &&
        put(l, &w, DEAL_STAGE, stage->id) && put(l, &w, DEAL_AMOUNT, f[7]) &&
        (!*f[6] || put(l, &w, DEAL_CLOSE_DATE, f[6])) &&
        (!owner || put(l, &w, DEAL_OWNER, owner->id)) &&
        put(l, &w, DEAL_ACCOUNT, f[3]) && put(l, &w, DEAL_PRODUCT, f[2]) &&
        put(l, &w, DEAL_ENGAGE_DATE, f[5]) &&
        (!*f[5] || clock_parse_iso(f[5], &created) == 0);
    if (ok) {
        place(l, f[0], &w);
        sim_store_import(l->store, &w, f[0], created);
    }
    sim_write_clear(&w);
    return ok;
}

/* Both loads; postcodes_name names the postcode table in errors. */
static fs_result load_streams(struct sim_store *store, FILE *teams_in,
                              FILE *pipeline_in, FILE *postcodes_in,
                              const char *postcodes_name, int placed_percent,
                              char **err)
{
    struct places places = {0};
    struct deal_loader loader = {store, &places, placed_percent};
    struct csv_reader teams = {"sales_teams.csv", teams_header, teams_row,
                               store};
    struct csv_reader pipeline = {"sales_pipeline.csv", pipeline_header,
                                  pipeline_row, &loader};
    fs_result result = FS_OK;

    if (postcodes_in)
        result = load_places(postcodes_in, postcodes_name, &places, err);
    sim_store_lock(store);
    if (result == FS_OK)
        result = read_csv(teams_in, &teams, err);
    if (result == FS_OK)
        result = read_csv(pipeline_in, &pipeline, err);
    sim_store_unlock(store);
    places_free(&places);
    return result;
}

fs_result sim_seed_load_streams(struct sim_store *store, FILE *teams,
                                FILE *pipeline, FILE *postcodes, char **err)
{
    return load_streams(store, teams, pipeline, postcodes, "postcode table",
                        100, err);
}

fs_result sim_seed_load(struct sim_store *store, const char *dir,
                        const char *postcodes, int placed_percent, char **err)
{
    FILE *postcodes_in = NULL;
    FILE *teams = NULL;
    FILE *pipeline = NULL;
    fs_result result = FS_ERR_IO;

    if (postcodes && !(postcodes_in = open_file(postcodes, err)))
        goto out;
    if (!(teams = open_csv(dir, "sales_teams.csv", err)))
        goto out;
    if (!(pipeline = open_csv(dir, "sales_pipeline.csv", err)))
        goto out;
    result = load_streams(store, teams, pipeline, postcodes_in, postcodes,
                          placed_percent, err);
out:
    if (pipeline)
        fclose(pipeline);
    if (teams)
        fclose(teams);
    if (postcodes_in)
        fclose(postcodes_in);
    return result;
}
