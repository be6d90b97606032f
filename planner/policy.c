/*
 * policy.c: the pool's strategies read from its spec (SPEC 1.2, 9.1, 11.3, 11.6, 12, 13),
 * selection policies (sort order and filters, SPEC 9.2 steps 3-4) and the autohealing
 * rule (SPEC 12). Pure: no clock, no I/O; what is parsed is owned by struct policy.
 * Schema-valid nonsense is reported, all problems at once, each naming its JSON path and
 * what to write instead, so a user fixing one mistake does not discover the next one a
 * reconcile later.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "policy.h"
#include "selector.h"
#include "timeutil.h"
#include "xmalloc.h"

#define POLICY_THRESHOLD_DEFAULT 3
#define POLICY_DURATION_DEFAULT  300.0
#define POLICY_SEED_DEFAULT      0x9e3779b9u
#define POLICY_QUOTE_MAX         64 /* user text quoted in a message is cut here */

/* problems found so far, joined with "; " into the caller's buffer */
struct policy_errs {
	char *buf;
	size_t len;
	size_t used;
	int n;
};

static void policy_problem(struct policy_errs *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void policy_append(struct policy_errs *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void policy_vappend(struct policy_errs *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/* drops a UTF-8 sequence cut short by truncation at the end of e->buf */
static void policy_trim_utf8(struct policy_errs *e)
{
	size_t i = e->used, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)e->buf[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)e->buf[i - 1];
	if (c < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (e->used - (i - 1) < need) {
		e->used = i - 1;
		e->buf[e->used] = '\0';
	}
}

static void policy_vappend(struct policy_errs *e, const char *fmt, va_list ap)
{
	size_t room;
	int r;

	if (e->buf == NULL || e->len == 0 || e->used >= e->len - 1)
		return;
	room = e->len - e->used;
	r = vsnprintf(e->buf + e->used, room, fmt, ap);
	if (r < 0) {
		e->buf[e->used] = '\0';
		return;
	}
	if ((size_t)r >= room) {
		e->used = e->len - 1;
		policy_trim_utf8(e);
	} else
		e->used += (size_t)r;
}

static void policy_append(struct policy_errs *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	policy_vappend(e, fmt, ap);
	va_end(ap);
}

static void policy_problem(struct policy_errs *e, const char *fmt, ...)
{
	va_list ap;

	if (e->n++ > 0)
		policy_append(e, "; ");
	va_start(ap, fmt);
	policy_vappend(e, fmt, ap);
	va_end(ap);
}

/* ---- JSON shapes ---- */

/* the member key of o, or NULL when absent or JSON null */
static json_object *policy_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* 1 if v is an object; otherwise reports path and returns 0 */
static int policy_want_object(json_object *v, const char *path, struct policy_errs *e)
{
	if (json_object_is_type(v, json_type_object))
		return 1;
	policy_problem(
	    e, "%s: must be an object, found %s", path, json_type_to_name(json_object_get_type(v)));
	return 0;
}

/* ---- enums by name ---- */

static const struct {
	const char *name;
	enum policy_sort sort;
} policy_sorts[] = {
    {"AscendingOrder", SORT_ASCENDING},
    {"DescendingOrder", SORT_DESCENDING},
    {"Newest", SORT_NEWEST},
    {"Oldest", SORT_OLDEST},
    {"Random", SORT_RANDOM},
};

static const struct {
	const char *name;
	enum policy_preserve preserve;
} policy_preserves[] = {
    {"Disabled", PRESERVE_DISABLED},
    {"Offline", PRESERVE_OFFLINE},
    {"Online", PRESERVE_ONLINE},
};

#define POLICY_NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static void policy_parse_sort(
    json_object *v, const char *path, enum policy_sort *out, struct policy_errs *e)
{
	const char *s;
	size_t i;

	if (v == NULL)
		return;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		for (i = 0; i < POLICY_NITEMS(policy_sorts); i++) {
			if (strcmp(s, policy_sorts[i].name) == 0) {
				*out = policy_sorts[i].sort;
				return;
			}
		}
		policy_problem(e,
		    "%s.sortPolicy: unknown sort policy \"%.*s\", use one of AscendingOrder, "
		    "DescendingOrder, Newest, Oldest or Random",
		    path, POLICY_QUOTE_MAX, s);
		return;
	}
	policy_problem(e,
	    "%s.sortPolicy: must be a string, one of AscendingOrder, DescendingOrder, "
	    "Newest, Oldest or Random",
	    path);
}

static void policy_parse_preserve(
    json_object *v, const char *path, enum policy_preserve *out, struct policy_errs *e)
{
	const char *s = "";
	size_t i;

	if (v == NULL)
		return;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		for (i = 0; i < POLICY_NITEMS(policy_preserves); i++) {
			if (strcmp(s, policy_preserves[i].name) == 0) {
				*out = policy_preserves[i].preserve;
				return;
			}
		}
	}
	policy_problem(e,
	    "%s.statePreservation: unknown value \"%.*s\", use one of Disabled, Offline or "
	    "Online",
	    path, POLICY_QUOTE_MAX, s);
}

