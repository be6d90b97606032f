/*
 * stopsig.h: SIGTERM and SIGINT end the caller's event loop, with a log line; the clean stop
 * every program shares (the loop returns, main frees what it holds, exit 0).
 */
#ifndef VMPOOL_STOPSIG_H
#define VMPOOL_STOPSIG_H

#include <event2/event.h>

struct stopsig;
/* fatalx if libevent cannot create the signal events (start-up only) */
struct stopsig *stopsig_new(struct event_base *);
void stopsig_free(struct stopsig *);

#endif
