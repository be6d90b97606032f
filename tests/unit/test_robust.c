/*
 * test_robust.c: malformed input through the pure entry points. Pools and VMs come from the
 * API server with parts nobody validates (the template is kept whole, v1alpha1 objects come
 * from other tools) and the watcher forwards whatever JSON it gets, so every stage must
 * survive any shape. Realistic objects are mutated deterministically: every path replaced
 * by each of a set of nasty values and deleted, then seeded random multi-point mutants, plus
 * hand-written cases. Each mutant goes through the planner (the store's lists, plan_pool, vmbuild,
 * expectations), the status computation, selectors, obj_* and the mirror; random and
 * mutated bytes go through the codec. Checks: no crash, no leak, no UBSan report (the ASan
 * build), inputs left untouched, and sane results (no scaling with an unusable selector,
 * actions well formed, a status always computed and stable once written).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include "../../planner/planner.h"
#include "../../planner/policy.h"
#include "../../status/statuscalc.h"
#include "codec.h"
#include "log.h"
#include "managers.h"
#include "mirror.h"
#include "obj.h"
#include "proto.h"
#include "selector.h"
#include "store.h"
#include "xmalloc.h"

#define NS         "rb"
#define PNAME      "vm-pool-cirros"
#define PUID       "pool-uid"
#define BURST      3
#define NOW        1000.0
#define MAX_RANDOM 400 /* random multi-point mutants per object family */
#define NVALS      12  /* replacement values, the last one meaning "delete" */
#define VAL_DELETE (NVALS - 1)
#define MAX_VMS    16

/* what is being checked, for failure messages */
static char ctx[512];

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail_msg("%s:%d: %s failed; mutant: %s", __FILE__, __LINE__, #cond, ctx);  \
	} while (0)

static unsigned int rng_state = 0x2545f491u;

static unsigned int rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static json_object *js(const char *s)
{
	json_object *o = json_tokener_parse(s);

	if (o == NULL && strcmp(s, "null") != 0)
		fail_msg("bad test json: %s", s);
	return o;
}

/* ---- base objects ---- */

static const char base_pool[] =
    "{\"apiVersion\":\"pool.kubevirt.io/v1alpha1\",\"kind\":\"VirtualMachinePool\","
    "\"metadata\":{\"name\":\"" PNAME "\",\"namespace\":\"" NS "\",\"uid\":\"" PUID "\","
    "\"resourceVersion\":\"100\",\"generation\":3,\"labels\":{\"team\":\"a\"},"
    "\"finalizers\":[\"" POOL_FINALIZER "\"],\"vmpooldManagers\":{\"status\":[\"vmpoold\"]}},"
    "\"spec\":{\"replicas\":3,\"paused\":false,"
    "\"selector\":{\"matchLabels\":{\"kubevirt.io/vmpool\":\"" PNAME "\"},"
    "\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"web\",\"db\"]},"
    "{\"key\":\"gone\",\"operator\":\"DoesNotExist\"}]},"
    "\"nameGeneration\":{\"appendIndexToConfigMapRefs\":true,\"appendIndexToSecretRefs\":true},"
    "\"virtualMachineTemplate\":{\"metadata\":{\"creationTimestamp\":null,"
    "\"labels\":{\"kubevirt.io/vmpool\":\"" PNAME "\",\"tier\":\"web\"},"
    "\"annotations\":{\"note\":\"n\"}},"
    "\"spec\":{\"runStrategy\":\"Always\","
    "\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"dv\"},\"spec\":{\"storage\":{}}}],"
    "\"template\":{\"metadata\":{\"labels\":{\"kubevirt.io/vmpool\":\"" PNAME "\"}},"
    "\"spec\":{\"domain\":{\"devices\":{\"disks\":[{\"disk\":{\"bus\":\"virtio\"},"
    "\"name\":\"containerdisk\"}]},\"resources\":{\"requests\":{\"memory\":\"128Mi\"}}},"
    "\"terminationGracePeriodSeconds\":0,\"volumes\":["
    "{\"containerDisk\":{\"image\":\"kubevirt/cirros-container-disk-demo:latest\"},"
    "\"name\":\"containerdisk\"},"
    "{\"dataVolume\":{\"name\":\"dv\"},\"name\":\"d\"},"
    "{\"persistentVolumeClaim\":{\"claimName\":\"dv\"},\"name\":\"p\"},"
    "{\"configMap\":{\"name\":\"cm\"},\"name\":\"c\"},"
    "{\"secret\":{\"secretName\":\"s\"},\"name\":\"s\"},"
    "{\"cloudInitNoCloud\":{\"secretRef\":{\"name\":\"ci\"},"
    "\"networkDataSecretRef\":{\"name\":\"nd\"}},\"name\":\"ci\"}]}}}}},"
    "\"status\":{\"replicas\":2,\"readyReplicas\":1,\"labelSelector\":\"x\","
    "\"conditions\":[{\"type\":\"ReplicaFailure\",\"status\":\"True\","
    "\"reason\":\"FailedScaleOut\",\"message\":\"m\","
    "\"lastTransitionTime\":\"2024-01-01T00:00:00Z\"}]}}";

#define OWNREF(uid)                                                                                \
	"\"ownerReferences\":[{\"apiVersion\":\"pool.kubevirt.io/v1beta1\","                       \
	"\"kind\":\"VirtualMachinePool\",\"name\":\"" PNAME "\",\"uid\":\"" uid "\","              \
	"\"controller\":true,\"blockOwnerDeletion\":true}],"
#define FIN    "\"finalizers\":[\"" POOL_FINALIZER "\",\"other.io/keep\"],"
#define LABELS "\"labels\":{\"kubevirt.io/vmpool\":\"" PNAME "\",\"tier\":\"web\"}"
#define READY(s)                                                                                   \
	",\"status\":{\"ready\":true,\"conditions\":[{\"type\":\"Ready\",\"status\":\"" s          \
	"\"},{\"type\":\"Paused\",\"status\":\"False\"}]}"

static const char *base_vms[] = {
    /* owned, ready */
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{"
    "\"name\":\"" PNAME "-0\",\"namespace\":\"" NS "\",\"uid\":\"vm-0\","
    "\"resourceVersion\":\"5\",\"vmpooldManagers\":{\"owners\":[\"vmpoold\"]}," OWNREF(PUID)
        FIN LABELS "},\"spec\":{\"runStrategy\":"
                   "\"Always\"}" READY("True") "}",
    /* owned, not ready, a second (non-controller) owner reference */
    "{\"metadata\":{\"name\":\"" PNAME "-1\",\"namespace\":\"" NS "\",\"uid\":\"vm-1\","
    "\"resourceVersion\":\"6\",\"managedFields\":[{\"manager\":\"vmpoold\",\"operation\":"
    "\"Update\","
    "\"fieldsV1\":{\"f:metadata\":{\"f:ownerReferences\":{\".\":{}}}}},{\"manager\":\"sim\","
    "\"fieldsV1\":{\"f:status\":{\"f:ready\":{}}}}],"
    "\"ownerReferences\":[{\"kind\":\"Other\",\"name\":\"o\","
    "\"uid\":\"o-1\"},{\"apiVersion\":\"pool.kubevirt.io/v1alpha1\",\"kind\":"
    "\"VirtualMachinePool\",\"name\":\"" PNAME "\",\"uid\":\"" PUID "\",\"controller\":true}],"
    "\"finalizers\":[\"" POOL_FINALIZER "\"]," LABELS "}" READY("False") "}",
    /* owned, terminating */
    "{\"metadata\":{\"name\":\"" PNAME "-2\",\"namespace\":\"" NS "\",\"uid\":\"vm-2\","
    "\"resourceVersion\":\"7\",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"," OWNREF(PUID)
        FIN LABELS "}}",
    /* owned, labels no longer match: released */
    "{\"metadata\":{\"name\":\"" PNAME "-3\",\"namespace\":\"" NS "\",\"uid\":\"vm-3\","
    "\"resourceVersion\":\"8\"," OWNREF(PUID) FIN "\"labels\":{\"kubevirt.io/vmpool\":\"" PNAME
                                                  "\",\"tier\":\"other\"}}}",
    /* detached by hand, still carrying the finalizer */
    "{\"metadata\":{\"name\":\"loose\",\"namespace\":\"" NS "\",\"uid\":\"vm-4\","
    "\"resourceVersion\":\"9\"," FIN LABELS "}}",
    /* another pool's VM holding index 5's name */
    "{\"metadata\":{\"name\":\"" PNAME "-5\",\"namespace\":\"" NS "\",\"uid\":\"vm-5\","
    "\"resourceVersion\":\"10\"," OWNREF("other-uid") LABELS "}}",
};
#define NBASE_VMS (sizeof(base_vms) / sizeof(base_vms[0]))

/* ---- replacement values and paths ---- */

static json_object *mkval(int i)
{
	char big[301];

	switch (i) {
	case 0:
		return NULL; /* json null */
	case 1:
		return json_object_new_boolean(1);
	case 2:
		return json_object_new_int(0);
	case 3:
		return json_object_new_int(-1);
	case 4:
		return json_object_new_int64(1LL << 40);
	case 5:
		return json_object_new_double(1.5);
	case 6:
		return json_object_new_string("");
	case 7:
		return json_object_new_string("x");
	case 8:
		return json_object_new_array();
	case 9:
		return json_object_new_object();
	default:
		memset(big, 'a', 300);
		big[300] = '\0';
		return json_object_new_string(big);
	}
}

/* every path of o as an array of steps (string keys, int indices), root included */
static void collect(json_object *o, json_object *prefix, json_object *out)
{
	json_object *p;
	size_t i, n;

	json_object_array_add(out, obj_copy(prefix));
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			p = obj_copy(prefix);
			json_object_array_add(p, json_object_new_string(k));
			collect(v, p, out);
			json_object_put(p);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			p = obj_copy(prefix);
			json_object_array_add(p, json_object_new_int((int)i));
			collect(json_object_array_get_idx(o, i), p, out);
			json_object_put(p);
		}
	}
}