/* ---- nodeSelectorRequirementMatcher ---- */

enum policy_cmp { POLICY_CMP_NONE = 0, POLICY_CMP_GT, POLICY_CMP_LT };

/* one requirement: In/NotIn/Exists/DoesNotExist as a one-expression LabelSelector (so
 * key and value rules and matching are selector.c's), Gt/Lt compared here */
struct policy_nodeitem {
	struct selector *set;
	char *key;
	enum policy_cmp cmp;
	long long value;
};

struct policy_nodereq {
	struct policy_nodeitem *items;
	size_t n;
};

static void policy_nodereq_free(struct policy_nodereq *nr)
{
	size_t i;

	if (nr == NULL)
		return;
	for (i = 0; i < nr->n; i++) {
		selector_free(nr->items[i].set);
		free(nr->items[i].key);
	}
	free(nr->items);
	free(nr);
}

/* strict base-10 long long, as strconv.ParseInt(s, 10, 64) */
static int policy_parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* a selector's message about its single expression, re-addressed to path[idx] */
static void policy_nodereq_selerr(
    const char *path, size_t idx, const char *msg, struct policy_errs *e)
{
	static const char pfx[] = "matchExpressions[0]";

	if (strncmp(msg, pfx, sizeof(pfx) - 1) == 0)
		policy_problem(e, "%s[%zu]%s", path, idx, msg + sizeof(pfx) - 1);
	else
		policy_problem(e, "%s[%zu]: %s", path, idx, msg);
}

/* a one-expression selector for req (a copy with operator op, without values when
 * keyonly), or NULL with a problem */
static struct selector *policy_nodereq_set(json_object *req, const char *op, int keyonly,
    const char *path, size_t idx, struct policy_errs *e)
{
	json_object *sel = json_object_new_object(), *exprs = json_object_new_array();
	json_object *expr = json_object_new_object(), *v;
	struct selector *s;
	char msg[256];

	if ((v = policy_get(req, "key")) != NULL)
		json_object_object_add(expr, "key", json_object_get(v));
	json_object_object_add(expr, "operator", json_object_new_string(op));
	if (!keyonly && (v = policy_get(req, "values")) != NULL)
		json_object_object_add(expr, "values", json_object_get(v));
	json_object_array_add(exprs, expr);
	json_object_object_add(sel, "matchExpressions", exprs);
	msg[0] = '\0';
	s = selector_parse(sel, msg, sizeof msg);
	json_object_put(sel);
	if (s == NULL)
		policy_nodereq_selerr(path, idx, msg, e);
	return s;
}

