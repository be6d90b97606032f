/*
 * evpace.h: a batch event that runs at once, or once pace seconds have passed since the
 * last batch started (the dirty-pool batches of the planner and vmpool-status: marks made
 * in between coalesce into it).
 */
#ifndef VMPOOL_EVPACE_H
#define VMPOOL_EVPACE_H

#include <event2/event.h>

/* ev (an event without fd) runs on the next loop turn if last + pace has passed, else when
 * it has; nothing if it is already active or due. last: now_mono() of the last batch */
void evpace_kick(struct event *ev, double last, double pace);

#endif
