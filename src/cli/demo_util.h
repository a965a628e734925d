/*
 * demo_util.h - helpers the demo commands share (cmd_demo.c,
 * cmd_demo_card.c): loopback TCP ports for the processes they start.
 */
#ifndef CASTELLAN_DEMO_UTIL_H
#define CASTELLAN_DEMO_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* A TCP port on 127.0.0.1 that was free a moment ago (bound, read, closed).
 * 0 or CE_IO (*port 0). */
int demo_free_port(uint16_t *port);
/* true if something accepts TCP connections on 127.0.0.1:port. */
bool demo_port_open(uint16_t port);

#endif