/* Gt / Lt: exactly one integer value */
static int policy_nodereq_cmp(json_object *req, struct policy_nodeitem *it, const char *op,
    const char *path, size_t idx, struct policy_errs *e)
{
	json_object *vals = policy_get(req, "values"), *v;
	struct selector *keycheck;

	/* the key is checked as for Exists, the value here */
	if ((keycheck = policy_nodereq_set(req, "Exists", 1, path, idx, e)) == NULL)
		return -1;
	selector_free(keycheck);
	if (vals == NULL || !json_object_is_type(vals, json_type_array) ||
	    json_object_array_length(vals) != 1 ||
	    !json_object_is_type(v = json_object_array_get_idx(vals, 0), json_type_string) ||
	    policy_parse_ll(json_object_get_string(v), &it->value) != 0) {
		policy_problem(e,
		    "%s[%zu]: operator %s needs exactly one value, an integer such as [\"3\"]",
		    path, idx, op);
		return -1;
	}
	it->cmp = strcmp(op, "Gt") == 0 ? POLICY_CMP_GT : POLICY_CMP_LT;
	it->key = xstrdup(obj_str(req, "key"));
	return 0;
}

static int policy_nodereq_item(json_object *req, struct policy_nodeitem *it, const char *path,
    size_t idx, struct policy_errs *e)
{
	static const char *const setops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
	const char *op = obj_str(req, "operator");
	size_t i;

	memset(it, 0, sizeof(*it));
	if (!json_object_is_type(req, json_type_object)) {
		policy_problem(e, "%s[%zu]: must be an object {key, operator, values}", path, idx);
		return -1;
	}
	if (op != NULL && (strcmp(op, "Gt") == 0 || strcmp(op, "Lt") == 0))
		return policy_nodereq_cmp(req, it, op, path, idx, e);
	for (i = 0; op != NULL && i < POLICY_NITEMS(setops); i++) {
		if (strcmp(op, setops[i]) == 0)
			break;
	}
	if (op == NULL || i == POLICY_NITEMS(setops)) {
		policy_problem(e,
		    "%s[%zu].operator: \"%.*s\" is not a node selector operator, use one of In, "
		    "NotIn, Exists, DoesNotExist, Gt or Lt",
		    path, idx, POLICY_QUOTE_MAX, op != NULL ? op : "");
		return -1;
	}
	it->set = policy_nodereq_set(req, op, 0, path, idx, e);
	return it->set != NULL ? 0 : -1;
}

/* a list of NodeSelectorRequirements; NULL with problems reported, or when absent */
static struct policy_nodereq *policy_nodereq_parse(
    json_object *list, const char *path, struct policy_errs *e)
{
	struct policy_nodereq *nr;
	size_t i, n;
	int bad = 0;

	if (list == NULL)
		return NULL;
	if (!json_object_is_type(list, json_type_array)) {
		policy_problem(e, "%s: must be a list of {key, operator, values}", path);
		return NULL;
	}
	n = json_object_array_length(list);
	nr = xcalloc(1, sizeof(*nr));
	nr->items = xcalloc(n > 0 ? n : 1, sizeof(*nr->items));
	for (i = 0; i < n; i++) {
		if (policy_nodereq_item(
		        json_object_array_get_idx(list, i), &nr->items[nr->n], path, i, e) != 0)
			bad = 1;
		else
			nr->n++;
	}
	if (bad) {
		policy_nodereq_free(nr);
		return NULL;
	}
	return nr;
}

/* as labels.Requirement.Matches for Gt/Lt: the label must exist and be an integer */
static int policy_nodeitem_matches(const struct policy_nodeitem *it, json_object *map)
{
	const char *s;
	long long v;

	if (it->set != NULL)
		return selector_matches(it->set, map);
	s = json_object_is_type(map, json_type_object) ? obj_str(map, it->key) : NULL;
	if (s == NULL || policy_parse_ll(s, &v) != 0)
		return 0;
	return it->cmp == POLICY_CMP_GT ? v > it->value : v < it->value;
}

/* ---- selection policies ---- */

static void policy_selection_clear(struct policy_selection *sel)
{
	selector_free(sel->labels);
	policy_nodereq_free(sel->nodes);
	sel->labels = NULL;
	sel->nodes = NULL;
}

