#!/usr/bin/env bash
# tests/tls/test_tls.sh [CLIENT]: what the lean OpenSSL (scripts/build-openssl.sh) must keep
# for a TLS client of the Kubernetes API, through the libcurl and OpenSSL the programs carry:
# CLIENT (default build/rel/tests/tools/vmpool-tlsclient, linked as bin/ is) fetches from
# `openssl s_server -www` instances on 127.0.0.1, with CA, certificate and key as PEM blobs as
# common/kube.c passes a kubeconfig's *-data. A throwaway PKI from the system openssl: an RSA
# and an ECDSA P-384 CA; server certificates RSA, P-256 and Ed25519 for IP:127.0.0.1, one for
# DNS:localhost only; client certificates RSA (PKCS#8 and PKCS#1 keys), P-256 (SEC1 key),
# P-384 and Ed25519.
# Checked: TLS 1.3 and 1.2 with each server key type; ChaCha20-Poly1305 and AES-GCM; X25519
# and P-256 key exchange; each client certificate over 1.3 and 1.2 (s_server -Verify). The
# negotiated protocol, cipher and client certificate are read from s_server's report of the
# session (its -www answer). Must fail, each for its own reason (curl's error code and
# message): no client certificate where one is required, a server certificate without the IP
# SAN, the wrong CA, a key that is not the certificate's, a TLS 1.3-only server with the
# client at most 1.2.
# Prints "ok   tls/CASE" or "FAIL tls/CASE" and "tls: N passed, M failed"; exits non-zero on
# a failure. VERBOSE=1: the must-fail cases' errors too; KEEP=1: the PKI and logs are kept.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
client=${1:-build/rel/tests/tools/vmpool-tlsclient}
T=$(mktemp -d /tmp/test_tls.XXXXXX)
P=$T/pki
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pass=0 failed=0
declare -A port spid

ok() { pass=$((pass + 1)); echo "ok   tls/$1"; }
no() { # NAME [DETAIL FILE]
	failed=$((failed + 1)); echo "FAIL tls/$1"
	[ -n "${2:-}" ] && [ -s "$2" ] && sed 's/^/     /' "$2" | tail -15
	return 0
}

# --- the PKI (as the lean-ssl branch's tests/tls-lean/pki.sh)
pki() {
	local ext_srv="subjectAltName=IP:127.0.0.1,DNS:localhost"
	mkdir -p "$P" && cd "$P" || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-rsa.key -out ca-rsa.pem \
		-subj /CN=ca-rsa -days 2 || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca-ec.key \
		-out ca-ec.pem -subj /CN=ca-ec384 -days 2 || return 1
	cat ca-rsa.pem ca-ec.pem >ca-all.pem
	mkcert srv-rsa ca-rsa "$ext_srv" -algorithm RSA -pkeyopt rsa_keygen_bits:2048 &&
		mkcert srv-p256 ca-ec "$ext_srv" -algorithm EC -pkeyopt ec_paramgen_curve:P-256 &&
		mkcert srv-ed25519 ca-rsa "$ext_srv" -algorithm ED25519 &&
		mkcert srv-dnsonly ca-rsa "subjectAltName=DNS:localhost" \
			-algorithm EC -pkeyopt ec_paramgen_curve:P-256 &&
		mkcert cli-rsa ca-rsa "extendedKeyUsage=clientAuth" \
			-algorithm RSA -pkeyopt rsa_keygen_bits:2048 &&
		mkcert cli-p256 ca-ec "extendedKeyUsage=clientAuth" \
			-algorithm EC -pkeyopt ec_paramgen_curve:P-256 &&
		mkcert cli-p384 ca-ec "extendedKeyUsage=clientAuth" \
			-algorithm EC -pkeyopt ec_paramgen_curve:P-384 &&
		mkcert cli-ed25519 ca-rsa "extendedKeyUsage=clientAuth" -algorithm ED25519 &&
		# kubeadm's and kind's kubeconfigs carry PKCS#1 (RSA) and SEC1 (EC) keys
		openssl pkey -in cli-rsa.key -traditional -out cli-rsa-pkcs1.key &&
		openssl pkey -in cli-p256.key -traditional -out cli-p256-sec1.key &&
		grep -q 'BEGIN RSA PRIVATE KEY' cli-rsa-pkcs1.key &&
		grep -q 'BEGIN EC PRIVATE KEY' cli-p256-sec1.key &&
		grep -q 'BEGIN PRIVATE KEY' cli-rsa.key
}
mkcert() { # NAME CA EXT GENPKEY-ARGS...
	local n=$1 ca=$2 ext=$3
	shift 3
	echo "$ext" >"$n.ext"
	openssl genpkey "$@" -out "$n.key" &&
		openssl req -new -key "$n.key" -subj "/CN=$n" -out "$n.csr" &&
		openssl x509 -req -in "$n.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
			-days 2 -extfile "$n.ext" -out "$n.pem"
}