static json_object *paths_of(json_object *o)
{
	json_object *out = json_object_new_array(), *root = json_object_new_array();

	collect(o, root, out);
	json_object_put(root);
	return out;
}

static void path_str(json_object *path, char *buf, size_t len)
{
	size_t i, n = json_object_array_length(path), off = 0;
	json_object *s;

	buf[0] = '\0';
	for (i = 0; i < n && off < len; i++) {
		s = json_object_array_get_idx(path, i);
		off += snprintf(buf + off, len - off, "%s%s", i ? "." : "",
		    json_object_is_type(s, json_type_string) ? json_object_get_string(s)
		                                             : json_object_to_json_string(s));
	}
	if (n == 0)
		snprintf(buf, len, "(root)");
}

static json_object *step(json_object *o, json_object *s)
{
	json_object *v = NULL;
	int idx;

	if (json_object_is_type(s, json_type_string)) {
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, json_object_get_string(s), &v))
			return NULL;
		return v;
	}
	idx = json_object_get_int(s);
	if (!json_object_is_type(o, json_type_array) || idx < 0 ||
	    (size_t)idx >= json_object_array_length(o))
		return NULL;
	return json_object_array_get_idx(o, idx);
}

/* replaces (or deletes) the value at path in root, which it consumes; returns the new root */
static json_object *mutate(json_object *root, json_object *path, int vi)
{
	size_t i, n = json_object_array_length(path);
	json_object *parent = root, *last;
	int idx;

	if (n == 0) {
		json_object_put(root);
		return vi == VAL_DELETE ? NULL : mkval(vi);
	}
	for (i = 0; i + 1 < n && parent != NULL; i++)
		parent = step(parent, json_object_array_get_idx(path, i));
	last = json_object_array_get_idx(path, n - 1);
	if (parent == NULL)
		return root;
	if (json_object_is_type(last, json_type_string) &&
	    json_object_is_type(parent, json_type_object)) {
		if (vi == VAL_DELETE)
			json_object_object_del(parent, json_object_get_string(last));
		else
			json_object_object_add(parent, json_object_get_string(last), mkval(vi));
	} else if (json_object_is_type(parent, json_type_array)) {
		idx = json_object_get_int(last);
		if (idx < 0 || (size_t)idx >= json_object_array_length(parent))
			return root;
		if (vi == VAL_DELETE)
			json_object_array_del_idx(parent, (size_t)idx, 1);
		else
			json_object_array_put_idx(parent, (size_t)idx, mkval(vi));
	}
	return root;
}

static const char *val_name(int vi)
{
	static const char *names[NVALS] = {"null", "true", "0", "-1", "2^40", "1.5", "\"\"",
	    "\"x\"", "[]", "{}", "300 chars", "deleted"};

	return names[vi];
}

/* ---- the planner ---- */

struct scen {
	json_object *pool;
	json_object *vms[MAX_VMS];
	size_t nvms;
	json_object *rev; /* the pool's current revision, as the cache would show it */
};

static json_object *scen_get(const char *kind, const char *ns, const char *name, void *arg)
{
	struct scen *s = arg;

	CHECK(kind != NULL && ns != NULL && name != NULL);
	if (s->rev != NULL && strcmp(kind, KIND_REV) == 0 && strcmp(obj_name(s->rev), name) == 0)
		return s->rev;
	return NULL;
}

static int scen_name_used(const char *ns, const char *name, void *arg)
{
	struct scen *s = arg;
	const char *n;
	size_t i;

	CHECK(ns != NULL && name != NULL);
	for (i = 0; i < s->nvms; i++) {
		n = obj_name(s->vms[i]);
		if (n != NULL && strcmp(obj_namespace(s->vms[i]), ns) == 0 && strcmp(n, name) == 0)
			return 1;
	}
	return 0;
}

/* 1 if the pool's selector parses and matches its template labels */
static int selector_usable(json_object *pool)
{
	struct selector *sel;
	char err[256];
	int ok;

	if ((sel = selector_parse(obj_path(pool, "spec.selector"), err, sizeof(err))) == NULL) {
		CHECK(err[0] != '\0');
		return 0;
	}
	ok = selector_matches(sel, obj_path(pool, "spec.virtualMachineTemplate.metadata.labels"));
	selector_free(sel);
	return ok;
}

/* the bytes the planner would send survive the codec and JSON text */
static void check_wire(json_object *body)
{
	struct buf b = {0};
	json_object *back;
	char err[128];

	CHECK(codec_value_pack(&b, body) == 0);
	back = codec_value_unpack(b.data, b.len, err, sizeof(err));
	CHECK(back != NULL && obj_equal(back, body));
	json_object_put(back);
	buf_clear(&b);
	back = json_tokener_parse(obj_json(body));
	CHECK(back != NULL && obj_equal(back, body));
	json_object_put(back);
}

static int op_is(json_object *body, const char *op)
{
	const char *s = obj_str(body, "op");

	return s != NULL && strcmp(s, op) == 0;
}

static void check_patch(json_object *patch)
{
	size_t i, n;

	CHECK(json_object_is_type(patch, json_type_array));
	n = json_object_array_length(patch);
	CHECK(n > 0);
	for (i = 0; i < n; i++) {
		json_object *op = json_object_array_get_idx(patch, i);

		CHECK(obj_str(op, "op") != NULL && obj_str(op, "path") != NULL);
		CHECK(obj_str(op, "path")[0] == '/');
	}
}

static void check_event(json_object *ev)
{
	CHECK(obj_str(ev, "type") != NULL && obj_str(ev, "reason") != NULL &&
	      obj_str(ev, "message") != NULL);
}

static void check_create(struct scen *s, struct plan_act *a)
{
	const char *name = obj_str(a->body, "name");
	json_object *vm = obj_path(a->body, "body");

	CHECK(a->kind == EXPECT_CREATE && a->ekey != NULL && strcmp(a->ekey, name) == 0);
	CHECK(!scen_name_used(obj_namespace(s->pool), name, s));
	CHECK(json_object_is_type(vm, json_type_object));
	CHECK(obj_name(vm) != NULL && strcmp(obj_name(vm), name) == 0);
	CHECK(strcmp(obj_namespace(vm), obj_namespace(s->pool)) == 0);
	CHECK(obj_controlled_by(vm, POOL_KIND, obj_uid(s->pool)));
	CHECK(obj_has_finalizer(vm, POOL_FINALIZER));
	CHECK(json_object_is_type(obj_path(vm, "spec"), json_type_object));
	check_event(obj_path(a->body, "event"));
}

