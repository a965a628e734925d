/*
 * chip.h - the emulated secure SoC of the reference box: OTP, key ladder,
 * descrambler slots, behind a process boundary.
 *
 * Owns: the chip's OTP contents (chip id, 128-bit root key K_otp, SHA-256 of
 * the trust-authority root public key), the vendor key of the running CAS
 * module K_v = kms_vendor_key(K_otp, vendor_id) (src/crypto/kdf.h), the ladder
 * that turns protected key chains into CWs inside the chip, and the
 * descrambler slots those CWs land in. Nothing in this API returns a key or
 * a CW: the box sends chains and scrambled packets, it gets back status codes
 * and descrambled packets.
 *
 * The boundary is a separate process (chip_spawn forks it; `castellan chip`
 * runs it on unix sockets). Why a process and not a library: a library's
 * secrets share the box's address space, so "the client never holds a CW"
 * could only be argued; with a process, tests scan the box process's memory
 * and find no CW, and a client bug cannot read the chip's memory at all.
 * The chip answers two channels, like a SoC's secure-boot and host ports:
 *   - the CONTROL channel (the loader's): SET_VENDOR / CLEAR_VENDOR, INFO.
 *     The vendor id comes from the verified module manifest, never from the
 *     client;
 *   - the HOST channel (the CAS client host's): LOAD_ECW, DESCRAMBLE, DROP,
 *     INFO. SET_VENDOR there is refused (CE_STATE).
 *
 * Request / response frame (both directions; big-endian):
 *   u8 op | u8 0 | u16 body_len (<= CHIP_MAX_BODY) | body
 *   response op byte = status: 0 ok, else -CE_* (1..127).
 *
 * Ladder chains (the `ek` of cas_host.load_ecw), first byte = type:
 *   CHIP_CHAIN_KLAD (0x01), ETSI TS 103 162 K-LAD style, 2 levels, AES-128-ECB:
 *     ek2[16] = E_{K_v}(K_s)   ek1[16] = E_{K_s}(CW || 0-padding to 16)
 *   CHIP_CHAIN_ECM (0x02), a Castellan ECM (format v2 or v3) opened in the chip:
 *     ek2[16] = E_{K_v}(K_pkg)   (the box's protected package key)
 *     pkg u16 (0..65535, extended packages too) | sec_len u16 | the ECM
 *     section (<= ECM_MAX_SECTION)
 *     K_pkg = D_{K_v}(ek2); the chip parses the section and opens it with
 *     ecm_open (the package's MAC of the ECM, unwrap, GCM), and the CW of
 *     the requested parity goes to the slot. A re-sealed or tampered ECM,
 *     a wrong vendor or a foreign key: CE_MAC.
 *   CHIP_CHAIN_PAIRED (0x03), "load paired ECW" (a paired smartcard's CW):
 *     serial u64 (the card's) | ecw[16] = E_{K_pair}(CW || 0-padding to 16)
 *     K_pair = chip_pairing_key(K_v, serial), derived inside the chip; an
 *     8-byte CW whose padding does not decrypt to zeros is refused (CE_MAC):
 *     the ECW of a card paired with another chip does not load.
 * OPEN_EMM (host channel; docs/emm-format.md "Vendor EMMs"):
 *   request  serial u64 | EMM section (unique or group, <= EMM_MAX_SECTION)
 *   The chip parses the section (emm_parse), derives
 *   K_emm = KBKDF(K_v, "castellan emm key", serial) (cas/emm_vendor.h) and
 *   opens the card's record. The response has only the non-secret fields
 *   and each package key re-protected for this chip:
 *   response seq u32 | timestamp_ms u64 | CA_system_id u16 | flags u8
 *            (bit 0 grant, bit 1 limits) | cmds u32 | pair_stb_id u64
 *            | [grant: packages u32 | start u64 | finish u64 | next u8
 *               | ext u16 * next] | [limits: max u8 | window u32 | block u32]
 *            | nkeys u8 | nkeys * (epoch u32 | pkg u16 | ek2[16] = E_{K_v}(K_pkg))
 *            | nosd u8 (<= EMM_MAX_OSD) | nosd * (len u16 | OSD record, cas/osd.h)
 *   A K_pair in a PAIR record is not returned (the chip derives it itself).
 *   CE_MAC: the EMM is not for this chip and running vendor.
 * PVR_CRYPT (host channel; C.6 recordings, stb/pvr.h): the recording keys
 *   are a ladder branch of the OTP root (stb/pvr_key.h), needing no vendor:
 *   request  enc u8 (1 seal, 0 open) | rec_nonce[16] | index u32
 *            | aad_len u16 (<= 64) | aad | tag[16] (open; zeros to seal)
 *            | len u16 (<= PVR chunk) | data
 *   response tag[16] | data (sealed or opened); CE_MAC: a tag that does not
 *   verify under this chip's keys (another chip's recording, tampering).
 * docs/secure-chip.md has the byte tables and the op list.
 */
