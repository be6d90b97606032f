#!/usr/bin/env bash
# tests/deploy/test_deploy.sh: the manifests of deploy/, rendered as `kubectl apply -k` would
# (no cluster needed): every kustomization renders (with the kubectl here and, when it is
# installed, with KUSTOMIZE_KUBECTL, e.g. Debian's kubectl 1.20 and its kustomize v2.0.3);
# the base ships no CRD; the standalone overlay ships exactly our VirtualMachinePool CRD;
# every pod passes the "restricted" Pod Security Standard (checked rule by rule with jq, as
# the 1.20 test API server has no Pod Security admission); every container has requests and
# limits, probes on the port its --metrics-bind-address names, and a command in the image; the
# ClusterRole grants exactly the calls found in the sources (least privilege both ways); the
# monitoring overlay's PodMonitor scrapes exactly the containers' named metrics ports, and
# its dashboard asks only for metric families the sources export.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failed=0
DIRS=(deploy deploy/standalone deploy/namespaced deploy/kubevirt-coexist deploy/monitoring deploy/shards/a
	deploy/shards/b)
KUBECTLS=(kubectl)
# Debian's kubectl 1.20 (kustomize v2.0.3), unpacked by scripts/install-deps.sh when the
# machine's kubectl is another one
KUSTOMIZE_KUBECTL=${KUSTOMIZE_KUBECTL:-${XDG_CACHE_HOME:-$HOME/.cache}/vmpoold/kubectl-1.20/kubectl}
[ -n "${KUSTOMIZE_KUBECTL:-}" ] && [ -x "$KUSTOMIZE_KUBECTL" ] && KUBECTLS+=("$KUSTOMIZE_KUBECTL")

check() { # NAME CMD...
	local name=$1; shift
	if "$@" >"$tmp/out" 2>&1; then
		pass=$((pass + 1)); echo "ok   deploy/$name"
	else
		failed=$((failed + 1)); echo "FAIL deploy/$name"; sed 's/^/     /' "$tmp/out" | tail -20
	fi
}

# render DIR [KUBECTL]: the kustomization as a JSON array of objects
render() {
	"${2:-kubectl}" kustomize "$1" 2>"$tmp/kz.err" | yq -c . | jq -s 'map(select(. != null))'
}

renders_all() {
	local k d n
	for k in "${KUBECTLS[@]}"; do
		for d in "${DIRS[@]}"; do
			n=$(render "$d" "$k" | jq length) || { echo "$k kustomize $d: $(cat "$tmp/kz.err")"; return 1; }
			[ "${n:-0}" -gt 0 ] || { echo "$k kustomize $d: nothing rendered: $(cat "$tmp/kz.err")"; return 1; }
		done
	done
}

