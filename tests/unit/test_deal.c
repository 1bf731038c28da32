/* Unit tests of the deal field table and value canonicalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/deal.h"

#include <stdlib.h>
#include <string.h>

/* Canonicalises and checks the outcome; expected NULL means "cleared". */
static void check(enum deal_field field, const char *in, fs_result want,
                  const char *expected)
{
    char *out = (char *)1;
    fs_result r = deal_field_canonical(field, in, &out);

    assert_int_equal(r, want);
    if (want != FS_OK || !expected) {
        assert_null(out);
        return;
    }
    assert_non_null(out);
    assert_string_equal(out, expected);
    free(out);
}

static void test_field_table(void **state)
{
    assert_int_equal(deal_field_by_name("name"), DEAL_NAME);
    assert_int_equal(deal_field_by_name("stage"), DEAL_STAGE);
    assert_int_equal(deal_field_by_name("amount"), DEAL_AMOUNT);
    assert_int_equal(deal_field_by_name("close_date"), DEAL_CLOSE_DATE);
    assert_int_equal(deal_field_by_name("owner"), DEAL_OWNER);
    assert_int_equal(deal_field_by_name("account"), DEAL_ACCOUNT);
    assert_int_equal(deal_field_by_name("product"), DEAL_PRODUCT);
    assert_int_equal(deal_field_by_name("engage_date"), DEAL_ENGAGE_DATE);
    assert_int_equal(deal_field_by_name("dealname"), -1);
    assert_int_equal(deal_field_by_name(NULL), -1);

    assert_int_equal(deal_fields[DEAL_NAME].type, FIELD_TEXT);
    assert_int_equal(deal_fields[DEAL_STAGE].type, FIELD_ID);
    assert_int_equal(deal_fields[DEAL_AMOUNT].type, FIELD_AMOUNT);
    assert_int_equal(deal_fields[DEAL_CLOSE_DATE].type, FIELD_DATE);
    assert_int_equal(deal_fields[DEAL_OWNER].type, FIELD_ID);
    assert_int_equal(deal_fields[DEAL_ENGAGE_DATE].type, FIELD_DATE);
    assert_int_equal(deal_fields[DEAL_NAME].max_len, 255);
    assert_int_equal(deal_fields[DEAL_OWNER].max_len, 64);
    assert_int_equal(deal_fields[DEAL_AMOUNT].max_len, 32);
}

static void test_amount(void **state)
{
    check(DEAL_AMOUNT, "1054.50", FS_OK, "1054.5");
    check(DEAL_AMOUNT, "10.0", FS_OK, "10");
    check(DEAL_AMOUNT, "10.", FS_OK, "10");
    check(DEAL_AMOUNT, "1054", FS_OK, "1054");
    check(DEAL_AMOUNT, "0.1234", FS_OK, "0.1234");
    check(DEAL_AMOUNT, "-12.500", FS_OK, "-12.5");
    check(DEAL_AMOUNT, "-0.00", FS_OK, "0");
    check(DEAL_AMOUNT, "007", FS_OK, "7");
    check(DEAL_AMOUNT, "", FS_OK, NULL);
    check(DEAL_AMOUNT, NULL, FS_OK, NULL);
    check(DEAL_AMOUNT, "0.12345", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "1e5", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "12,5", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, ".5", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "-", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "+5", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, " 5", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "1.2.3", FS_ERR_INVALID, NULL);
    check(DEAL_AMOUNT, "123456789012345678901234567890123", FS_ERR_TOO_LARGE,
          NULL);
}

static void test_date(void **state)
{
    check(DEAL_CLOSE_DATE, "2026-12-02", FS_OK, "2026-12-02");
    check(DEAL_ENGAGE_DATE, "2024-02-29", FS_OK, "2024-02-29");
    check(DEAL_ENGAGE_DATE, "2000-02-29", FS_OK, "2000-02-29");
    check(DEAL_CLOSE_DATE, "", FS_OK, NULL);
    check(DEAL_CLOSE_DATE, "2023-02-29", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "1900-02-29", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026-13-01", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026-04-31", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026-00-10", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026-1-10", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026-12-02T00:00:00Z", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "2026/12/02", FS_ERR_INVALID, NULL);
    check(DEAL_CLOSE_DATE, "abcd-ef-gh", FS_ERR_INVALID, NULL);
}

static void test_text(void **state)
{
    char long_name[300];

    check(DEAL_NAME, "Acme renewal", FS_OK, "Acme renewal");
    check(DEAL_ACCOUNT, "Caf\xc3\xa9 M\xc3\xbcller \xe2\x82\xac", FS_OK,
          "Caf\xc3\xa9 M\xc3\xbcller \xe2\x82\xac");
    check(DEAL_PRODUCT, "\xf0\x9f\x9a\x80 rocket", FS_OK,
          "\xf0\x9f\x9a\x80 rocket");
    check(DEAL_NAME, NULL, FS_OK, NULL);
    check(DEAL_NAME, "line\nbreak", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "tab\there", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "del\x7f", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "bad \xc3", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "overlong \xc0\xaf", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "surrogate \xed\xa0\x80", FS_ERR_INVALID, NULL);
    check(DEAL_NAME, "stray \x80", FS_ERR_INVALID, NULL);

    memset(long_name, 'x', 255);
    long_name[255] = '\0';
    check(DEAL_NAME, long_name, FS_OK, long_name);
    long_name[255] = 'x';
    long_name[256] = '\0';
    check(DEAL_NAME, long_name, FS_ERR_TOO_LARGE, NULL);

    /* Ids are shorter. */
    check(DEAL_OWNER, "12345678", FS_OK, "12345678");
    memset(long_name, '9', 65);
    long_name[65] = '\0';
    check(DEAL_OWNER, long_name, FS_ERR_TOO_LARGE, NULL);
    check(DEAL_STAGE, "closedwon", FS_OK, "closedwon");
}

static void test_bad_field(void **state)
{
    char *out = NULL;

    assert_int_equal(deal_field_canonical(DEAL_FIELD_COUNT, "x", &out),
                     FS_ERR_INVALID);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_table), cmocka_unit_test(test_amount),
        cmocka_unit_test(test_date),        cmocka_unit_test(test_text),
        cmocka_unit_test(test_bad_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
