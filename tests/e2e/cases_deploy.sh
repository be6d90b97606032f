# tests/e2e/cases_deploy.sh: the install of deploy/ against the real API server (issue 7).
# shellcheck shell=bash

# the kustomize base installs in one step, in a working order (for real: the test cluster has
# no kubelet, so the pod never runs), and a server-side dry run of it, of the standalone
# overlay and of the namespaced overlay (in this case's namespace) is clean; no CRD in the base
case_manifests() {
	local out=$CASE_OUT
	kubectl kustomize "$ROOT/deploy" >"$out/deploy.yaml" || fail "kubectl kustomize deploy/" || return 1
	! grep -q '^kind: CustomResourceDefinition' "$out/deploy.yaml" || fail "deploy/ renders a CRD" || return 1
	kubectl apply -k "$ROOT/deploy/" >"$out/apply.log" 2>&1 ||
		fail "kubectl apply -k deploy/: $(cat "$out/apply.log")" || return 1
	kubectl -n vmpoold-system get serviceaccount/vmpoold deployment/vmpoold >/dev/null &&
		kubectl get clusterrole/vmpoold clusterrolebinding/vmpoold clusterrole/vmpoold-scale-editor >/dev/null ||
		fail "objects missing after apply: $(cat "$out/apply.log")" || return 1
	kubectl apply -k "$ROOT/deploy/" --dry-run=server >"$out/dry.log" 2>&1 ||
		fail "server dry run of deploy/: $(cat "$out/dry.log")" || return 1
	# standalone: its CRD has the name of KubeVirt's CRD installed here; a dry run only validates
	kubectl apply -k "$ROOT/deploy/standalone/" --dry-run=server >"$out/dry-standalone.log" 2>&1 ||
		fail "server dry run of deploy/standalone/: $(cat "$out/dry-standalone.log")" || return 1
	kubectl kustomize "$ROOT/deploy/namespaced" | sed -E "s/(namespace: |- )vmpools\$/\\1$NS/" |
		kubectl apply --dry-run=server -f - >"$out/dry-namespaced.log" 2>&1 ||
		fail "server dry run of deploy/namespaced/: $(cat "$out/dry-namespaced.log")" || return 1
	grep -q "role.rbac.authorization.k8s.io/vmpoold created (server dry run)" "$out/dry-namespaced.log" ||
		fail "no Role in the namespaced dry run: $(cat "$out/dry-namespaced.log")" || return 1
	kubectl delete -k "$ROOT/deploy/" --wait=true --timeout=90s >/dev/null 2>&1 ||
		fail "kubectl delete -k deploy/" || return 1
}

# deploy/kubevirt-coexist merged into an existing KubeVirt CR (created as an installer does,
# without kubectl's last-applied annotation) sets the customizeComponents patch and keeps the
# rest of the spec; that patch, applied as virt-operator applies it to the virt-controller
# Deployment it renders, ends virt-controller's command with --pool-controller-threads=0
case_kubevirt_coexist() {
	kubectl create -f "$ROOT/tests/crds/kubevirt-cr-minimal.yaml" >/dev/null || return 1
	kubectl wait --for condition=established --timeout=60s crd/kubevirts.kubevirt.io >/dev/null || return 1
	kubectl create namespace kubevirt >/dev/null || return 1
	local rc=0
	coexist_checks || rc=1
	kubectl delete namespace kubevirt --wait=false >/dev/null 2>&1
	kubectl delete crd kubevirts.kubevirt.io --wait=false >/dev/null 2>&1
	return $rc
}

