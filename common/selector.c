/*
 * selector.c: metav1.LabelSelector. Parsing validates keys, values and operators the way
 * Kubernetes' apimachinery does (LabelSelectorAsSelector), matching follows
 * labels.Requirement.Matches and the canonical string follows SPEC 15. Pure module.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"
#include "xmalloc.h"

/* the order of equal keys in the canonical string */
enum sel_op {
	SEL_EQ,
	SEL_IN,
	SEL_NOTIN,
	SEL_EXISTS,
	SEL_NOTEXISTS,
};

struct sel_req {
	char *key;
	enum sel_op op;
	char **values; /* sorted, unique */
	size_t nvalues;
};

struct selector {
	struct sel_req *reqs; /* sorted by key, then op, then values */
	size_t nreqs;
};

static const struct {
	const char *name;
	enum sel_op op;
	int want_values; /* 1: non-empty list required; 0: must be empty */
} sel_ops[] = {
    {"In", SEL_IN, 1},
    {"NotIn", SEL_NOTIN, 1},
    {"Exists", SEL_EXISTS, 0},
    {"DoesNotExist", SEL_NOTEXISTS, 0},
};

#define SEL_NAME_MAX   63
#define SEL_PREFIX_MAX 253

static int sel_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* a label value or the name part of a key: [A-Za-z0-9._-], alphanumeric at both ends */
static const char *sel_check_name(const char *s, size_t len, int may_be_empty)
{
	size_t i;

	if (len == 0)
		return may_be_empty ? NULL : "name part must be non-empty";
	if (len > SEL_NAME_MAX)
		return "must be no more than 63 characters";
	for (i = 0; i < len; i++) {
		if (!sel_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			break;
	}
	if (i < len || !sel_alnum(s[0]) || !sel_alnum(s[len - 1]))
		return "must consist of alphanumeric characters, '-', '_' or '.', and must "
		       "start and end with an alphanumeric character";
	return NULL;
}

/* a key's prefix: a lower-case RFC 1123 subdomain */
static const char *sel_check_prefix(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return "prefix part must be non-empty";
	if (len > SEL_PREFIX_MAX)
		return "prefix part must be no more than 253 characters";
	for (i = 0; i < len; i++) {
		int lower = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
		int edge = i == 0 || i == len - 1 || s[i - 1] == '.' || s[i + 1] == '.';

		if (lower)
			continue;
		if (!edge && (s[i] == '-' || s[i] == '.'))
			continue;
		return "prefix part must be a lowercase RFC 1123 subdomain: lowercase "
		       "alphanumeric characters, '-' or '.', starting and ending with an "
		       "alphanumeric character";
	}
	return NULL;
}

static const char *sel_check_key(const char *key)
{
	const char *slash = strchr(key, '/');
	const char *why;

	if (slash == NULL)
		return sel_check_name(key, strlen(key), 0);
	if (strchr(slash + 1, '/') != NULL)
		return "a qualified name must have at most one '/'";
	if ((why = sel_check_prefix(key, slash - key)) != NULL)
		return why;
	return sel_check_name(slash + 1, strlen(slash + 1), 0);
}

static int sel_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sel_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static struct sel_req *sel_add(struct selector *s, const char *key, enum sel_op op)
{
	struct sel_req *r;

	s->reqs = xreallocarray(s->reqs, s->nreqs + 1, sizeof *s->reqs);
	r = &s->reqs[s->nreqs++];
	r->key = xstrdup(key);
	r->op = op;
	r->values = NULL;
	r->nvalues = 0;
	return r;
}

static int sel_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorts and de-duplicates r's values */
static void sel_sort_values(struct sel_req *r)
{
	size_t i, n = 0;

	if (r->nvalues == 0)
		return;
	qsort(r->values, r->nvalues, sizeof *r->values, sel_cmp_str);
	for (i = 0; i < r->nvalues; i++) {
		if (n > 0 && strcmp(r->values[n - 1], r->values[i]) == 0)
			free(r->values[i]);
		else
			r->values[n++] = r->values[i];
	}
	r->nvalues = n;
}

static int sel_parse_labels(struct selector *s, json_object *ml, char *err, size_t errlen)
{
	const char *why;
	struct sel_req *r;

	if (ml == NULL)
		return 0;
	if (!json_object_is_type(ml, json_type_object))
		return sel_error(err, errlen, "matchLabels must be an object");
	json_object_object_foreach(ml, k, v)
	{
		if (!json_object_is_type(v, json_type_string))
			return sel_error(err, errlen, "matchLabels[%s]: value must be a string", k);
		if ((why = sel_check_key(k)) != NULL)
			return sel_error(err, errlen, "matchLabels: key \"%s\": %s", k, why);
		if ((why = sel_check_name(
		         json_object_get_string(v), json_object_get_string_len(v), 1)) != NULL)
			return sel_error(err, errlen, "matchLabels[%s]: value \"%s\": %s", k,
			    json_object_get_string(v), why);
		r = sel_add(s, k, SEL_EQ);
		r->values = xmalloc(sizeof *r->values);
		r->values[0] = xstrdup(json_object_get_string(v));
		r->nvalues = 1;
	}
	return 0;
}

static int sel_parse_values(
    struct sel_req *r, json_object *vals, size_t idx, char *err, size_t errlen)
{
	size_t i, n;
	json_object *v;
	const char *why;

	if (vals == NULL)
		return 0;
	if (!json_object_is_type(vals, json_type_array))
		return sel_error(err, errlen, "matchExpressions[%zu]: values must be a list", idx);
	n = json_object_array_length(vals);
	r->values = xcalloc(n > 0 ? n : 1, sizeof *r->values);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(vals, i);
		if (!json_object_is_type(v, json_type_string))
			return sel_error(err, errlen,
			    "matchExpressions[%zu]: values[%zu] must be a string", idx, i);
		if ((why = sel_check_name(
		         json_object_get_string(v), json_object_get_string_len(v), 1)) != NULL)
			return sel_error(err, errlen, "matchExpressions[%zu]: value \"%s\": %s",
			    idx, json_object_get_string(v), why);
		r->values[r->nvalues++] = xstrdup(json_object_get_string(v));
	}
	return 0;
}

