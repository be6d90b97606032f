/* timeutil.c: the clocks, and RFC 3339 timestamps as Kubernetes writes them. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads exactly n digits at *sp into *out and advances; -1 if they are not all digits. */
static int rfc3339_digits(const char **sp, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**sp))
			return -1;
		v = v * 10 + (**sp - '0');
		(*sp)++;
	}
	*out = v;
	return 0;
}

static int rfc3339_mday_max(int year, int mon)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

/* ".123456789" after the seconds; none is fine */
static int rfc3339_fraction(const char **sp, double *frac)
{
	double scale = 0.1;

	*frac = 0;
	if (**sp != '.')
		return 0;
	(*sp)++;
	if (!isdigit((unsigned char)**sp))
		return -1;
	while (isdigit((unsigned char)**sp)) {
		*frac += (**sp - '0') * scale;
		scale /= 10;
		(*sp)++;
	}
	return 0;
}

/* "Z" or "+hh:mm" / "-hh:mm" at the end; the offset is returned in seconds east of UTC */
static int rfc3339_offset(const char *s, long *off)
{
	int sign, hh, mm;

	*off = 0;
	if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0')
		return 0;
	if (s[0] != '+' && s[0] != '-')
		return -1;
	sign = s[0] == '-' ? -1 : 1;
	s++;
	if (rfc3339_digits(&s, 2, &hh) == -1 || *s++ != ':' || rfc3339_digits(&s, 2, &mm) == -1 ||
	    *s != '\0')
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	*off = sign * (hh * 3600L + mm * 60L);
	return 0;
}

double rfc3339_parse(const char *s)
{
	struct tm tm;
	int year, mon, mday, hour, min, sec;
	double frac;
	long off;
	time_t t;

	if (s == NULL)
		return -1;
	if (rfc3339_digits(&s, 4, &year) == -1 || *s++ != '-' ||
	    rfc3339_digits(&s, 2, &mon) == -1 || *s++ != '-' ||
	    rfc3339_digits(&s, 2, &mday) == -1 || (*s != 'T' && *s != 't' && *s != ' '))
		return -1;
	s++;
	if (rfc3339_digits(&s, 2, &hour) == -1 || *s++ != ':' ||
	    rfc3339_digits(&s, 2, &min) == -1 || *s++ != ':' || rfc3339_digits(&s, 2, &sec) == -1)
		return -1;
	if (rfc3339_fraction(&s, &frac) == -1 || rfc3339_offset(s, &off) == -1)
		return -1;
	if (mon < 1 || mon > 12 || mday < 1 || mday > rfc3339_mday_max(year, mon) || hour > 23 ||
	    min > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return (double)t - (double)off + frac;
}

void rfc3339_format(double t, char out[32])
{
	struct tm tm;
	time_t secs = (time_t)tu_floor(t);

	if (gmtime_r(&secs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

struct timeval secs_to_tv(double secs)
{
	struct timeval tv;

	if (!(secs > 0))
		secs = 0;
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	if (tv.tv_usec >= 1000000)
		tv.tv_usec = 999999;
	return tv;
}
