/*
 * lease.c: leader election on a Lease, the pure part (see lease.h): flags, durations, the
 * record and client-go's tryAcquireOrRenew decisions, all on clocks handed in.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease.h"
#include "obj.h"
#include "timeutil.h"
#include "xmalloc.h"

const struct option lease_options[] = {
    {"leader-elect", no_argument, NULL, LEASE_OPT_FIRST},
    {"leader-elect-lease-duration", required_argument, NULL, LEASE_OPT_FIRST + 1},
    {"leader-elect-renew-deadline", required_argument, NULL, LEASE_OPT_FIRST + 2},
    {"leader-elect-retry-period", required_argument, NULL, LEASE_OPT_FIRST + 3},
    {"leader-elect-resource-name", required_argument, NULL, LEASE_OPT_FIRST + 4},
    {"leader-elect-resource-namespace", required_argument, NULL, LEASE_OPT_FIRST + 5},
    {"pool-selector", required_argument, NULL, LEASE_OPT_SELECTOR},
    {NULL, 0, NULL, 0},
};

const char lease_usage[] =
    "  --leader-elect       write only while holding the Lease (active/standby replicas)\n"
    "  --leader-elect-lease-duration D   how long a lease lasts unrenewed (default 15s)\n"
    "  --leader-elect-renew-deadline D   a leader stops writing unrenewed this long (10s)\n"
    "  --leader-elect-retry-period D     between attempts to acquire or renew (2s)\n"
    "  --leader-elect-resource-name N    the Lease's name (default vmpoold[-SHARD])\n"
    "  --leader-elect-resource-namespace NS  its namespace (default: the pod's, else default)\n"
    "  --pool-selector SEL  manage only the pools with these labels (a shard; e.g. shard=a)\n";

struct option *lease_options_with(const struct option *own)
{
	size_t n = 0, m = 0;
	struct option *o;

	while (own != NULL && own[n].name != NULL)
		n++;
	while (lease_options[m].name != NULL)
		m++;
	o = xcalloc(n + m + 1, sizeof *o);
	if (n > 0)
		memcpy(o, own, n * sizeof *o);
	memcpy(o + n, lease_options, m * sizeof *o);
	return o;
}

void lease_cfg_init(struct lease_cfg *c)
{
	memset(c, 0, sizeof *c);
	c->duration = LEASE_DURATION_DEFAULT;
	c->renew_deadline = LEASE_RENEW_DEFAULT;
	c->retry_period = LEASE_RETRY_DEFAULT;
}

void lease_cfg_clear(struct lease_cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->name);
	free(c->ns);
	free(c->pool_selector);
	for (i = 0; i < sizeof c->given / sizeof c->given[0]; i++)
		free(c->given[i]);
	lease_cfg_init(c);
}

/* a DNS-1123 subdomain, as the API wants for a Lease's name and namespace */
static int lease_dns_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))
			continue;
		if ((s[i] == '-' || s[i] == '.') && i > 0 && i < n - 1)
			continue;
		return 0;
	}
	return 1;
}

/* a label selector string as kubectl -l takes it: the API server parses it (and answers 400
 * for junk, which the watcher reports); here only what cannot be one is refused */
static int lease_selector_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 1024)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int lease_cfg_set(struct lease_cfg *c, int opt, const char *val)
{
	int i = opt - LEASE_OPT_FIRST;
	double *d[] = {NULL, &c->duration, &c->renew_deadline, &c->retry_period};

	if (i < 0 || opt > LEASE_OPT_LAST)
		return -1;
	if (i == 0)
		c->enabled = 1;
	else if (opt == LEASE_OPT_SELECTOR) {
		if (!lease_selector_ok(val))
			return -1;
		free(c->pool_selector);
		c->pool_selector = xstrdup(val);
	} else if (i <= 3) {
		if (lease_parse_duration(val, d[i]) == -1)
			return -1;
	} else {
		if (!lease_dns_name(val))
			return -1;
		free(i == 4 ? c->name : c->ns);
		*(i == 4 ? &c->name : &c->ns) = xstrdup(val);
	}
	free(c->given[i]);
	c->given[i] = xstrdup(val != NULL ? val : "");
	return 0;
}