static void policy_parse_selectors(
    json_object *sels, const char *path, struct policy_selection *sel, struct policy_errs *e)
{
	char p[256], msg[256];
	json_object *ls;

	snprintf(p, sizeof p, "%s.selectors", path);
	if (sels == NULL || !policy_want_object(sels, p, e))
		return;
	if ((ls = policy_get(sels, "labelSelector")) != NULL) {
		msg[0] = '\0';
		sel->labels = selector_parse(ls, msg, sizeof msg);
		if (sel->labels == NULL)
			policy_problem(e, "%s.labelSelector: %s", p, msg);
	}
	snprintf(p, sizeof p, "%s.selectors.nodeSelectorRequirementMatcher", path);
	sel->nodes = policy_nodereq_parse(policy_get(sels, "nodeSelectorRequirementMatcher"), p, e);
}

/* path names the selectionPolicy; an absent one leaves sel as it is */
static void policy_parse_selection(
    json_object *sp, const char *path, struct policy_selection *sel, struct policy_errs *e)
{
	if (sp == NULL || !policy_want_object(sp, path, e))
		return;
	policy_parse_sort(policy_get(sp, "sortPolicy"), path, &sel->sort, e);
	policy_parse_selectors(policy_get(sp, "selectors"), path, sel, e);
}

/* ---- strategies ---- */

/* the order of a strategy object's members, and that of names in messages */
enum policy_kind { KIND_OPPORTUNISTIC, KIND_PROACTIVE, KIND_UNMANAGED, KIND_NONE };
static const char *const policy_kinds[] = {"opportunistic", "proactive", "unmanaged"};

/* Which one of opportunistic / proactive / unmanaged strat sets; KIND_NONE for none,
 * -1 after reporting a problem. */
static int policy_strategy(json_object *strat, const char *path, struct policy_errs *e)
{
	const char *found[3];
	char p[128];
	size_t i, n = 0;
	int which = KIND_NONE, bad = 0;

	if (strat == NULL)
		return KIND_NONE;
	if (!policy_want_object(strat, path, e))
		return -1;
	for (i = 0; i < 3; i++) {
		json_object *v = policy_get(strat, policy_kinds[i]);

		if (v == NULL)
			continue;
		found[n++] = policy_kinds[i];
		which = (int)i;
		snprintf(p, sizeof p, "%s.%s", path, policy_kinds[i]);
		if (!policy_want_object(v, p, e))
			bad = 1;
	}
	if (n > 1) {
		policy_problem(e, "%s: only one strategy can be set at a time, found %s%s%s and %s",
		    path, found[0], n == 3 ? ", " : "", n == 3 ? found[1] : "", found[n - 1]);
		bad = 1;
	}
	return bad ? -1 : which;
}

static void policy_parse_scalein(json_object *spec, struct policy *p, struct policy_errs *e)
{
	static const char path[] = "spec.scaleInStrategy";
	json_object *strat = policy_get(spec, "scaleInStrategy"), *s;

	p->scalein = SCALEIN_PROACTIVE;
	p->scalein_sel.sort = SORT_RANDOM;
	switch (policy_strategy(strat, path, e)) {
	case KIND_OPPORTUNISTIC:
		p->scalein = SCALEIN_OPPORTUNISTIC;
		s = policy_get(strat, "opportunistic");
		policy_parse_preserve(policy_get(s, "statePreservation"),
		    "spec.scaleInStrategy.opportunistic", &p->preserve_opportunistic, e);
		break;
	case KIND_PROACTIVE:
		s = policy_get(strat, "proactive");
		policy_parse_selection(policy_get(s, "selectionPolicy"),
		    "spec.scaleInStrategy.proactive.selectionPolicy", &p->scalein_sel, e);
		policy_parse_preserve(policy_get(s, "statePreservation"),
		    "spec.scaleInStrategy.proactive", &p->preserve_proactive, e);
		break;
	case KIND_UNMANAGED:
		p->scalein = SCALEIN_UNMANAGED;
		break;
	default:
		break;
	}
}

