/* fuzz_web_kms.c - the web panel's readers of a KMS directory (view.h):
 * the order file's clear header, crl.bin's shown fields, and audit.log
 * lines with the events they record, on arbitrary bytes. The first byte
 * picks the parser; the rest is the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "kms/view.h"

/* Every line of in (NUL-terminated copy), as add_audit() walks them. */
static void audit_lines(const uint8_t *data, size_t size)
{
	char *b = malloc(size + 1);
	json_t *vendors = json_object(), *certs = json_array(), *mods = json_array();

	if (!b || !vendors || !certs || !mods)
		goto done;
	memcpy(b, data, size);
	b[size] = 0;
	for (char *p = b, *end = b + size; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct kms_view_audit_line al;

		if (!nl)
			nl = end;
		*nl = 0;
		kms_view_parse_audit_line(p, &al);
		if (!al.event || al.event < p || al.event > nl || (!al.fields && (al.seq || al.at_s)) || al.at_s < 0)
			__builtin_trap();
		if (al.fields)
			kms_view_audit_event(al.event, al.at_s, vendors, certs, mods);
		p = nl + 1;
	}
	/* Every certificate keeps a string serial (revoke cert compares it). */
	for (size_t i = 0; i < json_array_size(certs); i++)
		if (!json_is_string(json_object_get(json_array_get(certs, i), "serial")))
			__builtin_trap();
	/* The event's json is built from the log: it must stay serialisable. */
	free(json_dumps(certs, 0));
	free(json_dumps(mods, 0));
	free(json_dumps(vendors, 0));
done:
	json_decref(vendors);
	json_decref(certs);
	json_decref(mods);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kms_view_order od;
	uint64_t number, created, *serials;
	uint8_t issuer[32];
	size_t n;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (kms_view_parse_order(data + 1, size - 1, &od) == 0 &&
		    (od.chips == 0 || size - 1 != 44u + 24u * (uint64_t)od.chips || (od.chips == 1 && od.last_chip != od.first_chip)))
			__builtin_trap();
		break;
	case 1:
		if (kms_view_parse_crl(data + 1, size - 1, &number, &created, issuer, &serials, &n) == 0) {
			for (size_t i = 1; i < n; i++)
				if (serials[i] <= serials[i - 1])
					__builtin_trap();
			free(serials);
		} else if (serials) {
			__builtin_trap();
		}
		break;
	default:
		audit_lines(data + 1, size - 1);
		break;
	}
	return 0;
}
