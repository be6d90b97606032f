/*
 * vmindex.c: a subscriber's indexes over the mirror's VirtualMachines (vmindex.h), used by
 * the planner and vmpool-status. Fed from the mirror's
 * changed() callback, which sees every change of the store (SYNC_END removals included):
 *
 *   - per namespace and pool uid, the VMs whose controller reference is that pool;
 *   - per namespace, the VMs without a controller reference that carry the pool finalizer
 *     (what plan.c's detached-VM rule looks at; usually none);
 *   - by uid, every VM (expectations of deletes and patches are keyed by uid).
 *
 * Each entry holds a reference to the VM it last saw, so what the index hands out stays
 * valid whatever the store does. Each entry also carries a sequence number taken when its
 * name appeared in the store: the store walks a namespace in that order (an update keeps
 * the name's place, a re-created name goes last), and the lists come out sorted by it, so
 * a pass sees its VMs in the order a walk of the namespace would give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "pmap.h"
#include "proto.h"
#include "vmindex.h"
#include "xmalloc.h"

struct vmlist;

struct vment {
	json_object *vm; /* a reference held */
	uint64_t seq;    /* store order within the namespace */
	char *uid;       /* the uid it is filed under in byuid, or NULL */
	struct vmlist *list;
	struct vment *prev, *next;
};

struct vmlist {
	char *key; /* "o/<ns>/<pool uid>" or "d/<ns>" */
	struct vment *head, *tail;
	size_t n;
};

struct vmindex {
	struct pmap *byname; /* "<ns>/<name>" -> struct vment (owned) */
	struct pmap *byuid;  /* VM uid -> struct vment (borrowed) */
	struct pmap *lists;  /* list key -> struct vmlist (owned) */
	uint64_t seq;
};

static void vmindex_list_free(void *p)
{
	struct vmlist *l = p;

	if (l == NULL)
		return;
	free(l->key);
	free(l);
}

static void vmindex_ent_free(void *p)
{
	struct vment *e = p;

	if (e == NULL)
		return;
	json_object_put(e->vm);
	free(e->uid);
	free(e);
}

struct vmindex *vmindex_new(void)
{
	struct vmindex *x = xcalloc(1, sizeof(*x));

	x->byname = pmap_new(vmindex_ent_free);
	x->byuid = pmap_new(NULL);
	x->lists = pmap_new(vmindex_list_free);
	return x;
}

void vmindex_free(struct vmindex *x)
{
	if (x == NULL)
		return;
	pmap_free(x->byuid);
	pmap_free(x->lists);
	pmap_free(x->byname);
	free(x);
}

static void vmindex_name_key(json_object *vm, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", obj_namespace(vm), obj_name(vm) ? obj_name(vm) : "");
}

/* the list a VM belongs on, into out; 0 if none */
static int vmindex_list_key(json_object *vm, char *out, size_t outlen)
{
	json_object *ref = obj_controller_ref(vm);
	const char *kind, *uid;

	if (ref == NULL) {
		if (!obj_has_finalizer(vm, POOL_FINALIZER))
			return 0;
		snprintf(out, outlen, "d/%s", obj_namespace(vm));
		return 1;
	}
	kind = obj_str(ref, "kind");
	uid = obj_str(ref, "uid");
	if (kind == NULL || uid == NULL || strcmp(kind, POOL_KIND) != 0)
		return 0;
	snprintf(out, outlen, "o/%s/%s", obj_namespace(vm), uid);
	return 1;
}

static void vmindex_unlink(struct vmindex *x, struct vment *e)
{
	struct vmlist *l = e->list;

	if (l == NULL)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
	e->list = NULL;
	if (--l->n == 0)
		pmap_del(x->lists, l->key);
}

static void vmindex_link(struct vmindex *x, struct vment *e, const char *key)
{
	struct vmlist *l = pmap_get(x->lists, key);

	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->key = xstrdup(key);
		pmap_put(x->lists, key, l);
	}
	e->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	l->n++;
	e->list = l;
}

