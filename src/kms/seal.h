/*
 * seal.h - sealed key files: the black-box file (chip root keys for the
 * chip maker's black box) and the vendor key file (K_v(chip) for one CAS
 * vendor). One format, two kinds. Keys are encrypted to the recipient's
 * X25519 key (ephemeral-static X25519 + HKDF-SHA256 + AES-256-GCM) and the
 * whole file is signed by the KMS Ed25519 key. Big-endian; docs/kms.md:
 *
 *   off      len      field
 *     0        8      magic "CSTLSEAL"
 *     8        1      version (1)
 *     9        1      kind: 1 black box (K_otp), 2 vendor (K_v)
 *    10        4      order number
 *    14        4      vendor id (0 for kind 1)
 *    18       16      file id (random; the black box's replay ledger key)
 *    34        8      created, unix seconds
 *    42       32      signer: KMS Ed25519 public key
 *    74       32      recipient X25519 public key
 *   106       32      trust-root hash (SHA-256 of the TA Ed25519 public key)
 *   138       32      ephemeral X25519 public key
 *   170       12      GCM nonce
 *   182        4      count N (1 .. SEAL_MAX_RECORDS)
 *   186      8*N      chip ids (u64 BE, strictly increasing)
 *   186+8N  16*N      AES-256-GCM ciphertext of the N 16-byte keys, in order
 *   186+24N   16      GCM tag; AAD = bytes 0 .. 186+8N-1
 *   202+24N   64      Ed25519 signature of bytes 0 .. 202+24N-1
 *   = 266 + 24N bytes
 *
 * GCM key = HKDF-SHA256(ikm = X25519(eph, recipient), salt = eph_pub ||
 * recipient_pub, info = "castellan seal v1" || kind), 32 bytes.
 */
#ifndef CASTELLAN_KMS_SEAL_H
#define CASTELLAN_KMS_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define SEAL_MAGIC "CSTLSEAL"
#define SEAL_VERSION 1
#define SEAL_KIND_BLACKBOX 1
#define SEAL_KIND_VENDOR 2
#define SEAL_HEADER_BYTES 186
#define SEAL_MAX_RECORDS (16u * 1024u * 1024u)
#define SEAL_FILE_BYTES(n) (266u + 24u * (size_t)(n))

struct seal_header {
	uint8_t kind;                  /* SEAL_KIND_* */
	uint32_t order;                /* KMS order number */
	uint32_t vendor_id;            /* kind 2 only; 0 for kind 1 */
	uint8_t file_id[16];           /* random per export */
	uint64_t created_s;
	uint8_t signer_pub[32];        /* KMS Ed25519 */
	uint8_t recipient_pub[32];     /* black box or vendor X25519 */
	uint8_t trust_root_hash[32];
	uint32_t count;
};

/* One record: a chip and its key (K_otp or K_v). Secret: wipe. */
struct seal_record {
	uint64_t chip_id;
	uint8_t key[16];
};

/* Build and sign. h->count records, ids strictly increasing; h->signer_pub
 * is filled from signer_priv, file_id/created are taken from h. *out is
 * malloc'ed, caller frees. 0, CE_ARG, CE_RANGE, CE_NOMEM, CE_CRYPTO. */
int seal_build(const struct seal_header *h, const struct seal_record *recs, const uint8_t signer_priv[32],
	uint8_t **out, size_t *out_len) WARN_UNUSED;

/* Structural parse only (no crypto): header into *h. For inspection and
 * fuzzing. 0, CE_FORMAT, CE_UNSUPPORTED, CE_RANGE. */
int seal_parse(const uint8_t *buf, size_t len, struct seal_header *h) WARN_UNUSED;

/* Parse, check the signer is expected_signer and the signature, then
 * decrypt with recipient_priv. *recs (h.count entries) is malloc'ed: free
 * with seal_records_free. CE_MAC: wrong signer, bad signature or a file
 * altered; CE_PASSPHRASE: not encrypted to this key (or altered ciphertext). */
int seal_open(const uint8_t *buf, size_t len, const uint8_t expected_signer[32], const uint8_t recipient_priv[32],
	struct seal_header *h, struct seal_record **recs) WARN_UNUSED;
void seal_records_free(struct seal_record *recs, size_t n);

#endif
