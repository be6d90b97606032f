/*
 * fuzz_kubeconfig.c: libFuzzer target for kubeconfig_load_file() on a temporary file
 * rewritten for each input: size cap, libyaml depth check and document loader, and the
 * current-context -> context -> cluster + user resolution. A failure must say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[64];
static int fuzz_fd = -1;

static void fuzz_cleanup(void)
{
	unlink(fuzz_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_kubeconfig", -1, LOG_FMT_TEXT);
	snprintf(fuzz_path, sizeof fuzz_path, "/tmp/fuzz_kubeconfig.XXXXXX");
	if ((fuzz_fd = mkstemp(fuzz_path)) == -1) {
		perror("mkstemp");
		exit(1);
	}
	atexit(fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_config cfg;
	char err[1024] = "";

	if (ftruncate(fuzz_fd, 0) == -1 || pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
		abort();
	if (kubeconfig_load_file(fuzz_path, &cfg, err, sizeof err) == 0) {
		if (cfg.server == NULL || cfg.namespace == NULL)
			abort(); /* a loaded config always has both */
		kubeconfig_clear(&cfg);
	} else if (err[0] == '\0') {
		abort();
	}
	return 0;
}