/* files e under the list vm belongs on, moving it if that changed */
static void vmindex_refile(struct vmindex *x, struct vment *e, json_object *vm)
{
	char key[1024];
	int has = vmindex_list_key(vm, key, sizeof(key));

	if (e->list != NULL && has && strcmp(e->list->key, key) == 0)
		return;
	vmindex_unlink(x, e);
	if (has)
		vmindex_link(x, e, key);
}

static void vmindex_set_uid(struct vmindex *x, struct vment *e, const char *uid)
{
	if (e->uid != NULL && uid != NULL && strcmp(e->uid, uid) == 0)
		return;
	if (e->uid != NULL && pmap_get(x->byuid, e->uid) == e)
		pmap_take(x->byuid, e->uid);
	free(e->uid);
	e->uid = NULL;
	if (uid == NULL)
		return;
	e->uid = xstrdup(uid);
	pmap_put(x->byuid, uid, e);
}

static void vmindex_remove(struct vmindex *x, const char *key)
{
	struct vment *e = pmap_get(x->byname, key);

	if (e == NULL)
		return;
	vmindex_unlink(x, e);
	vmindex_set_uid(x, e, NULL);
	pmap_del(x->byname, key);
}

/*
 * One change of the store, as the mirror reports it: old NULL means the name is new to
 * the store (it goes last in its namespace), new_ NULL that it left the store.
 */
void vmindex_update(struct vmindex *x, json_object *old, json_object *new_)
{
	char okey[1024], nkey[1024];
	struct vment *e;

	if (old != NULL)
		vmindex_name_key(old, okey, sizeof(okey));
	if (new_ == NULL) {
		if (old != NULL)
			vmindex_remove(x, okey);
		return;
	}
	vmindex_name_key(new_, nkey, sizeof(nkey));
	if (old != NULL && strcmp(okey, nkey) != 0) {
		vmindex_remove(x, okey);
		old = NULL;
	}
	if ((e = pmap_get(x->byname, nkey)) == NULL) {
		e = xcalloc(1, sizeof(*e));
		pmap_put(x->byname, nkey, e);
		old = NULL;
	}
	if (old == NULL)
		e->seq = ++x->seq;
	json_object_get(new_);
	json_object_put(e->vm);
	e->vm = new_;
	vmindex_set_uid(x, e, obj_uid(new_));
	vmindex_refile(x, e, new_);
}

static int vmindex_cmp_seq(const void *a, const void *b)
{
	const struct vment *x = *(struct vment *const *)a, *y = *(struct vment *const *)b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* the VMs of a list in store order; *vms is allocated (free it) even when empty */
static size_t vmindex_collect(struct vmindex *x, const char *key, json_object ***vms)
{
	struct vmlist *l = pmap_get(x->lists, key);
	struct vment **ents, *e;
	size_t i, n = l != NULL ? l->n : 0;

	*vms = xcalloc(n + 1, sizeof(**vms));
	if (n == 0)
		return 0;
	ents = xcalloc(n, sizeof(*ents));
	for (i = 0, e = l->head; e != NULL && i < n; e = e->next)
		ents[i++] = e;
	qsort(ents, n, sizeof(*ents), vmindex_cmp_seq);
	for (i = 0; i < n; i++)
		(*vms)[i] = ents[i]->vm;
	free(ents);
	return n;
}

size_t vmindex_owned(struct vmindex *x, const char *ns, const char *pool_uid, json_object ***vms)
{
	char key[1024];

	snprintf(key, sizeof(key), "o/%s/%s", ns, pool_uid);
	return vmindex_collect(x, key, vms);
}

size_t vmindex_detached(struct vmindex *x, const char *ns, json_object ***vms)
{
	char key[1024];

	snprintf(key, sizeof(key), "d/%s", ns);
	return vmindex_collect(x, key, vms);
}

json_object *vmindex_uid(struct vmindex *x, const char *uid)
{
	struct vment *e = uid != NULL ? pmap_get(x->byuid, uid) : NULL;

	return e != NULL ? e->vm : NULL;
}

size_t vmindex_count(const struct vmindex *x)
{
	return pmap_count(x->byname);
}
