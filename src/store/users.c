/* Users of an org and their API tokens; only a token's SHA-256 is kept. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "fs_"
#define TOKEN_BYTES 32
#define TOKEN_MAX_LEN 256

/* The provider of the org's active connection (the newest when several),
 * "hubspot" while it has none: owner ids are per provider. */
#define ORG_PROVIDER(org)                                                      \
    "coalesce((SELECT c.provider FROM connections c WHERE c.org_id = " org     \
    " AND c.active = 1 ORDER BY c.id DESC LIMIT 1), 'hubspot')"

/* crm_owner_id is the user's owner id with the org's current provider. */
#define USER_COLUMNS                                                           \
    "id, org_id, name, email, role, "                                          \
    "(SELECT o.owner_id FROM user_owner_ids o WHERE o.user_id = users.id "     \
    "AND o.provider = " ORG_PROVIDER("users.org_id") "), revoked"

const char *store_role_name(enum user_role role)
{
    return role == USER_ROLE_ADMIN ? "admin" : "rep";
}

fs_result store_role_parse(const char *name, enum user_role *out)
{
    if (name && strcmp(name, "admin") == 0) {
        *out = USER_ROLE_ADMIN;
        return FS_OK;
    }
    if (name && strcmp(name, "rep") == 0) {
        *out = USER_ROLE_REP;
        return FS_OK;
    }
    return FS_ERR_INVALID;
}

void user_clear(struct user *u)
{
    free(u->name);
    free(u->email);
    free(u->crm_owner_id);
    memset(u, 0, sizeof(*u));
}

void store_users_free(struct user *users, size_t n)
{
    for (size_t i = 0; i < n && users; i++)
        user_clear(&users[i]);
    free(users);
}

static char *token_hash(const char *token)
{
    uint8_t digest[CRYPTO_SHA256_LEN];

    crypto_sha256(token, strlen(token), digest);
    return crypto_hex(digest, sizeof(digest));
}

static void read_user(sqlite3_stmt *st, struct user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    u->org_id = sqlite3_column_int64(st, 1);
    u->name = store_column_text(st, 2);
    u->email = store_column_text(st, 3);
    const char *role = (const char *)sqlite3_column_text(st, 4);
    u->role =
        role && strcmp(role, "admin") == 0 ? USER_ROLE_ADMIN : USER_ROLE_REP;
    u->crm_owner_id = store_column_text(st, 5);
    u->revoked = sqlite3_column_int(st, 6) != 0;
}

fs_result store_user_add(struct store *s, int64_t org_id, const char *name,
                         const char *email, enum user_role role,
                         const char *crm_owner_id, int64_t *id_out,
                         char **token_out)
{
    static const char sql[] =
        "INSERT INTO users (org_id, name, email, role, token_hash, "
        "crm_owner_id, revoked, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)";
    sqlite3_stmt *st = NULL;
    char *random = NULL;
    char *token = NULL;
    char *hash = NULL;

    *token_out = NULL;
    if (!name || !*name)
        return FS_ERR_INVALID;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;

    random = crypto_random_hex(TOKEN_BYTES);
    token = xasprintf(TOKEN_PREFIX "%s", random);
    hash = token_hash(token);

    sqlite3_bind_int64(st, 1, org_id);
    store_bind_text(st, 2, name);
    store_bind_text(st, 3, email);
    store_bind_text(st, 4, store_role_name(role));
    store_bind_text(st, 5, hash);
    store_bind_text(st, 6, crm_owner_id);
    sqlite3_bind_int64(st, 7, clock_now_ms());
    r = store_step_done(st);
    if (r != FS_OK)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (crm_owner_id) {
        r = store_user_set_owner_id(s, org_id, id, NULL, crm_owner_id);
        if (r != FS_OK)
            goto out;
    }
    if (id_out)
        *id_out = id;
    *token_out = token;
    token = NULL;

out:
    free(random);
    free(token);
    free(hash);
    return r;
}

fs_result store_user_by_token(struct store *s, const char *token,
                              struct user *out)
{
    static const char sql[] =
        "SELECT " USER_COLUMNS " FROM users WHERE token_hash = ?1 AND "
        "revoked = 0";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    if (!token || strlen(token) > TOKEN_MAX_LEN)
        return FS_ERR_AUTH;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;