static int sel_parse_expr(struct selector *s, json_object *e, size_t idx, char *err, size_t errlen)
{
	json_object *key, *op, *vals = NULL;
	const char *why, *opname;
	struct sel_req *r;
	size_t i;

	if (!json_object_is_type(e, json_type_object))
		return sel_error(err, errlen, "matchExpressions[%zu] must be an object", idx);
	if (!json_object_object_get_ex(e, "key", &key) ||
	    !json_object_is_type(key, json_type_string))
		return sel_error(err, errlen, "matchExpressions[%zu]: key must be a string", idx);
	if ((why = sel_check_key(json_object_get_string(key))) != NULL)
		return sel_error(err, errlen, "matchExpressions[%zu]: key \"%s\": %s", idx,
		    json_object_get_string(key), why);
	if (!json_object_object_get_ex(e, "operator", &op) ||
	    !json_object_is_type(op, json_type_string))
		return sel_error(
		    err, errlen, "matchExpressions[%zu]: operator must be a string", idx);
	opname = json_object_get_string(op);
	for (i = 0; i < sizeof sel_ops / sizeof sel_ops[0]; i++) {
		if (strcmp(sel_ops[i].name, opname) == 0)
			break;
	}
	if (i == sizeof sel_ops / sizeof sel_ops[0])
		return sel_error(err, errlen,
		    "matchExpressions[%zu]: operator \"%s\" is not In, NotIn, Exists or "
		    "DoesNotExist",
		    idx, opname);
	json_object_object_get_ex(e, "values", &vals);
	r = sel_add(s, json_object_get_string(key), sel_ops[i].op);
	if (sel_parse_values(r, vals, idx, err, errlen) != 0)
		return -1;
	if (sel_ops[i].want_values && r->nvalues == 0)
		return sel_error(err, errlen,
		    "matchExpressions[%zu]: values must be non-empty for operator %s", idx, opname);
	if (!sel_ops[i].want_values && r->nvalues != 0)
		return sel_error(err, errlen,
		    "matchExpressions[%zu]: values must be empty for operator %s", idx, opname);
	sel_sort_values(r);
	return 0;
}

static int sel_cmp_req(const void *a, const void *b)
{
	const struct sel_req *ra = a, *rb = b;
	size_t i;
	int c;

	if ((c = strcmp(ra->key, rb->key)) != 0)
		return c;
	if (ra->op != rb->op)
		return ra->op < rb->op ? -1 : 1;
	for (i = 0; i < ra->nvalues && i < rb->nvalues; i++) {
		if ((c = strcmp(ra->values[i], rb->values[i])) != 0)
			return c;
	}
	if (ra->nvalues != rb->nvalues)
		return ra->nvalues < rb->nvalues ? -1 : 1;
	return 0;
}

