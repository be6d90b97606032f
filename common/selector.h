/*
 * selector.h: metav1.LabelSelector (matchLabels and matchExpressions: In, NotIn, Exists,
 * DoesNotExist), matching against a labels map and the canonical string of SPEC 15.
 * Pure module.
 */
#ifndef VMPOOL_SELECTOR_H
#define VMPOOL_SELECTOR_H

#include <json-c/json.h>
#include <stddef.h>

struct selector;

/* Parses a LabelSelector object. NULL/absent selector -> error ("selector is required").
 * On error returns NULL and writes a message saying what is wrong into err. */
struct selector *selector_parse(json_object *sel, char *err, size_t errlen);
void selector_free(struct selector *);
/* labels may be NULL (no labels). Empty selector matches everything. */
int selector_matches(const struct selector *, json_object *labels);
int selector_is_empty(const struct selector *);
/* canonical string, e.g. "app=a,env in (dev,prod),!gone"; "" for empty. Caller frees. */
char *selector_string(const struct selector *);

#endif
