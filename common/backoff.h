/*
 * backoff.h: the one backoff / rate-limit module. Serves requeues, reconnects, supervisor
 * restarts and the API writer's token bucket. Pure: callers pass the clock in.
 */
#ifndef VMPOOL_BACKOFF_H
#define VMPOOL_BACKOFF_H

struct backoff {
	double base; /* first delay, seconds */
	double cap;  /* largest delay */
	double cur;  /* next delay to hand out */
};
void backoff_init(struct backoff *, double base, double cap);
double backoff_next(struct backoff *); /* current delay, then doubles up to cap */
void backoff_reset(struct backoff *);

struct tokenbucket {
	double rate; /* tokens per second; <= 0 means unlimited */
	double burst;
	double tokens;
	double last;
};
void tb_init(struct tokenbucket *, double rate, double burst, double now);
/* Takes one token. Returns 0 if it was available now, else the seconds until it will be
 * (the token is reserved: the caller must act after that delay, not ask again). */
double tb_take(struct tokenbucket *, double now);
/* Refills, then returns 0 if a whole token is there now, else the seconds until there will
 * be one; takes nothing (for callers that only use spare tokens, and never go into debt) */
double tb_wait(struct tokenbucket *, double now);

#endif
