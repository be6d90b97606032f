/* metricskit.c: reading the process's metrics registry in tests (metricskit.h). */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "metricskit.h"
#include "xmalloc.h"

char *metricskit_render(void)
{
	struct buf b = {0};

	metrics_render(&b);
	buf_add(&b, "", 1);
	return (char *)b.data;
}

int metricskit_sample(const char *text, const char *series, double *v)
{
	const char *p = text;
	size_t n = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			*v = strtod(p + n + 1, NULL);
			return 0;
		}
		p += n;
	}
	return -1;
}
