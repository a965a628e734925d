/*
 * pcscd_private.h - a pcscd of our own with one vpcd reader, sharing
 * nothing with the machine's pcscd or another test's.
 *
 * Debian 12's pcscd (1.9.9) always listens on /run/pcscd/pcscd.comm; only
 * the client library reads $PCSCLITE_CSOCK_NAME. So the daemon runs in its
 * own mount namespace where /run/pcscd is DIR/run (bind mount): its socket
 * is DIR/run/pcscd.comm for everyone else, and this process (and the
 * children it starts afterwards) reach it with PCSCLITE_CSOCK_NAME set to
 * that path. The reader is DIR/reader.conf.d/vpcd on a free TCP port of its
 * own (the vpcd port is in its DEVICENAME). Needs root (CAP_SYS_ADMIN).
 */
#ifndef CASTELLAN_CARD_PCSCD_PRIVATE_H
#define CASTELLAN_CARD_PCSCD_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/err.h"

#define PCSCD_BIN "/usr/sbin/pcscd"
#define PCSCD_VPCD_DRIVER "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
#define PCSCD_SYSTEM_SOCKET "/run/pcscd/pcscd.comm"

struct pcscd_private {
	pid_t pid;          /* 0 when not running */
	uint16_t port;      /* the vpcd reader's port (castellan card serve --port) */
	char sock[256];     /* DIR/run/pcscd.comm */
	char reader[64];    /* the reader's friendly name */
};

/* pcscd and the vpcd driver installed? */
bool pcscd_available(void);

/* Start pcscd with the reader `reader` under the existing directory dir
 * (log: its stderr, appended to log_path, or inherited when NULL), wait up
 * to wait_ms for its socket and set PCSCLITE_CSOCK_NAME in this process.
 * CE_NOT_FOUND (not installed), CE_STATE (not root), CE_IO (no private
 * namespace, pcscd exited, no socket in time), CE_ARG. */
int pcscd_private_start(const char *dir, const char *reader, const char *log_path, unsigned wait_ms,
	struct pcscd_private *p) WARN_UNUSED;

/* SIGTERM, wait (then SIGKILL), unset PCSCLITE_CSOCK_NAME. Safe twice. */
void pcscd_private_stop(struct pcscd_private *p);

#endif
