/* The org's own pipeline stages and how each CRM's stages map onto them.
 * A deal keeps the CRM's stage id as its value; the map turns it into the
 * org's stage for people (and back, for writes), so changing the map
 * re-maps every deal without a call to the CRM. Pure logic, no I/O. */
#ifndef FIELDSYNC_MODEL_STAGE_MAP_H
#define FIELDSYNC_MODEL_STAGE_MAP_H

#include "base/result.h"

#include <stdbool.h>
#include <stddef.h>

#define STAGE_KEY_MAX 32
#define STAGE_LABEL_MAX 64
#define STAGE_MAX_COUNT 32

enum stage_kind {
    STAGE_OPEN = 0,
    STAGE_WON,
    STAGE_LOST,
};

/* One of the org's stages: a key for the API ("in_quote"), a label for
 * people ("In Quote"), and whether it closes a deal. */
struct stage_def {
    char *key;
    char *label;
    enum stage_kind kind;
};

/* A stage as the CRM has it. */
struct crm_stage_ref {
    char *pipeline_id;
    char *id;
    char *label;
};

/* A CRM stage read as one of the org's stages. */
struct stage_link {
    char *crm_stage;
    char *key;
};

/* The CRM stage written when a deal of that pipeline is put in the org's
 * stage. */
struct stage_default {
    char *pipeline_id;
    char *key;
    char *crm_stage;
};

struct stage_map {
    struct stage_def *stages;
    size_t n_stages;
    struct crm_stage_ref *crm;
    size_t n_crm;
    struct stage_link *links;
    size_t n_links;
    struct stage_default *defaults;
    size_t n_defaults;
};

void stage_map_clear(struct stage_map *m);

/* The stages an org starts with: New, Qualified, In Quote, Won, Lost. */
void stage_map_default_stages(struct stage_map *m);

/* The kind's name ("open", "won", "lost") and back. */
const char *stage_kind_name(enum stage_kind kind);
fs_result stage_kind_parse(const char *name, enum stage_kind *out);

const struct stage_def *stage_map_find(const struct stage_map *m,
                                       const char *key);
/* The org's stage a CRM stage reads as, or NULL when it is not mapped. */
const char *stage_map_key_of(const struct stage_map *m, const char *crm_stage);
/* The pipeline the CRM stage belongs to, or NULL when the CRM has no such
 * stage. */
const char *stage_map_pipeline_of(const struct stage_map *m,
                                  const char *crm_stage);
/* Every CRM stage that reads as key, for filtering; the caller frees the
 * array (not the strings, which the map owns). */
const char **stage_map_crm_stages_of(const struct stage_map *m, const char *key,
                                     size_t *n);

/* The CRM stage to write to put a deal in the org's stage key. A deal
 * whose current CRM stage already reads as key keeps it; otherwise the
 * default of the deal's pipeline (that of current_crm_stage, else the
 * CRM's first pipeline). FS_ERR_NOT_FOUND when key is not a stage of the
 * org, FS_ERR_INVALID when the pipeline has no default for it. *out
 * points into the map. */
fs_result stage_map_for_write(const struct stage_map *m, const char *key,
                              const char *current_crm_stage, const char **out);

/* Checks a map whole: stage keys well formed and unique, labels present,
 * every link from a stage the CRM has to a stage of the org, every
 * default for a pipeline and stage of the CRM and a stage of the org,
 * no default written as a CRM stage that reads back as a stage of another
 * kind (open, won, lost), and every stage of the org with a default in
 * every pipeline. On failure
 * *error (the caller frees) says what is wrong. */
fs_result stage_map_validate(const struct stage_map *m, char **error);

/* Every problem stage_map_validate would find, in its order (NULL and 0
 * when none); the caller frees each and the array. */
char **stage_map_problems(const struct stage_map *m, size_t *n);

/* Adds the defaults an admin need not spell out: where exactly one CRM
 * stage of a pipeline maps to a stage of the org, it is that stage's
 * default in the pipeline. Defaults already given are kept. */
void stage_map_derive_defaults(struct stage_map *m);

/* Checks the org's stages alone (keys, labels, count). */
fs_result stage_map_validate_stages(const struct stage_def *stages, size_t n,
                                    char **error);

#endif
