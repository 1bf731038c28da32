/* Unit tests of the postcode and location canonical forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/deal.h"
#include "model/postcode.h"

#include <stdlib.h>

static void expect_postcode(const char *in, const char *want)
{
    char *out = NULL;

    assert_int_equal(postcode_normalize(in, &out), FS_OK);
    assert_string_equal(out, want);
    free(out);
}

static void expect_refused(const char *in, fs_result want)
{
    char *out = NULL;

    assert_int_equal(postcode_normalize(in, &out), want);
    assert_null(out);
}

static void test_uk_units_districts_and_sectors(void **state)
{
    expect_postcode("m1 1ae", "M1 1AE");
    expect_postcode("  M1   1AE ", "M1 1AE");
    expect_postcode("m11ae", "M1 1AE");
    expect_postcode("EC1A1BB", "EC1A 1BB");
    expect_postcode("w1a 0ax", "W1A 0AX");
    expect_postcode("m1", "M1");
    expect_postcode("m1 1", "M1 1");
    expect_postcode("SW1A", "SW1A");
}

static void test_us_zips_get_their_zeros_back(void **state)
{
    expect_postcode("02134", "02134");
    expect_postcode("2134", "02134");
    expect_postcode("501", "00501");
    expect_postcode("021341234", "02134-1234");
    expect_postcode("2134-1234", "02134-1234");
    expect_postcode("94105", "94105");
}

static void test_bad_postcodes_refused(void **state)
{
    expect_refused("", FS_ERR_INVALID);
    expect_refused("   ", FS_ERR_INVALID);
    expect_refused("M1;1AE", FS_ERR_INVALID);
    expect_refused("M1\n1AE", FS_ERR_INVALID);
    expect_refused("ABCDEFGHIJKLMNOPQRSTUVWXYZ", FS_ERR_TOO_LARGE);
}

static void test_locations(void **state)
{
    double lat = 0, lng = 0;
    char *out = NULL;

    assert_int_equal(location_parse("53.48095, -2.23743", &lat, &lng), FS_OK);
    out = location_format(lat, lng);
    assert_string_equal(out, "53.480950,-2.237430");
    free(out);

    out = location_format(-0.0000001, 0.0);
    assert_string_equal(out, "0.000000,0.000000");
    free(out);

    assert_int_equal(location_parse("91,0", &lat, &lng), FS_ERR_INVALID);
    assert_int_equal(location_parse("0,181", &lat, &lng), FS_ERR_INVALID);
    assert_int_equal(location_parse("1,2,3", &lat, &lng), FS_ERR_INVALID);
    assert_int_equal(location_parse("north,2", &lat, &lng), FS_ERR_INVALID);
    assert_int_equal(location_parse("nan,2", &lat, &lng), FS_ERR_INVALID);
    assert_int_equal(location_parse(",2", &lat, &lng), FS_ERR_INVALID);
}

static void test_deal_fields_use_the_forms(void **state)
{
    char *out = NULL;

    assert_int_equal(deal_field_canonical(DEAL_POSTCODE, "m11ae", &out), FS_OK);
    assert_string_equal(out, "M1 1AE");
    free(out);
    assert_int_equal(
        deal_field_canonical(DEAL_LOCATION, "53.4809500,-2.2374300", &out),
        FS_OK);
    assert_string_equal(out, "53.480950,-2.237430");
    free(out);
    assert_int_equal(deal_field_canonical(DEAL_LOCATION, "53.4", &out),
                     FS_ERR_INVALID);
    assert_null(out);

    /* A deal's postcode names a place: a word without a digit is none. */
    assert_int_equal(deal_field_canonical(DEAL_POSTCODE, "HELLO", &out),
                     FS_ERR_INVALID);
    assert_null(out);
    assert_int_equal(deal_field_canonical(DEAL_POSTCODE, "m1", &out), FS_OK);
    assert_string_equal(out, "M1");
    free(out);
}

static void test_country_of_form(void **state)
{
    assert_string_equal(postcode_country("M1 1AE"), "GB");
    assert_string_equal(postcode_country("EC1A 1BB"), "GB");
    assert_string_equal(postcode_country("02134"), "US");
    assert_string_equal(postcode_country("02134-1234"), "US");
    /* An outward code alone, or another form: not said. */
    assert_null(postcode_country("M1"));
    assert_null(postcode_country("1011 AB"));
    assert_null(postcode_country(NULL));
}

static void expect_rule(const char *in, const char *want)
{
    char *out = NULL;

    assert_int_equal(postcode_rule_normalize(in, &out), FS_OK);
    assert_string_equal(out, want);
    free(out);
}

static void expect_no_rule(const char *in)
{
    char *out = (char *)"unset";

    assert_int_not_equal(postcode_rule_normalize(in, &out), FS_OK);
    assert_null(out);
}

static void test_rules_name_places(void **state)
{
    /* Units, sectors, districts and areas of real UK areas; ZIPs. */
    expect_rule("m1 1ae", "M1 1AE");
    expect_rule("M11AE", "M1 1AE");
    expect_rule("M1 1", "M1 1");
    expect_rule("m1", "M1");
    expect_rule("EC1A", "EC1A");
    expect_rule("ec1a 1bb", "EC1A 1BB");
    expect_rule("AB10 1", "AB10 1");
    expect_rule("M", "M");
    expect_rule("sw", "SW");
    expect_rule("2134", "02134");
    expect_rule("02134-1234", "02134-1234");
    /* Words, areas that do not exist, one code too many, bad inward. */
    expect_no_rule("banana");
    expect_no_rule("ZZ99 9ZZ");
    expect_no_rule("ZZ99");
    expect_no_rule("M1 1AE 1AE");
    expect_no_rule("M1 1A");
    expect_no_rule("M1 1AC");
    expect_no_rule("M1;1");
    expect_no_rule("");
    expect_no_rule("123456");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uk_units_districts_and_sectors),
        cmocka_unit_test(test_us_zips_get_their_zeros_back),
        cmocka_unit_test(test_bad_postcodes_refused),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_deal_fields_use_the_forms),
        cmocka_unit_test(test_country_of_form),
        cmocka_unit_test(test_rules_name_places),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
