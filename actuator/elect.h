/*
 * elect.h: the actuator's leader election on a coordination.k8s.io Lease (elect.c, around
 * the pure common/lease.c). fn is told ELECT_SYNCED once the Lease was first read (or found
 * absent), ELECT_LEADING when this instance acquired it, ELECT_LOST when it must stop
 * writing at once (no renewal within the renew deadline, or the Lease names another holder).
 */
#ifndef VMPOOL_ELECT_H
#define VMPOOL_ELECT_H

#include <event2/event.h>

#include "lease.h"

struct elect;
enum elect_event { ELECT_SYNCED, ELECT_LEADING, ELECT_LOST };
typedef void (*elect_fn)(struct elect *, enum elect_event, void *arg);

/* starts electing at once; an unusable kubeconfig exits EXIT_CONFIG. The Lease's name is
 * cfg->name, else lease_default_name(pool_selector); its namespace cfg->ns, else the pod's
 * (in a cluster), else "default". The identity (host name and a random suffix) is kept in
 * run_dir, so an actuator restarted there renews its predecessor's Lease at once. */
struct elect *elect_new(struct event_base *, const struct lease_cfg *, const char *kubeconfig,
    const char *pool_selector, const char *run_dir, elect_fn, void *arg);
int elect_leading(const struct elect *);
const char *elect_identity_of(const struct elect *);
const char *elect_holder(const struct elect *); /* the observed holder, "" if none */
const char *elect_name(const struct elect *);
/* "<namespace>/<name>" of the Lease */
const char *elect_lease(const struct elect *);
/* clean exit: a leader releases the Lease, running the loop for at most wait seconds */
void elect_release(struct elect *, double wait);
void elect_free(struct elect *);

#endif
