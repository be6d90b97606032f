/*
 * vmupdate.h: the body of a VM update (SPEC 11.3). The planner holds VMs projected
 * (common/resource.h) and so cannot send one whole: it sends what the update replaces, the
 * pool's template indexed for this VM (labels, annotations, spec) with the identity it
 * decided on. The actuator reads the VM (GET) at that moment and PUTs this merge, guarded by
 * the resourceVersion it read: every field the projection dropped (a firmware serial, a
 * field of a newer KubeVirt, another writer's metadata) survives the update.
 */
#ifndef VMPOOL_VMUPDATE_H
#define VMPOOL_VMUPDATE_H

#include <json-c/json.h>
#include <stddef.h>

/*
 * The VM to PUT (a new object): live (the VM as just read) with metadata.labels,
 * metadata.annotations and spec replaced by built's (absent in built: removed), the
 * firmware uuid and serial live has (non-empty) kept in the new spec, status left out (the
 * API ignores it on this path) and live's resourceVersion. NULL with err filled when live is
 * no VM or not the VM built was planned for (another uid: it was deleted and made again).
 */
json_object *vmupdate_merge(json_object *live, json_object *built, char *err, size_t errlen);

#endif
