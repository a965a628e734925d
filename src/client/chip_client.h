/*
 * chip_client.h - the ladder client (chip_client.c): a CAS client whose keys
 * stay inside the box's secure chip (stb/chip.h).
 */
#ifndef CASTELLAN_CLIENT_CHIP_CLIENT_H
#define CASTELLAN_CLIENT_CHIP_CLIENT_H

#include <stddef.h>
#include "lib/err.h"
#include "cas/client.h"

/*
 * The ladder client: the cardless client's checks, but its entitlement holds
 * only protected package keys (ek2 = E_{K_v}(K_pkg), chip_protect_key), and
 * the ECM is opened inside the chip through host->load_ecw (CHIP_CHAIN_ECM).
 * It never holds a package key, a K_ecm or a CW. CE_UNSUPPORTED on a host
 * without load_ecw. Free with cas_client_free.
 */
struct entitlement;
int ladder_client_from(const struct entitlement *protected_ent, struct cas_client *out) WARN_UNUSED;
/* Size of the client's private state (tests scan it for secrets). */
size_t ladder_client_state_bytes(void);

#endif