#ifndef CASTELLAN_STB_CHIP_H
#define CASTELLAN_STB_CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/err.h"
#include "cas/client.h"
#include "cipher/cipher.h"

#define CHIP_ROOT_BYTES 16
#define CHIP_HASH_BYTES 32
#define CHIP_MAX_PKTS 128                 /* packets per DESCRAMBLE request */
#define CHIP_MAX_BODY (8 + CHIP_MAX_PKTS * 188)
#define CHIP_MAX_CHAIN 1200

enum chip_op {
	CHIP_OP_INFO = 0x01,
	CHIP_OP_SET_VENDOR = 0x10,   /* control channel only */
	CHIP_OP_CLEAR_VENDOR = 0x11, /* control channel only */
	CHIP_OP_LOAD_ECW = 0x20,
	CHIP_OP_DESCRAMBLE = 0x21,
	CHIP_OP_DROP = 0x22,
	CHIP_OP_OPEN_EMM = 0x23,     /* host channel: a vendor EMM, opened inside */
	CHIP_OP_PVR_CRYPT = 0x24,    /* host channel: seal / open a recording chunk (stb/pvr_key.h) */
};

enum chip_chain_type { CHIP_CHAIN_KLAD = 0x01, CHIP_CHAIN_ECM = 0x02, CHIP_CHAIN_PAIRED = 0x03 };
#define CHIP_CHAIN_PAIRED_BYTES 25        /* type | serial u64 | ecw[16] */
#define CHIP_PAIR_LABEL "castellan pairing key"

enum chip_role { CHIP_ROLE_CONTROL = 0, CHIP_ROLE_HOST = 1 };

/* The OTP image as the chip sees it. Wipe with chip_otp_wipe. */
struct chip_otp {
	uint64_t chip_id;
	uint8_t root[CHIP_ROOT_BYTES];          /* K_otp: never leaves the chip */
	uint8_t trust_root_hash[CHIP_HASH_BYTES]; /* SHA-256(TA root Ed25519 pub) */
};
void chip_otp_wipe(struct chip_otp *o);

/* Public facts (INFO). */
struct chip_info {
	uint64_t chip_id;
	bool vendor_set;
	uint32_t vendor_id;
	uint8_t trust_root_hash[CHIP_HASH_BYTES];
};

/* ---- inside the chip (the chip process) ---- */
struct chip;
/* 0, CE_NOMEM. The OTP is copied (caller wipes its own). csa2_reduce as in
 * descrambler.h. */
int chip_new(const struct chip_otp *otp, bool csa2_reduce, struct chip **out) WARN_UNUSED;
void chip_free(struct chip *c); /* wipes root, K_v and every CW */
/* Handle one request body (op already split off) from a channel of role;
 * writes the response body to resp (cap >= CHIP_MAX_BODY). Returns the
 * status (0 or CE_*) that goes back in the frame. Bounded: any bytes. */
int chip_handle(struct chip *c, enum chip_role role, uint8_t op, const uint8_t *body, size_t len,
	uint8_t *resp, size_t cap, size_t *resp_len) WARN_UNUSED;
/* Serve the two channels until both are closed. 0 or CE_IO. */
int chip_serve(struct chip *c, int ctl_fd, int host_fd);
/* Serve on two unix socket paths (castellan chip), one connection per
 * channel at a time; returns when *stop becomes true (may be NULL). */
int chip_serve_unix(struct chip *c, const char *host_path, const char *ctl_path, volatile int *stop);

/* ---- outside the chip (the box) ---- */
struct chip_link;
/* Fork a chip process with this OTP; *ctl and *host are the two channels.
 * The parent wipes nothing of otp: it is the caller's. 0, CE_IO, CE_NOMEM.
 * chip_link_free on both and then chip_wait(pid) ends it. */
int chip_spawn(const struct chip_otp *otp, struct chip_link **ctl, struct chip_link **host, pid_t *pid) WARN_UNUSED;
int chip_wait(pid_t pid);
/* Connect to `castellan chip` at a socket path. */
int chip_link_connect(const char *path, struct chip_link **out) WARN_UNUSED;
void chip_link_free(struct chip_link *l);

int chip_link_info(struct chip_link *l, struct chip_info *out) WARN_UNUSED;
/* Control channel: the loader sets the running module's vendor (drops every
 * slot: CWs of the previous vendor are gone). CE_STATE on a host channel. */
