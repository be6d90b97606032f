/*
 * vmindex.h: a subscriber's indexes over the mirror's VirtualMachines, kept from the
 * mirror's changed() callback, so that work for one pool costs what that pool holds, not
 * what its namespace holds (the planner's passes, vmpool-status's counts): the VMs by
 * controlling pool, the detached VMs that still carry the pool finalizer, every VM by uid.
 * The lists come in store order and are allocated (free them); the VMs are borrowed until
 * the next update.
 */
#ifndef VMPOOL_VMINDEX_H
#define VMPOOL_VMINDEX_H

#include <json-c/json.h>
#include <stddef.h>

struct vmindex;
struct vmindex *vmindex_new(void);
void vmindex_free(struct vmindex *);
void vmindex_update(struct vmindex *, json_object *old, json_object *new_);
size_t vmindex_owned(struct vmindex *, const char *ns, const char *pool_uid, json_object ***vms);
size_t vmindex_detached(struct vmindex *, const char *ns, json_object ***vms);
json_object *vmindex_uid(struct vmindex *, const char *uid); /* any namespace */
size_t vmindex_count(const struct vmindex *);

#endif
