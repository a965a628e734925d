/*
 * test_web_kms.c - the pure parsers behind GET /web/api/kms (view.h):
 * order headers, crl.bin's shown fields and audit.log lines, each with a
 * table of bad inputs. The directory walk itself is in test_web_admin.c.
 */
#include "testutil.h"
#include <jansson.h>
#include "kms/view.h"

static size_t make_order(uint8_t *b, uint32_t num, uint32_t n)
{
	size_t len = 44u + 24u * n;

	memset(b, 0xaa, len);
	memcpy(b, "CSTLORD1", 8);
	for (int i = 0; i < 4; i++) {
		b[8 + i] = (uint8_t)(num >> (24 - 8 * i));
		b[12 + i] = (uint8_t)(n >> (24 - 8 * i));
	}
	/* chip c's id: 0x1000 + c in the low 4 bytes, high bytes zero */
	for (uint32_t c = 0; c < n; c++) {
		memset(b + 28 + 8 * c, 0, 4);
		for (int i = 0; i < 4; i++)
			b[28 + 8 * c + 4 + i] = (uint8_t)((0x1000u + c) >> (24 - 8 * i));
	}
	return len;
}

static void test_order(void **state)
{
	uint8_t b[44 + 24 * 4];
	struct kms_view_order o;
	size_t len;

	(void)state;
	len = make_order(b, 7, 3);
	assert_int_equal(kms_view_parse_order(b, len, &o), 0);
	assert_int_equal(o.order, 7);
	assert_int_equal(o.chips, 3);
	assert_int_equal(o.first_chip, 0x1000);
	assert_int_equal(o.last_chip, 0x1002);
	len = make_order(b, 1, 1);
	assert_int_equal(kms_view_parse_order(b, len, &o), 0);
	assert_int_equal(o.first_chip, 0x1000);
	assert_int_equal(o.last_chip, 0x1000);

	/* Bad: {what to break, resulting length}. */
	static const struct {
		const char *name;
		int magic, n, cut, grow;
	} bad[] = {
	    {"empty", 0, -1, 44 + 24 * 3, 0}, {"header only", 0, -1, 44 + 24 * 3 - 28, 0},
	    {"one byte short", 0, -1, 1, 0},  {"one byte long", 0, -1, 0, 1},
	    {"bad magic", 1, -1, 0, 0},	      {"zero chips", 0, 0, 0, 0},
	    {"n too big", 0, 4, 0, 0},	      {"n huge", 0, 0x7fffffff, 0, 0},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = make_order(b, 7, 3);
		if (bad[i].magic)
			b[7] = '2';
		if (bad[i].n >= 0)
			for (int k = 0; k < 4; k++)
				b[12 + k] = (uint8_t)((uint32_t)bad[i].n >> (24 - 8 * k));
		len = len - (size_t)bad[i].cut + (size_t)bad[i].grow;
		o.chips = 99;
		if (kms_view_parse_order(b, len, &o) != CE_FORMAT)
			fail_msg("order case '%s' accepted", bad[i].name);
		assert_int_equal(o.chips, 0);
	}
	assert_int_equal(kms_view_parse_order(b, 0, &o), CE_FORMAT);
}

static size_t make_crl(uint8_t *b, const uint64_t *s, uint32_t n)
{
	size_t off = 0;

	memcpy(b, "CSTLCRL1", 8);
	b[8] = 1;
	for (int i = 0; i < 32; i++)
		b[9 + i] = (uint8_t)i;
	off = 41;
	for (int i = 0; i < 8; i++)
		b[off++] = (uint8_t)(3ull >> (56 - 8 * i)); /* number */
	for (int i = 0; i < 8; i++)
		b[off++] = (uint8_t)(1700000000ull >> (56 - 8 * i)); /* created */
	for (int i = 0; i < 4; i++)
		b[off++] = (uint8_t)(n >> (24 - 8 * i));
	for (uint32_t k = 0; k < n; k++)
		for (int i = 0; i < 8; i++)
			b[off++] = (uint8_t)(s[k] >> (56 - 8 * i));
	memset(b + off, 0x55, 64);
	return off + 64;
}

