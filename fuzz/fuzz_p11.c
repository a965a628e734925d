/* fuzz_p11.c - p11_wrapped_parse (the KMS master.key "CSTLP11W" format,
 * kept under a PKCS#11 token key) on arbitrary bytes: the offline part, no
 * token. An accepted file must have the layout the header promises: a
 * 1..32-byte NUL-free label, 32 bytes of ciphertext, the tag ending the
 * input exactly, the AAD being the bytes before the ciphertext. */
#include <stdint.h>
#include <string.h>
#include "kms/p11.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11_wrapped w;
	size_t llen;

	if (p11_wrapped_parse(data, size, &w) != 0)
		return 0;
	llen = strlen(w.token);
	if (llen == 0 || llen > P11_LABEL_MAX || w.ct_len != 32 || data[9] != llen)
		__builtin_trap();
	if (w.aad_len != 8 + 1 + 1 + llen + P11_KEY_ID_BYTES + P11_IV_BYTES + 2)
		__builtin_trap();
	if (w.ct != data + w.aad_len || w.aad_len + w.ct_len + P11_TAG_BYTES != size)
		__builtin_trap();
	if (memcmp(data, P11W_FILE_MAGIC, 8) != 0 || data[8] != 1 || memcmp(data + 10, w.token, llen) != 0)
		__builtin_trap();
	return 0;
}
