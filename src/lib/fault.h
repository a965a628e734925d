/*
 * fault.h - named kill points for the crash tests (tests/faults/): in a
 * build with fault points (meson -Dfault_points, on by default except in
 * release, plain and minsize builds; docs/operations.md "Crash tests"),
 * FAULT_POINT("name") raises SIGKILL on the COUNT-th time the process
 * passes the point named in $CASTELLAN_FAULT_AT=name:COUNT (COUNT default 1).
 * Without fault points FAULT_POINT compiles to nothing: release binaries
 * neither read the variable nor have the points.
 */
#ifndef CASTELLAN_LIB_FAULT_H
#define CASTELLAN_LIB_FAULT_H

#ifdef CASTELLAN_FAULT_POINTS
void fault_point(const char *name);
/* Forget the counts (tests that run several kill points in one process). */
void fault_reset(void);
#define FAULT_POINT(name) fault_point(name)
#else
#define FAULT_POINT(name) ((void)0)
#endif

#endif
