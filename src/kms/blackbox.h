/*
 * blackbox.h - the chip maker's black box: takes a black-box file from the
 * operator's KMS, checks the KMS signature, decrypts the root keys with its
 * own X25519 key and writes one OTP image (otp.h) per chip it is asked to
 * burn. It refuses a chip id the file does not carry and a file it has
 * burned before (ledger: one line per burned file id, lower-case hex).
 * Nothing is written unless every requested chip is in the file.
 */
#ifndef CASTELLAN_KMS_BLACKBOX_H
#define CASTELLAN_KMS_BLACKBOX_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

/* chips: n ids to burn (n == 0: every chip of the file). Writes
 * out_dir/<chip id as 16 hex>.otp and appends the file id to ledger.
 * CE_MAC (signature/signer/altered), CE_PASSPHRASE (not for this box),
 * CE_FORMAT, CE_REPLAY (already burned), CE_NOT_FOUND (chip not in file),
 * CE_IO. *burned = images written. */
int blackbox_burn(const uint8_t *file, size_t len, const uint8_t kms_pub[32], const uint8_t box_priv[32],
	const uint64_t *chips, size_t n, const char *out_dir, const char *ledger, size_t *burned) WARN_UNUSED;

#endif
