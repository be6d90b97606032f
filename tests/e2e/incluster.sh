# tests/e2e/incluster.sh: the in-cluster phase of the end-to-end suite (issue 7). vmpoold runs
# as the Deployment of deploy/ describes it, under the ServiceAccount and RBAC of deploy/:
#  - the image is built (scripts/build-image.sh) and unpacked (tests/image/unpack.sh);
#  - `kubectl apply -k deploy/` installs everything but the Deployment (no kubelet here);
#  - a token for the ServiceAccount comes from the TokenRequest API and is written, with the
#    cluster's ca.crt and the namespace, where a pod has them:
#    /var/run/secrets/kubernetes.io/serviceaccount inside the image's root file system;
#  - each container of the rendered Deployment (`kubectl kustomize deploy/`) is one process,
#    its command and args exactly as rendered, env as the pod gets it
#    (KUBERNETES_SERVICE_HOST/PORT), in a chroot of the image root as user 65532, the emptyDir
#    being /run/vmpoold inside that root; when not root, through the image's own loader with
#    VMPOOL_SA_DIR and the run directory rewritten (a test may point the programs elsewhere);
#  - a container counts as started once its readinessProbe answers 200, like kubelet's;
#  - after each case nothing but the emptyDir was written in the root (readOnlyRootFilesystem).
# shellcheck shell=bash

IC_NS=vmpoold-system
IC_SA=vmpoold
IC_SA_PATH=/var/run/secrets/kubernetes.io/serviceaccount
IC_DIR="" IC_ROOTFS="" IC_DEPLOY="" IC_SADIR=""
IC_PIDS=() IC_NAMES=()

ic_log() { printf 'incluster: %s\n' "$*" >&2; }

# the Deployment of kustomization DIR as JSON
ic_render_deployment() { kubectl kustomize "$1" | yq -c . | jq -c 'select(.kind == "Deployment")'; }

