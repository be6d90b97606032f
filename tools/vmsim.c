/*
 * vmsim.c: vmpool-sim, the stand-in for KubeVirt's virt-controller on a cluster without
 * KubeVirt. Lists and watches VirtualMachines and VirtualMachineInstances (all namespaces
 * or --namespace): a VM that should run gets a VMI, Running and Ready after --ready-delay,
 * recreated after --vmi-restart-delay when deleted; VMIs of stopped, failing or deleted VMs
 * are deleted; VM status follows (Ready only with a ready VMI; a crash loop for the VMs
 * chosen by --fail or the vmpool-sim.kubevirt.io/fail annotation). Behaviour per VM is in
 * simvm.c, per VMI in simvmi.c; the list + watch (one per resource, whole objects) is the
 * watcher's informer (common/informer.c), with a store of its own.
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
#include "proto.h"
#include "informer.h"
#include "simvm.h"
#include "simvmi.h"
#include "store.h"
#include "xmalloc.h"
#include "stopsig.h"

enum { OPT_READY_DELAY = 1000, OPT_FAIL, OPT_FAIL_AGE, OPT_FAIL_COUNT, OPT_RESTART_DELAY };

static const struct option vmsim_options[] = {
    {"ready-delay", required_argument, NULL, OPT_READY_DELAY},
    {"fail", required_argument, NULL, OPT_FAIL},
    {"fail-age", required_argument, NULL, OPT_FAIL_AGE},
    {"fail-count", required_argument, NULL, OPT_FAIL_COUNT},
    {"vmi-restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
    {NULL, 0, NULL, 0},
};

static const char vmsim_usage[] =
    "  --ready-delay SEC    a new VMI is Running and Ready (so its VM Ready) after SEC\n"
    "                       (default 1.0; 0 = at once)\n"
    "  --vmi-restart-delay SEC\n"
    "                       a vanished VMI of a VM that should run is recreated from the\n"
    "                       VM's current template after SEC (default 1.0)\n"
    "  --fail REGEX         VMs whose name matches (POSIX extended) crash-loop, no VMI\n"
    "                       (also: annotation " SIMVM_FAIL_ANNOTATION "=<printableStatus>)\n"
    "  --fail-age SEC       failing VMs' Ready=False lastProbeTime is now - SEC (default 0;\n"
    "                       per VM: annotation " SIMVM_FAIL_AGE_ANNOTATION ")\n"
    "  --fail-count N       failing VMs' startFailure.consecutiveFailCount (default 3;\n"
    "                       per VM: annotation " SIMVM_FAIL_COUNT_ANNOTATION ")\n";

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
	case OPT_RESTART_DELAY:
		return cli_double(val, 0, 86400, &f->o.restart_delay);
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

/* the two informers: VMIs feed simvmis, VMs feed simvms. Whole objects (no transform):
 * a VMI is built from the VM's template. Both required: without KubeVirt's CRDs (or the
 * test cluster's stand-ins) the simulator warns and retries with backoff, keeping what it
 * knew (as before the informer was shared). */
static const struct informer_res vmsim_vm_res = {
    .kind = KIND_VM, .required = 1, .absent_keep = INFORMER_KEEP_ALWAYS};
static const struct informer_res vmsim_vmi_res = {
    .kind = KIND_VMI, .required = 1, .absent_keep = INFORMER_KEEP_ALWAYS};

struct vmsim {
	struct simvms *vms;
	struct simvmis *vmis;
	struct store *store;
	struct informer *vm_inf, *vmi_inf;
};

static void vmsim_start(struct vmsim *sim, struct event_base *base, struct kube *k,
    const struct cli *c, const struct simvm_opts *o)
{
	static const struct informer_sink vm_sink = {
	    simvms_on_set, simvms_on_del, simvms_on_synced};
	static const struct informer_sink vmi_sink = {
	    simvmis_on_set, simvmis_on_del, simvmis_on_synced};

	sim->vmis = simvmis_new(base, k, o->ready_delay);
	sim->vms = simvms_new(base, k, o, sim->vmis);
	simvmis_set_hooks(sim->vmis, simvms_vmi_changed, simvms_vmi_synced, sim->vms);
	sim->store = store_new();
	informer_metrics_declare("vmpool_sim");
	sim->vmi_inf =
	    informer_new(base, k, sim->store, &vmsim_vmi_res, c->namespace, &vmi_sink, sim->vmis);
	sim->vm_inf =
	    informer_new(base, k, sim->store, &vmsim_vm_res, c->namespace, &vm_sink, sim->vms);
	informer_start(sim->vmi_inf);
	informer_start(sim->vm_inf);
}

static void vmsim_stop(struct vmsim *sim)
{
	informer_free(sim->vm_inf); /* cancel the watches */
	informer_free(sim->vmi_inf);
	store_free(sim->store);
}

int main(int argc, char **argv)
{
	struct vmsim_flags f;
	struct vmsim sim;
	struct cli c;
	struct kube_config cfg;
	struct event_base *base;
	struct stopsig *stop;
	struct kube *k;
	int idx;

	memset(&f, 0, sizeof(f));
	memset(&cfg, 0, sizeof(cfg));
	f.o.ready_delay = 1.0;
	f.o.fail_count = 3;
	f.o.restart_delay = 1.0;
	idx = cli_parse(&c, "vmpool-sim", argc, argv, vmsim_options, vmsim_handle, &f, vmsim_usage);
	if (idx < argc)
		fatal_config("unexpected argument: %s", log_escape(argv[idx]));
	base = event_base_new();
	if (base == NULL)
		fatalx("event_base_new failed");
	cli_start_endpoints(base, &c);
	k = vmsim_kube(base, &c, &cfg);
	vmsim_start(&sim, base, k, &c, &f.o);
	stop = stopsig_new(base);
	metrics_set_ready(1);
	event_base_dispatch(base);

	vmsim_stop(&sim);
	kube_free(k); /* drops requests still in flight */
	simvms_free(sim.vms);
	simvmis_free(sim.vmis);
	if (c.metrics_addr != NULL)
		metrics_stop();
	stopsig_free(stop);
	event_base_free(base);
	kubeconfig_clear(&cfg);
	if (f.o.fail_re != NULL)
		regfree(f.o.fail_re);
	cli_free(&c);
	return 0;
}