static void check_delete(struct scen *s, struct plan_act *a, json_object **owned, size_t n)
{
	const char *uid = obj_str(a->body, "uid");
	size_t i;
	int found = 0;

	CHECK(a->kind == EXPECT_DELETE && uid != NULL && a->ekey != NULL);
	CHECK(strcmp(a->ekey, uid) == 0);
	for (i = 0; i < n; i++) {
		if (obj_uid(owned[i]) != NULL && strcmp(obj_uid(owned[i]), uid) == 0 &&
		    !obj_terminating(owned[i]))
			found = 1;
	}
	CHECK(found);
}

static void check_act(struct scen *s, struct plan_act *a, json_object **owned, size_t nowned)
{
	const char *name = obj_str(a->body, "name");

	CHECK(json_object_is_type(a->body, json_type_object));
	CHECK(name != NULL && name[0] != '\0');
	CHECK(obj_str(a->body, "namespace") != NULL &&
	      strcmp(obj_str(a->body, "namespace"), obj_namespace(s->pool)) == 0);
	CHECK(obj_str(a->body, "pool.uid") != NULL &&
	      strcmp(obj_str(a->body, "pool.uid"), obj_uid(s->pool)) == 0);
	if (op_is(a->body, ACT_CREATE_VM))
		check_create(s, a);
	else if (op_is(a->body, ACT_DELETE_VM))
		check_delete(s, a, owned, nowned);
	else if (op_is(a->body, ACT_PATCH_VM) || op_is(a->body, ACT_PATCH_POOL) ||
	         op_is(a->body, ACT_PATCH_VMI) || op_is(a->body, ACT_PATCH_PVC) ||
	         op_is(a->body, ACT_PATCH_DV)) {
		CHECK(a->kind == EXPECT_PATCH && a->ekey != NULL);
		check_patch(obj_path(a->body, "patch"));
	} else if (op_is(a->body, ACT_CREATE_REV)) {
		CHECK(
		    a->kind == EXPECT_CREATE_REV && a->ekey != NULL && strcmp(a->ekey, name) == 0);
		CHECK(obj_controlled_by(obj_path(a->body, "body"), POOL_KIND, obj_uid(s->pool)));
	} else if (op_is(a->body, ACT_UPDATE_VM)) {
		CHECK(a->kind == EXPECT_PATCH && a->ekey != NULL);
		CHECK(json_object_is_type(obj_path(a->body, "body"), json_type_object));
	} else if (op_is(a->body, ACT_DELETE_VMI) || op_is(a->body, ACT_DELETE_REV)) {
		CHECK(a->kind == EXPECT_DELETE && a->ekey != NULL);
	} else {
		CHECK(op_is(a->body, ACT_EVENT));
		check_event(obj_path(a->body, "event"));
	}
	check_wire(a->body);
}

static int policy_usable(json_object *pool)
{
	struct policy pol;
	char err[512];

	if (policy_parse(pool, &pol, err, sizeof(err)) == -1)
		return 0;
	policy_clear(&pol);
	return 1;
}

/* a pool plan_pool works on: a non-empty name and uid */
static int plannable(json_object *pool)
{
	const char *name = obj_name(pool), *uid = obj_uid(pool);

	return name != NULL && uid != NULL && *name != '\0' && *uid != '\0';
}

/* the pool's current revision in the picture, as the watcher shows it once created */
static void scen_revision(struct scen *s, struct plan_in *in)
{
	json_object_put(s->rev);
	s->rev = s->pool != NULL ? revision_build(s->pool) : NULL;
	if (s->rev != NULL)
		json_object_object_add(
		    obj_path(s->rev, "metadata"), "uid", json_object_new_string("rev-uid"));
	in->get = scen_get;
	in->get_arg = s;
	in->revs = s->rev != NULL ? &s->rev : NULL;
	in->nrevs = s->rev != NULL ? 1 : 0;
}

static void run_plan(struct scen *s, struct expect *exp, json_object **owned, size_t nowned,
    json_object **det, size_t ndet, const char *key, struct plan_out *out)
{
	struct plan_in in;

	memset(&in, 0, sizeof(in));
	scen_revision(s, &in);
	in.pool = s->pool;
	in.key = key;
	in.owned = owned;
	in.nowned = nowned;
	in.detached = det;
	in.ndetached = ndet;
	in.name_used = scen_name_used;
	in.name_arg = s;
	in.exp = exp;
	in.burst = BURST;
	in.create_room = -1;
	in.seed = 7;
	in.now = NOW;
	in.warned_gen = -1;
	memset(out, 0, sizeof(*out));
	if (plan_pool(&in, out) == -1) {
		CHECK(s->pool != NULL && !plannable(s->pool));
		CHECK(out->nacts == 0);
		return;
	}
	if (s->pool == NULL) {
		CHECK(out->forget && out->nacts == 0);
		return;
	}
	CHECK(plannable(s->pool));
}

/* the sanity of one pass's output */
static void check_out(struct scen *s, struct plan_out *out, json_object **owned, size_t nowned)
{
	long long replicas;
	int creates = 0, deletes = 0;
	size_t i;

	for (i = 0; i < out->nacts; i++) {
		check_act(s, &out->acts[i], owned, nowned);
		creates += op_is(out->acts[i].body, ACT_CREATE_VM);
		deletes += op_is(out->acts[i].body, ACT_DELETE_VM);
	}
	CHECK(creates == out->ncreate && deletes == out->ndelete);
	CHECK(out->ncreate <= BURST && out->ndelete <= BURST);
	if (!selector_usable(s->pool)) {
		CHECK(out->invalid && out->reason != NULL && out->message != NULL);
		CHECK(out->nacts <= 1 && (out->nacts == 0 || op_is(out->acts[0].body, ACT_EVENT)));
	} else if (!obj_terminating(s->pool) && obj_path(s->pool, "spec.replicas") != NULL &&
	           !json_object_is_type(obj_path(s->pool, "spec.replicas"), json_type_int)) {
		/* present but not an integer is not nil (1): the pass fails, nothing is done */
		CHECK(out->invalid && out->reason != NULL && out->message != NULL);
		CHECK(strcmp(out->reason, "InvalidReplicas") == 0 && out->nacts == 0);
	} else if (!obj_terminating(s->pool) && !policy_usable(s->pool)) {
		/* strategies that make no sense: reported, nothing touched */
		CHECK(out->invalid && strcmp(out->reason, "InvalidSpec") == 0 && out->nacts == 0);
	} else
		CHECK(!out->invalid);
	if (obj_terminating(s->pool))
		CHECK(out->ncreate == 0 && out->ndelete == 0);
	if (obj_int(s->pool, "spec.replicas", &replicas) == 0) {
		CHECK(out->ncreate <= (replicas > 0 ? replicas : 0));
		if (out->ndelete > 0)
			CHECK((long long)nowned > replicas);
	}
}

/* records the actions as planrun would, plans again (held back), settles, expires */
static void check_expect(struct scen *s, struct expect *exp, struct plan_out *out,
    json_object **owned, size_t nowned, json_object **det, size_t ndet, const char *key)
{
	struct plan_out again;
	size_t i;

	for (i = 0; i < out->nacts; i++)
		expect_add(exp, i + 1, key, out->acts[i].kind, out->acts[i].ekey,
		    obj_str(out->acts[i].body, "op"), out->acts[i].rv, NOW);
	run_plan(s, exp, owned, nowned, det, ndet, key, &again);
	if (out->ncreate + out->ndelete > 0) {
		CHECK(again.ncreate == 0 && again.ndelete == 0);
		CHECK(again.gated);
	}
	for (i = 0; i < again.nacts; i++) /* patches are not sent twice */
		CHECK(!op_is(again.acts[i].body, ACT_PATCH_VM) &&
		      !op_is(again.acts[i].body, ACT_PATCH_POOL));
	plan_out_clear(&again);
	expect_settle(exp, key, s->pool, s->vms, s->nvms, NOW + 1);
	for (i = 0; i < out->nacts; i++)
		expect_result(exp, i + 1, i % 2);
	expect_scale_pending(exp, key, NOW + 1);
	expect_link_lost(exp);
	expect_settle(exp, key, s->pool, s->vms, s->nvms, NOW + 2);
	expect_expire(exp, NOW + EXPECT_TTL + 10, NULL, NULL);
	CHECK(expect_count(exp) == 0);
}

