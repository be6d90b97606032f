/* timeutil.h: clocks, passed into pure modules rather than read by them. */
#ifndef VMPOOL_TIMEUTIL_H
#define VMPOOL_TIMEUTIL_H

#include <sys/time.h>
#include <time.h>

double now_mono(void); /* CLOCK_MONOTONIC seconds */
double now_real(void);
/* seconds (negative: 0) as a struct timeval for event timers */
struct timeval secs_to_tv(double secs); /* wall clock seconds since the epoch */
/* RFC 3339 "2006-01-02T15:04:05Z" <-> epoch seconds; parse returns -1 on error */
double rfc3339_parse(const char *s);
/* floor and ceil of x with |x| < 2^63, without libm: the programs need nothing else from it,
 * and a loaded libm costs each process about 0.33 MB of resident pages (issue 9) */
static inline double tu_floor(double x)
{
	double t = (double)(long long)x;

	return t > x ? t - 1 : t;
}
static inline double tu_ceil(double x)
{
	double t = (double)(long long)x;

	return t < x ? t + 1 : t;
}
void rfc3339_format(double t, char out[32]);

#endif