struct selector *selector_parse(json_object *sel, char *err, size_t errlen)
{
	struct selector *s;
	json_object *ml = NULL, *me = NULL;
	size_t i, n;

	if (sel == NULL || json_object_is_type(sel, json_type_null)) {
		sel_error(err, errlen, "selector is required");
		return NULL;
	}
	if (!json_object_is_type(sel, json_type_object)) {
		sel_error(err, errlen, "selector must be an object");
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	json_object_object_get_ex(sel, "matchLabels", &ml);
	json_object_object_get_ex(sel, "matchExpressions", &me);
	if (sel_parse_labels(s, ml, err, errlen) != 0)
		goto fail;
	if (me != NULL && !json_object_is_type(me, json_type_array)) {
		sel_error(err, errlen, "matchExpressions must be a list");
		goto fail;
	}
	n = me != NULL ? json_object_array_length(me) : 0;
	for (i = 0; i < n; i++) {
		if (sel_parse_expr(s, json_object_array_get_idx(me, i), i, err, errlen) != 0)
			goto fail;
	}
	if (s->nreqs > 1)
		qsort(s->reqs, s->nreqs, sizeof *s->reqs, sel_cmp_req);
	return s;
fail:
	selector_free(s);
	return NULL;
}

void selector_free(struct selector *s)
{
	size_t i, j;

	if (s == NULL)
		return;
	for (i = 0; i < s->nreqs; i++) {
		for (j = 0; j < s->reqs[i].nvalues; j++)
			free(s->reqs[i].values[j]);
		free(s->reqs[i].values);
		free(s->reqs[i].key);
	}
	free(s->reqs);
	free(s);
}

static int sel_has_value(const struct sel_req *r, const char *v)
{
	return bsearch(&v, r->values, r->nvalues, sizeof *r->values, sel_cmp_str) != NULL;
}

/* as labels.Requirement.Matches: NotIn matches labels that lack the key */
static int sel_req_matches(const struct sel_req *r, json_object *labels)
{
	json_object *v = NULL;
	const char *val = NULL;

	if (labels != NULL && json_object_is_type(labels, json_type_object) &&
	    json_object_object_get_ex(labels, r->key, &v) &&
	    json_object_is_type(v, json_type_string))
		val = json_object_get_string(v);
	switch (r->op) {
	case SEL_EQ:
	case SEL_IN:
		return val != NULL && sel_has_value(r, val);
	case SEL_NOTIN:
		return val == NULL || !sel_has_value(r, val);
	case SEL_EXISTS:
		return val != NULL;
	case SEL_NOTEXISTS:
		return val == NULL;
	}
	return 0;
}

int selector_matches(const struct selector *s, json_object *labels)
{
	size_t i;

	for (i = 0; i < s->nreqs; i++) {
		if (!sel_req_matches(&s->reqs[i], labels))
			return 0;
	}
	return 1;
}

int selector_is_empty(const struct selector *s)
{
	return s->nreqs == 0;
}

static void sel_buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void sel_render_req(struct buf *b, const struct sel_req *r)
{
	size_t i;

	if (r->op == SEL_NOTEXISTS)
		sel_buf_str(b, "!");
	sel_buf_str(b, r->key);
	switch (r->op) {
	case SEL_EQ:
		sel_buf_str(b, "=");
		sel_buf_str(b, r->values[0]);
		return;
	case SEL_IN:
	case SEL_NOTIN:
		sel_buf_str(b, r->op == SEL_IN ? " in (" : " notin (");
		for (i = 0; i < r->nvalues; i++) {
			if (i > 0)
				sel_buf_str(b, ",");
			sel_buf_str(b, r->values[i]);
		}
		sel_buf_str(b, ")");
		return;
	case SEL_EXISTS:
	case SEL_NOTEXISTS:
		return;
	}
}

char *selector_string(const struct selector *s)
{
	struct buf b = {0};
	size_t i;

	for (i = 0; i < s->nreqs; i++) {
		if (i > 0)
			sel_buf_str(&b, ",");
		sel_render_req(&b, &s->reqs[i]);
	}
	buf_add(&b, "", 1);
	return (char *)b.data;
}
