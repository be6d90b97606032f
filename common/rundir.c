/*
 * rundir.c: creating and checking the run directory (see rundir.h). The check is on the
 * directory itself with lstat, so a symbolic link planted where the directory should be is
 * refused rather than followed; parents are only created, as mkdir -p would.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"
#include "xmalloc.h"

static int rundir_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rundir_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* mkdir -p; every directory we create is 0700, existing ones are left alone */
static int rundir_mkdirs(const char *dir, char *err, size_t errlen)
{
	char *p, *s, c;
	int rv = 0;

	p = xstrdup(dir);
	for (s = p + (*p == '/');; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			rv = rundir_fail(
			    err, errlen, "cannot create %s: %s", log_escape(p), strerror(errno));
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rv;
}

/* the checks on what lstat found */
static int rundir_verify(const char *d, const struct stat *st, char *err, size_t errlen)
{
	if (S_ISLNK(st->st_mode))
		return rundir_fail(
		    err, errlen, "run directory %s is a symbolic link; refusing it", d);
	if (!S_ISDIR(st->st_mode))
		return rundir_fail(err, errlen, "run directory %s is not a directory", d);
	if (st->st_uid != geteuid())
		return rundir_fail(err, errlen,
		    "run directory %s is owned by uid %lu, not by us (uid %lu); someone else may "
		    "have created it: remove it or choose another --run-dir",
		    d, (unsigned long)st->st_uid, (unsigned long)geteuid());
	if ((st->st_mode & 077) != 0)
		return rundir_fail(err, errlen,
		    "run directory %s has unsafe permissions %04o (group or others may use "
		    "it); it must be 0700",
		    d, (unsigned)(st->st_mode & 07777));
	return 0;
}

static int rundir_stat(const char *dir, const char *d, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(dir, &st) == -1) {
		if (errno != ENOENT)
			return rundir_fail(err, errlen, "run directory %s: %s", d, strerror(errno));
		if (rundir_mkdirs(dir, err, errlen) == -1)
			return -1;
		if (lstat(dir, &st) == -1)
			return rundir_fail(err, errlen, "run directory %s: %s", d, strerror(errno));
	}
	return rundir_verify(d, &st, err, errlen);
}

int rundir_check(const char *dir, char *err, size_t errlen)
{
	char *copy;
	size_t len;
	int rv;

	if (dir == NULL || *dir == '\0')
		return rundir_fail(err, errlen, "no run directory");
	/* "dir/" would make lstat follow a symbolic link */
	copy = xstrdup(dir);
	for (len = strlen(copy); len > 1 && copy[len - 1] == '/'; len--)
		copy[len - 1] = '\0';
	rv = rundir_stat(copy, log_escape(copy), err, errlen);
	free(copy);
	return rv;
}
