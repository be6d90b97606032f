/*
 * evpace.c: batch events started at most once per pace (evpace.h).
 */
#include "evpace.h"
#include "timeutil.h"

void evpace_kick(struct event *ev, double last, double pace)
{
	struct timeval tv;
	double wait;

	if (event_pending(ev, EV_TIMEOUT, NULL))
		return;
	wait = last + pace - now_mono();
	if (wait > 0) {
		tv = secs_to_tv(wait);
		event_add(ev, &tv);
	} else
		event_active(ev, EV_TIMEOUT, 0);
}
