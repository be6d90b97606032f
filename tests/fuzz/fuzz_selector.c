/*
 * fuzz_selector.c: libFuzzer target for the label selector parser (selector_parse) on any
 * JSON value, then its canonical string and matching against the selector's own matchLabels
 * and a fixed label set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "selector.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_object *fuzz_labels;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_selector", -1, LOG_FMT_TEXT);
	fuzz_labels = json_tokener_parse("{\"app\":\"a\",\"env\":\"dev\",\"tier\":\"\"}");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *o, *ml = NULL;
	struct selector *s;
	char err[512], *str;

	if (size > 65536)
		return 0;
	tok = json_tokener_new_ex(64);
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (o == NULL)
		return 0;
	if ((s = selector_parse(o, err, sizeof err)) != NULL) {
		str = selector_string(s);
		if (str == NULL)
			abort();
		free(str);
		(void)selector_is_empty(s);
		(void)selector_matches(s, fuzz_labels);
		(void)selector_matches(s, NULL);
		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "matchLabels", &ml))
			(void)selector_matches(s, ml);
		selector_free(s);
	} else if (err[0] == '\0') {
		abort(); /* an error must say what is wrong */
	}
	json_object_put(o);
	return 0;
}
