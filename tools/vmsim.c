/*
 * vmsim.c: vmpool-sim, the stand-in for KubeVirt's virt-controller on a cluster without
 * KubeVirt. Lists and watches VirtualMachines (all namespaces or --namespace) and patches
 * their status: Ready after --ready-delay when they should run, Stopped when not, a crash
 * loop for the ones chosen by --fail or the vmpool-sim.kubevirt.io/fail annotation.
 * Behaviour per VM is in simvm.c, the list + watch in siminf.c (VMIs will get their own
 * module beside simvm.c and a second informer).
 */
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "kube.h"
#include "log.h"
#include "metrics.h"
#include "siminf.h"
#include "simvm.h"
#include "xmalloc.h"
#include "stopsig.h"

enum { OPT_READY_DELAY = 1000, OPT_FAIL, OPT_FAIL_AGE, OPT_FAIL_COUNT };

static const struct option vmsim_options[] = {
    {"ready-delay", required_argument, NULL, OPT_READY_DELAY},
    {"fail", required_argument, NULL, OPT_FAIL},
    {"fail-age", required_argument, NULL, OPT_FAIL_AGE},
    {"fail-count", required_argument, NULL, OPT_FAIL_COUNT},
    {NULL, 0, NULL, 0},
};

static const char vmsim_usage[] =
    "  --ready-delay SEC    a VM that should run is Ready after SEC (default 1.0; 0 = at once)\n"
    "  --fail REGEX         VMs whose name matches (POSIX extended) crash-loop\n"
    "                       (also: annotation " SIMVM_FAIL_ANNOTATION "=<printableStatus>)\n"
    "  --fail-age SEC       failing VMs' Ready=False lastProbeTime is now - SEC (default 0)\n"
    "  --fail-count N       failing VMs' startFailure.consecutiveFailCount (default 3)\n";

struct vmsim_flags {
	struct simvm_opts o;
	regex_t re;
};

static int vmsim_handle(int opt, const char *val, void *arg)
{
	struct vmsim_flags *f = arg;
	char err[256];
	int rc;

	switch (opt) {
	case OPT_READY_DELAY:
		return cli_double(val, 0, 86400, &f->o.ready_delay);
	case OPT_FAIL_AGE:
		return cli_double(val, 0, 1e9, &f->o.fail_age);
	case OPT_FAIL_COUNT:
		return cli_int(val, 0, 1000000, &f->o.fail_count);
	case OPT_FAIL:
		if (f->o.fail_re != NULL) {
			regfree(f->o.fail_re);
			f->o.fail_re = NULL;
		}
		rc = regcomp(&f->re, val, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			regerror(rc, &f->re, err, sizeof(err));
			log_warnx(NULL, "--fail %s: %s", log_escape(val), err);
			return -1;
		}
		f->o.fail_re = &f->re;
		return 0;
	}
	return -1;
}

static struct kube *vmsim_kube(
    struct event_base *base, const struct cli *c, struct kube_config *cfg)
{
	struct kube_opts ko;
	struct kube *k;
	char err[512];

	if (kubeconfig_load(c->kubeconfig, cfg, err, sizeof(err)) == -1)
		fatal_config("kubeconfig: %s", err);
	memset(&ko, 0, sizeof(ko));
	ko.qps = c->qps;
	ko.burst = c->burst;
	ko.user_agent = "vmpool-sim/" VMPOOL_VERSION;
	k = kube_new(base, cfg, &ko);
	if (k == NULL)
		fatal_config("cannot set up the Kubernetes client for %s", cfg->server);
	log_info(NULL, "API server %s (from %s)", cfg->server, cfg->source);
	return k;
}

int main(int argc, char **argv)
{
	static const struct siminf_cb vm_cb = {
	    simvms_list_begin, simvms_upsert, simvms_remove, simvms_list_end};
	struct vmsim_flags f;
	struct cli c;
	struct kube_config cfg;
	struct event_base *base;
	struct stopsig *stop;
	struct kube *k;
	struct simvms *vms;
	struct siminf *inf;
	char *collection, err[256];
	int idx;

	memset(&f, 0, sizeof(f));
	memset(&cfg, 0, sizeof(cfg));
	f.o.ready_delay = 1.0;
	f.o.fail_count = 3;
	idx = cli_parse(&c, "vmpool-sim", argc, argv, vmsim_options, vmsim_handle, &f, vmsim_usage);
	if (idx < argc)
		fatal_config("unexpected argument: %s", log_escape(argv[idx]));
	base = event_base_new();
	if (base == NULL)
		fatalx("event_base_new failed");
	if (c.metrics_addr != NULL && metrics_start(base, c.metrics_addr, err, sizeof(err)) == -1)
		fatal_config("--metrics-addr: %s", err);
	k = vmsim_kube(base, &c, &cfg);
	if (c.namespace != NULL) {
		char *ns = kube_escape(c.namespace);
		xasprintf(&collection, "/apis/kubevirt.io/v1/namespaces/%s/virtualmachines", ns);
		free(ns);
	} else
		collection = xstrdup("/apis/kubevirt.io/v1/virtualmachines");
	vms = simvms_new(base, k, &f.o);
	inf = siminf_new(base, k, "vm", collection, &vm_cb, vms);
	stop = stopsig_new(base);
	siminf_start(inf);
	metrics_set_ready(1);
	event_base_dispatch(base);

	siminf_free(inf); /* cancels the watch */
	kube_free(k);     /* drops requests still in flight */
	simvms_free(vms);
	if (c.metrics_addr != NULL)
		metrics_stop();
	stopsig_free(stop);
	event_base_free(base);
	kubeconfig_clear(&cfg);
	if (f.o.fail_re != NULL)
		regfree(f.o.fail_re);
	free(collection);
	cli_free(&c);
	return 0;
}