static void policy_parse_update(json_object *spec, struct policy *p, struct policy_errs *e)
{
	static const char path[] = "spec.updateStrategy";
	json_object *strat = policy_get(spec, "updateStrategy");

	p->update = UPDATE_PROACTIVE;
	p->update_sel.sort = SORT_NONE;
	switch (policy_strategy(strat, path, e)) {
	case KIND_OPPORTUNISTIC:
		p->update = UPDATE_OPPORTUNISTIC;
		break;
	case KIND_PROACTIVE:
		p->update_sel.sort = SORT_RANDOM;
		policy_parse_selection(
		    policy_get(policy_get(strat, "proactive"), "selectionPolicy"),
		    "spec.updateStrategy.proactive.selectionPolicy", &p->update_sel, e);
		break;
	case KIND_UNMANAGED:
		p->update = UPDATE_UNMANAGED;
		break;
	default:
		break;
	}
}

/* "25%" -> 25; a plain integer string is a percentage too (SPEC 11.6); -1 if neither */
static long policy_percent(const char *s)
{
	size_t n = strlen(s), i;
	long v = 0;

	if (n > 0 && s[n - 1] == '%')
		n--;
	if (n == 0 || n > 3)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 100 ? v : -1;
}

static void policy_parse_maxunav(json_object *spec, struct policy *p, struct policy_errs *e)
{
	json_object *v = policy_get(spec, "maxUnavailable");
	int64_t i;
	long pct;

	p->max_unavailable_percent = 1;
	p->max_unavailable = 100;
	if (v == NULL)
		return;
	if (json_object_is_type(v, json_type_int)) {
		i = json_object_get_int64(v);
		if (i >= 1 && i <= 2147483647) {
			p->max_unavailable_percent = 0;
			p->max_unavailable = (long)i;
			return;
		}
		policy_problem(e,
		    "spec.maxUnavailable: %lld is not allowed, use an integer >= 1 or a "
		    "percentage from \"1%%\" to \"100%%\"",
		    (long long)i);
		return;
	}
	if (json_object_is_type(v, json_type_string) &&
	    (pct = policy_percent(json_object_get_string(v))) > 0) {
		p->max_unavailable = pct;
		return;
	}
	if (json_object_is_type(v, json_type_string))
		policy_problem(e,
		    "spec.maxUnavailable: \"%.*s\" is not an integer or a percentage such as "
		    "\"25%%\" (from \"1%%\" to \"100%%\")",
		    POLICY_QUOTE_MAX, json_object_get_string(v));
	else
		policy_problem(e,
		    "spec.maxUnavailable: must be an integer >= 1 or a percentage string such "
		    "as \"25%%\", found %s",
		    json_type_to_name(json_object_get_type(v)));
}

static void policy_parse_autoheal(json_object *spec, struct policy *p, struct policy_errs *e)
{
	static const char path[] = "spec.autohealing";
	json_object *ah = policy_get(spec, "autohealing"), *v;
	const char *s;
	double d;

	p->autoheal = 0;
	p->autoheal_threshold = POLICY_THRESHOLD_DEFAULT;
	p->autoheal_duration = POLICY_DURATION_DEFAULT;
	if (ah == NULL || !policy_want_object(ah, path, e))
		return;
	p->autoheal = 1;
	if ((v = policy_get(ah, "startUpFailureThreshold")) != NULL) {
		if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 1 &&
		    json_object_get_int64(v) <= 4294967295LL)
			p->autoheal_threshold = (long)json_object_get_int64(v);
		else
			policy_problem(e,
			    "%s.startUpFailureThreshold: must be an integer >= 1, such as 3", path);
	}
	if ((v = policy_get(ah, "minFailingToStartDuration")) != NULL) {
		s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
		if (s != NULL && policy_duration(s, &d) == 0 && d >= 0)
			p->autoheal_duration = d;
		else
			policy_problem(e,
			    "%s.minFailingToStartDuration: \"%.*s\" is not a duration, use a "
			    "non-negative one such as \"5m\", \"2m30s\" or \"1h\"",
			    path, POLICY_QUOTE_MAX, s != NULL ? s : "");
	}
}

