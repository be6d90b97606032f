/* proto.c: names of the protocol's message types, for logs. */
#include <stddef.h>

#include "proto.h"

static const struct {
	int type;
	const char *name;
} proto_names[] = {
    {MSG_HELLO, "HELLO"},
    {MSG_SYNC_BEGIN, "SYNC_BEGIN"},
    {MSG_SYNC_END, "SYNC_END"},
    {MSG_OBJ_SET, "OBJ_SET"},
    {MSG_OBJ_DELETE, "OBJ_DELETE"},
    {MSG_ACTION, "ACTION"},
    {MSG_RESULT, "RESULT"},
    {MSG_LEADER, "LEADER"},
    {MSG_WRITTEN, "WRITTEN"},
    {MSG_PSYNC_BEGIN, "PSYNC_BEGIN"},
    {MSG_PSYNC_END, "PSYNC_END"},
    {MSG_POOL_RESULT, "POOL_RESULT"},
    {MSG_POOL_FORGET, "POOL_FORGET"},
};

const char *msg_type_name(int type)
{
	size_t i;

	for (i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++) {
		if (proto_names[i].type == type)
			return proto_names[i].name;
	}
	return "UNKNOWN";
}
