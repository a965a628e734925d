/* fuzz_module.c - module_parse / module_payload_parse / module_verify on
 * arbitrary bytes. Verification against a fixed trust root must never
 * succeed (the fuzzer cannot forge an Ed25519 signature chain). */
#include <stdint.h>
#include <string.h>
#include "cas/module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t trust[32] = { 0x11, 0x22, 0x33 };
	struct module_view v;
	struct module_payload p;

	if (module_payload_parse(data, size, &p) == 0 && p.kind != MODULE_KIND_LADDER)
		__builtin_trap();
	if (module_parse(data, size, &v) != 0)
		return 0;
	if (module_payload_parse(v.payload, v.payload_len, &p) == 0 && p.keys_file[0] == '\0')
		__builtin_trap();
	if (module_verify(data, size, trust, 1700000000u, NULL, 0, &v, &p) == 0)
		__builtin_trap();
	return 0;
}
