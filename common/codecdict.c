/*
 * codecdict.c: the fixed dictionary of the compact form (codec.h): keys and values common in
 * the objects the stages hold, each written as a 2-byte reference where a compact store keeps
 * it. Changing it changes no wire format (the compact form never leaves its process); an
 * entry earns its place by being common, not by being present in every object.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/*
 * Keys and values common in the objects the stages hold (the resource table's fields, the
 * KubeVirt specs a pool's template carries, the usual values). At most
 * CODEC_BACK_BASE - CODEC_LOCAL_MAX entries, no duplicates, none shorter than 2 bytes (test_codec).
 */
static const char *const codec_dict[] = {
    /* identity and metadata */
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "annotations",
    "deletionTimestamp",
    "ownerReferences",
    "controller",
    "blockOwnerDeletion",
    "finalizers",
    "creationTimestamp",
    "generation",
    "vmpooldManagers",
    "owners",
    "status",
    "spec",
    "data",
    "revision",
    /* the kinds and their versions */
    "VirtualMachinePool",
    "pool.kubevirt.io/v1beta1",
    "pool.kubevirt.io/v1alpha1",
    "VirtualMachine",
    "VirtualMachineInstance",
    "kubevirt.io/v1",
    "ControllerRevision",
    "apps/v1",
    "PersistentVolumeClaim",
    "DataVolume",
    "cdi.kubevirt.io/v1beta1",
    "v1",
    /* labels, finalizers, managers */
    "kubevirt.io/vmpool",
    "kubevirt.io/vm-pool-revision-name",
    "pool.kubevirt.io/finalizer",
    "vmpoold",
    "vmpool-sim",
    "kubectl-create",
    "kubectl-client-side-apply",
    "kubectl.kubernetes.io/last-applied-configuration",
    "vmpoold.io/claimed-by",
    /* status: VMs, VMIs, pools */
    "printableStatus",
    "startFailure",
    "consecutiveFailCount",
    "conditions",
    "type",
    "reason",
    "message",
    "lastProbeTime",
    "lastTransitionTime",
    "phase",
    "Ready",
    "True",
    "False",
    "Unknown",
    "Running",
    "Stopped",
    "Starting",
    "Stopping",
    "Provisioning",
    "Terminating",
    "Migrating",
    "Paused",
    "ErrorUnschedulable",
    "CrashLoopBackOff",
    "Succeeded",
    "Failed",
    "Pending",
    "Scheduling",
    "Scheduled",
    "replicas",
    "readyReplicas",
    "labelSelector",
    "ReplicaFailure",
    "ReplicaPaused",
    "Progressing",
    "ForeignController",
    "ScalingUp",
    "ScalingDown",
    "Updating",
    "WaitingForReady",
    "Complete",
    /* a pool's spec and the VM template in it */
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "paused",
    "virtualMachineTemplate",
    "template",
    "runStrategy",
    "Always",
    "Halted",
    "Manual",
    "RerunOnFailure",
    "Once",
    "running",
    "domain",
    "devices",
    "disks",
    "disk",
    "bus",
    "virtio",
    "sata",
    "scsi",
    "interfaces",
    "networks",
    "resources",
    "requests",
    "limits",
    "memory",
    "cpu",
    "cores",
    "sockets",
    "threads",
    "guest",
    "firmware",
    "machine",
    "features",
    "terminationGracePeriodSeconds",
    "volumes",
    "containerDisk",
    "image",
    "containerdisk",
    "cloudinitdisk",
    "cloudInitNoCloud",
    "userData",
    "userDataBase64",
    "networkData",
    "masquerade",
    "bridge",
    "pod",
    "default",
    "nodeSelector",
    "affinity",
    "tolerations",
    "evictionStrategy",
    "dataVolumeTemplates",
    "persistentVolumeClaim",
    "claimName",
    "dataVolume",
    "storage",
    "source",
    "http",
    "url",
    "accessModes",
    "ReadWriteOnce",
    "storageClassName",
    "volumeMode",
    "Filesystem",
    "Block",
    "serviceAccount",
    "serviceAccountName",
    "secret",
    "secretName",
    "configMap",
    "updateStrategy",
    "proactive",
    "unmanaged",
    "opportunistic",
    "selectionPolicy",
    "maxUnavailable",
    "scaleInStrategy",
    "statePreservation",
    "Disabled",
    "Offline",
    "sortPolicy",
    "random",
    "descendingOrder",
    "ascendingOrder",
    "nameGeneration",
    "appendIndexToConfigMapRefs",
    "appendIndexToSecretRefs",
    "autohealing",
    "instancetype",
    "preference",
    "VirtualMachineClusterInstancetype",
    "VirtualMachineClusterPreference",
};
#define CODEC_DICT_N (sizeof codec_dict / sizeof codec_dict[0])

/* the dictionary's indexes sorted by (length, bytes), for codec_dict_find */
static unsigned char codec_dict_sorted[CODEC_DICT_N];
static size_t codec_dict_lens[CODEC_DICT_N];

static int codec_dict_cmp(const void *a, const void *b)
{
	unsigned char x = *(const unsigned char *)a, y = *(const unsigned char *)b;

	if (codec_dict_lens[x] != codec_dict_lens[y])
		return codec_dict_lens[x] < codec_dict_lens[y] ? -1 : 1;
	return memcmp(codec_dict[x], codec_dict[y], codec_dict_lens[x]);
}

static void codec_dict_init(void)
{
	static int done;
	size_t i;

	if (done)
		return;
	_Static_assert(CODEC_DICT_N <= CODEC_BACK_BASE - CODEC_LOCAL_MAX, "codec_dict is too long");
	for (i = 0; i < CODEC_DICT_N; i++) {
		codec_dict_sorted[i] = (unsigned char)i;
		codec_dict_lens[i] = strlen(codec_dict[i]);
	}
	qsort(codec_dict_sorted, CODEC_DICT_N, 1, codec_dict_cmp);
	done = 1;
}

int codec_dict_find(const char *s, size_t len)
{
	size_t lo = 0, hi = CODEC_DICT_N, mid;
	unsigned char at;
	int c;

	codec_dict_init();
	while (lo < hi) {
		mid = (lo + hi) / 2;
		at = codec_dict_sorted[mid];
		if (codec_dict_lens[at] != len)
			c = codec_dict_lens[at] < len ? -1 : 1;
		else
			c = memcmp(codec_dict[at], s, len);
		if (c == 0)
			return at;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

size_t codec_dict_size(void)
{
	return CODEC_DICT_N;
}

const char *codec_dict_entry(size_t i)
{
	return i < CODEC_DICT_N ? codec_dict[i] : NULL;
}
