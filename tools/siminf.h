/*
 * siminf.h: the simulator's list + watch of one resource (VMs now, VMIs later). Paged list,
 * then a watch from the list's resourceVersion with bookmarks; a 410 relists, errors back
 * off (0.5 s doubling to 30 s). Objects are handed out borrowed (take a reference to keep).
 */
#ifndef VMPOOL_SIMINF_H
#define VMPOOL_SIMINF_H

#include <event2/event.h>
#include <json-c/json.h>

#include "kube.h"

struct siminf_cb {
	void (*list_begin)(void *arg); /* a relist starts: mark everything unseen */
	void (*upsert)(json_object *obj, void *arg);
	void (*remove)(json_object *obj, void *arg);
	void (*list_end)(void *arg); /* relist complete: drop what was not seen */
};

struct siminf;
/* collection is the collection path, e.g. /apis/kubevirt.io/v1/virtualmachines */
struct siminf *siminf_new(struct event_base *, struct kube *, const char *what,
    const char *collection, const struct siminf_cb *, void *arg);
void siminf_start(struct siminf *);
void siminf_free(struct siminf *);

#endif
