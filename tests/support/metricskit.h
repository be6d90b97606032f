/* metricskit.h: reading the process's metrics registry in tests (unit and stage). */
#ifndef VMPOOL_METRICSKIT_H
#define VMPOOL_METRICSKIT_H

/* the registry rendered (metrics_render()) as a NUL-terminated string; caller frees */
char *metricskit_render(void);
/* the value of the sample series (family and labels exactly as rendered, e.g.
 * workqueue_depth{name="planner"}) in text into *v: 0, or -1 if there is none */
int metricskit_sample(const char *text, const char *series, double *v);

#endif