/* the planner's lists of s's VMs, from a store as planrun gets them (each VM kept as its
 * own view); the store is the caller's to free */
static struct store *scen_lists(struct scen *s, const char *ns, const char *uid,
    json_object ***owned, size_t *nowned, json_object ***det, size_t *ndet)
{
	struct store *idx = store_new();
	size_t i;

	for (i = 0; i < s->nvms; i++)
		json_object_put(store_put(idx, KIND_VM, json_object_get(s->vms[i])));
	*nowned = planrun_owned(idx, ns, uid != NULL ? uid : "", owned);
	*ndet = planrun_detached(idx, ns, det);
	return idx;
}

static void check_planner(struct scen *s)
{
	struct expect *exp = expect_new(EXPECT_TTL);
	json_object **owned, **det;
	size_t nowned, ndet;
	struct plan_out out;
	char key[600];
	const char *uid = obj_uid(s->pool);
	struct store *idx =
	    scen_lists(s, obj_namespace(s->pool), uid, &owned, &nowned, &det, &ndet);

	obj_key(s->pool, key, sizeof(key));
	run_plan(s, exp, owned, nowned, det, ndet, key, &out);
	if (s->pool != NULL && plannable(s->pool)) {
		check_out(s, &out, owned, nowned);
		check_expect(s, exp, &out, owned, nowned, det, ndet, key);
	}
	plan_out_clear(&out);
	/* the store forgets every VM again */
	store_clear(idx);
	CHECK(store_count(idx, KIND_VM) == 0);
	free(owned);
	free(det);
	store_free(idx);
	expect_free(exp);
}

static void check_vmbuild(json_object *pool)
{
	json_object *vm;
	char *name;
	long idx[] = {0, 7, -1, 1L << 40};
	size_t i;

	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		vm = vmbuild_vm(pool, idx[i], i % 2 ? NULL : "rev-1");
		if (obj_name(pool) == NULL || obj_uid(pool) == NULL) {
			CHECK(vm == NULL);
			continue;
		}
		CHECK(vm != NULL);
		name = vmbuild_name(obj_name(pool), idx[i]);
		CHECK(obj_name(vm) != NULL && strcmp(obj_name(vm), name) == 0);
		free(name);
		CHECK(json_object_is_type(obj_path(vm, "spec"), json_type_object));
		CHECK(json_object_is_type(obj_path(vm, "metadata.labels"), json_type_object) ||
		      obj_path(vm, "metadata.labels") == NULL);
		check_wire(vm);
		json_object_put(vm);
	}
}

/* ---- status ---- */

static int has_cond(json_object *st, const char *type)
{
	return obj_find_condition(obj_path(st, "conditions"), type) != NULL;
}

static void check_status_one(struct scen *s, const struct statuscalc_result *r)
{
	struct statuscalc_in in = {s->pool, s->vms, s->nvms, r, 1700000000.0, {0, 0, 0}};
	json_object *st, *old, *patch, *p2, *st2;
	long long n = 0, ready = 0, owned = 0;
	size_t i;

	statuscalc_tally(s->pool, s->vms, s->nvms, &in.counts);
	st = statuscalc_compute(&in);
	CHECK(json_object_is_type(st, json_type_object));
	for (i = 0; i < s->nvms; i++)
		owned += statuscalc_owns(s->pool, s->vms[i]);
	if (obj_int(st, "replicas", &n) == -1)
		CHECK(obj_path(st, "replicas") == NULL);
	CHECK(n == owned);
	if (obj_int(st, "readyReplicas", &ready) == -1)
		CHECK(obj_path(st, "readyReplicas") == NULL);
	CHECK(ready >= 0 && ready <= n);
	CHECK(obj_path(st, "labelSelector") == NULL || obj_str(st, "labelSelector") != NULL);
	CHECK(obj_path(st, "conditions") == NULL ||
	      json_object_is_type(obj_path(st, "conditions"), json_type_array));
	old = obj_path(s->pool, "status");
	if (!json_object_is_type(old, json_type_object))
		old = NULL;
	if (r != NULL && !r->ok)
		CHECK(has_cond(st, SC_COND_FAILURE));
	if (r != NULL && r->ok)
		CHECK(!has_cond(st, SC_COND_FAILURE));
	patch = statuscalc_patch(s->pool, st);
	CHECK((patch != NULL) == (statuscalc_differs(s->pool, st) != 0));
	if (patch != NULL) {
		CHECK(json_object_is_type(patch, json_type_array));
		check_wire(patch);
	}
	json_object_put(patch);
	i = (size_t)(statuscalc_paused_change(old, st) + 1);
	CHECK(i <= 2);
	statuscalc_failure_added(old, st);
	statuscalc_desired(s->pool);
	check_wire(st);
	/* once written, the status is stable: the next computation does not differ */
	if (json_object_is_type(s->pool, json_type_object)) {
		p2 = obj_copy(s->pool);
		json_object_object_add(p2, "status", obj_copy(st));
		in.pool = p2;
		st2 = statuscalc_compute(&in);
		CHECK(obj_equal(st, st2));
		CHECK(!statuscalc_differs(p2, st2));
		json_object_put(st2);
		json_object_put(p2);
	}
	json_object_put(st);
}

static void check_status(struct scen *s)
{
	struct statuscalc_result ok = {1, NULL, NULL, ""};
	struct statuscalc_result bad = {
	    0, "FailedScaleOut", "error during scale out: boom", PROGRESS_UPDATING};
	struct statuscalc_result bare = {0, NULL, NULL, NULL};

	check_status_one(s, NULL);
	check_status_one(s, &ok);
	check_status_one(s, &bad);
	check_status_one(s, &bare);
}

/* ---- selectors and obj helpers ---- */

static void check_selector(json_object *selobj, json_object **labels, size_t n)
{
	struct selector *sel;
	char err[256] = "", *str;
	size_t i;

	sel = selector_parse(selobj, err, sizeof(err));
	if (sel == NULL) {
		CHECK(err[0] != '\0');
		return;
	}
	str = selector_string(sel);
	CHECK(str != NULL);
	CHECK((str[0] == '\0') == (selector_is_empty(sel) != 0));
	free(str);
	selector_matches(sel, NULL);
	for (i = 0; i < n; i++) {
		if (selector_is_empty(sel))
			CHECK(selector_matches(sel, labels[i]));
		else
			selector_matches(sel, labels[i]);
	}
	selector_free(sel);
}

static void check_obj(json_object *o)
{
	json_object *copy = obj_copy(o);
	char small[8], key[600];
	long long n;

	CHECK(obj_equal(o, copy));
	json_object_put(copy);
	CHECK(obj_json(o) != NULL);
	obj_key(o, small, sizeof(small));
	CHECK(strlen(small) < sizeof(small));
	obj_key(o, key, sizeof(key));
	CHECK(obj_namespace(o) != NULL);
	obj_uid(o);
	obj_terminating(o);
	obj_controller_ref(o);
	obj_controlled_by(o, POOL_KIND, PUID);
	obj_controlled_by(o, NULL, NULL);
	obj_has_finalizer(o, POOL_FINALIZER);
	obj_has_finalizer(o, NULL);
	obj_condition(o, "Ready");
	obj_find_condition(o, "Ready");
	obj_int(o, "metadata.generation", &n);
	obj_bool(o, "spec.paused");
	obj_str(o, "metadata.ownerReferences.0.uid");
	obj_path(o, "metadata.ownerReferences.99999999999999999999999.uid");
	obj_path(o, "..");
	obj_path(o, "");
	obj_path(o, NULL);
	copy = obj_copy(obj_path(o, "metadata"));
	managers_project(copy);
	managers_list(o, MANAGERS_OWNERS);
	json_object_put(copy);
}

/* ---- one scenario through every pure module ---- */

static json_object *vm_labels[MAX_VMS + 4];

