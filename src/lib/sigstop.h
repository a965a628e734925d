/*
 * sigstop.h - SIGINT and SIGTERM as a stop flag for a command's run loop
 * (`stb`, `card serve`, ...): the loop polls the flag and ends cleanly.
 * One flag at a time, process-wide (signals are): sigstop_catch sets it to
 * 0 and installs the handlers, sigstop_release puts the default handlers
 * back and forgets the flag (tests call it to reset).
 */
#ifndef CASTELLAN_LIB_SIGSTOP_H
#define CASTELLAN_LIB_SIGSTOP_H

#include <signal.h>
#include <stdbool.h>

/* *flag = 0, then SIGINT/SIGTERM set it to 1; with ignore_pipe SIGPIPE is
 * ignored too (a peer that went away is an error return, not a death). */
void sigstop_catch(volatile sig_atomic_t *flag, bool ignore_pipe);
/* SIGINT, SIGTERM (and SIGPIPE if it was ignored) back to SIG_DFL. */
void sigstop_release(void);

#endif