# both kustomize versions render the same objects
same_render() {
	[ ${#KUBECTLS[@]} -gt 1 ] || { echo "KUSTOMIZE_KUBECTL not set: one kustomize only"; return 0; }
	local d
	for d in "${DIRS[@]}"; do
		diff <(render "$d" "${KUBECTLS[0]}" | jq -S 'sort_by(.kind, .metadata.name)') \
			<(render "$d" "${KUBECTLS[1]}" | jq -S 'sort_by(.kind, .metadata.name)') ||
			{ echo "$d renders differently"; return 1; }
	done
}

base_no_crd() {
	local kinds
	kinds=$(render deploy | jq -r '[.[].kind] | sort | join(" ")')
	[ "$kinds" == "ClusterRole ClusterRole ClusterRoleBinding Deployment Namespace Role RoleBinding ServiceAccount" ] ||
		{ echo "deploy/ renders: $kinds"; return 1; }
	[ "$(render deploy/namespaced | jq '[.[] | select(.kind == "CustomResourceDefinition")] | length')" == 0 ]
}

standalone_crd() {
	render deploy/standalone | jq -e '[.[] | select(.kind == "CustomResourceDefinition") | .metadata.name] ==
		["virtualmachinepools.pool.kubevirt.io"]' >/dev/null ||
		{ echo "standalone CRDs: $(render deploy/standalone | jq -c '[.[] | select(.kind == "CustomResourceDefinition") | .metadata.name]')"; return 1; }
}

namespaced_rbac() {
	render deploy/namespaced | jq -e '
		([.[] | select(.kind == "ClusterRoleBinding")] | length) == 0 and
		([.[] | select(.kind == "ClusterRole" and .metadata.name == "vmpoold")] | length) == 0 and
		([.[] | select(.kind == "Role" and .metadata.name == "vmpoold")] | length) == 1 and
		([.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] |
			(.args | index("--namespace")) as $i | $i != null and .args[$i + 1] == "vmpools"] | all)' >/dev/null
}

# the Role of deploy/namespaced has the ClusterRole's rules, no more, no less
namespaced_same_rules() {
	diff <(render deploy | jq -S '.[] | select(.kind == "ClusterRole" and .metadata.name == "vmpoold") | .rules') \
		<(render deploy/namespaced | jq -S '.[] | select(.kind == "Role" and .metadata.name == "vmpoold") | .rules')
}

# the leader election Role grants exactly the Lease calls of actuator/elect.c, in the pod's
# namespace, to the ServiceAccount; the Deployment runs two replicas with --leader-elect on
# the three stages that write or decide (issue 8)
lease_rbac_matches_code() {
	local want have
	want=$(perl -0ne 'while (/kube_request(?:_patient)?\([^;]*?;/gs) { my $c = $&; print "$1\n" while $c =~ /"(GET|POST|PUT|PATCH|DELETE)"/g }
		while (/elect_write\(e, "(POST|PUT)"/g) { print "$1\n" }' actuator/elect.c |
		sed 's/GET/get/; s/POST/create/; s/PUT/update/' | sort -u | tr '\n' ' ')
	have=$(render deploy | jq -r '.[] | select(.kind == "Role" and .metadata.name == "vmpoold-leader-election") |
		.rules[] | select(.apiGroups == ["coordination.k8s.io"] and .resources == ["leases"]) | .verbs[]' | sort -u | tr '\n' ' ')
	[ "$want" == "get create update " ] || [ "$want" == "create get update " ] || { echo "elect.c calls: $want"; return 1; }
	[ "$(tr ' ' '\n' <<<"$want" | sort | tr '\n' ' ')" == "$(tr ' ' '\n' <<<"$have" | sort | tr '\n' ' ')" ] ||
		{ echo "code: $want, Role: $have"; return 1; }
	render deploy | jq -e '[.[] | select(.kind == "RoleBinding" and .metadata.name == "vmpoold-leader-election")][0] |
		.metadata.namespace == "vmpoold-system" and .roleRef.name == "vmpoold-leader-election" and
		.subjects == [{"kind": "ServiceAccount", "name": "vmpoold", "namespace": "vmpoold-system"}]' >/dev/null ||
		{ echo "RoleBinding"; return 1; }
	render deploy | jq -e '.[] | select(.kind == "Deployment") | .spec.replicas == 2 and
		.spec.strategy.type == "RollingUpdate" and .spec.strategy.rollingUpdate.maxUnavailable == 0 and
		([.spec.template.spec.containers[] | select(.name != "watcher") | .args | index("--leader-elect") != null] | all) and
		([.spec.template.spec.containers[] | select(.name == "watcher") | .args | index("--leader-elect") == null] | all)' >/dev/null
}

# each shard overlay: the same objects as deploy/ but its own Deployment name, selector label
# and --pool-selector on every container; two shards never share a Deployment or pods
shards() {
	local s
	for s in a b; do
		diff <(render deploy | jq -S '[.[] | select(.kind != "Deployment")] | sort_by(.kind, .metadata.name)') \
			<(render deploy/shards/$s | jq -S '[.[] | select(.kind != "Deployment")] | sort_by(.kind, .metadata.name)') ||
			{ echo "shard $s: objects besides the Deployment differ"; return 1; }
		render deploy/shards/$s | jq -e --arg s "$s" '[.[] | select(.kind == "Deployment")] | length == 1 and
			(.[0] | .metadata.name == "vmpoold-shard-\($s)" and .spec.selector.matchLabels["vmpoold.io/shard"] == $s and
			.spec.template.metadata.labels["vmpoold.io/shard"] == $s and
			([.spec.template.spec.containers[].args | index("--pool-selector=vmpoold.io/shard=\($s)") != null] | all))' >/dev/null ||
			{ echo "shard $s: Deployment"; return 1; }
	done
}

coexist_patch() {
	render deploy/kubevirt-coexist | jq -e '.[0].kind == "KubeVirt" and
		(.[0].spec.customizeComponents.patches[0] | .resourceName == "virt-controller" and
		.resourceType == "Deployment" and .type == "json" and
		(.patch | fromjson | .[0].value == "--pool-controller-threads=0"))' >/dev/null
}

# Pod Security Standards, "restricted" profile (which includes "baseline"), for every pod
# template: prints one "RULE: container" line per violation
PSS_JQ='
def ctrs: (.containers // []) + (.initContainers // []) + (.ephemeralContainers // []);
.spec.template.spec as $p | ($p | ctrs) as $cs |
( if ($p.hostNetwork // false) or ($p.hostPID // false) or ($p.hostIPC // false) then "host namespaces: pod" else empty end ),
( $p.volumes // [] | .[] | select(keys - ["name"] | .[0] |
	IN("configMap","csi","downwardAPI","emptyDir","ephemeral","persistentVolumeClaim","projected","secret") | not) |
	"volume types: \(.name)" ),
( $p.securityContext.sysctls // [] | .[] | "sysctls: \(.name)" ),
( $cs[] | . as $c |
	( if .securityContext.privileged == true then "privileged: \($c.name)" else empty end ),
	( if .securityContext.allowPrivilegeEscalation != false then "allowPrivilegeEscalation: \($c.name)" else empty end ),
	( if (.securityContext.runAsNonRoot // $p.securityContext.runAsNonRoot) != true then "runAsNonRoot: \($c.name)" else empty end ),
	( if (.securityContext.runAsUser // $p.securityContext.runAsUser) == 0 then "runAsUser: \($c.name)" else empty end ),
	( (.securityContext.seccompProfile.type // $p.securityContext.seccompProfile.type) as $t |
		if ($t | IN("RuntimeDefault","Localhost")) then empty else "seccompProfile: \($c.name)" end ),
	( if (.securityContext.capabilities.drop // [] | index("ALL")) == null then "capabilities drop ALL: \($c.name)" else empty end ),
	( .securityContext.capabilities.add // [] | .[] | select(. != "NET_BIND_SERVICE") | "capabilities add: \($c.name)" ),
	( .ports // [] | .[] | select((.hostPort // 0) != 0) | "hostPorts: \($c.name)" ),
	( if (.securityContext.procMount // "Default") != "Default" then "procMount: \($c.name)" else empty end ),
	( if (.securityContext.seLinuxOptions.type // "container_t" | IN("container_t","container_init_t","container_kvm_t")) then empty else "seLinux: \($c.name)" end ),
	( if .securityContext.readOnlyRootFilesystem != true then "readOnlyRootFilesystem (ours): \($c.name)" else empty end )
)'

pss_restricted() {
	local d v
	for d in "${DIRS[@]}"; do
		v=$(render "$d" | jq -r ".[] | select(.kind == \"Deployment\") | $PSS_JQ")
		[ -z "$v" ] || { echo "$d:"; echo "$v"; return 1; }
	done
}

# the check itself finds violations (a test that cannot fail proves nothing)
pss_catches() {
	local bad
	bad=$(render deploy | jq -r '.[] | select(.kind == "Deployment") |
		.spec.template.spec.securityContext = {} |
		.spec.template.spec.containers[0].securityContext = {privileged: true, capabilities: {add: ["SYS_ADMIN"]}} |
		.spec.template.spec.volumes += [{name: "h", hostPath: {path: "/"}}] |
		.spec.template.spec.containers[1].ports = [{containerPort: 1, hostPort: 80}] | '"$PSS_JQ" | sort)
	local r
	for r in "privileged: watcher" "allowPrivilegeEscalation: watcher" "runAsNonRoot: watcher" \
		"seccompProfile: watcher" "capabilities drop ALL: watcher" "capabilities add: watcher" \
		"volume types: h" "hostPorts: planner"; do
		grep -qx "$r" <<<"$bad" || { echo "not caught: $r (got: $bad)"; return 1; }
	done
}

# Mi of a quantity like 48Mi, 1Gi
mib() { jq -rn --arg q "$1" '$q | if endswith("Gi") then (.[:-2] | tonumber * 1024) elif endswith("Mi") then (.[:-2] | tonumber) else error("unit of \($q)") end'; }

resources_set() {
	render deploy | jq -e '[.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] |
		.resources.requests.cpu and .resources.requests.memory and .resources.limits.memory and
		.resources.limits.cpu] | all' >/dev/null || { echo "a container lacks requests or limits"; return 1; }
	local c req lim
	while read -r c req lim; do
		[ "$(mib "$lim")" -ge "$(mib "$req")" ] || { echo "$c: limit $lim < request $req"; return 1; }
	done < <(render deploy | jq -r '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] |
		"\(.name) \(.resources.requests.memory) \(.resources.limits.memory)"')
}

# each container: command /usr/local/bin/vmpool-<name>, probes /healthz (liveness) and /readyz
# (readiness) on the port of its own --metrics-bind-address, that port declared, its --run-dir on (or
# under) a mounted volume
probes_match_metrics() {
	render deploy | jq -e '[.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] |
		(.args | index("--metrics-bind-address")) as $i | (.args[$i + 1] | split(":") | .[1] | tonumber) as $port |
		.command == ["/usr/local/bin/vmpool-\(.name)"] and
		.livenessProbe.httpGet.path == "/healthz" and .livenessProbe.httpGet.port == $port and
		.readinessProbe.httpGet.path == "/readyz" and .readinessProbe.httpGet.port == $port and
		(.livenessProbe.timeoutSeconds < .livenessProbe.periodSeconds) and
		([.ports[].containerPort] | index($port)) != null and
		(.args | index("--run-dir")) as $r | .args[$r + 1] as $dir |
		([.volumeMounts[] | .mountPath] | any(. as $m | $dir == $m or ($dir | startswith($m + "/"))))] |
		(length == 4 and all)' >/dev/null ||
		{ render deploy | jq -c '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[] | {name, command, args, livenessProbe, readinessProbe}'; return 1; }
}

# the ClusterRole grants exactly what the code calls, as (group resource verb) triples read from
# the sources: the watcher's resources (list, watch), the actuator's op table, the status
# write and the Event recorder; plus the one documented extra, update of
# virtualmachinepools/finalizers (blockOwnerDeletion under OwnerReferencesPermissionEnforcement)
code_calls() {
	local verb
	verb() { case $1 in POST) echo create ;; PUT) echo update ;; PATCH) echo patch ;; DELETE) echo delete ;; GET) echo get ;; esac; }
	group() { sed -E 's#^/api/v1$##; s#^/apis/([^/]+)/.*#\1#' <<<"$1"; }
	# each kind's group and plural, from the resource table (common/resource.c)
	declare -A kinds
	while read -r kind grp plural; do kinds[$kind]="$grp $plural"; done < <(
		perl -0ne 'while (/\{(KIND_\w+),\s*"[^"]*",\s*"([^"]*)",\s*(?:"[^"]*"|NULL),\s*\w+,\s*"([a-z]+)"/g) { print "$1 ", ($2 eq "" ? "-" : $2), " $3\n" }' \
			common/resource.c)
	[ ${#kinds[@]} -ge 6 ] || { echo "resource table not found in common/resource.c" >&2; return 1; }
	# the watcher lists and watches the kinds of its table
	local kind grp plural
	for kind in $(perl -ne 'print "$1\n" while /\.kind\s*=\s*(KIND_\w+)/g' watcher/main.c); do
		read -r grp plural <<<"${kinds[$kind]}"
		[ "$grp" = - ] && grp=""
		printf '%s %s list\n%s %s watch\n' "$grp" "$plural" "$grp" "$plural"
	done
	declare -A groups
	while read -r macro prefix; do groups[$macro]=$(group "$prefix"); done < <(
		perl -ne 'print "$1 $2\n" if /#define (ACT_[A-Z]+)\s+"(\/api[^"]*)"/' actuator/actrun.c)
	perl -ne 'print "$1 $2 $3\n" while /"(POST|PUT|PATCH|DELETE)",\s*[^,]+,\s*[^,]+,\s*(ACT_[A-Z]+),\s*"([a-z]+)"/g' \
		actuator/actrun.c | while read -r method macro res; do
		echo "${groups[$macro]} $res $(verb "$method")"
		# an update (PUT) first reads the object it rewrites (act_update_fetch)
		[ "$method" = PUT ] && grep -q 'kube_request([^,]*, "GET"' actuator/actrun.c &&
			echo "${groups[$macro]} $res get"
	done
	# status and the Event recorder: literal paths, or a kind's path from the table with a
	# subresource ("%s/status")
	local f methods paths m p sub
	for f in status/statuswrite.c common/k8sevent.c; do
		methods=$(perl -0ne 'while (/kube_request(?:_patient|_event)?\([^;]*?;/gs) { my $c = $&; print "$1\n" while $c =~ /"(GET|POST|PUT|PATCH|DELETE)"/g }' "$f" | sort -u)
		paths=$(
			perl -ne 'print "$1 $2$3\n" while m#"/api(?:s/([a-z0-9.-]+)/(?:[a-z0-9]+|%s)|/v1)/namespaces/%s/([a-z]+)(?:/%s)?(/[a-z]+)?"#g' "$f"
			perl -0ne 'while (/resource_get\((KIND_\w+)\).*?"%s(\/[a-z]+)?"/gs) { print "$1 $2\n" }' "$f" |
				while read -r kind sub; do
					read -r grp plural <<<"${kinds[$kind]}"
					echo "$grp $plural$sub"
				done
		)
		paths=$(sort -u <<<"$paths")
		for m in $methods; do
			while read -r p; do
				[ -n "$p" ] || continue
				set -- $p
				[ $# -eq 1 ] && set -- "" "$1"
				echo "$1 $2 $(verb "$m")"
			done <<<"$paths"
		done
	done
	echo "pool.kubevirt.io virtualmachinepools/finalizers update"
}

rbac_matches_code() {
	local want have
	want=$(code_calls | sed 's/^ /"" /' | sort -u)
	have=$(render deploy | jq -r '.[] | select(.kind == "ClusterRole" and .metadata.name == "vmpoold") | .rules[] |
		.apiGroups[] as $g | .resources[] as $r | .verbs[] as $v | "\(if $g == "" then "\"\"" else $g end) \($r) \($v)"' | sort -u)
	[ "$(wc -l <<<"$want")" -ge 20 ] || { echo "too few calls found in the code:"; echo "$want"; return 1; }
	diff <(echo "$want") <(echo "$have") || { echo "(< the code calls, > the ClusterRole grants)"; return 1; }
}

# the PodMonitor selects the Deployment's pods in its namespace and scrapes every container's
# metrics port by name, no more
podmonitor_ports() {
	local want have
	want=$(render deploy | jq -c '[.[] | select(.kind == "Deployment")][0] |
		{ns: .metadata.namespace, labels: .spec.template.metadata.labels,
		 ports: [.spec.template.spec.containers[] | .ports[] | .name] | sort}')
	have=$(render deploy/monitoring | jq -c '[.[] | select(.kind == "PodMonitor")][0] |
		{ns: .metadata.namespace, labels: .spec.selector.matchLabels,
		 ports: [.spec.podMetricsEndpoints[] | .port] | sort}')
	[ "$want" == "$have" ] || { echo "Deployment: $want"; echo "PodMonitor: $have"; return 1; }
	render deploy/monitoring | jq -e '[.[] | select(.kind == "PodMonitor") | .spec.podMetricsEndpoints[] |
		.path == "/metrics" and .honorLabels == true] | length == 4 and all' >/dev/null
}

# metric families named in the expressions of a dashboard (stdin), without _bucket/_sum/_count
dashboard_families() {
	jq -r '.. | objects | select(has("expr")) | .expr' | grep -oE '[a-zA-Z_:][a-zA-Z0-9_:]*\{' | tr -d '{' |
		sed -E 's/_(bucket|sum|count)$//' | sort -u
}

# families a dashboard (stdin) uses that no source file exports as a string literal
dashboard_unknown() {
	local f
	for f in $(dashboard_families); do
		grep -rqF "\"$f\"" common watcher planner actuator status || echo "$f"
	done
}

# the dashboard is valid JSON, rendered unchanged into the ConfigMap, and uses only families
# we export (and that check finds a family we do not)
dashboard_metrics() {
	local unknown n
	jq -e . deploy/monitoring/dashboard.json >/dev/null || return 1
	render deploy/monitoring | jq -r '.[] | select(.kind == "ConfigMap") | .data["dashboard.json"]' | jq -S . |
		diff - <(jq -S . deploy/monitoring/dashboard.json) || { echo "ConfigMap differs from dashboard.json"; return 1; }
	n=$(dashboard_families <deploy/monitoring/dashboard.json | wc -l)
	[ "$n" -ge 15 ] || { echo "only $n families found in the dashboard"; return 1; }
	unknown=$(dashboard_unknown <deploy/monitoring/dashboard.json)
	[ -z "$unknown" ] || { echo "the dashboard uses families nothing exports: $unknown"; return 1; }
	unknown=$(jq '.panels[1].targets[0].expr = "rate(vmpool_nosuch_total{a=\"b\"}[5m])"' \
		deploy/monitoring/dashboard.json | dashboard_unknown)
	[ "$unknown" == vmpool_nosuch_total ] || { echo "the check missed vmpool_nosuch_total: '$unknown'"; return 1; }
}

check renders_all renders_all
check same_render same_render
check base_no_crd base_no_crd
check standalone_crd standalone_crd
check namespaced_rbac namespaced_rbac
check namespaced_same_rules namespaced_same_rules
check rbac_matches_code rbac_matches_code
check lease_rbac_matches_code lease_rbac_matches_code
check shards shards
check coexist_patch coexist_patch
check pss_restricted pss_restricted
check pss_catches pss_catches
check resources_set resources_set
check probes_match_metrics probes_match_metrics
check podmonitor_ports podmonitor_ports
check dashboard_metrics dashboard_metrics
echo "deploy: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
