/*
 * cert.h - operator certificates and revocation lists issued by the trust
 * authority (TA). A box trusts SHA-256(TA Ed25519 public key) from its OTP;
 * an operator key is trusted if a certificate signed by that TA names it,
 * is in its validity window and its serial is not in the TA's newest CRL.
 * Big-endian binary (docs/kms.md):
 *
 *   certificate                         CRL
 *   0   8 "CSTLCERT"                    0   8 "CSTLCRL1"
 *   8   1 version 1                     8   1 version 1
 *   9   1 role (1 = operator)           9  32 issuer: SHA-256(TA pub)
 *  10   8 serial                       41   8 CRL number (grows)
 *  18   8 not_before (unix s)          49   8 created (unix s)
 *  26   8 not_after  (unix s)          57   4 count N (<= CERT_CRL_MAX)
 *  34  32 subject Ed25519 pub          61 8*N revoked serials, increasing
 *  66  32 issuer: SHA-256(TA pub)       .. 64 Ed25519 signature by the TA
 *  98   1 name length L (1..64, printable ASCII)
 *  99   L name
 *  ..  64 Ed25519 signature by the TA of all bytes before it
 */
#ifndef CASTELLAN_KMS_CERT_H
#define CASTELLAN_KMS_CERT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define CERT_ROLE_OPERATOR 1
#define CERT_NAME_MAX 64
#define CERT_MAX_BYTES (99 + CERT_NAME_MAX + 64)
#define CERT_CRL_MAX 65536

struct cert {
	uint8_t role;
	uint64_t serial;
	uint64_t not_before, not_after;
	uint8_t subject_pub[32];
	uint8_t issuer_hash[32];
	char name[CERT_NAME_MAX + 1];
};

/* Sign c with the TA private key (c->issuer_hash is set from it). out must
 * hold CERT_MAX_BYTES. */
int cert_sign(struct cert *c, const uint8_t ta_priv[32], uint8_t *out, size_t *out_len) WARN_UNUSED;
/* Structural parse (no signature check). 0, CE_FORMAT, CE_UNSUPPORTED. */
int cert_parse(const uint8_t *buf, size_t len, struct cert *out) WARN_UNUSED;
/* Parse, then check issuer == SHA-256(ta_pub), signature (CE_MAC), validity
 * at now_s (CE_EXPIRED), and not revoked by crl (CE_BLOCKED; crl may be NULL). */
int cert_verify(const uint8_t *buf, size_t len, const uint8_t ta_pub[32], uint64_t now_s, const uint8_t *crl,
	size_t crl_len, struct cert *out) WARN_UNUSED;

/* CRL: build (serials sorted and deduplicated here), parse, verify. *out is
 * malloc'ed. */
int crl_sign(const uint8_t ta_priv[32], uint64_t number, const uint64_t *serials, size_t n, uint8_t **out,
	size_t *out_len) WARN_UNUSED;
/* Structural parse: *serials malloc'ed (n entries; may be NULL when n = 0). */
int crl_parse(const uint8_t *buf, size_t len, uint64_t *number, uint64_t **serials, size_t *n) WARN_UNUSED;
/* Parse + issuer + signature check. */
int crl_verify(const uint8_t *buf, size_t len, const uint8_t ta_pub[32], uint64_t *number, uint64_t **serials,
	size_t *n) WARN_UNUSED;

#endif
