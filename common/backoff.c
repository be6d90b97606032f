/*
 * backoff.c: exponential backoff and the token bucket. Pure: the caller passes the clock,
 * so unit tests drive time by hand.
 */
#include "backoff.h"

void backoff_init(struct backoff *b, double base, double cap)
{
	b->base = base;
	b->cap = cap < base ? base : cap;
	b->cur = base;
}

/* Hands out the current delay, then doubles it up to the cap. */
double backoff_next(struct backoff *b)
{
	double d = b->cur < b->cap ? b->cur : b->cap;

	b->cur = d * 2 < b->cap ? d * 2 : b->cap;
	return d;
}

void backoff_reset(struct backoff *b)
{
	b->cur = b->base;
}

void tb_init(struct tokenbucket *tb, double rate, double burst, double now)
{
	tb->rate = rate;
	tb->burst = burst < 1 ? 1 : burst;
	tb->tokens = tb->burst;
	tb->last = now;
}

/*
 * Refills for the time since the last call (a clock that went backwards refills nothing),
 * then takes a token even if that leaves the bucket in debt: the debt is the reservation,
 * and the returned delay is when it is paid off.
 */
static void tb_refill(struct tokenbucket *tb, double now)
{
	if (now > tb->last) {
		tb->tokens += (now - tb->last) * tb->rate;
		if (tb->tokens > tb->burst)
			tb->tokens = tb->burst;
		tb->last = now;
	}
}

double tb_take(struct tokenbucket *tb, double now)
{
	if (tb->rate <= 0)
		return 0;
	tb_refill(tb, now);
	tb->tokens -= 1;
	if (tb->tokens >= 0)
		return 0;
	return -tb->tokens / tb->rate;
}

double tb_wait(struct tokenbucket *tb, double now)
{
	if (tb->rate <= 0)
		return 0;
	tb_refill(tb, now);
	return tb->tokens >= 1 ? 0 : (1 - tb->tokens) / tb->rate;
}