    char *hash = token_hash(token);
    store_bind_text(st, 1, hash);
    free(hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_user(st, out);
    else
        r = rc == SQLITE_DONE ? FS_ERR_AUTH : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_user_get(struct store *s, int64_t org_id, int64_t user_id,
                         struct user *out)
{
    static const char sql[] =
        "SELECT " USER_COLUMNS " FROM users WHERE id = ?1 AND org_id = ?2";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_user(st, out);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_user_revoke(struct store *s, int64_t org_id, int64_t user_id)
{
    static const char sql[] =
        "UPDATE users SET revoked = 1 WHERE id = ?1 AND org_id = ?2";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, org_id);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_user_set_owner(struct store *s, int64_t org_id, int64_t user_id,
                               const char *owner_id)
{
    return store_user_set_owner_id(s, org_id, user_id, NULL, owner_id);
}

fs_result store_users_list(struct store *s, int64_t org_id, struct user **out,
                           size_t *n_out)
{
    static const char sql[] =
        "SELECT " USER_COLUMNS " FROM users WHERE org_id = ?1 ORDER BY id";
    sqlite3_stmt *st = NULL;
    struct user *list = NULL;
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
        memset(&list[n], 0, sizeof(list[n]));
        read_user(st, &list[n++]);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_users_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_org_provider(struct store *s, int64_t org_id, char **out)
{
    static const char sql[] = "SELECT " ORG_PROVIDER("?1");
    sqlite3_stmt *st = NULL;

    *out = NULL;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = store_column_text(st, 0);
    else
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_user_set_owner_id(struct store *s, int64_t org_id,
                                  int64_t user_id, const char *provider,
                                  const char *owner_id)
{
    static const char put[] =
        "INSERT OR REPLACE INTO user_owner_ids (user_id, provider, owner_id) "
        "SELECT u.id, coalesce(?2, " ORG_PROVIDER(
            "u.org_id") "), ?3 "
                        "FROM users u WHERE u.id = ?1 AND u.org_id = ?4";
    static const char del[] =
        "DELETE FROM user_owner_ids WHERE user_id = (SELECT u.id FROM users u "
        "WHERE u.id = ?1 AND u.org_id = ?4) "
        "AND provider = coalesce(?2, " ORG_PROVIDER("?4") ")";
    sqlite3_stmt *st = NULL;
    struct user u = {0};

    fs_result r = store_user_get(s, org_id, user_id, &u);
    user_clear(&u);
    if (r != FS_OK)
        return r;
    r = store_prepare(s, owner_id ? put : del, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, user_id);
    store_bind_text(st, 2, provider);
    if (owner_id)
        store_bind_text(st, 3, owner_id);
    sqlite3_bind_int64(st, 4, org_id);
    return store_step_done(st);
}

fs_result store_user_with_owner_id(struct store *s, int64_t org_id,
                                   const char *provider, const char *owner_id,
                                   int64_t except_user, int64_t *user_out)
{
    static const char sql[] =
        "SELECT u.id FROM user_owner_ids o JOIN users u ON u.id = o.user_id "
        "WHERE u.org_id = ?1 AND u.revoked = 0 AND u.id != ?4 "
        "AND o.owner_id = ?3 "
        "AND o.provider = coalesce(?2, " ORG_PROVIDER(
            "?1") ") "
                  "ORDER BY u.id LIMIT 1";
    sqlite3_stmt *st = NULL;

    *user_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    store_bind_text(st, 2, provider);
    store_bind_text(st, 3, owner_id);
    sqlite3_bind_int64(st, 4, except_user);
    return store_step_int64s(st, user_out, 1);
}

fs_result store_user_owner_id(struct store *s, int64_t org_id, int64_t user_id,
                              const char *provider, char **out)
{
    static const char sql[] =
        "SELECT o.owner_id FROM user_owner_ids o JOIN users u "
        "ON u.id = o.user_id WHERE u.id = ?1 AND u.org_id = ?3 "
        "AND o.provider = coalesce(?2, " ORG_PROVIDER("?3") ")";
    sqlite3_stmt *st = NULL;

    *out = NULL;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, user_id);
    store_bind_text(st, 2, provider);
    sqlite3_bind_int64(st, 3, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = store_column_text(st, 0);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}
