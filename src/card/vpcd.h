/*
 * vpcd.h - the virtual card's side of the vsmartcard "vpcd" socket protocol:
 * the card (vicc) connects by TCP to pcscd's vpcd reader driver (default
 * localhost:35963, CHANNELID in /etc/reader.conf.d/vpcd) and answers it.
 *
 * Every message, both ways, is a 2-byte big-endian length then that many
 * bytes. From the reader, a 1-byte message is a control command:
 *   0x00 power off, 0x01 power on, 0x02 reset (no answer),
 *   0x04 get ATR (answer: the ATR);
 * anything longer is a command APDU, answered by the response APDU.
 * (vsmartcard docs, "Creating a virtual smart card".)
 *
 * Untrusted input: lengths are capped (VPCD_MAX_MSG), a message of length 0
 * or an unknown control byte closes the connection.
 */
#ifndef CASTELLAN_CARD_VPCD_H
#define CASTELLAN_CARD_VPCD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "card/applet.h"

#define VPCD_DEFAULT_PORT 35963
#define VPCD_MAX_MSG (CARD_MAX_DATA + 16)
#define VPCD_CTRL_OFF 0x00
#define VPCD_CTRL_ON 0x01
#define VPCD_CTRL_RESET 0x02
#define VPCD_CTRL_ATR 0x04

/* The card's ATR (ISO 7816-3: direct convention, T=0 and T=1, historical
 * bytes "CASTELLN", TCK). */
size_t vpcd_atr(uint8_t out[32]);

/* Connect to host:port, retrying every 100 ms for up to connect_ms. Returns
 * the socket fd or CE_IO / CE_TIMEOUT. */
int vpcd_connect(const char *host, uint16_t port, unsigned connect_ms) WARN_UNUSED;

/*
 * Serve the applet on a connected socket until the peer closes (0),
 * *stop becomes non-zero (0), or a protocol/IO error (CE_PROTO / CE_IO).
 * Power off / reset reload the applet from its EEPROM. napdus (optional)
 * counts APDUs answered. Closes nothing: the caller closes fd.
 */
int vpcd_serve(int fd, struct card_applet *a, volatile sig_atomic_t *stop, uint64_t *napdus) WARN_UNUSED;

#endif
