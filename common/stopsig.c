/* stopsig.c: SIGTERM / SIGINT -> event_base_loopexit, shared by every program. */
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "stopsig.h"
#include "xmalloc.h"

struct stopsig {
	struct event_base *base;
	struct event *term, *intr;
};

static void stopsig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct stopsig *s = arg;

	log_info(NULL, "signal %d: exiting", (int)sig);
	event_base_loopexit(s->base, NULL);
}

struct stopsig *stopsig_new(struct event_base *base)
{
	struct stopsig *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->term = evsignal_new(base, SIGTERM, stopsig_cb, s);
	s->intr = evsignal_new(base, SIGINT, stopsig_cb, s);
	if (s->term == NULL || s->intr == NULL || evsignal_add(s->term, NULL) == -1 ||
	    evsignal_add(s->intr, NULL) == -1)
		fatalx("cannot set up the signal events");
	return s;
}

/* At the end of the program: from here on SIGTERM and SIGINT are ignored, not fatal. A
 * program leaving its loop for another reason (vmpool-status when its actuator gives the
 * Lease up) can get kubelet's SIGTERM meanwhile; that must not turn its clean exit into
 * death by signal (exit 143). */
void stopsig_free(struct stopsig *s)
{
	sigset_t set, old;

	if (s == NULL)
		return;
	/* blocked while libevent puts the old (default) handlers back, then ignored: a signal
	 * pending meanwhile is discarded */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &old);
	event_free(s->term);
	event_free(s->intr);
	free(s);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	sigprocmask(SIG_SETMASK, &old, NULL);
}
