/*
 * managers.h: who manages what, from metadata.managedFields, kept small. The watcher drops
 * managedFields (large, and nothing else needs them) and keeps this projection instead, as
 * metadata.vmpooldManagers (a key the API does not know: vmpoold never writes an object's
 * metadata back whole, so it never reaches the API):
 *   {"owners": [MANAGER...],  field managers owning an entry of metadata.ownerReferences
 *    "status": [MANAGER...]}  field managers owning a field under status
 * Each list is sorted, without duplicates, and left out when empty; the key is left out
 * when both are. A field manager is, by default, the product token of the writer's
 * User-Agent ("vmpoold" for vmpoold, "kubectl-create", "virt-controller", ...).
 */
#ifndef VMPOOL_MANAGERS_H
#define VMPOOL_MANAGERS_H

#include <json-c/json.h>

#define MANAGERS_KEY    "vmpooldManagers"
#define MANAGERS_OWNERS "owners"
#define MANAGERS_STATUS "status"

/* replaces meta's managedFields by the projection; a malformed entry is skipped */
void managers_project(json_object *meta);
/* the names in obj's metadata.vmpooldManagers.<which> (an array), or NULL */
json_object *managers_list(json_object *obj, const char *which);

#endif
