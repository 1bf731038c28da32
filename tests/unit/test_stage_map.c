/* Unit tests of the stage map: lookups both ways, derived defaults and
 * the checks a map must pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "model/stage_map.h"

#include <stdlib.h>
#include <string.h>

static void add_crm(struct stage_map *m, const char *pipeline, const char *id)
{
    m->crm = xrealloc(m->crm, (m->n_crm + 1) * sizeof(*m->crm));
    m->crm[m->n_crm++] =
        (struct crm_stage_ref){xstrdup(pipeline), xstrdup(id), xstrdup(id)};
}

static void add_link(struct stage_map *m, const char *crm, const char *key)
{
    m->links = xrealloc(m->links, (m->n_links + 1) * sizeof(*m->links));
    m->links[m->n_links++] = (struct stage_link){xstrdup(crm), xstrdup(key)};
}

static void add_default(struct stage_map *m, const char *pipeline,
                        const char *key, const char *crm)
{
    m->defaults =
        xrealloc(m->defaults, (m->n_defaults + 1) * sizeof(*m->defaults));
    m->defaults[m->n_defaults++] =
        (struct stage_default){xstrdup(pipeline), xstrdup(key), xstrdup(crm)};
}

/* Two pipelines: "sales" with four stages, "renewals" with two. */
static void two_pipelines(struct stage_map *m)
{
    memset(m, 0, sizeof(*m));
    stage_map_default_stages(m);
    add_crm(m, "sales", "s1");
    add_crm(m, "sales", "s2");
    add_crm(m, "sales", "s3");
    add_crm(m, "sales", "s4");
    add_crm(m, "renewals", "r1");
    add_crm(m, "renewals", "r2");
}

/* Each CRM stage of two_pipelines onto one org stage: renewals has
 * neither New nor Qualified nor In Quote. */
static void link_both_pipelines(struct stage_map *m)
{
    add_link(m, "s1", "new");
    add_link(m, "s2", "qualified");
    add_link(m, "s3", "won");
    add_link(m, "s4", "lost");
    add_link(m, "r1", "won");
    add_link(m, "r2", "lost");
}

static void expect_invalid(const struct stage_map *m, const char *part)
{
    char *error = NULL;

    assert_int_equal(stage_map_validate(m, &error), FS_ERR_INVALID);
    assert_non_null(error);
    if (!strstr(error, part))
        fail_msg("error \"%s\" does not mention \"%s\"", error, part);
    free(error);
}

static void test_lookups_both_ways(void **state)
{
    struct stage_map m;
    const char *out = NULL;

    two_pipelines(&m);
    add_link(&m, "s1", "new");
    add_link(&m, "s2", "qualified");
    add_link(&m, "s3", "won");
    add_link(&m, "r1", "won");
    add_default(&m, "sales", "won", "s3");
    add_default(&m, "renewals", "won", "r1");

    assert_string_equal(stage_map_key_of(&m, "s2"), "qualified");
    assert_null(stage_map_key_of(&m, "s4"));
    assert_null(stage_map_key_of(&m, NULL));
    assert_string_equal(stage_map_pipeline_of(&m, "r2"), "renewals");

    size_t n = 0;
    const char **won = stage_map_crm_stages_of(&m, "won", &n);
    assert_int_equal(n, 2);
    assert_string_equal(won[0], "s3");
    assert_string_equal(won[1], "r1");
    free(won);

    /* Won is written in the deal's own pipeline. */
    assert_int_equal(stage_map_for_write(&m, "won", "r2", &out), FS_OK);
    assert_string_equal(out, "r1");
    assert_int_equal(stage_map_for_write(&m, "won", "s1", &out), FS_OK);
    assert_string_equal(out, "s3");
    /* A new deal goes to the CRM's first pipeline. */
    assert_int_equal(stage_map_for_write(&m, "won", NULL, &out), FS_OK);
    assert_string_equal(out, "s3");
    /* A deal already in a stage that reads as the one asked keeps it. */
    assert_int_equal(stage_map_for_write(&m, "qualified", "s2", &out), FS_OK);
    assert_string_equal(out, "s2");
    /* Not a stage of the org, or no CRM stage to write. */
    assert_int_equal(stage_map_for_write(&m, "closedwon", "s1", &out),
                     FS_ERR_NOT_FOUND);
    assert_int_equal(stage_map_for_write(&m, "lost", "s1", &out),
                     FS_ERR_INVALID);
    assert_null(out);
    stage_map_clear(&m);
}

