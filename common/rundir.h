/*
 * rundir.h: the run directory holds every stage's socket, so whoever owns it can pose as a
 * stage. Like OpenSSH's and tmux's socket directories it must be a real directory (not a
 * symbolic link) owned by our effective uid with no group or other permission bits; it is
 * created 0700 (with any missing parents) when absent, and refused otherwise.
 */
#ifndef VMPOOL_RUNDIR_H
#define VMPOOL_RUNDIR_H

#include <stddef.h>

/* Creates dir if missing, then checks it. 0, or -1 with a message naming the problem. */
int rundir_check(const char *dir, char *err, size_t errlen);

#endif
