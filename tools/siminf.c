/*
 * siminf.c: list + watch of one resource for the simulator, as an explicit state machine
 * (LISTING -> WATCHING, BACKOFF on errors, relist on 410). Knows nothing about VMs.
 */
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "obj.h"
#include "siminf.h"
#include "xmalloc.h"
#include "timeutil.h"

#define SIMINF_PAGE          500
#define SIMINF_WATCH_TIMEOUT 300

enum siminf_state { SIMINF_IDLE, SIMINF_LISTING, SIMINF_WATCHING, SIMINF_BACKOFF };

static const char *siminf_state_names[] = {"IDLE", "LISTING", "WATCHING", "BACKOFF"};

struct siminf {
	struct event_base *base;
	struct kube *kube;
	char *what;
	char *collection;
	enum siminf_state state;
	char *rv;   /* resume point for the watch */
	int relist; /* the watch said 410 (Gone) */
	struct kube_watch *watch;
	struct event *ev_retry;
	struct backoff bo;
	struct siminf_cb cb;
	void *arg;
};

static void siminf_list(struct siminf *, const char *cont);
static void siminf_watch(struct siminf *);

static void siminf_set_state(struct siminf *s, enum siminf_state st)
{
	if (s->state == st)
		return;
	log_debug(s->what, "%s -> %s", siminf_state_names[s->state], siminf_state_names[st]);
	s->state = st;
}

static void siminf_set_rv(struct siminf *s, const char *rv)
{
	if (rv == NULL || *rv == '\0')
		return;
	free(s->rv);
	s->rv = xstrdup(rv);
}

static void siminf_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct siminf *s = arg;

	siminf_list(s, NULL);
}

/* waits, then relists */
static void siminf_backoff(struct siminf *s)
{
	struct timeval tv;
	double d = backoff_next(&s->bo);

	siminf_set_state(s, SIMINF_BACKOFF);
	tv = secs_to_tv(d);
	log_info(s->what, "relisting in %.1f s", d);
	evtimer_add(s->ev_retry, &tv);
}

static void siminf_list_items(struct siminf *s, json_object *body)
{
	json_object *items = obj_path(body, "items");
	size_t i, n;

	if (items == NULL || !json_object_is_type(items, json_type_array))
		return;
	n = json_object_array_length(items);
	for (i = 0; i < n; i++)
		s->cb.upsert(json_object_array_get_idx(items, i), s->arg);
}

static void siminf_list_done(const struct kube_response *r, void *arg)
{
	struct siminf *s = arg;
	const char *cont;

	if (r->status != 200 || r->body == NULL) {
		log_warnx(s->what, "list: HTTP %ld %s", r->status, log_escape(r->message));
		siminf_backoff(s);
		return;
	}
	siminf_list_items(s, r->body);
	cont = obj_str(r->body, "metadata.continue");
	if (cont != NULL && *cont != '\0') {
		siminf_list(s, cont);
		return;
	}
	siminf_set_rv(s, obj_str(r->body, "metadata.resourceVersion"));
	s->cb.list_end(s->arg);
	siminf_watch(s);
}

static void siminf_list(struct siminf *s, const char *cont)
{
	char *path, *esc = NULL;

	if (cont == NULL) {
		s->relist = 0;
		s->cb.list_begin(s->arg);
	} else
		esc = kube_escape(cont);
	xasprintf(&path, "%s?limit=%d%s%s", s->collection, SIMINF_PAGE,
	    esc != NULL ? "&continue=" : "", esc != NULL ? esc : "");
	free(esc);
	siminf_set_state(s, SIMINF_LISTING);
	if (kube_request(s->kube, "GET", path, NULL, NULL, siminf_list_done, s) == -1) {
		log_warnx(s->what, "list: cannot queue the request");
		siminf_backoff(s);
	}
	free(path);
}

static void siminf_event(const char *type, json_object *obj, void *arg)
{
	struct siminf *s = arg;
	long long code = 0;

	if (strcmp(type, "ERROR") == 0) {
		if (obj_int(obj, "code", &code) == 0 && code == 410)
			s->relist = 1;
		else
			log_warnx(s->what, "watch error: %s",
			    log_escape(obj_str(obj, "message") ? obj_str(obj, "message") : "?"));
		return;
	}
	siminf_set_rv(s, obj_str(obj, "metadata.resourceVersion"));
	if (strcmp(type, "BOOKMARK") == 0)
		return;
	backoff_reset(&s->bo);
	if (strcmp(type, "DELETED") == 0)
		s->cb.remove(obj, s->arg);
	else
		s->cb.upsert(obj, s->arg);
}

static void siminf_end(long status, const char *message, void *arg)
{
	struct siminf *s = arg;

	s->watch = NULL;
	if (status == 410 || s->relist) {
		log_info(s->what, "watch expired (410): relisting");
		siminf_list(s, NULL);
		return;
	}
	if (status == 200) {
		log_debug(s->what, "watch ended normally: resuming");
		siminf_watch(s);
		return;
	}
	log_warnx(s->what, "watch ended: HTTP %ld %s", status,
	    log_escape(message != NULL ? message : ""));
	siminf_backoff(s);
}

static void siminf_watch(struct siminf *s)
{
	char *path;

	xasprintf(&path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d%s%s", s->collection,
	    SIMINF_WATCH_TIMEOUT, s->rv != NULL ? "&resourceVersion=" : "",
	    s->rv != NULL ? s->rv : "");
	siminf_set_state(s, SIMINF_WATCHING);
	s->watch = kube_watch_start(s->kube, path, siminf_event, siminf_end, s);
	free(path);
	if (s->watch == NULL) {
		log_warnx(s->what, "cannot start the watch");
		siminf_backoff(s);
	}
}

struct siminf *siminf_new(struct event_base *base, struct kube *kube, const char *what,
    const char *collection, const struct siminf_cb *cb, void *arg)
{
	struct siminf *s;

	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->kube = kube;
	s->what = xstrdup(what);
	s->collection = xstrdup(collection);
	s->ev_retry = evtimer_new(base, siminf_retry_cb, s);
	if (s->ev_retry == NULL)
		fatalx("evtimer_new failed");
	backoff_init(&s->bo, 0.5, 30.0);
	s->cb = *cb;
	s->arg = arg;
	return s;
}

void siminf_start(struct siminf *s)
{
	siminf_list(s, NULL);
}

void siminf_free(struct siminf *s)
{
	if (s == NULL)
		return;
	if (s->watch != NULL)
		kube_watch_cancel(s->watch);
	event_free(s->ev_retry);
	free(s->rv);
	free(s->what);
	free(s->collection);
	free(s);
}