int lease_cfg_check(const struct lease_cfg *c, char *err, size_t errlen)
{
	if (c->duration <= 0 || c->renew_deadline <= 0 || c->retry_period <= 0) {
		snprintf(err, errlen, "leader election durations must be greater than zero");
		return -1;
	}
	if (c->renew_deadline >= c->duration) {
		snprintf(err, errlen,
		    "--leader-elect-renew-deadline (%gs) must be shorter than "
		    "--leader-elect-lease-duration (%gs)",
		    c->renew_deadline, c->duration);
		return -1;
	}
	if (c->renew_deadline <= LEASE_JITTER * c->retry_period) {
		snprintf(err, errlen,
		    "--leader-elect-renew-deadline (%gs) must be longer than %g x "
		    "--leader-elect-retry-period (%gs)",
		    c->renew_deadline, LEASE_JITTER, c->retry_period);
		return -1;
	}
	return 0;
}

void lease_cfg_foreach(
    const struct lease_cfg *c, void (*fn)(const char *, const char *, void *), void *arg)
{
	size_t i;

	for (i = 0; i < sizeof c->given / sizeof c->given[0]; i++)
		if (c->given[i] != NULL)
			fn(lease_options[i].name, i == 0 ? NULL : c->given[i], arg);
}

int lease_parse_duration(const char *s, double *out)
{
	static const struct {
		const char *unit;
		double secs;
	} units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
	double total = 0, v, frac;
	size_t i, len, best;
	int digits;

	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	while (*s != '\0') {
		v = 0;
		digits = 0;
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			v = v * 10 + (*s - '0');
		if (*s == '.') {
			for (s++, frac = 0.1; *s >= '0' && *s <= '9'; s++, digits++, frac /= 10)
				v += (*s - '0') * frac;
		}
		if (digits == 0)
			return -1;
		best = SIZE_MAX;
		len = 0;
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t ul = strlen(units[i].unit);
			if (strncmp(s, units[i].unit, ul) == 0 && ul > len) {
				best = i;
				len = ul;
			}
		}
		if (best == SIZE_MAX)
			return -1;
		total += v * units[best].secs;
		s += len;
		if (total > 1e9)
			return -1;
	}
	*out = total;
	return 0;
}

void lease_default_name(const char *sel, char *out, size_t outlen)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	if (sel == NULL || *sel == '\0') {
		snprintf(out, outlen, "%s", LEASE_DEFAULT_NAME);
		return;
	}
	for (p = (const unsigned char *)sel; *p != '\0'; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	snprintf(out, outlen, "%s-%08x", LEASE_DEFAULT_NAME, h);
}

void lease_state_init(struct lease_state *st, const char *identity)
{
	memset(st, 0, sizeof *st);
	snprintf(st->identity, sizeof st->identity, "%s", identity);
}

int lease_record_parse(json_object *lease, struct lease_record *r, char *rv, size_t rvlen)
{
	json_object *spec = obj_path(lease, "spec");
	const char *s;
	long long v;

	memset(r, 0, sizeof *r);
	if (rv != NULL && rvlen > 0)
		rv[0] = '\0';
	if (spec == NULL || !json_object_is_type(spec, json_type_object))
		return -1;
	if ((s = obj_str(spec, "holderIdentity")) != NULL)
		snprintf(r->holder, sizeof r->holder, "%s", s);
	if (obj_int(spec, "leaseDurationSeconds", &v) == 0)
		r->duration_s = (long)v;
	if ((s = obj_str(spec, "acquireTime")) != NULL)
		snprintf(r->acquire, sizeof r->acquire, "%s", s);
	if ((s = obj_str(spec, "renewTime")) != NULL)
		snprintf(r->renew, sizeof r->renew, "%s", s);
	if (obj_int(spec, "leaseTransitions", &v) == 0)
		r->transitions = (long)v;
	if (rv != NULL && (s = obj_str(lease, "metadata.resourceVersion")) != NULL)
		snprintf(rv, rvlen, "%s", s);
	return 0;
}

static int lease_record_equal(const struct lease_record *a, const struct lease_record *b)
{
	return strcmp(a->holder, b->holder) == 0 && a->duration_s == b->duration_s &&
	       strcmp(a->acquire, b->acquire) == 0 && strcmp(a->renew, b->renew) == 0 &&
	       a->transitions == b->transitions;
}

