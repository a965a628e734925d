/*
 * loader.h - the box's module loader: runs only operator-signed CAS client
 * modules (src/cas/module.h), never an older one, and keeps the last good
 * module when a new one fails.
 *
 * Owns the box's persistent loader state, in a directory (mode 0700):
 *   loader.state        anti-rollback counter and version per vendor, the
 *                       newest CRL number (format below)
 *   crl.bin             the newest revocation list accepted
 *   module-VVVVVVVV.bin the last good module of vendor VVVVVVVV (hex)
 *   <keys file>         the per-chip protected entitlement a payload names
 *
 * loader.state (big-endian): "CSTLLDS1" | u8 version 1 | u64 crl number |
 * u8 n (<= LOADER_MAX_VENDORS) | n x { u32 vendor, u32 rollback, u32 version }
 *
 * Install order: verify (module_verify with the box clock and crl.bin) ->
 * rollback counter >= the stored one (CE_REPLAY) -> build the client from
 * the payload (keys file loads) -> tell the chip the vendor over the
 * CONTROL channel (chip_link_set_vendor) -> persist module and counter.
 * Any failure leaves the running module, the chip and the state unchanged
 * (a failing SET_VENDOR re-activates the previous vendor).
 *
 * "Loading" is choosing a built-in client implementation with parameters,
 * not dlopen: a box that maps code has to trust its own loader and linker
 * with hostile bytes, and a signed description gives the same replaceability
 * for Castellan's clients (docs/modules.md says more).
 */
#ifndef CASTELLAN_STB_LOADER_H
#define CASTELLAN_STB_LOADER_H

#include <stdint.h>
#include <stddef.h>
#include "lib/err.h"
#include "cas/client.h"
#include "cas/module.h"
#include "stb/chip.h"

#define LOADER_MAX_VENDORS 16

struct loader;

/* Open (create) the state directory; the trust-root hash is read from the
 * chip (INFO). ctl: the chip's control channel (not owned). clock: box
 * clock in unix ms (NULL = wall). 0, CE_IO, CE_FORMAT (corrupt state). */
int loader_open(const char *state_dir, struct chip_link *ctl, uint64_t (*clock)(void *), void *clock_ctx,
	struct loader **out) WARN_UNUSED;
void loader_free(struct loader *l);

/* Verify and install a module (see above). 0 or the refusal's code:
 * module_verify's, CE_REPLAY (rollback), CE_NOT_FOUND / CE_FORMAT (keys
 * file), the chip's. */
int loader_install(struct loader *l, const uint8_t *mod, size_t len) WARN_UNUSED;
/* At power-up: re-verify the stored module of vendor_id and run it. */
int loader_boot(struct loader *l, uint32_t vendor_id) WARN_UNUSED;
/* A TA-signed CRL (its TA key must hash to the OTP trust root). Older CRL
 * numbers are CE_REPLAY; the same number is 0. If the running module's
 * certificate is now revoked it is stopped (chip vendor cleared). */
int loader_install_crl(struct loader *l, const uint8_t ta_pub[32], const uint8_t *crl, size_t len) WARN_UNUSED;

/* The running module's client (NULL when none) and its manifest. */
struct cas_client *loader_client(struct loader *l);
int loader_active(const struct loader *l, struct module_manifest *m) WARN_UNUSED;
/* Stored anti-rollback counter of a vendor (0 if none). */
uint32_t loader_rollback(const struct loader *l, uint32_t vendor_id);

#endif