# --- the servers: s_server -www on 127.0.0.1, a port the kernel chooses (-accept :0); its
# first line says which ("ACCEPT 127.0.0.1:PORT")
serve() { # NAME CERT S_SERVER-ARGS...
	local name=$1 cert=$2
	shift 2
	openssl s_server -accept 127.0.0.1:0 -www -cert "$P/$cert.pem" -key "$P/$cert.key" "$@" \
		</dev/null >"$T/$name.log" 2>&1 &
	pids+=($!)
	spid[$name]=$!
}
# every server listening (its ACCEPT line), or exited; at most 30 s for all of them
listening() {
	local name end=$((SECONDS + 30))
	for name in "$@"; do
		while :; do
			port[$name]=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/$name.log")
			[ -n "${port[$name]}" ] && break
			kill -0 "${spid[$name]}" 2>/dev/null || break
			[ "$SECONDS" -lt "$end" ] || break
			sleep 0.05
		done
		if [ -n "${port[$name]}" ]; then ok "server-$name"; else no "server-$name" "$T/$name.log"; fi
	done
}

url() { # SERVER[@HOST]
	local name=${1%@*} host=127.0.0.1
	[ "$1" != "$name" ] && host=${1#*@}
	echo "https://$host:${port[$name]:-1}/"
}

# pos NAME SERVER[@HOST] PATTERN... -- CLIENT-ARGS...: a 2xx answer whose body (s_server's
# report of the session) matches each PATTERN (grep -E)
pos() {
	local name=$1 srv=$2 pat pats=()
	shift 2
	while [ "$1" != -- ]; do pats+=("$1"); shift; done
	shift
	if ! "$client" "$@" "$(url "$srv")" >"$T/out" 2>"$T/err"; then
		no "$name" "$T/err"
		return
	fi
	for pat in "${pats[@]}"; do
		if ! grep -Eq -- "$pat" "$T/out"; then
			echo "no '$pat' in the answer:" >>"$T/err"
			grep -E '^(Shared|Supported|New|Reused| *Subject:|no client)' \
				"$T/out" >>"$T/err"
			no "$name" "$T/err"
			return
		fi
	done
	ok "$name"
}

# neg NAME SERVER ERROR -- CLIENT-ARGS...: the transfer fails (exit 1: not a usage or file
# error) with ERROR (grep -E) in the client's message, i.e. for the reason the case is about
neg() {
	local name=$1 srv=$2 want=$3 rc
	shift 4
	"$client" "$@" "$(url "$srv")" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 1 ] && grep -Eq -- "$want" "$T/err"; then
		ok "$name"
		[ -n "${VERBOSE:-}" ] && sed 's/^/     /' "$T/err"
	else
		echo "exit $rc, wanted 1 and '$want'" >>"$T/err"
		no "$name" "$T/err"
	fi
}

if ! [ -x "$client" ]; then
	no "client: $client is not built (make $client)"
	echo "tls: $pass passed, $failed failed"
	exit 1
fi
if (pki) >"$T/pki.log" 2>&1; then ok pki; else no pki "$T/pki.log"; fi

serve rsa srv-rsa
serve rsa12 srv-rsa -tls1_2
serve rsa13 srv-rsa -tls1_3
serve p256 srv-p256
serve p256-12 srv-p256 -tls1_2
serve ed25519 srv-ed25519
serve ed25519-12 srv-ed25519 -tls1_2
serve x25519 srv-rsa -groups X25519
serve p256kex srv-rsa -groups P-256
serve verify srv-rsa -Verify 1 -CAfile "$P/ca-all.pem"
serve verify12 srv-p256 -Verify 1 -CAfile "$P/ca-all.pem" -tls1_2
serve dnsonly srv-dnsonly
listening rsa rsa12 rsa13 p256 p256-12 ed25519 ed25519-12 x25519 p256kex verify verify12 dnsonly

ca=(--ca "$P/ca-all.pem")
v13='Protocol *: TLSv1\.3$' v12='Protocol *: TLSv1\.2$'