coexist_checks() {
	local kv
	wait_until 30 kubectl -n kubevirt get kubevirts || fail "KubeVirt kind not served" || return 1
	kubectl -n kubevirt create -f - >/dev/null <<'YAML' || return 1
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata:
  name: kubevirt
spec:
  imagePullPolicy: IfNotPresent
  configuration:
    developerConfiguration:
      featureGates: [Snapshot]
YAML
	kubectl apply -k "$ROOT/deploy/kubevirt-coexist/" >"$CASE_OUT/apply.log" 2>&1 ||
		fail "kubectl apply -k deploy/kubevirt-coexist/: $(cat "$CASE_OUT/apply.log")" || return 1
	kv=$(kubectl -n kubevirt get kubevirt kubevirt -o json)
	echo "$kv" | jq -e '.spec.imagePullPolicy == "IfNotPresent" and
		.spec.configuration.developerConfiguration.featureGates == ["Snapshot"] and
		(.spec.customizeComponents.patches | length) == 1' >/dev/null ||
		fail "KubeVirt CR after apply: $(echo "$kv" | jq -c .spec)" || return 1
	# the virt-controller Deployment as virt-operator renders it: flags in the command
	kubectl -n kubevirt create -f - >/dev/null <<'YAML' || return 1
apiVersion: apps/v1
kind: Deployment
metadata:
  name: virt-controller
spec:
  selector: {matchLabels: {kubevirt.io: virt-controller}}
  template:
    metadata: {labels: {kubevirt.io: virt-controller}}
    spec:
      containers:
      - name: virt-controller
        image: quay.io/kubevirt/virt-controller:v1.4.0
        command: [virt-controller, --launcher-image, "quay.io/kubevirt/virt-launcher:v1.4.0", --port, "8443", -v, "2"]
YAML
	local p
	p=$(echo "$kv" | jq -r '.spec.customizeComponents.patches[] |
		select(.resourceType == "Deployment" and .resourceName == "virt-controller" and .type == "json") | .patch')
	kubectl -n kubevirt patch deployment virt-controller --type json -p "$p" >/dev/null ||
		fail "the patch does not apply: $p" || return 1
	expect_eq "$(kubectl -n kubevirt get deployment virt-controller -o json | jq -c '.spec.template.spec.containers[0].command[-2:]')" \
		'["2","--pool-controller-threads=0"]' "virt-controller command after the patch" || return 1
}

# another controller acting on a pool (issue 7, coexistence): a VM created with kubectl in
# the pool's namespace, controlled by the pool, makes vmpoold say so on the pool, naming the
# field manager ("kubectl-create"): a ForeignController condition and a Warning Event; the
# condition goes when that VM does. Unmanaged scale-in, so that vmpoold deletes nothing.
case_foreign_controller() {
	mkpool fc 2 '.spec.scaleInStrategy = {"unmanaged": {}}' || return 1
	wait_until 60 pconv fc 2 || fail "converge: $(kc get vmpool,vm)" || return 1
	expect_eq "$(kc get vmpool fc -o jsonpath='{.status.conditions[?(@.type=="ForeignController")].reason}')" "" \
		"ForeignController before anyone else acted" || return 1
	kc get vm fc-0 -o json | jq '{apiVersion, kind, spec,
		metadata: {name: "fc-intruder", labels: .metadata.labels, ownerReferences: .metadata.ownerReferences}}' |
		kc create -f - >/dev/null || return 1
	local cond='{.status.conditions[?(@.type=="ForeignController")]'
	wait_eq 30 ForeignManager kc get vmpool fc -o jsonpath="$cond.reason}" ||
		fail "no ForeignController condition: $(kc get vmpool fc -o jsonpath='{.status}')" || return 1
	kc get vmpool fc -o jsonpath="$cond.message}" |
		grep -q '"kubectl-create" (owner reference of VM '"$NS"'/fc-intruder)' ||
		fail "condition message: $(kc get vmpool fc -o jsonpath="$cond.message}")" || return 1
	wait_ge 20 1 event_count ForeignController '"kubectl-create"' ||
		fail "no ForeignController Event: $(kc get events)" || return 1
	expect_eq "$(kc get events -o json | jq -r '[.items[] | select(.reason == "ForeignController") | .type] | unique | join(",")')" \
		Warning "Event type" || return 1
	kc delete vm fc-intruder --wait=false >/dev/null || return 1
	wait_eq 30 "" kc get vmpool fc -o jsonpath="$cond.reason}" ||
		fail "condition stays after the VM went: $(kc get vmpool fc -o jsonpath='{.status}')" || return 1
	expect_eq "$(event_count ForeignController)" 1 "ForeignController Events" || return 1
}
