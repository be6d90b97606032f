/*
 * foreign.h: another controller acting on a pool vmpoold manages (issue 7): field managers
 * other than vmpoold's own that own an owner reference of a VM the pool controls, or a field
 * of the pool's status (from the projection of common/managers.h). Pure.
 */
#ifndef VMPOOL_FOREIGN_H
#define VMPOOL_FOREIGN_H

#include <json-c/json.h>
#include <stddef.h>

/* vmpoold's field manager: the product token of its User-Agent (common/kube.c) */
#define FOREIGN_SELF "vmpoold"
#define FOREIGN_MAX  4 /* managers named in a message */

/*
 * A message naming each other manager once, with where it was seen first, e.g.
 *   other field managers act on this pool: "virt-controller" (status),
 *   "kubectl-create" (owner reference of VM ns/p-7)
 * or NULL when there is none. vms: candidates; only those the pool controls count.
 * New string.
 */
char *foreign_message(json_object *pool, json_object **vms, size_t nvms, const char *self);

#endif