/* the record seen now: the observed time moves only when it changed */
static void lease_see(struct lease_state *st, const struct lease_record *r, double now)
{
	if (!st->exists || !lease_record_equal(&st->observed, r)) {
		st->observed = *r;
		st->observed_time = now;
	}
	st->exists = 1;
}

void lease_observe(struct lease_state *st, json_object *lease, double now)
{
	struct lease_record r;
	char rv[sizeof st->rv];

	st->seen = 1;
	if (lease == NULL || lease_record_parse(lease, &r, rv, sizeof rv) == -1) {
		st->exists = 0;
		st->rv[0] = '\0';
		memset(&st->observed, 0, sizeof st->observed);
		return;
	}
	lease_see(st, &r, now);
	snprintf(st->rv, sizeof st->rv, "%s", rv);
}

enum lease_verdict lease_decide(const struct lease_state *st, double now)
{
	const struct lease_record *r = &st->observed;

	if (!st->exists)
		return LEASE_CREATE;
	if (r->holder[0] != '\0' && strcmp(r->holder, st->identity) != 0 &&
	    st->observed_time + (double)r->duration_s > now)
		return LEASE_HELD;
	return LEASE_UPDATE;
}

void lease_microtime(double t, char out[40])
{
	struct tm tm;
	double whole = tu_floor(t);
	time_t secs = (time_t)whole;
	int us = (int)((t - whole) * 1e6);
	char date[24];

	if (us < 0 || us > 999999)
		us = us < 0 ? 0 : 999999;
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(date, sizeof date, "1970-01-01T00:00:00");
	snprintf(out, 40, "%.19s.%06dZ", date, us);
}

json_object *lease_body(const struct lease_state *st, const struct lease_cfg *c, const char *name,
    const char *ns, double wallnow, int release)
{
	json_object *o = json_object_new_object(), *md = json_object_new_object();
	json_object *spec = json_object_new_object();
	const struct lease_record *r = &st->observed;
	int ours = st->exists && strcmp(r->holder, st->identity) == 0;
	long transitions = st->exists ? r->transitions : 0;
	char now[40];

	lease_microtime(wallnow, now);
	if (st->exists && !ours && !release)
		transitions++; /* the holder changes (client-go counts a release's successor too) */
	json_object_object_add(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
	json_object_object_add(o, "kind", json_object_new_string("Lease"));
	json_object_object_add(md, "name", json_object_new_string(name));
	json_object_object_add(md, "namespace", json_object_new_string(ns));
	if (st->exists && st->rv[0] != '\0')
		json_object_object_add(md, "resourceVersion", json_object_new_string(st->rv));
	json_object_object_add(o, "metadata", md);
	json_object_object_add(
	    spec, "holderIdentity", json_object_new_string(release ? "" : st->identity));
	json_object_object_add(spec, "leaseDurationSeconds",
	    json_object_new_int(release ? 1 : (int)tu_ceil(c->duration)));
	json_object_object_add(spec, "acquireTime",
	    json_object_new_string(ours && !release && r->acquire[0] != '\0' ? r->acquire : now));
	json_object_object_add(spec, "renewTime", json_object_new_string(now));
	json_object_object_add(spec, "leaseTransitions", json_object_new_int64(transitions));
	json_object_object_add(o, "spec", spec);
	return o;
}

void lease_written(struct lease_state *st, json_object *answer, double sent_at, double now)
{
	struct lease_record r;
	char rv[sizeof st->rv];

	if (answer != NULL && lease_record_parse(answer, &r, rv, sizeof rv) == 0) {
		lease_see(st, &r, now);
		snprintf(st->rv, sizeof st->rv, "%s", rv);
	}
	st->leading = strcmp(st->observed.holder, st->identity) == 0;
	if (st->leading)
		st->renewed_at = sent_at;
}

double lease_deadline(const struct lease_state *st, const struct lease_cfg *c)
{
	return st->renewed_at + c->renew_deadline;
}

int lease_overdue(const struct lease_state *st, const struct lease_cfg *c, double now)
{
	return st->leading && now >= lease_deadline(st, c);
}
