/*
 * foreign.c: the managers of a pool's status and of its VMs' owner references that are not
 * vmpoold, as one message (foreign.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "foreign.h"
#include "managers.h"
#include "obj.h"
#include "statuscalc.h"
#include "xmalloc.h"

struct foreign {
	const char *names[FOREIGN_MAX];
	char *where[FOREIGN_MAX];
	size_t n;
	size_t more; /* managers past FOREIGN_MAX */
};

static int foreign_known(const struct foreign *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->names[i], name) == 0)
			return 1;
	return 0;
}

/* records each name of list (a managers array) that is not self, seen at where */
static void foreign_scan(struct foreign *f, json_object *list, const char *self, const char *where)
{
	size_t i, n = list != NULL ? json_object_array_length(list) : 0;
	json_object *v;
	const char *name;

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(list, i);
		if (!json_object_is_type(v, json_type_string))
			continue;
		name = json_object_get_string(v);
		if (name == NULL || *name == '\0' || strcmp(name, self) == 0 ||
		    foreign_known(f, name))
			continue;
		if (f->n == FOREIGN_MAX) {
			f->more++;
			continue;
		}
		f->names[f->n] = name;
		f->where[f->n++] = xstrdup(where);
	}
}

static char *foreign_render(struct foreign *f)
{
	char *msg = xstrdup("other field managers act on this pool:"), *next;
	size_t i;

	for (i = 0; i < f->n; i++) {
		xasprintf(
		    &next, "%s%s \"%s\" (%s)", msg, i > 0 ? "," : "", f->names[i], f->where[i]);
		free(msg);
		msg = next;
		free(f->where[i]);
	}
	if (f->more > 0) {
		xasprintf(&next, "%s and %zu more", msg, f->more);
		free(msg);
		msg = next;
	}
	return msg;
}

char *foreign_message(json_object *pool, json_object **vms, size_t nvms, const char *self)
{
	struct foreign f;
	char where[600];
	size_t i;

	memset(&f, 0, sizeof f);
	foreign_scan(&f, managers_list(pool, MANAGERS_STATUS), self, "status");
	for (i = 0; i < nvms; i++) {
		if (!statuscalc_owns(pool, vms[i]))
			continue;
		snprintf(where, sizeof where, "owner reference of VM %s/%s", obj_namespace(vms[i]),
		    obj_name(vms[i]) != NULL ? obj_name(vms[i]) : "");
		foreign_scan(&f, managers_list(vms[i], MANAGERS_OWNERS), self, where);
	}
	if (f.n == 0)
		return NULL;
	return foreign_render(&f);
}