static void check_scen(struct scen *s)
{
	json_object *before[MAX_VMS + 1];
	size_t i, nl = 0;

	before[0] = obj_copy(s->pool);
	for (i = 0; i < s->nvms; i++)
		before[i + 1] = obj_copy(s->vms[i]);
	check_obj(s->pool);
	for (i = 0; i < s->nvms; i++) {
		check_obj(s->vms[i]);
		vm_labels[nl++] = obj_path(s->vms[i], "metadata.labels");
	}
	vm_labels[nl++] = obj_path(s->pool, "spec.virtualMachineTemplate.metadata.labels");
	check_selector(obj_path(s->pool, "spec.selector"), vm_labels, nl);
	check_planner(s);
	check_vmbuild(s->pool);
	check_status(s);
	/* nothing may change its input */
	CHECK(obj_equal(before[0], s->pool));
	json_object_put(before[0]);
	for (i = 0; i < s->nvms; i++) {
		CHECK(obj_equal(before[i + 1], s->vms[i]));
		json_object_put(before[i + 1]);
	}
}

static void scen_base(struct scen *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	s->pool = js(base_pool);
	s->nvms = NBASE_VMS;
	for (i = 0; i < NBASE_VMS; i++)
		s->vms[i] = js(base_vms[i]);
}

static void scen_free(struct scen *s)
{
	size_t i;

	json_object_put(s->pool);
	json_object_put(s->rev);
	for (i = 0; i < s->nvms; i++)
		json_object_put(s->vms[i]);
	memset(s, 0, sizeof(*s));
}

static void test_base_is_sane(void **state)
{
	struct scen s;
	struct plan_out out;
	struct store *idx;
	struct expect *exp = expect_new(EXPECT_TTL);
	json_object **owned, **det;
	size_t nowned, ndet, i, nupd;

	scen_base(&s);
	snprintf(ctx, sizeof(ctx), "base objects");
	check_scen(&s);
	/* the unmutated pass releases -3, strips "loose", and rewrites the two members that name
	 * no revision (outdated, SPEC 11.2) */
	idx = scen_lists(&s, NS, PUID, &owned, &nowned, &det, &ndet);
	run_plan(&s, exp, owned, nowned, det, ndet, NS "/" PNAME, &out);
	assert_int_equal(nowned, 4);
	assert_int_equal(ndet, 1);
	assert_false(out.invalid);
	assert_int_equal(out.ncreate + out.ndelete, 0);
	/* release -3, strip -2 (terminating), strip loose, update -0 and -1 */
	assert_int_equal(out.nacts, 5);
	for (i = 0, nupd = 0; i < out.nacts; i++)
		nupd += op_is(out.acts[i].body, ACT_UPDATE_VM);
	assert_int_equal(nupd, 2);
	plan_out_clear(&out);
	free(owned);
	free(det);
	store_free(idx);
	expect_free(exp);
	scen_free(&s);
}

/* every path of the pool, each value */
static void test_pool_mutants(void **state)
{
	struct scen s;
	json_object *base = js(base_pool), *paths = paths_of(base), *path;
	size_t i, n = json_object_array_length(paths);
	char ps[256];
	int vi;

	assert_true(n > 80);
	for (i = 0; i < n; i++) {
		path = json_object_array_get_idx(paths, i);
		path_str(path, ps, sizeof(ps));
		for (vi = 0; vi < NVALS; vi++) {
			scen_base(&s);
			s.pool = mutate(s.pool, path, vi);
			snprintf(ctx, sizeof(ctx), "pool %s = %s", ps, val_name(vi));
			check_scen(&s);
			scen_free(&s);
		}
	}
	json_object_put(paths);
	json_object_put(base);
}

/* every path of every VM, each value */
static void test_vm_mutants(void **state)
{
	struct scen s;
	json_object *base, *paths, *path;
	size_t v, i, n;
	char ps[256];
	int vi;

	for (v = 0; v < NBASE_VMS; v++) {
		base = js(base_vms[v]);
		paths = paths_of(base);
		n = json_object_array_length(paths);
		for (i = 0; i < n; i++) {
			path = json_object_array_get_idx(paths, i);
			path_str(path, ps, sizeof(ps));
			for (vi = 0; vi < NVALS; vi++) {
				scen_base(&s);
				s.vms[v] = mutate(s.vms[v], path, vi);
				snprintf(ctx, sizeof(ctx), "vm %zu %s = %s", v, ps, val_name(vi));
				check_scen(&s);
				scen_free(&s);
			}
		}
		json_object_put(paths);
		json_object_put(base);
	}
}

/* a random mutation of o at one of its current paths; consumes o */
static json_object *mutate_random(json_object *o, char *desc, size_t desclen)
{
	json_object *paths = paths_of(o), *path;
	size_t n = json_object_array_length(paths), len = strlen(desc);
	char ps[128];
	int vi = (int)(rng() % NVALS);

	path = json_object_array_get_idx(paths, rng() % n);
	path_str(path, ps, sizeof(ps));
	snprintf(desc + len, desclen - len, " %s=%s", ps, val_name(vi));
	/* the root is replaced rarely, or the rest of the chain would be wasted */
	if (json_object_array_length(path) == 0 && rng() % 8 != 0) {
		json_object_put(paths);
		return o;
	}
	o = mutate(o, path, vi);
	json_object_put(paths);
	return o;
}

/* seeded multi-point mutants of the pool and of the VMs together */
static void test_random_mutants(void **state)
{
	struct scen s;
	int k, m, nm;
	size_t v;

	rng_state = 0x5eed1234u;
	for (k = 0; k < MAX_RANDOM; k++) {
		scen_base(&s);
		snprintf(ctx, sizeof(ctx), "random #%d:", k);
		nm = 1 + (int)(rng() % 5);
		for (m = 0; m < nm; m++) {
			if (rng() % 3 == 0) {
				strncat(ctx, " pool", sizeof(ctx) - strlen(ctx) - 1);
				s.pool = mutate_random(s.pool, ctx, sizeof(ctx));
			} else {
				v = rng() % s.nvms;
				snprintf(ctx + strlen(ctx), sizeof(ctx) - strlen(ctx), " vm%zu", v);
				s.vms[v] = mutate_random(s.vms[v], ctx, sizeof(ctx));
			}
		}
		check_scen(&s);
		scen_free(&s);
	}
}

/* ---- hand-written cases ---- */

/* o.<dotted parent>[key] = v (consumed); the parent must exist */
static void set(json_object *o, const char *parent, const char *key, json_object *v)
{
	json_object *p = parent[0] != '\0' ? obj_path(o, parent) : o;

	if (!json_object_is_type(p, json_type_object))
		fail_msg("set: no object at %s", parent);
	json_object_object_add(p, key, v);
}

/* one pass of the base pool's namespace; the output is the caller's to clear */
static void plan_once(struct scen *s, long long warned_gen, struct plan_out *out)
{
	struct expect *exp = expect_new(EXPECT_TTL);
	json_object **owned, **det;
	size_t nowned, ndet;
	struct plan_in in;
	const char *uid = obj_uid(s->pool);
	struct store *idx =
	    scen_lists(s, obj_namespace(s->pool), uid, &owned, &nowned, &det, &ndet);

	memset(&in, 0, sizeof(in));
	scen_revision(s, &in);
	in.pool = s->pool;
	in.key = NS "/" PNAME;
	in.owned = owned;
	in.nowned = nowned;
	in.detached = det;
	in.ndetached = ndet;
	in.name_used = scen_name_used;
	in.name_arg = s;
	in.exp = exp;
	in.burst = BURST;
	in.create_room = -1;
	in.seed = 1;
	in.now = NOW;
	in.warned_gen = warned_gen;
	memset(out, 0, sizeof(*out));
	plan_pool(&in, out);
	free(owned);
	free(det);
	store_free(idx);
	expect_free(exp);
}

static size_t count_op(struct plan_out *out, const char *op)
{
	size_t i, n = 0;

	for (i = 0; i < out->nacts; i++)
		n += op_is(out->acts[i].body, op);
	return n;
}

/* a fresh base scenario with one value set, checked generically, then planned once */
static void hand(struct scen *s, const char *what, const char *parent, const char *key,
    const char *value, struct plan_out *out)
{
	scen_base(s);
	if (key != NULL)
		set(s->pool, parent, key, value != NULL ? js(value) : NULL);
	snprintf(ctx, sizeof(ctx), "hand-written: %s", what);
	check_scen(s);
	plan_once(s, -1, out);
}

