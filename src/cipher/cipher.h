/*
 * cipher.h - TS payload scrambling and descrambling: DVB-CSA2 (our own
 * bitslice engine, batches of 64..512 packets by CPU) and DVB-CISSA v1
 * (AES-128-CBC, ETSI TS 103 127).
 *
 * Owns: the even/odd key pair of one scrambling context, batch processing
 * of many packets per call (the only fast way for both ciphers), the
 * transport_scrambling_control bits, CSA2 entropy reduction (CW checksum
 * bytes), CISSA IV and residue handling. Holds keys: ts_cipher_free wipes.
 *
 * CISSA: IV = "DVBTMCPTAESCISSA" (0x445642544D4350544145534349535341) for
 * every packet; whole 16-byte blocks of the payload are CBC-processed, a
 * trailing residue (< 16 bytes) is left in the clear. Packets are
 * independent, so several are run interleaved through AES-NI when the CPU
 * has it (portable OpenSSL path otherwise).
 * CSA2: 8-byte CW; with entropy reduction on, bytes 3 and 7 are set to the
 * sum of the three bytes before them (mod 256) when the key is set.
 *
 * Only packets with a payload are touched; the adaptation field and header
 * stay clear (ISO/IEC 13818-1 and ETSI TS 100 289 rules).
 */
#ifndef CASTELLAN_CIPHER_H
#define CASTELLAN_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

enum cw_alg { CW_ALG_CSA2 = 1, CW_ALG_CISSA = 2 };
enum cw_parity { CW_EVEN = 0, CW_ODD = 1 };

#define CW_MAX_BYTES 16

/* 8 for CSA2, 16 for CISSA, 0 for an unknown value. */
size_t cw_alg_key_bytes(enum cw_alg alg);
const char *cw_alg_name(enum cw_alg alg);
/* "csa2" | "cissa" -> alg. 0 or CE_ARG. */
int cw_alg_parse(const char *s, enum cw_alg *alg) WARN_UNUSED;
/* Apply CSA2 entropy reduction to an 8-byte CW in place. */
void csa2_reduce(uint8_t cw[8]);

struct ts_cipher;

/* New context; csa2_reduce: apply entropy reduction to CSA2 keys as they
 * are set (ignored for CISSA). NULL on allocation failure. */
struct ts_cipher *ts_cipher_new(enum cw_alg alg, bool csa2_reduce);
void ts_cipher_free(struct ts_cipher *c);
enum cw_alg ts_cipher_alg(const struct ts_cipher *c);

/* Set the even or odd key (len must equal cw_alg_key_bytes). */
int ts_cipher_set_key(struct ts_cipher *c, enum cw_parity parity, const uint8_t *cw, size_t len) WARN_UNUSED;
/* Forget a key (descrambling with it then fails as CE_NO_KEY). */
void ts_cipher_clear_key(struct ts_cipher *c, enum cw_parity parity);
bool ts_cipher_has_key(const struct ts_cipher *c, enum cw_parity parity);

/*
 * Scramble n packets in place with the key of the given parity and set their
 * scrambling_control bits (10 even / 11 odd). Packets must be valid TS
 * packets in the clear (scrambling_control 00); a packet without payload is
 * left as it is. Returns 0 or CE_NO_KEY / CE_FORMAT (a packet failed
 * ts_parse or was already scrambled: nothing in the batch is changed).
 */
int ts_cipher_scramble(struct ts_cipher *c, uint8_t *const *pkts, size_t n, enum cw_parity parity) WARN_UNUSED;

/*
 * Descramble n packets in place: each packet's scrambling_control selects
 * the key; clear packets are left alone; the bits are reset to 00.
 * *done (may be NULL) gets the number of packets actually descrambled.
 * Packets whose key is missing are left scrambled and counted in *missing
 * (may be NULL); so are packets with the reserved scrambling_control 01. Returns 0, or CE_FORMAT if a packet is not a valid TS
 * packet (it is skipped, the rest are processed).
 */
int ts_cipher_descramble(struct ts_cipher *c, uint8_t *const *pkts, size_t n, size_t *done, size_t *missing);

/* CISSA implementation choice (tests and benchmarks compare the two paths;
 * AUTO, the default, takes AES-NI when the CPU has it). */
enum cissa_impl { CISSA_IMPL_AUTO = 0, CISSA_IMPL_OPENSSL = 1, CISSA_IMPL_AESNI = 2 };
/* 0, CE_ARG (not a CISSA context) or CE_UNSUPPORTED (no AES-NI here). */
int ts_cipher_set_cissa_impl(struct ts_cipher *c, enum cissa_impl impl) WARN_UNUSED;
/* True when a CISSA context runs on the AES-NI path. */
bool ts_cipher_cissa_aesni(const struct ts_cipher *c);

/* CSA2 engine (csa2_bs.h): "avx512" (512 packets a batch), "avx2" (256),
 * "sse2" (128), "portable" (64). The default is the fastest this CPU runs,
 * unless the environment variable CASTELLAN_CSA_IMPL names another usable
 * one. 0, CE_ARG (not a CSA2 context, unknown name) or CE_UNSUPPORTED. */
int ts_cipher_set_csa2_impl(struct ts_cipher *c, const char *name) WARN_UNUSED;
/* Name of the CSA2 engine in use; NULL for CISSA. */
const char *ts_cipher_csa2_impl(const struct ts_cipher *c);
/* Packets the cipher processes at once: the CSA2 engine's batch (a partial
 * batch costs about as much as a full one), 1 for CISSA. */
size_t ts_cipher_batch_size(const struct ts_cipher *c);
/* The default CSA2 engine's batch here (before any context exists). */
size_t ts_cipher_csa2_batch_default(void);
/* True when CSA2 contexts a (parity pa) and b (parity pb) hold the same
 * key, so their packets can share batches (constant-time compare); always
 * false for CISSA (no batch to fill). */
bool ts_cipher_same_key(const struct ts_cipher *a, enum cw_parity pa, const struct ts_cipher *b, enum cw_parity pb);

#endif
