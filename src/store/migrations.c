/* The schema as numbered migrations. Never edit an applied one: append. */
#include "store/internal.h"

const char *const store_migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE orgs ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL DEFAULT 0);"

    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  name TEXT NOT NULL,"
    "  email TEXT,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'rep')),"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  crm_owner_id TEXT,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX users_org_email ON users (org_id, email);"

    "CREATE TABLE connections ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  provider TEXT NOT NULL,"
    "  base_url TEXT,"
    "  account_id TEXT,"
    "  app_id TEXT,"
    "  watermark INTEGER NOT NULL DEFAULT 0,"
    "  rate_window INTEGER NOT NULL DEFAULT 0,"
    "  rate_daily INTEGER NOT NULL DEFAULT 0,"
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  settings TEXT,"
    "  created_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX connections_route ON connections (provider, account_id);"
    "CREATE INDEX connections_org ON connections (org_id);"

    "CREATE TABLE connection_secrets ("
    "  connection_id INTEGER NOT NULL"
    "    REFERENCES connections(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (connection_id, name)) WITHOUT ROWID;"

    "CREATE TABLE records ("
    "  rowid INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  connection_id INTEGER REFERENCES connections(id),"
    "  crm_id TEXT,"
    "  deleted_at INTEGER NOT NULL DEFAULT 0,"
    "  deleted_reason TEXT,"
    "  merged_into TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  pending INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (connection_id, crm_id));"
    "CREATE INDEX records_org_id ON records (org_id, id);"
    "CREATE INDEX records_org_updated ON records (org_id, updated_at);"
    "CREATE INDEX records_pending ON records (connection_id, updated_at)"
    "  WHERE pending = 1;"
    "CREATE INDEX records_pending_org ON records (org_id) WHERE pending = 1;"

    "CREATE TABLE crm_aliases ("
    "  connection_id INTEGER NOT NULL REFERENCES connections(id),"
    "  old_crm_id TEXT NOT NULL,"
    "  crm_id TEXT NOT NULL,"
    "  PRIMARY KEY (connection_id, old_crm_id)) WITHOUT ROWID;"

    "CREATE TABLE record_fields ("
    "  record INTEGER NOT NULL REFERENCES records(rowid) ON DELETE CASCADE,"
    "  field INTEGER NOT NULL,"
    "  value TEXT,"
    "  time INTEGER NOT NULL DEFAULT 0,"
    "  origin INTEGER NOT NULL DEFAULT 0,"
    "  crm_value TEXT,"
    "  crm_time INTEGER NOT NULL DEFAULT 0,"
    "  pushed_value TEXT,"
    "  has_pushed INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (record, field)) WITHOUT ROWID;"
    "CREATE INDEX record_fields_value ON record_fields (field, value);"

    "CREATE TABLE inbox ("
    "  id INTEGER PRIMARY KEY,"
    "  connection_id INTEGER NOT NULL,"
    "  dedup_key TEXT,"
    "  received_at INTEGER NOT NULL,"
    "  body TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'new'"
    "    CHECK (state IN ('new', 'done', 'failed')),"
    "  error TEXT,"
    "  UNIQUE (connection_id, dedup_key));"
    "CREATE INDEX inbox_new ON inbox (id) WHERE state = 'new';"

    "CREATE TABLE sync_state ("
    "  record INTEGER PRIMARY KEY"
    "    REFERENCES records(rowid) ON DELETE CASCADE,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_try_at INTEGER NOT NULL DEFAULT 0,"
    "  first_failure_at INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  failed INTEGER NOT NULL DEFAULT 0);"

    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  org_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  record_id TEXT,"
    "  field TEXT,"
    "  detail TEXT);"
    "CREATE INDEX audit_org ON audit (org_id, id);"

    "CREATE TABLE crm_owners ("
    "  connection_id INTEGER NOT NULL REFERENCES connections(id),"
    "  id TEXT NOT NULL,"
    "  email TEXT,"
    "  name TEXT,"
    "  PRIMARY KEY (connection_id, id)) WITHOUT ROWID;"

    "CREATE TABLE crm_stages ("
    "  connection_id INTEGER NOT NULL REFERENCES connections(id),"
    "  pipeline_id TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  label TEXT,"
    "  position INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (connection_id, pipeline_id, id)) WITHOUT ROWID;",

    /* 2: the org's own stages and each connection's map onto them. */
    "ALTER TABLE orgs ADD COLUMN stage_version INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE org_stages ("
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  key TEXT NOT NULL,"
    "  label TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('open', 'won', 'lost')),"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY (org_id, key)) WITHOUT ROWID;"

    "CREATE TABLE stage_links ("
    "  connection_id INTEGER NOT NULL REFERENCES connections(id),"
    "  crm_stage TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  PRIMARY KEY (connection_id, crm_stage)) WITHOUT ROWID;"

    "CREATE TABLE stage_defaults ("
    "  connection_id INTEGER NOT NULL REFERENCES connections(id),"
    "  pipeline_id TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  crm_stage TEXT NOT NULL,"
    "  PRIMARY KEY (connection_id, pipeline_id, key)) WITHOUT ROWID;",

    /* 3: pushes still to check against the CRM's history. */
    "ALTER TABLE records ADD COLUMN unverified_push_at INTEGER NOT NULL "
    "  DEFAULT 0;"
    "CREATE INDEX records_unverified ON records "
    "  (connection_id, unverified_push_at) WHERE unverified_push_at > 0;",

    /* 4: territories and where each deal stands with them; postcode
     * centroids; a user's owner id per CRM provider (the one owner id of
     * migration 1 moves over under the org's active provider). */
    "CREATE TABLE territories ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  name TEXT NOT NULL,"
    "  owner_user_id INTEGER NOT NULL REFERENCES users(id),"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  postcodes TEXT,"
    "  geometry TEXT,"
    "  created_at INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (org_id, name));"

    "CREATE TABLE territory_revisions ("
    "  org_id INTEGER PRIMARY KEY,"
    "  revision INTEGER NOT NULL DEFAULT 0);"

    "CREATE TABLE postcode_centroids ("
    "  org_id INTEGER NOT NULL,"
    "  postcode TEXT NOT NULL,"
    "  lat REAL NOT NULL,"
    "  lng REAL NOT NULL,"
    "  PRIMARY KEY (org_id, postcode)) WITHOUT ROWID;"

    "CREATE TABLE user_owner_ids ("
    "  user_id INTEGER NOT NULL REFERENCES users(id),"
    "  provider TEXT NOT NULL,"
    "  owner_id TEXT NOT NULL,"
    "  PRIMARY KEY (user_id, provider)) WITHOUT ROWID;"
    "INSERT INTO user_owner_ids (user_id, provider, owner_id) "
    "  SELECT u.id, coalesce((SELECT c.provider FROM connections c "
    "    WHERE c.org_id = u.org_id AND c.active = 1 "
    "    ORDER BY c.id DESC LIMIT 1), 'hubspot'), u.crm_owner_id "
    "  FROM users u WHERE u.crm_owner_id IS NOT NULL;"

    "ALTER TABLE records ADD COLUMN territory_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE records ADD COLUMN geo_lat REAL;"
    "ALTER TABLE records ADD COLUMN geo_lng REAL;",

    /* 5: indexes for a territory change. No query looks a field up by
     * its value (the owner and stage filters go through the primary key,
     * record and field), so the index on (field, value) only cost every
     * write that changes a value: a move rewrote an entry of it per deal.
     * The pass over an org's deals reads them in rowid order, which the
     * index on the org alone gives without sorting them all first. */
    "DROP INDEX IF EXISTS record_fields_value;"
    "CREATE INDEX records_org ON records (org_id);",
};

const size_t store_migration_count =
    sizeof(store_migrations) / sizeof(store_migrations[0]);