# TokenRequest for the ServiceAccount; writes token, ca.crt and namespace into IC_SADIR
ic_token() {
	mkdir -p "$IC_SADIR"
	kubectl create --raw "/api/v1/namespaces/$IC_NS/serviceaccounts/$IC_SA/token" -f - \
		<<<'{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":7200}}' |
		jq -r '.status.token // empty' >"$IC_SADIR/token.new" || return 1
	[ -s "$IC_SADIR/token.new" ] || { ic_log "TokenRequest gave no token"; return 1; }
	mv "$IC_SADIR/token.new" "$IC_SADIR/token"
	cp "$VMPOOLD_CLUSTER_DIR/ca.crt" "$IC_SADIR/ca.crt"
	printf '%s' "$IC_NS" >"$IC_SADIR/namespace"
	chmod 0644 "$IC_SADIR"/*
}

# the token is the ServiceAccount's, not an admin's: pools may be listed, secrets may not
ic_token_is_sa() {
	local t url=https://127.0.0.1:$VMPOOLD_CLUSTER_PORT
	t=$(cat "$IC_SADIR/token")
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$IC_SADIR/ca.crt" -H "Authorization: Bearer $t" \
		"$url/apis/pool.kubevirt.io/v1beta1/virtualmachinepools")" == 200 ] || { ic_log "token cannot list pools"; return 1; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$IC_SADIR/ca.crt" -H "Authorization: Bearer $t" \
		"$url/api/v1/secrets")" == 403 ] || { ic_log "token may list secrets"; return 1; }
}

incluster_setup() {
	IC_DIR=$OUT/incluster
	mkdir -p "$IC_DIR"
	bash scripts/build-image.sh "$IC_DIR/image.oci.tar" >"$IC_DIR/image.log" 2>&1 ||
		{ cat "$IC_DIR/image.log" >&2; return 1; }
	bash tests/image/unpack.sh "$IC_DIR/image.oci.tar" "$IC_DIR/img" || return 1
	IC_ROOTFS=$IC_DIR/img/rootfs
	if [ "$(id -u)" -eq 0 ]; then
		IC_SADIR=$IC_ROOTFS$IC_SA_PATH
	else
		IC_SADIR=$IC_DIR/serviceaccount
	fi
	# the namespace of an earlier case (manifests) may still be going away
	wait_until 90 eval "! kubectl get namespace $IC_NS -o jsonpath='{.status.phase}' 2>/dev/null | grep -q Terminating" ||
		{ ic_log "namespace $IC_NS stays Terminating"; return 1; }
	kubectl apply -k deploy/ -l 'app.kubernetes.io/component!=controller' >"$IC_DIR/apply.log" 2>&1 ||
		{ ic_log "kubectl apply -k deploy/: $(cat "$IC_DIR/apply.log")"; return 1; }
	! kubectl -n "$IC_NS" get deployment vmpoold >/dev/null 2>&1 || { ic_log "the Deployment was applied"; return 1; }
	IC_DEPLOY=$IC_DIR/deployment.json
	ic_render_deployment deploy >"$IC_DEPLOY" || return 1
	[ "$(jq '.spec.template.spec.containers | length' "$IC_DEPLOY")" -eq 4 ] || { ic_log "not 4 containers"; return 1; }
	wait_until 30 kubectl -n "$IC_NS" get serviceaccount "$IC_SA" || return 1
	ic_token && ic_token_is_sa
}

incluster_teardown() {
	kubectl delete -k deploy/ --wait=false >/dev/null 2>&1
}

# "name=value" lines: the container's env as a pod would have it
ic_env() { # DEPLOY_JSON INDEX
	printf 'KUBERNETES_SERVICE_HOST=127.0.0.1\nKUBERNETES_SERVICE_PORT=%s\n' "$VMPOOLD_CLUSTER_PORT"
	printf 'KUBERNETES_SERVICE_PORT_HTTPS=%s\nHOSTNAME=vmpoold-e2e\nPATH=/usr/local/bin\n' "$VMPOOLD_CLUSTER_PORT"
	jq -r ".spec.template.spec.containers[$2].env // [] | .[] | \"\(.name)=\(.value)\"" "$1"
	[ "$(id -u)" -eq 0 ] || printf 'VMPOOL_SA_DIR=%s\n' "$IC_SADIR"
}

# the emptyDir: the one volume, mounted at the same path in every container
ic_rundir_path() { jq -r '.spec.template.spec.containers[0].volumeMounts[0].mountPath' "$1"; }

# incluster_start [DEPLOY_JSON]: one process per container; logs appended to
# $CASE_OUT/vmpoold.log (each line names its program)
incluster_start() {
	local deploy=${1:-${IC_NEXT_DEPLOY:-$IC_DEPLOY}} n i name mount host_run
	local -a argv env
	IC_PIDS=() IC_NAMES=()
	mount=$(ic_rundir_path "$deploy")
	if [ "$(id -u)" -eq 0 ]; then host_run=$IC_ROOTFS$mount; else host_run=$CASE_OUT/emptydir; fi
	rm -rf "$host_run"; mkdir -p "$host_run"
	[ "$(id -u)" -eq 0 ] && chown 65532:65532 "$host_run"
	touch "$CASE_OUT/rootfs.mark"
	n=$(jq '.spec.template.spec.containers | length' "$deploy")
	for ((i = 0; i < n; i++)); do
		name=$(jq -r ".spec.template.spec.containers[$i].name" "$deploy")
		mapfile -t argv < <(jq -r ".spec.template.spec.containers[$i] | (.command + (.args // []))[]" "$deploy")
		mapfile -t env < <(ic_env "$deploy" "$i")
		if [ "$(id -u)" -eq 0 ]; then
			env -i "${env[@]}" "$(command -v chroot)" --userspec=65532:65532 "$IC_ROOTFS" "${argv[@]}" \
				>>"$CASE_OUT/vmpoold.log" 2>&1 </dev/null &
		else
			argv=("${argv[@]/#$mount/$host_run}")
			env -i "${env[@]}" "$IC_ROOTFS/lib64/ld-linux-x86-64.so.2" --inhibit-cache \
				--library-path "$IC_ROOTFS/lib/x86_64-linux-gnu" "$IC_ROOTFS${argv[0]}" "${argv[@]:1}" \
				>>"$CASE_OUT/vmpoold.log" 2>&1 </dev/null &
		fi
		IC_PIDS+=($!) IC_NAMES+=("$name")
	done
	IC_RUNNING=$deploy
	VMPOOLD_PID=${IC_PIDS[0]}
}

# every container alive and its readinessProbe answering 200 (what kubelet waits for)
incluster_ready() {
	local deploy=${IC_RUNNING:-$IC_DEPLOY} i port path
	for i in "${!IC_PIDS[@]}"; do
		kill -0 "${IC_PIDS[$i]}" 2>/dev/null || return 1
		port=$(jq -r ".spec.template.spec.containers[$i].readinessProbe.httpGet.port" "$deploy")
		path=$(jq -r ".spec.template.spec.containers[$i].readinessProbe.httpGet.path" "$deploy")
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$path")" == 200 ] || return 1
		port=$(jq -r ".spec.template.spec.containers[$i].livenessProbe.httpGet.port" "$deploy")
		path=$(jq -r ".spec.template.spec.containers[$i].livenessProbe.httpGet.path" "$deploy")
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$path")" == 200 ] || return 1
	done
}

# a probe port already answering before we start would make the readiness check a lie
incluster_ports_free() {
	local port
	for port in $(jq -r '.spec.template.spec.containers[].readinessProbe.httpGet.port' "$IC_DEPLOY"); do
		! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" || { ic_log "port $port is in use"; return 1; }
	done
}

# SIGTERM to every container (as kubelet does), each must exit 0; then nothing but the
# emptyDir and the service-account files may have been written in the image root
incluster_stop() {
	local i rc=0 r written
	for i in "${!IC_PIDS[@]}"; do kill -TERM "${IC_PIDS[$i]}" 2>/dev/null; done
	for i in "${!IC_PIDS[@]}"; do
		r=0
		wait "${IC_PIDS[$i]}" || r=$?
		[ "$r" -eq 0 ] || { say "container ${IC_NAMES[$i]} exited $r on SIGTERM"; rc=1; }
	done
	IC_PIDS=() IC_NAMES=()
	if [ -f "$CASE_OUT/rootfs.mark" ]; then
		written=$(cd "$IC_ROOTFS" && find . -newer "$CASE_OUT/rootfs.mark" ! -type d |
			grep -v -e "^\./run/vmpoold/" -e "^\.$IC_SA_PATH/")
		[ -z "$written" ] || { say "written outside the emptyDir (readOnlyRootFilesystem): $written"; rc=1; }
	fi
	return $rc
}

# a namespaced Role without create on virtualmachines (deploy/namespaced for $NS, the
# ClusterRoleBinding of deploy/ removed meanwhile): the create is refused, and the log names
# the verb and the resource; a FailedCreate Warning Event lands on the pool.
# setup_/teardown_ run in run_case around the controller's start and stop.
setup_incluster_forbidden() {
	[ "${INCLUSTER:-0}" = 1 ] || return 0
	local out=$CASE_OUT
	kubectl delete clusterrolebinding vmpoold >/dev/null || return 1
	kubectl kustomize deploy/namespaced | sed -E "s/(namespace: |- )vmpools\$/\\1$NS/" | yq -c . >"$out/namespaced.json" ||
		return 1
	jq -c 'select(.kind == "Role" or .kind == "RoleBinding") |
		if .kind == "Role" then .rules |= map(if .resources == ["virtualmachines"] then .verbs -= ["create"] else . end) else . end' \
		"$out/namespaced.json" | kubectl apply -f - || return 1
	jq -c 'select(.kind == "Deployment")' "$out/namespaced.json" >"$out/deployment-namespaced.json"
	jq -e '.spec.template.spec.containers | all(.args | index("--namespace") != null)' \
		"$out/deployment-namespaced.json" >/dev/null || { ic_log "no --namespace in the namespaced Deployment"; return 1; }
	IC_NEXT_DEPLOY=$out/deployment-namespaced.json
}

teardown_incluster_forbidden() {
	[ "${INCLUSTER:-0}" = 1 ] || return 0
	IC_NEXT_DEPLOY=""
	kubectl apply -k deploy/ -l 'app.kubernetes.io/component!=controller' >/dev/null
}

case_incluster_forbidden() {
	[ "${INCLUSTER:-0}" = 1 ] || { say "in-cluster phase only"; return 0; }
	local log=$CASE_OUT/vmpoold.log
	make_pool fb 2 | kc apply -f - >/dev/null || return 1
	wait_until 30 grep -q 'cannot create resource .\{0,1\}"virtualmachines' "$log" ||
		fail "no log line naming the forbidden create: $(tail -5 "$log")" || return 1
	say "$(grep -c 'cannot create resource' "$log") log line(s) name the forbidden create:"
	say "$(grep -m1 'cannot create resource' "$log")"
	wait_ge 30 1 event_count FailedCreate ||
		fail "no FailedCreate Event: $(kc get events)" || return 1
	expect_eq "$(vm_count)" 0 "VMs created without the permission" || return 1
}

# every VM the in-cluster cases created was created by the ServiceAccount (audit log), and
# there were some: the RBAC of deploy/ is what the controller used, not an admin token
incluster_audit_check() {
	local sa=system:serviceaccount:$IC_NS:$IC_SA
	jq -r 'select(.stage == "ResponseComplete" and .verb == "create" and .objectRef.resource == "virtualmachines" and
		(.objectRef.namespace // "" | startswith("e2e-incluster-")) and .responseStatus.code == 201) |
		.user.username' "$VMPOOLD_CLUSTER_DIR/audit.log" | sort | uniq -c >"$OUT/incluster-creators.txt"
	[ -s "$OUT/incluster-creators.txt" ] || { echo "no VM created in the in-cluster phase"; return 1; }
	[ "$(awk '{print $2}' "$OUT/incluster-creators.txt" | sort -u)" == "$sa" ] ||
		{ echo "VMs created by: $(cat "$OUT/incluster-creators.txt")"; return 1; }
}