static void test_derived_defaults_and_validation(void **state)
{
    struct stage_map m;
    char *error = NULL;

    two_pipelines(&m);
    link_both_pipelines(&m);
    stage_map_derive_defaults(&m);

    /* One CRM stage per org stage in a pipeline is its default; In Quote
     * has none anywhere, and renewals has no New or Qualified. */
    const char *out = NULL;
    assert_int_equal(stage_map_for_write(&m, "lost", "r1", &out), FS_OK);
    assert_string_equal(out, "r2");
    expect_invalid(&m, "in_quote");

    add_default(&m, "sales", "in_quote", "s2");
    add_default(&m, "renewals", "in_quote", "r1");
    add_default(&m, "renewals", "new", "r1");
    add_default(&m, "renewals", "qualified", "r1");
    /* An open stage written as one that reads back as won is refused. */
    expect_invalid(&m, "stage in_quote (open) cannot be written as CRM stage "
                       "r1 in pipeline renewals: it reads back as won (won)");

    /* Written as an open stage that reads as another one, it is taken. */
    add_crm(&m, "renewals", "r0");
    add_link(&m, "r0", "qualified");
    for (size_t i = 0; i < m.n_defaults; i++) {
        if (strcmp(m.defaults[i].pipeline_id, "renewals") == 0 &&
            strcmp(m.defaults[i].crm_stage, "r1") == 0 &&
            strcmp(m.defaults[i].key, "won") != 0) {
            free(m.defaults[i].crm_stage);
            m.defaults[i].crm_stage = xstrdup("r0");
        }
    }
    assert_int_equal(stage_map_validate(&m, &error), FS_OK);
    assert_null(error);

    /* Won written as a stage that reads back as lost is refused too. */
    add_default(&m, "sales", "won", "s4");
    expect_invalid(&m, "stage won (won) cannot be written as CRM stage s4");
    free(m.defaults[--m.n_defaults].pipeline_id);
    free(m.defaults[m.n_defaults].key);
    free(m.defaults[m.n_defaults].crm_stage);

    /* A derived default never replaces one given. */
    stage_map_derive_defaults(&m);
    assert_int_equal(stage_map_for_write(&m, "in_quote", "s1", &out), FS_OK);
    assert_string_equal(out, "s2");
    stage_map_clear(&m);
}

static void test_bad_maps_refused(void **state)
{
    struct stage_map m;

    two_pipelines(&m);
    add_link(&m, "s9", "new");
    expect_invalid(&m, "s9");
    stage_map_clear(&m);

    two_pipelines(&m);
    add_link(&m, "s1", "closedwon");
    expect_invalid(&m, "closedwon");
    stage_map_clear(&m);

    two_pipelines(&m);
    add_link(&m, "s1", "new");
    add_link(&m, "s1", "won");
    expect_invalid(&m, "twice");
    stage_map_clear(&m);

    /* A default must be a stage of its own pipeline. */
    two_pipelines(&m);
    add_default(&m, "sales", "won", "r1");
    expect_invalid(&m, "r1");
    stage_map_clear(&m);
}

/* A map not made yet has a problem per stage and pipeline, all listed. */
static void test_every_problem_listed(void **state)
{
    struct stage_map m;
    size_t n = 0;

    two_pipelines(&m);
    char **problems = stage_map_problems(&m, &n);
    assert_int_equal(n, 2 * m.n_stages);
    assert_string_equal(
        problems[0], "stage new has no CRM stage to write in pipeline sales");
    assert_string_equal(
        problems[n - 1],
        "stage lost has no CRM stage to write in pipeline renewals");
    for (size_t i = 0; i < n; i++)
        free(problems[i]);
    free(problems);

    /* None once the map is whole. */
    link_both_pipelines(&m);
    add_crm(&m, "renewals", "r0");
    add_link(&m, "r0", "qualified");
    stage_map_derive_defaults(&m);
    add_default(&m, "sales", "in_quote", "s2");
    add_default(&m, "renewals", "in_quote", "r0");
    add_default(&m, "renewals", "new", "r0");
    problems = stage_map_problems(&m, &n);
    assert_int_equal(n, 0);
    assert_null(problems);
    stage_map_clear(&m);
}

static void test_stage_definitions_checked(void **state)
{
    struct stage_def ok[] = {{"new", "New", STAGE_OPEN},
                             {"won", "Won", STAGE_WON}};
    struct stage_def bad_key[] = {{"New Deal", "New", STAGE_OPEN}};
    struct stage_def twice[] = {{"new", "New", STAGE_OPEN},
                                {"new", "Again", STAGE_OPEN}};
    struct stage_def no_label[] = {{"new", "", STAGE_OPEN}};
    char *error = NULL;
    enum stage_kind kind;

    assert_int_equal(stage_map_validate_stages(ok, 2, &error), FS_OK);
    assert_int_equal(stage_map_validate_stages(bad_key, 1, &error),
                     FS_ERR_INVALID);
    free(error);
    assert_int_equal(stage_map_validate_stages(twice, 2, &error),
                     FS_ERR_INVALID);
    free(error);
    assert_int_equal(stage_map_validate_stages(no_label, 1, &error),
                     FS_ERR_INVALID);
    free(error);
    assert_int_equal(stage_map_validate_stages(ok, 0, &error), FS_ERR_INVALID);
    free(error);

    assert_int_equal(stage_kind_parse("lost", &kind), FS_OK);
    assert_int_equal(kind, STAGE_LOST);
    assert_int_equal(stage_kind_parse("closed", &kind), FS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_both_ways),
        cmocka_unit_test(test_derived_defaults_and_validation),
        cmocka_unit_test(test_bad_maps_refused),
        cmocka_unit_test(test_every_problem_listed),
        cmocka_unit_test(test_stage_definitions_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