static void test_replicas(void **state)
{
	struct scen s;
	struct plan_out out;

	/* -5 is below the schema minimum: treated as 0, scale in by the burst minus the
	 * terminating VM */
	hand(&s, "replicas -5", "spec", "replicas", "-5", &out);
	assert_int_equal(out.ncreate, 0);
	assert_int_equal(out.ndelete, BURST - 1);
	plan_out_clear(&out);
	scen_free(&s);

	hand(&s, "replicas 2^31", "spec", "replicas", "2147483648", &out);
	assert_int_equal(out.ncreate, BURST);
	assert_int_equal(out.ndelete, 0);
	plan_out_clear(&out);
	scen_free(&s);

	hand(&s, "replicas 2^63", "spec", "replicas", "18446744073709551615", &out);
	assert_int_equal(out.ncreate, BURST);
	plan_out_clear(&out);
	scen_free(&s);

	/* present but not an integer is not nil (1): nothing is created or deleted for it */
	hand(&s, "replicas \"3\"", "spec", "replicas", "\"3\"", &out);
	assert_int_equal(out.ncreate + out.ndelete, 0);
	plan_out_clear(&out);
	scen_free(&s);

	hand(&s, "replicas 0.5", "spec", "replicas", "0.5", &out);
	assert_int_equal(out.ncreate + out.ndelete, 0);
	plan_out_clear(&out);
	scen_free(&s);

	/* null is nil: 1 */
	hand(&s, "replicas null", "spec", "replicas", NULL, &out);
	assert_int_equal(out.ncreate, 0);
	assert_int_equal(out.ndelete, 1);
	plan_out_clear(&out);
	scen_free(&s);
}

/* a selector that cannot be used: the pass fails with a message, creates nothing */
static void expect_invalid(
    const char *what, const char *parent, const char *key, const char *value, const char *msg_part)
{
	struct scen s;
	struct plan_out out;

	hand(&s, what, parent, key, value, &out);
	assert_true(out.invalid);
	assert_string_equal(out.reason, REASON_INVALID_SELECTOR);
	assert_non_null(out.message);
	if (strstr(out.message, msg_part) == NULL)
		fail_msg("%s: message \"%s\" lacks \"%s\"", what, out.message, msg_part);
	assert_int_equal(out.ncreate + out.ndelete, 0);
	assert_int_equal(count_op(&out, ACT_EVENT), out.nacts);
	plan_out_clear(&out);
	scen_free(&s);
}

static void test_bad_selectors(void **state)
{
	expect_invalid("values not a list", "spec.selector.matchExpressions.0", "values", "\"web\"",
	    "values must be a list");
	expect_invalid("values with a number", "spec.selector.matchExpressions.0", "values",
	    "[\"web\",1]", "must be a string");
	expect_invalid("operator a number", "spec.selector.matchExpressions.0", "operator", "5",
	    "operator must be a string");
	expect_invalid("unknown operator", "spec.selector.matchExpressions.0", "operator", "\"Gt\"",
	    "is not In");
	expect_invalid(
	    "key null", "spec.selector.matchExpressions.0", "key", NULL, "key must be a string");
	expect_invalid("expression a string", "spec.selector", "matchExpressions", "[\"x\"]",
	    "must be an object");
	expect_invalid("matchExpressions an object", "spec.selector", "matchExpressions", "{}",
	    "must be a list");
	expect_invalid(
	    "matchLabels a list", "spec.selector", "matchLabels", "[]", "must be an object");
	expect_invalid("matchLabels value 1", "spec.selector.matchLabels", "kubevirt.io/vmpool",
	    "1", "must be a string");
	expect_invalid(
	    "label key two slashes", "spec.selector.matchLabels", "a/b/c", "\"x\"", "at most one");
	expect_invalid("selector a string", "spec", "selector", "\"app=a\"", "must be an object");
	expect_invalid("selector null", "spec", "selector", NULL, "required");
	expect_invalid("template labels with a number", "spec.virtualMachineTemplate.metadata",
	    "labels", "{\"kubevirt.io/vmpool\":1,\"tier\":\"web\"}", "does not match");
	expect_invalid("template labels a list", "spec.virtualMachineTemplate.metadata", "labels",
	    "[\"kubevirt.io/vmpool\"]", "does not match");
	expect_invalid("template metadata a string", "spec.virtualMachineTemplate", "metadata",
	    "\"x\"", "does not match");
}

/* the InvalidSelector event goes out once per generation, whatever generation holds */
static void test_generations(void **state)
{
	static const char *gens[] = {
	    "9223372036854775807", "18446744073709551615", "-7", "\"3\"", "1.5", "null", "{}"};
	struct scen s;
	struct plan_out out, again;
	size_t i;

	for (i = 0; i < sizeof(gens) / sizeof(gens[0]); i++) {
		hand(&s, gens[i], "metadata", "generation", gens[i], &out);
		plan_out_clear(&out);
		set(s.pool, "spec.virtualMachineTemplate.metadata", "labels", js("{}"));
		plan_once(&s, -1, &out);
		assert_true(out.invalid);
		assert_int_equal(count_op(&out, ACT_EVENT), 1);
		plan_once(&s, out.warned_gen, &again);
		assert_true(again.invalid);
		assert_int_equal(again.nacts, 0);
		plan_out_clear(&again);
		plan_out_clear(&out);
		scen_free(&s);
	}
}

static void test_names_and_metadata(void **state)
{
	struct scen s;
	struct plan_out out;
	char big[400];

	hand(&s, "name with /", "metadata", "name", "\"a/b\"", &out);
	plan_out_clear(&out);
	scen_free(&s);

	memset(big, 'n', 300);
	big[0] = '"';
	big[299] = '"';
	big[300] = '\0';
	hand(&s, "name of 298 chars", "metadata", "name", big, &out);
	plan_out_clear(&out);
	scen_free(&s);

	hand(&s, "namespace of 298 chars", "metadata", "namespace", big, &out);
	plan_out_clear(&out);
	scen_free(&s);

	/* no metadata at all: not planned, status still computed */
	scen_base(&s);
	json_object_object_del(s.pool, "metadata");
	snprintf(ctx, sizeof(ctx), "hand-written: pool without metadata");
	check_scen(&s);
	plan_once(&s, -1, &out);
	assert_int_equal(out.nacts, 0);
	plan_out_clear(&out);
	scen_free(&s);

	/* deletionTimestamp as a number: the pool is deleting; nothing scales */
	hand(&s, "deletionTimestamp 12", "metadata", "deletionTimestamp", "12", &out);
	assert_int_equal(out.ncreate + out.ndelete, 0);
	plan_out_clear(&out);
	scen_free(&s);

	/* pool finalizers that are not a list: the finalizer is added as a new list */
	hand(&s, "finalizers an object", "metadata", "finalizers", "{\"a\":1}", &out);
	assert_int_equal(count_op(&out, ACT_PATCH_POOL), 1);
	plan_out_clear(&out);
	scen_free(&s);

	hand(&s, "empty uid", "metadata", "uid", "\"\"", &out);
	plan_out_clear(&out);
	scen_free(&s);
}

/* VM-side oddities: owner references not a list, conditions an object, numbers for times */
static void test_vm_shapes(void **state)
{
	static const struct {
		const char *parent, *key, *value;
	} cases[] = {
	    {"metadata", "ownerReferences",
	        "{\"kind\":\"VirtualMachinePool\",\"uid\":\"" PUID "\",\"controller\":true}"},
	    {"metadata", "ownerReferences", "[null,1,\"x\",[],{\"controller\":\"true\"}]"},
	    {"metadata", "ownerReferences", "[{\"kind\":1,\"uid\":2,\"controller\":true}]"},
	    {"metadata", "finalizers", "\"" POOL_FINALIZER "\""},
	    {"metadata", "finalizers", "[null,1,{},\"" POOL_FINALIZER "\"]"},
	    {"metadata", "deletionTimestamp", "12"},
	    {"metadata", "labels", "{\"kubevirt.io/vmpool\":5,\"tier\":[\"web\"]}"},
	    {"metadata", "labels", "\"kubevirt.io/vmpool=" PNAME "\""},
	    {"metadata", "uid", "7"},
	    {"metadata", "name", "{}"},
	    {"metadata", "namespace", "[]"},
	    {"metadata", "resourceVersion", "5"},
	    {"status", "conditions", "{\"type\":\"Ready\",\"status\":\"True\"}"},
	    {"status", "conditions", "[null,{\"type\":1},{\"type\":\"Ready\",\"status\":true}]"},
	    {"", "metadata", "\"x\""},
	    {"", "status", "[]"},
	};
	struct scen s;
	size_t i, v;

	for (v = 0; v < 2; v++) {
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			scen_base(&s);
			set(s.vms[v], cases[i].parent, cases[i].key, js(cases[i].value));
			snprintf(ctx, sizeof(ctx), "hand-written: vm %zu %s.%s = %s", v,
			    cases[i].parent, cases[i].key, cases[i].value);
			check_scen(&s);
			scen_free(&s);
		}
	}
	/* two VMs with the same uid, and the same VM twice */
	scen_base(&s);
	set(s.vms[1], "metadata", "uid", js("\"vm-0\""));
	s.vms[s.nvms++] = obj_copy(s.vms[0]);
	snprintf(ctx, sizeof(ctx), "hand-written: duplicate uids");
	check_scen(&s);
	scen_free(&s);
}