int chip_link_set_vendor(struct chip_link *l, uint32_t vendor_id) WARN_UNUSED;
int chip_link_clear_vendor(struct chip_link *l) WARN_UNUSED;
/* Run the ladder on chain ek into slot (service_id, tag). 0, CE_STATE (no
 * vendor), CE_MAC (a chain that does not open), CE_FORMAT, CE_ARG. */
int chip_link_load_ecw(struct chip_link *l, uint16_t service_id, uint16_t tag, enum cw_alg alg,
	enum cw_parity parity, const uint8_t *ek, size_t ek_len) WARN_UNUSED;
/* Descramble n (<= CHIP_MAX_PKTS) contiguous packets in place inside the
 * chip. done/missing as descrambler_run (may be NULL). */
int chip_link_descramble(struct chip_link *l, uint16_t service_id, uint16_t tag, uint8_t *pkts, size_t n,
	size_t *done, size_t *missing) WARN_UNUSED;
int chip_link_drop(struct chip_link *l, uint16_t service_id) WARN_UNUSED;
/* OPEN_EMM: the chip opens card `serial`'s record of a vendor EMM. v gets
 * the header fields (its nonce/ct/tag pointers NULL), out the content with
 * keys[i].key = E_{K_v}(K_pkg) (the ladder client's protected form): both
 * go to emm_state_apply. 0, CE_STATE (no vendor / control channel), CE_MAC,
 * CE_NOT_FOUND, CE_FORMAT..., CE_ARG. */
struct emm_view;
struct emm_content;
int chip_link_open_emm(struct chip_link *l, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
	struct emm_content *out) WARN_UNUSED;

/* PVR_CRYPT: seal (enc 1, tag written) or open (enc 0, tag checked) buf in
 * place inside the chip under its recording key for rec_nonce and index
 * (stb/pvr_key.h). aad_len <= CHIP_PVR_MAX_AAD, len <= CHIP_PVR_MAX_DATA.
 * 0, CE_MAC, CE_ARG, CE_IO. */
#define CHIP_PVR_MAX_AAD 64
#define CHIP_PVR_MAX_DATA (64 * 188)
int chip_link_pvr_crypt(struct chip_link *l, int enc, const uint8_t nonce[16], uint32_t index, const uint8_t *aad,
	size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[16]) WARN_UNUSED;

/* The cas_host a CAS client gets on a ladder box: load_cw NULL, load_ecw
 * into (service_id, tag set by chip_link_set_tag, default whole service),
 * open_emm = chip_link_open_emm (vendor EMMs),
 * now_ms from clock (NULL = wall clock). Valid while l lives. */
void chip_link_host(struct chip_link *l, uint64_t (*clock)(void *), void *clock_ctx, struct cas_host *host);
void chip_link_set_tag(struct chip_link *l, uint16_t tag);

/* ---- chain builders (head-end / vendor side and tests) ---- */
/* K-LAD chain from K_v, K_s and a CW (len 8 or 16). out >= 33 bytes. */
int chip_chain_klad(const uint8_t kv[16], const uint8_t ks[16], const uint8_t *cw, size_t cw_len,
	uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/*
 * The pairing key of (chip, card): what a paired smartcard encrypts CWs under
 * and what the chip derives itself for CHIP_CHAIN_PAIRED:
 *   K_pair = KBKDF(K_v(chip), label "castellan pairing key",
 *                  context = card serial u64 BE, L = 128)
 * NIST SP 800-108 counter mode, AES-128-CMAC, as kms_vendor_key (crypto/kdf.h).
 * The head-end computes it from the vendor key file (K_v of this chip) and
 * sends it to the card in a PAIR EMM (emm_build_pair). 0 or CE_CRYPTO (out
 * wiped). The caller wipes kv and out.
 */
int chip_pairing_key(const uint8_t kv[16], uint64_t serial, uint8_t out[16]) WARN_UNUSED;
/* Chain CHIP_CHAIN_PAIRED from a card serial and the card's 16-byte paired
 * CW block (what the smartcard client hands to host->load_ecw). out >= 25
 * bytes. 0 or CE_ARG. */
int chip_chain_paired(uint64_t serial, const uint8_t ecw[16], uint8_t *out, size_t cap, size_t *out_len)
	WARN_UNUSED;
/* E_{K_v}(key) in place (AES-128-ECB, one block): the protected form of a
 * package key for one chip (the vendor computes it from its key file). */
int chip_protect_key(const uint8_t kv[16], uint8_t key[16]) WARN_UNUSED;

#endif
