/*
 * child.h: one supervised stage process (supervisor-private). The policy follows
 * s6-supervise: at least 1 s between spawns, the delay doubling to a cap, reset after a
 * healthy period; exit code EXIT_CONFIG means "do not restart".
 */
#ifndef VMPOOL_CHILD_H
#define VMPOOL_CHILD_H

#include <sys/types.h>

#include <event2/event.h>

#include "backoff.h"

#define CHILD_RESTART_MIN   1.0  /* seconds before the first respawn */
#define CHILD_RESTART_CAP   30.0 /* largest respawn delay */
#define CHILD_HEALTHY_AFTER 60.0 /* running this long resets the delay */

enum child_state {
	CHILD_STOPPED,  /* never started, or reaped after a stop */
	CHILD_STARTING, /* forked, exec not yet confirmed */
	CHILD_RUNNING,  /* exec succeeded */
	CHILD_BACKOFF,  /* exited; waiting for the respawn timer */
	CHILD_STOPPING, /* SIGTERM sent, waiting for the exit */
	CHILD_GAVE_UP,  /* exited with EXIT_CONFIG (or failed to exec): not restarted */
};

struct child;

/* What happened to a child, for the supervisor's policy. */
struct child_cb {
	void (*running)(struct child *, void *arg);
	/* the process is gone; code = exit status (or 128 + signal). stopping: we asked */
	void (*exited)(struct child *, int code, int stopping, void *arg);
};

/* argv is copied (NULL-terminated); argv[0] is the executable path */
struct child *child_new(
    struct event_base *, const char *name, char *const argv[], const struct child_cb *, void *arg);
void child_free(struct child *);
int child_spawn(struct child *);                    /* 0 or -1 (logged) */
void child_schedule_restart(struct child *);        /* BACKOFF, respawn after the delay */
void child_stop(struct child *);                    /* SIGTERM (or cancel a pending restart) */
void child_kill(struct child *);                    /* SIGKILL if alive */
int child_reap(struct child *, pid_t, int wstatus); /* 1 if pid was this child's */
void child_give_up(struct child *);
enum child_state child_state(const struct child *);
const char *child_name(const struct child *);
pid_t child_pid(const struct child *);
int child_alive(const struct child *); /* a process exists */
const char *child_state_name(enum child_state);

#endif
