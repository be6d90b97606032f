/*
 * log.c: the one log API. Every line carries a UTC timestamp, the process name, the level
 * and the object key; text or JSON (one object per line) on stderr. Each line is written
 * with a single write(2) so that lines from the supervisor's children do not interleave.
 * Nothing here allocates, so fatalx() is safe to call when memory has run out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_MSG_MAX     4096
#define LOG_LINE_MAX    ((LOG_MSG_MAX + 1024) * 6) /* room for every byte escaped */
#define LOG_ESCAPE_MAX  512
#define LOG_ESCAPE_RING 8

static const char *log_proc = "vmpool";
static int log_verbose;
static int log_format = LOG_FMT_TEXT;

struct log_line {
	char data[LOG_LINE_MAX];
	size_t len;
};

void log_init(const char *procname, int verbose, int format)
{
	if (procname != NULL)
		log_proc = procname;
	log_verbose = verbose;
	log_format = format == LOG_FMT_JSON ? LOG_FMT_JSON : LOG_FMT_TEXT;
}

void log_setverbose(int verbose)
{
	log_verbose = verbose;
}

const char *log_procname(void)
{
	return log_proc;
}

static void line_add(struct log_line *l, const char *s, size_t n)
{
	if (n > sizeof l->data - 1 - l->len)
		n = sizeof l->data - 1 - l->len;
	memcpy(l->data + l->len, s, n);
	l->len += n;
}

static void line_str(struct log_line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes there are not one. */
static size_t utf8_seqlen(const unsigned char *s)
{
	size_t n, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The JSON escape for an ASCII byte, or NULL if it goes out as itself. */
static const char *json_escape_byte(unsigned char ch, char tmp[8])
{
	switch (ch) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	}
	if (ch < 0x20 || ch == 0x7f) {
		snprintf(tmp, 8, "\\u%04x", ch);
		return tmp;
	}
	return NULL;
}

/* Appends s as a JSON string; invalid UTF-8 becomes U+FFFD so the line stays valid JSON. */
static void line_json_str(struct log_line *l, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *esc;
	char tmp[8];
	size_t n;

	line_str(l, "\"");
	while (*p != '\0') {
		if ((esc = json_escape_byte(*p, tmp)) != NULL) {
			line_str(l, esc);
			p++;
		} else if ((n = utf8_seqlen(p)) == 0) {
			line_str(l, "\\ufffd");
			p++;
		} else {
			line_add(l, (const char *)p, n);
			p += n;
		}
	}
	line_str(l, "\"");
}

static void log_timestamp(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03dZ", sec, (int)(ts.tv_nsec / 1000000));
}

static void log_emit(const char *level, const char *key, const char *msg)
{
	static struct log_line l; /* too large for a daemon's stack; the log is not reentrant */
	char ts[48];
	ssize_t n;
	size_t off;

	log_timestamp(ts, sizeof ts);
	l.len = 0;
	if (log_format == LOG_FMT_JSON) {
		line_str(&l, "{\"ts\":\"");
		line_str(&l, ts);
		line_str(&l, "\",\"proc\":");
		line_json_str(&l, log_proc);
		line_str(&l, ",\"level\":\"");
		line_str(&l, level);
		line_str(&l, "\",\"key\":");
		line_json_str(&l, key != NULL ? key : "");
		line_str(&l, ",\"msg\":");
		line_json_str(&l, msg);
		line_str(&l, "}");
	} else {
		line_str(&l, ts);
		line_str(&l, " ");
		line_str(&l, log_proc);
		line_str(&l, " ");
		line_str(&l, level);
		if (key != NULL && *key != '\0') {
			line_str(&l, " ");
			line_str(&l, key);
		}
		line_str(&l, ": ");
		line_str(&l, msg);
	}
	l.data[l.len++] = '\n';
	for (off = 0; off < l.len; off += (size_t)n) {
		n = write(STDERR_FILENO, l.data + off, l.len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
	}
}

/* errnum >= 0 appends ": strerror(errnum)" */
static void log_vlog(const char *level, const char *key, int errnum, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX];
	size_t len;
	int saved = errno;

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (errnum >= 0) {
		len = strlen(msg);
		snprintf(msg + len, sizeof msg - len, ": %s", strerror(errnum));
	}
	log_emit(level, key, msg);
	errno = saved;
}

void log_warn(const char *key, const char *fmt, ...)
{
	va_list ap;
	int errnum = errno;

	va_start(ap, fmt);
	log_vlog("warn", key, errnum, fmt, ap);
	va_end(ap);
}

void log_warnx(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog("warn", key, -1, fmt, ap);
	va_end(ap);
}

void log_info(const char *key, const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 0)
		return;
	va_start(ap, fmt);
	log_vlog("info", key, -1, fmt, ap);
	va_end(ap);
}

void log_debug(const char *key, const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vlog("debug", key, -1, fmt, ap);
	va_end(ap);
}

/*
 * _exit, not exit: a fatal path leaves memory allocated, and an ASan build's leak check at
 * exit would turn EXIT_CONFIG into 1, which the supervisor would treat as restartable.
 */
static void __attribute__((noreturn)) log_exit(int code)
{
	fflush(NULL);
	_exit(code);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	int errnum = errno;

	va_start(ap, fmt);
	log_vlog("fatal", NULL, errnum, fmt, ap);
	va_end(ap);
	log_exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog("fatal", NULL, -1, fmt, ap);
	va_end(ap);
	log_exit(1);
}

void fatal_config(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog("fatal", NULL, -1, fmt, ap);
	va_end(ap);
	log_exit(EXIT_CONFIG);
}

/*
 * Makes a string from the cluster or a peer safe for a text log line: backslash doubles,
 * control characters, DEL and non-ASCII bytes become \xNN, and the result is cut at
 * LOG_ESCAPE_MAX bytes with "..." appended. NULL prints as "(null)".
 */
const char *log_escape(const char *s)
{
	static char ring[LOG_ESCAPE_RING][LOG_ESCAPE_MAX + 4];
	static unsigned int next;
	const unsigned char *p;
	char *out, tmp[5];
	size_t len = 0, n;

	if (s == NULL)
		return "(null)";
	out = ring[next++ % LOG_ESCAPE_RING];
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\')
			memcpy(tmp, "\\\\", (n = 2) + 1);
		else if (*p < 0x20 || *p >= 0x7f)
			n = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", *p);
		else {
			tmp[0] = (char)*p;
			n = 1;
		}
		if (len + n > LOG_ESCAPE_MAX) {
			memcpy(out + len, "...", 3);
			len += 3;
			break;
		}
		memcpy(out + len, tmp, n);
		len += n;
	}
	out[len] = '\0';
	return out;
}