int policy_parse(json_object *pool, struct policy *p, char *err, size_t errlen)
{
	struct policy_errs e = {err, errlen, 0, 0};
	json_object *spec = policy_get(pool, "spec"), *v;

	memset(p, 0, sizeof(*p));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (spec != NULL && !policy_want_object(spec, "spec", &e))
		spec = NULL;
	if ((v = policy_get(spec, "paused")) != NULL) {
		if (json_object_is_type(v, json_type_boolean))
			p->paused = json_object_get_boolean(v) ? 1 : 0;
		else
			policy_problem(&e, "spec.paused: must be true or false");
	}
	policy_parse_scalein(spec, p, &e);
	policy_parse_update(spec, p, &e);
	policy_parse_maxunav(spec, p, &e);
	policy_parse_autoheal(spec, p, &e);
	if (e.n > 0) {
		policy_clear(p);
		return -1;
	}
	return 0;
}

void policy_clear(struct policy *p)
{
	if (p == NULL)
		return;
	policy_selection_clear(&p->scalein_sel);
	policy_selection_clear(&p->update_sel);
}

long policy_max_unavailable(const struct policy *p, long desired)
{
	long long v;

	if (desired < 0)
		desired = 0;
	if (p->max_unavailable_percent)
		v = (long long)desired * p->max_unavailable / 100;
	else
		v = p->max_unavailable;
	return v >= 1 ? (long)v : 1;
}

int policy_matches(const struct policy_selection *sel, json_object *vm)
{
	json_object *map;
	size_t i;

	if (sel->labels != NULL &&
	    !selector_matches(sel->labels, obj_path(vm, "spec.template.metadata.labels")))
		return 0;
	if (sel->nodes == NULL)
		return 1;
	map = obj_path(vm, "spec.template.spec.nodeSelector");
	for (i = 0; i < sel->nodes->n; i++) {
		if (!policy_nodeitem_matches(&sel->nodes->items[i], map))
			return 0;
	}
	return 1;
}

/* ---- ordering ---- */

struct policy_sortent {
	json_object *vm;
	const char *name;
	double key; /* ascending key: the sort's order is by key, then name, then position */
	size_t pos;
};

static int policy_sortent_cmp(const void *a, const void *b)
{
	const struct policy_sortent *x = a, *y = b;
	int c;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static double policy_sort_key(enum policy_sort sort, json_object *vm, const char *name)
{
	double t;
	long idx;

	switch (sort) {
	case SORT_ASCENDING:
	case SORT_DESCENDING:
		idx = revision_vm_index(name);
		if (idx < 0)
			idx = 0;
		return sort == SORT_ASCENDING ? (double)idx : -(double)idx;
	case SORT_NEWEST:
	case SORT_OLDEST:
		t = rfc3339_parse(obj_str(vm, "metadata.creationTimestamp"));
		if (!(t >= 0))
			t = 0;
		return sort == SORT_OLDEST ? t : -t;
	default:
		return 0;
	}
}

static void policy_sort(enum policy_sort sort, json_object **vms, size_t n)
{
	struct policy_sortent *ents;
	const char *name;
	size_t i;

	if (n < 2)
		return;
	ents = xcalloc(n, sizeof(*ents));
	for (i = 0; i < n; i++) {
		name = obj_name(vms[i]);
		ents[i].vm = vms[i];
		ents[i].name = name != NULL ? name : "";
		ents[i].key = policy_sort_key(sort, vms[i], ents[i].name);
		ents[i].pos = i;
	}
	qsort(ents, n, sizeof(*ents), policy_sortent_cmp);
	for (i = 0; i < n; i++)
		vms[i] = ents[i].vm;
	free(ents);
}

static unsigned int policy_xorshift(unsigned int *x)
{
	unsigned int v = *x;

	v ^= v << 13;
	v ^= v >> 17;
	v ^= v << 5;
	*x = v;
	return v;
}

static void policy_shuffle(json_object **vms, size_t n, unsigned int seed)
{
	unsigned int state = seed != 0 ? seed : POLICY_SEED_DEFAULT;
	json_object *tmp;
	size_t i, j;

	for (i = n; i > 1; i--) {
		j = policy_xorshift(&state) % i;
		tmp = vms[i - 1];
		vms[i - 1] = vms[j];
		vms[j] = tmp;
	}
}

size_t policy_order(
    const struct policy_selection *sel, json_object **vms, size_t n, unsigned int seed)
{
	size_t i, kept = 0;

	if (sel->sort == SORT_RANDOM)
		policy_shuffle(vms, n, seed);
	else if (sel->sort != SORT_NONE)
		policy_sort(sel->sort, vms, n);
	for (i = 0; i < n; i++) {
		if (policy_matches(sel, vms[i]))
			vms[kept++] = vms[i];
	}
	return kept;
}

/* ---- durations (Go's time.ParseDuration) ---- */

static const struct {
	const char *unit;
	double secs;
} policy_units[] = {
    {"ns", 1e-9},
    {"us", 1e-6},
    {"\xc2\xb5s", 1e-6}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1e-6}, /* U+03BC greek mu */
    {"ms", 1e-3},
    {"s", 1},
    {"m", 60},
    {"h", 3600},
};