static void test_crl(void **state)
{
	uint8_t b[256], issuer[32];
	uint64_t number = 0, created = 0, *ser = NULL;
	static const uint64_t good[] = {5, 9}, unsorted[] = {9, 5}, dup[] = {5, 5};
	size_t n = 0, len;

	(void)state;
	len = make_crl(b, good, 2);
	assert_int_equal(kms_view_parse_crl(b, len, &number, &created, issuer, &ser, &n), 0);
	assert_int_equal(number, 3);
	assert_int_equal(created, 1700000000);
	assert_int_equal(issuer[31], 31);
	assert_int_equal(n, 2);
	assert_int_equal(ser[1], 9);
	free(ser);

	static const struct {
		const char *name;
		const uint64_t *s;
		int cut, magic, version;
	} bad[] = {
	    {"unsorted", unsorted, 0, 0, 0}, {"duplicate", dup, 0, 0, 0}, {"short", good, 1, 0, 0},
	    {"truncated", good, 80, 0, 0},   {"bad magic", good, 0, 1, 0}, {"version 2", good, 0, 0, 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = make_crl(b, bad[i].s, 2) - (size_t)bad[i].cut;
		if (bad[i].magic)
			b[0] = 'X';
		if (bad[i].version)
			b[8] = 2;
		ser = (uint64_t *)b; /* must come back NULL */
		if (kms_view_parse_crl(b, len, &number, &created, issuer, &ser, &n) == 0)
			fail_msg("crl case '%s' accepted", bad[i].name);
		assert_null(ser);
	}
}

static void test_audit(void **state)
{
	static const struct {
		const char *line;
		bool fields;
		uint64_t seq;
		int64_t at;
		const char *event;
	} cases[] = {
	    {"4\t1700000003\tvendor add id=0x1 pub=ab\tmac", true, 4, 1700000003, "vendor add id=0x1 pub=ab"},
	    {"no tabs at all", false, 0, 0, "no tabs at all"},
	    {"1\t2\tonly two tabs", false, 0, 0, "1\t2\tonly two tabs"},
	    {"x\t5\tev\tm", true, 0, 0, "ev"},				 /* bad seq: both zero */
	    {"5\t-1\tev\tm", true, 0, 0, "ev"},				 /* negative time */
	    {"5\t9223372036854775808\tev\tm", true, 0, 0, "ev"},	 /* above INT64_MAX */
	    {"5\t99999999999999999999999\tev\tm", true, 0, 0, "ev"}, /* overflow */
	    {"\t\t\t", true, 0, 0, ""},
	};
	json_t *vendors = json_object(), *certs = json_array(), *mods = json_array();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[128];
		struct kms_view_audit_line al;

		snprintf(line, sizeof(line), "%s", cases[i].line);
		kms_view_parse_audit_line(line, &al);
		if (al.fields != cases[i].fields || al.seq != cases[i].seq || al.at_s != cases[i].at ||
		    strcmp(al.event, cases[i].event) != 0)
			fail_msg("audit case %zu: fields %d seq %llu at %lld event '%s'", i, al.fields,
				 (unsigned long long)al.seq, (long long)al.at_s, al.event);
	}

	/* Events: vendor added then revoked, a certificate with a spaced name
	 * then revoked, a module; and events that must change nothing. */
	kms_view_audit_event("vendor add id=0x4adc pub=00ff", 10, vendors, certs, mods);
	kms_view_audit_event("vendor revoke id=0x4adc", 11, vendors, certs, mods);
	kms_view_audit_event("vendor revoke id=0x9999", 11, vendors, certs, mods);
	kms_view_audit_event("vendor add pub=00ff", 12, vendors, certs, mods); /* no id */
	kms_view_audit_event("xvendor add id=0x1", 12, vendors, certs, mods);
	kms_view_audit_event("operator certify serial=17 name=Acme \x01TV days=365", 13, vendors, certs, mods);
	kms_view_audit_event("revoke cert serial=17", 14, vendors, certs, mods);
	kms_view_audit_event("module sign vendor=0x4adc version=2 rollback=1 cert=17 bytes=9 sha256=ab", 15, vendors,
			    certs, mods);
	/* Fuzz finding: a serial that is not UTF-8 left a certificate without
	 * "serial", and the next "revoke cert" compared against NULL. */
	kms_view_audit_event("operator certify serial=1\xff" "2 name=X days=1", 16, vendors, certs, mods);
	kms_view_audit_event("revoke cert serial=1?2", 17, vendors, certs, mods);
	kms_view_audit_event("vendor add id=0x\xfe pub=\x80", 18, vendors, certs, mods);
	assert_string_equal(json_string_value(json_object_get(json_array_get(certs, 1), "serial")), "1?2");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(certs, 1), "revoked_s")), 17);
	assert_string_equal(json_string_value(json_object_get(json_object_get(vendors, "0x?"), "pub_fingerprint")), "?");
	json_object_del(vendors, "0x?");
	json_array_remove(certs, 1);
	assert_int_equal(json_object_size(vendors), 1);
	assert_true(json_is_true(json_object_get(json_object_get(vendors, "0x4adc"), "revoked")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(vendors, "0x4adc"), "revoked_s")), 11);
	assert_int_equal(json_array_size(certs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(certs, 0), "name")), "Acme ?TV");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(certs, 0), "revoked_s")), 14);
	assert_int_equal(json_array_size(mods), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(mods, 0), "version")), "2");
	json_decref(vendors);
	json_decref(certs);
	json_decref(mods);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_crl),
	    cmocka_unit_test(test_audit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
