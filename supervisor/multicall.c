/*
 * multicall.c: the main of the vmpoold executable, which holds the supervisor and the four
 * stages (multicall.h): it runs the one named by argv[0]'s last component. The stages are
 * installed as links to vmpoold (make install, the image), so the five processes map one
 * file and share its pages, and each stage still runs alone, with its own name, flags and
 * man page (DESIGN.md, "Processes"). Any other name is refused with EXIT_CONFIG.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "multicall.h"

static const struct {
	const char *name;
	int (*main)(int, char **);
} multicall_programs[] = {
    {"vmpoold", vmpoold_main},
    {"vmpool-watcher", vmpool_watcher_main},
    {"vmpool-planner", vmpool_planner_main},
    {"vmpool-actuator", vmpool_actuator_main},
    {"vmpool-status", vmpool_status_main},
};

int main(int argc, char **argv)
{
	const char *name = argc > 0 && argv[0] != NULL ? argv[0] : "", *slash;
	size_t i;

	if ((slash = strrchr(name, '/')) != NULL)
		name = slash + 1;
	for (i = 0; i < sizeof(multicall_programs) / sizeof(multicall_programs[0]); i++) {
		if (strcmp(name, multicall_programs[i].name) == 0)
			return multicall_programs[i].main(argc, argv);
	}
	fprintf(stderr,
	    "vmpoold: started as '%s': this executable runs as vmpoold, vmpool-watcher, "
	    "vmpool-planner, vmpool-actuator or vmpool-status (its name or a link's)\n",
	    name);
	return EXIT_CONFIG;
}