/* pool status oddities: status.conditions not a list, status a string, paused odd */
static void test_pool_status_shapes(void **state)
{
	static const struct {
		const char *parent, *key, *value;
	} cases[] = {
	    {"status", "conditions", "{\"type\":\"ReplicaFailure\"}"},
	    {"status", "conditions", "[1,null,\"x\",{\"type\":null},{\"type\":\"ReplicaPaused\"}]"},
	    {"", "status", "\"Running\""},
	    {"spec", "paused", "\"true\""},
	    {"spec", "paused", "true"},
	    {"spec", "selector", "{}"},
	};
	struct scen s;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		scen_base(&s);
		set(s.pool, cases[i].parent, cases[i].key, js(cases[i].value));
		snprintf(ctx, sizeof(ctx), "hand-written: pool %s.%s = %s", cases[i].parent,
		    cases[i].key, cases[i].value);
		check_scen(&s);
		scen_free(&s);
	}
}

/* ---- the mirror ---- */

struct mctx {
	size_t changes;
	size_t vms; /* VMs the changes add up to */
};

static void m_changed(const char *kind, json_object *old, json_object *new_, void *arg)
{
	struct mctx *mc = arg;

	mc->changes++;
	CHECK(kind != NULL);
	CHECK(old != NULL || new_ != NULL);
	CHECK(new_ == NULL || obj_name(new_) != NULL);
	if (strcmp(kind, KIND_VM) == 0)
		mc->vms += (new_ != NULL) - (old != NULL);
}

static const struct mirror_cb m_cbs = {m_changed, NULL, NULL};

static void m_check_named(json_object *obj, void *arg)
{
	CHECK(json_object_is_type(obj, json_type_object) && obj_name(obj) != NULL);
}

/* the store holds only named objects, exactly those its changes reported, and no view
 * outlives the frame that made it */
static void m_check_store(struct mirror *m, struct mctx *mc)
{
	store_foreach(mirror_store(m), KIND_VM, m_check_named, NULL);
	store_foreach(mirror_store(m), KIND_POOL, m_check_named, NULL);
	CHECK(mc->vms == store_count(mirror_store(m), KIND_VM));
	CHECK(store_views(mirror_store(m)) == 0);
}

static json_object *set_body(const char *kind, json_object *obj)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "kind", json_object_new_string(kind));
	json_object_object_add(b, "obj", obj);
	return b;
}

/* OBJ_DELETE for obj, its fields copied whatever their type */
static json_object *delete_body(const char *kind, json_object *obj)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "kind", json_object_new_string(kind));
	json_object_object_add(b, "namespace", obj_copy(obj_path(obj, "metadata.namespace")));
	json_object_object_add(b, "name", obj_copy(obj_path(obj, "metadata.name")));
	json_object_object_add(b, "uid", obj_copy(obj_path(obj, "metadata.uid")));
	return b;
}

/* sets obj (which is consumed), checks the verdict, sometimes deletes it again */
static void m_set_obj(
    struct mirror *m, struct mctx *mc, const char *kind, json_object *obj, int del)
{
	json_object *b = set_body(kind, obj);
	int want = json_object_is_type(obj, json_type_object) && obj_name(obj) != NULL ? 0 : -1;

	CHECK(mirror_apply(m, MSG_OBJ_SET, b) == want);
	if (del) {
		json_object *d = delete_body(kind, obj);

		mirror_apply(m, MSG_OBJ_DELETE, d);
		json_object_put(d);
	}
	json_object_put(b);
	m_check_store(m, mc);
}

/* mutants of whole frame bodies: every path of an OBJ_SET and an OBJ_DELETE body */
static void m_body_mutants(struct mirror *m, struct mctx *mc)
{
	json_object *bodies[2], *paths, *path, *b;
	int types[2] = {MSG_OBJ_SET, MSG_OBJ_DELETE};
	size_t t, i, n;
	char ps[256];
	int vi;

	bodies[0] = set_body(KIND_VM, js(base_vms[0]));
	bodies[1] = delete_body(KIND_VM, bodies[0] != NULL ? obj_path(bodies[0], "obj") : NULL);
	for (t = 0; t < 2; t++) {
		paths = paths_of(bodies[t]);
		n = json_object_array_length(paths);
		for (i = 0; i < n; i++) {
			path = json_object_array_get_idx(paths, i);
			path_str(path, ps, sizeof(ps));
			for (vi = 0; vi < NVALS; vi++) {
				snprintf(ctx, sizeof(ctx), "frame %d %s = %s", types[t], ps,
				    val_name(vi));
				b = mutate(obj_copy(bodies[t]), path, vi);
				mirror_apply(m, types[t], b);
				json_object_put(b);
				m_check_store(m, mc);
			}
		}
		json_object_put(paths);
	}
	json_object_put(bodies[0]);
	json_object_put(bodies[1]);
}

/* every type with bodies of every shape */
static void m_odd_frames(struct mirror *m, struct mctx *mc)
{
	static const int types[] = {0, -1, MSG_HELLO, MSG_SYNC_BEGIN, MSG_OBJ_SET, MSG_OBJ_DELETE,
	    MSG_SYNC_END, MSG_SYNC_END, MSG_ACTION, MSG_POOL_RESULT, 1 << 30};
	size_t t;
	int vi;

	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (vi = 0; vi < NVALS; vi++) {
			json_object *b = vi == VAL_DELETE ? NULL : mkval(vi);

			snprintf(ctx, sizeof(ctx), "frame type %d body %s", types[t], val_name(vi));
			if (b != NULL && !json_object_is_type(b, json_type_object))
				CHECK(mirror_apply(m, types[t], b) == -1);
			else
				mirror_apply(m, types[t], b);
			json_object_put(b);
			m_check_store(m, mc);
		}
	}
}

static void test_mirror_frames(void **state)
{
	struct mctx mc = {0, 0};
	struct mirror *m = mirror_new(NULL, NULL, 0, &m_cbs, &mc);
	json_object *base, *paths;
	size_t v, i, n;
	char ps[256];
	int vi, saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);

	/* the mirror logs every frame it refuses: keep the output readable, but let the
	 * sanitizers report on the real stderr */
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_set_report_fd((void *)(intptr_t)saved);
#endif
	dup2(null, STDERR_FILENO);
	assert_non_null(m);
	assert_int_equal(mirror_apply(m, MSG_SYNC_BEGIN, NULL), 0);
	for (v = 0; v < NBASE_VMS; v++) {
		base = js(base_vms[v]);
		paths = paths_of(base);
		n = json_object_array_length(paths);
		for (i = 0; i < n; i++) {
			path_str(json_object_array_get_idx(paths, i), ps, sizeof(ps));
			for (vi = 0; vi < NVALS; vi++) {
				snprintf(ctx, sizeof(ctx), "OBJ_SET vm %zu %s = %s", v, ps,
				    val_name(vi));
				m_set_obj(m, &mc, vi % 2 ? KIND_VM : KIND_POOL,
				    mutate(obj_copy(base), json_object_array_get_idx(paths, i), vi),
				    (i + (size_t)vi) % 3 == 0);
			}
		}
		json_object_put(paths);
		json_object_put(base);
		/* a snapshot ends now and then: the sweep sees every odd object stored */
		if (v % 2 == 1) {
			CHECK(mirror_apply(m, MSG_SYNC_END, NULL) == 0);
			m_check_store(m, &mc);
			CHECK(mirror_apply(m, MSG_SYNC_BEGIN, NULL) == 0);
		}
	}
	m_body_mutants(m, &mc);
	m_odd_frames(m, &mc);
	mirror_apply(m, MSG_SYNC_BEGIN, NULL);
	mirror_apply(m, MSG_SYNC_END, NULL);
	snprintf(ctx, sizeof(ctx), "final empty snapshot");
	CHECK(store_count(mirror_store(m), KIND_VM) == 0);
	CHECK(store_count(mirror_store(m), KIND_POOL) == 0);
	m_check_store(m, &mc);
	dup2(saved, STDERR_FILENO);
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_set_report_fd((void *)(intptr_t)STDERR_FILENO);
#endif
	close(saved);
	close(null);
	mirror_free(m);
	assert_true(mc.changes > 100);
}

