/*
 * queue.h: the work queue of the planner and vmpool-status (client-go's rate-limited work
 * queue is the model). Keys ("namespace/name") are marked dirty; marks coalesce, so a key
 * marked many times before the next batch is processed once. A batch takes every dirty key
 * at once, at most once per pace seconds (common/evpace.h); a key marked while its batch
 * runs (it is being processed) is dirty again and processed in the next batch. A failing
 * key is marked again after its own backoff (queue_retry), reset by queue_ok. Measured as
 * client-go measures its work queues: workqueue_*{name="<name>"} (metrics.h).
 */
#ifndef VMPOOL_QUEUE_H
#define VMPOOL_QUEUE_H

#include <event2/event.h>
#include <stddef.h>

struct queue_opts {
	const char *name;    /* the name label of its workqueue_* series ("planner", "status") */
	double pace;         /* batches start at least this far apart (seconds) */
	double backoff_base; /* queue_retry(): base doubling to cap, per key */
	double backoff_cap;
	/* optional: 0 while no batch may run (an incomplete picture); the dirty keys wait, and
	 * the next queue_mark() (of any key, dirty or not) tries again. arg: queue_new's */
	int (*ready)(void *arg);
	/* optional: a key's passes take at most this share of the time (0 < share < 1). A key
	 * marked sooner than its last pass's cost x (1 / share - 1) after that pass waits out
	 * the rest (queue_after), so a big pool is passed over less often while it changes, and
	 * a small one is not held at all (its passes cost less than pace). 0: no such limit */
	double share;
};

struct queue;
/* run(key, arg) processes one key; it may mark, retry or forget any key, itself included */
struct queue *queue_new(struct event_base *, const struct queue_opts *,
    void (*run)(const char *key, void *arg), void *arg);
void queue_free(struct queue *);
void queue_mark(struct queue *, const char *key);
/* queue_mark, but the batch starts at the next loop turn: neither the pace nor the key's
 * share holds it. For a mark that lets the key do work it was waiting for, which must not
 * wait behind the CPU-saving rules (the caller bounds how often it comes) */
void queue_mark_soon(struct queue *, const char *key);
void queue_retry(struct queue *, const char *key); /* again after the key's backoff */
void queue_ok(struct queue *, const char *key);    /* resets the key's backoff */
/* another look after secs (a timer the key waits for): the earliest request wins */
void queue_after(struct queue *, const char *key, double secs);
/* drops the key: not processed, its timers cancelled, its backoff forgotten */
void queue_forget(struct queue *, const char *key);
/* keys dirty now (waiting for a batch) */
size_t queue_dirty(const struct queue *);

#endif
