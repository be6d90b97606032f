/*
 * log.h: the one log API. Every line carries the process name and, where there is one, the
 * object key (ns/name); text or JSON (one object per line) on stderr. Strings that come
 * from the cluster or a peer go through log_escape() before they are printed in text mode.
 */
#ifndef VMPOOL_LOG_H
#define VMPOOL_LOG_H

#include <stdarg.h>

#define LOG_FMT_TEXT 0
#define LOG_FMT_JSON 1

/* Exit codes shared by every program. EXIT_CONFIG tells the supervisor "do not restart". */
#define EXIT_CONFIG 78

void log_init(const char *procname, int verbose, int format);
void log_setverbose(int verbose);
const char *log_procname(void);

/* key may be NULL; log_warn appends strerror(errno) */
void log_warn(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warnx(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fatal: start-up or a broken internal invariant only; exits 1 */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* start-up configuration error: logs and exits EXIT_CONFIG */
void fatal_config(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Escapes control characters and non-ASCII bytes (\xNN) and truncates to 512 bytes.
 * Returns one of a small ring of static buffers: use it within one log call. */
const char *log_escape(const char *s);

#endif