/* ---- the codec ---- */

/* bytes that start msgpack values of every kind, to make random input interesting */
static unsigned char rnd_byte(void)
{
	static const unsigned char hdr[] = {0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc7, 0xca, 0xcb, 0xcc,
	    0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x80, 0x81,
	    0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf, 0x00, 0x7f, 0xe0, 0xff};
	unsigned int r = rng();

	return r % 3 == 0 ? hdr[(r >> 8) % sizeof(hdr)] : (unsigned char)(r >> 8);
}

/* a decoded value packs again to bytes that decode to the same bytes */
static void c_check_value(const unsigned char *p, size_t len)
{
	struct buf b1 = {0}, b2 = {0};
	json_object *v, *v2;
	char err[256];

	err[0] = 'x';
	v = codec_value_unpack(p, len, err, sizeof(err));
	if (v == NULL) {
		CHECK(err[0] != '\0' || (len == 1 && p[0] == 0xc0));
		return;
	}
	CHECK(codec_value_pack(&b1, v) == 0);
	v2 = codec_value_unpack(b1.data, b1.len, err, sizeof(err));
	CHECK(v2 != NULL);
	CHECK(codec_value_pack(&b2, v2) == 0);
	CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	obj_json(v);
	json_object_put(v);
	json_object_put(v2);
	buf_clear(&b1);
	buf_clear(&b2);
}

static void c_check_frame(const unsigned char *p, size_t len)
{
	struct frame f;
	char err[256];
	long r;

	r = codec_unpack(p, len, 4096, &f, err, sizeof(err));
	CHECK(r >= -1 && r <= (long)len);
	CHECK(r == 0 || r == -1 || r >= 5);
	if (r > 0)
		CHECK(json_object_is_type(f.body, json_type_object));
	else
		CHECK(f.body == NULL);
	if (r == -1)
		CHECK(err[0] != '\0');
	frame_clear(&f);
}

/* a few random edits of a valid encoding */
static size_t c_mangle(unsigned char *p, size_t len, size_t cap)
{
	int k, edits = 1 + (int)(rng() % 3);
	size_t at;

	for (k = 0; k < edits && len > 0; k++) {
		at = rng() % len;
		switch (rng() % 4) {
		case 0:
			p[at] = rnd_byte();
			break;
		case 1:
			len = at; /* truncate */
			break;
		case 2:
			if (len < cap) {
				memmove(p + at + 1, p + at, len - at);
				p[at] = rnd_byte();
				len++;
			}
			break;
		default:
			memmove(p + at, p + at + 1, len - at - 1);
			len--;
			break;
		}
	}
	return len;
}

static void test_codec_bytes(void **state)
{
	unsigned char buf[8192], hdr[4 + 80];
	struct buf packed = {0}, frame = {0};
	json_object *pool = js(base_pool), *body = set_body(KIND_VM, js(base_vms[1]));
	size_t len, i;
	int k;

	rng_state = 0xc0dec0deu;
	/* random short buffers */
	for (k = 0; k < 20000; k++) {
		len = rng() % 48;
		for (i = 0; i < len; i++)
			buf[i] = rnd_byte();
		snprintf(ctx, sizeof(ctx), "random value #%d", k);
		c_check_value(buf, len);
		/* as a frame: a length prefix that fits (mostly) */
		hdr[0] = hdr[1] = 0;
		hdr[2] = (unsigned char)(rng() % 4 == 0 ? rng() : 0);
		hdr[3] = (unsigned char)(rng() % 3 == 0 ? rng() : len);
		memcpy(hdr + 4, buf, len);
		c_check_frame(hdr, 4 + len);
	}
	/* mangled encodings of real objects and frames */
	assert_int_equal(codec_value_pack(&packed, pool), 0);
	codec_pack(&frame, MSG_OBJ_SET, 7, body);
	assert_true(packed.len < sizeof(buf) / 2 && frame.len < sizeof(buf) / 2);
	for (k = 0; k < 3000; k++) {
		snprintf(ctx, sizeof(ctx), "mangled value #%d", k);
		memcpy(buf, packed.data, packed.len);
		c_check_value(buf, c_mangle(buf, packed.len, sizeof(buf)));
		snprintf(ctx, sizeof(ctx), "mangled frame #%d", k);
		memcpy(buf, frame.data, frame.len);
		len = c_mangle(buf + 4, frame.len - 4, sizeof(buf) - 4);
		if (rng() % 2) { /* keep the length prefix honest half the time */
			buf[0] = buf[1] = 0;
			buf[2] = (unsigned char)(len >> 8);
			buf[3] = (unsigned char)len;
		}
		c_check_frame(buf, 4 + len);
	}
	buf_clear(&packed);
	buf_clear(&frame);
	json_object_put(pool);
	json_object_put(body);
}

/* the limits: nesting, counts larger than the input, lengths larger than the input */
static void test_codec_limits(void **state)
{
	unsigned char buf[256];
	char err[256];
	size_t i;
	json_object *v;
	static const unsigned char claims[][6] = {
	    {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00}, /* array32 of 4G */
	    {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0}, /* map32 of 4G */
	    {0xdb, 0xff, 0xff, 0xff, 0xff, 0x61}, /* str32 of 4G */
	    {0xc6, 0x00, 0x00, 0x00, 0x01, 0x00}, /* bin */
	    {0x81, 0x01, 0x02, 0x00, 0x00, 0x00}, /* map key not a string */
	    {0x81, 0xa1, 0x00, 0x01, 0x00, 0x00}, /* map key with a NUL */
	};

	snprintf(ctx, sizeof(ctx), "codec limits");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = 0x91; /* [[[[...]]]] */
	buf[sizeof(buf) - 1] = 0x01;
	v = codec_value_unpack(buf, sizeof(buf), err, sizeof(err));
	assert_null(v);
	assert_non_null(strstr(err, "nesting"));
	for (i = 0; i < sizeof(buf); i += 2) {
		buf[i] = 0x81; /* {"a":{"a":...}} */
		buf[i + 1] = 0xa1;
	}
	v = codec_value_unpack(buf, sizeof(buf), err, sizeof(err));
	assert_null(v);
	for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		v = codec_value_unpack(claims[i], 6, err, sizeof(err));
		assert_null(v);
		assert_true(err[0] != '\0');
	}
	v = codec_value_unpack(NULL, 0, err, sizeof(err));
	assert_null(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_is_sane),
	    cmocka_unit_test(test_pool_mutants),
	    cmocka_unit_test(test_vm_mutants),
	    cmocka_unit_test(test_random_mutants),
	    cmocka_unit_test(test_replicas),
	    cmocka_unit_test(test_bad_selectors),
	    cmocka_unit_test(test_generations),
	    cmocka_unit_test(test_names_and_metadata),
	    cmocka_unit_test(test_vm_shapes),
	    cmocka_unit_test(test_pool_status_shapes),
	    cmocka_unit_test(test_mirror_frames),
	    cmocka_unit_test(test_codec_bytes),
	    cmocka_unit_test(test_codec_limits),
	};

	log_init("test_robust", -1, LOG_FMT_TEXT);
	if (getenv("ROBUST_TEST") != NULL) /* e.g. ROBUST_TEST=test_vm_mutants */
		cmocka_set_test_filter(getenv("ROBUST_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