/* one "<number><unit>" at *sp; adds its seconds to *total */
static int policy_duration_term(const char **sp, double *total)
{
	const char *s = *sp, *u;
	double v = 0, scale = 1;
	int digits = 0;
	size_t i, n;

	for (; isdigit((unsigned char)*s); s++, digits++)
		v = v * 10 + (*s - '0');
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits++) {
			scale /= 10;
			v += (*s - '0') * scale;
		}
	}
	if (digits == 0)
		return -1;
	for (u = s; *s != '\0' && *s != '.' && !isdigit((unsigned char)*s); s++)
		;
	n = (size_t)(s - u);
	for (i = 0; i < POLICY_NITEMS(policy_units); i++) {
		if (strlen(policy_units[i].unit) == n && strncmp(u, policy_units[i].unit, n) == 0)
			break;
	}
	if (n == 0 || i == POLICY_NITEMS(policy_units))
		return -1;
	*total += v * policy_units[i].secs;
	*sp = s;
	return 0;
}

int policy_duration(const char *s, double *secs)
{
	double total = 0;
	int neg = 0;

	if (s == NULL)
		return -1;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*secs = 0;
		return 0;
	}
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		if (policy_duration_term(&s, &total) != 0)
			return -1;
	}
	if (!isfinite(total))
		return -1;
	*secs = neg ? -total : total;
	return 0;
}

/* ---- autohealing ---- */

static const char *const policy_crash_statuses[] = {
    "CrashLoopBackOff",
    "ErrorUnschedulable",
    "DataVolumeError",
    "ErrorPvcNotFound",
    "ErrImagePull",
    "ImagePullBackOff",
};

static int policy_crash_status(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < POLICY_NITEMS(policy_crash_statuses); i++) {
		if (strcmp(s, policy_crash_statuses[i]) == 0)
			return 1;
	}
	return 0;
}

/* when the VM's Ready=False condition was last probed (or changed); -1 if unknown */
static double policy_not_ready_since(json_object *vm)
{
	json_object *c = obj_condition(vm, "Ready");
	const char *st = obj_str(c, "status");
	double t;

	if (c == NULL || st == NULL || strcmp(st, "False") != 0)
		return -1;
	t = rfc3339_parse(obj_str(c, "lastProbeTime"));
	if (!(t >= 0))
		t = rfc3339_parse(obj_str(c, "lastTransitionTime"));
	return t >= 0 ? t : -1;
}

int policy_failing(const struct policy *p, json_object *vm, double now, double *wait)
{
	long long fails;
	double since, left;

	if (wait != NULL)
		*wait = -1;
	if (obj_int(vm, "status.startFailure.consecutiveFailCount", &fails) == 0 &&
	    fails >= p->autoheal_threshold) {
		if (wait != NULL)
			*wait = 0;
		return 1;
	}
	if (!policy_crash_status(obj_str(vm, "status.printableStatus")) ||
	    (since = policy_not_ready_since(vm)) < 0)
		return 0;
	left = since + p->autoheal_duration - now;
	if (left <= 0) {
		if (wait != NULL)
			*wait = 0;
		return 1;
	}
	if (wait != NULL)
		*wait = left;
	return 0;
}