# server keys: RSA, ECDSA P-256 (under the P-384 CA), Ed25519, over TLS 1.3 and 1.2
pos rsa-tls13 rsa "$v13" -- "${ca[@]}"
pos rsa-tls12 rsa12 "$v12" -- "${ca[@]}"
pos rsa-tls13-only rsa13 "$v13" -- "${ca[@]}"
pos p256-tls13 p256 "$v13" -- "${ca[@]}"
pos p256-tls12 p256-12 "$v12" -- "${ca[@]}"
pos ed25519-tls13 ed25519 "$v13" -- "${ca[@]}"
pos ed25519-tls12 ed25519-12 "$v12" -- "${ca[@]}"
# the DNS-only certificate is good by its name (what makes no-ip-san fail is the SAN)
pos dnsonly-by-name dnsonly@localhost "$v13" -- "${ca[@]}"

# ciphers
pos chacha20-tls13 rsa "$v13" 'Cipher *: TLS_CHACHA20_POLY1305_SHA256$' -- "${ca[@]}" \
	--tls13-ciphers TLS_CHACHA20_POLY1305_SHA256
pos aes128gcm-tls13 rsa "$v13" 'Cipher *: TLS_AES_128_GCM_SHA256$' -- "${ca[@]}" \
	--tls13-ciphers TLS_AES_128_GCM_SHA256
pos aes256gcm-tls13 rsa "$v13" 'Cipher *: TLS_AES_256_GCM_SHA384$' -- "${ca[@]}" \
	--tls13-ciphers TLS_AES_256_GCM_SHA384
pos chacha20-tls12 rsa12 "$v12" 'Cipher *: ECDHE-RSA-CHACHA20-POLY1305$' -- "${ca[@]}" \
	--ciphers ECDHE-RSA-CHACHA20-POLY1305
pos aes128gcm-tls12 p256-12 "$v12" 'Cipher *: ECDHE-ECDSA-AES128-GCM-SHA256$' -- "${ca[@]}" \
	--ciphers ECDHE-ECDSA-AES128-GCM-SHA256
pos aes256gcm-tls12 rsa12 "$v12" 'Cipher *: ECDHE-RSA-AES256-GCM-SHA384$' -- "${ca[@]}" \
	--ciphers ECDHE-RSA-AES256-GCM-SHA384

# key exchange: servers that offer one group only (P-256 over 1.3: a HelloRetryRequest, the
# client's first key share being X25519)
pos x25519-tls13 x25519 "$v13" -- "${ca[@]}"
pos x25519-tls12 x25519 "$v12" -- "${ca[@]}" --tls-max 1.2 --curves X25519
pos p256-kex-tls13 p256kex "$v13" -- "${ca[@]}"
pos p256-kex-tls12 p256kex "$v12" -- "${ca[@]}" --tls-max 1.2 --curves P-256

# client certificates: s_server -Verify requires one and reports its subject
for tls in 13 12; do
	srv=verify v=$v13
	[ "$tls" = 12 ] && srv=verify12 v=$v12
	for c in rsa:cli-rsa rsa-pkcs1:cli-rsa-pkcs1 p256-sec1:cli-p256-sec1 p384:cli-p384 \
		ed25519:cli-ed25519; do
		cert=${c#*:}
		cert=${cert%-pkcs1}
		cert=${cert%-sec1}
		pos "client-${c%%:*}-tls$tls" "$srv" "$v" "^ *Subject: CN *= *$cert\$" -- "${ca[@]}" \
			--cert "$P/$cert.pem" --key "$P/${c#*:}.key"
	done
done

# must fail, each for its reason
neg no-client-cert-tls13 verify '^vmpool-tlsclient: .*: \(56\) .*certificate required' -- "${ca[@]}"
neg no-client-cert-tls12 verify12 '^vmpool-tlsclient: .*: \(35\) .*handshake failure' -- "${ca[@]}"
neg no-ip-san dnsonly '^vmpool-tlsclient: .*: \(60\) .*subject name .*127\.0\.0\.1' -- "${ca[@]}"
neg wrong-ca rsa '^vmpool-tlsclient: .*: \(60\) .*unable to get local issuer certificate' -- \
	--ca "$P/ca-ec.pem"
neg key-cert-mismatch verify '^vmpool-tlsclient: .*: \(58\) .*[Pp]rivate key' -- "${ca[@]}" \
	--cert "$P/cli-rsa.pem" --key "$P/cli-p256.key"
neg tls13-server-max12-client rsa13 '^vmpool-tlsclient: .*: \(35\) .*protocol version' -- \
	"${ca[@]}" --tls-max 1.2

echo "tls: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
