# shellcheck shell=bash
# bakery runtime: cluster membership helpers (sourced by bakery-join and bakery-status).
#
# A peer is a cluster MEMBER when both hold:
#   1. `GET https://<peer>:6443/cacerts` returns our server CA: its sha256 equals the hash
#      in our token file (`K10<hash>::<user>:<password>`), as K3s itself checks before it
#      sends credentials. K3s serves /cacerts before it has joined etcd, so this alone
#      does not mean "member".
#   2. its bakery status answer (TCP :6440, bakery-status) says `member`: the peer's local
#      K3s answers `/v1-k3s/readyz` with `ok`. K3s sets that only once its core
#      controllers run, i.e. after the etcd join (promoted to voter, leader known).
# The status answer is authenticated without sending any secret: the asker sends a random
# nonce, the peer answers with sha256(token NL nonce NL answer NL token) over the token
# both hold (the server token, or the agent token when an agent asks).
# Nothing here puts a secret on a command line, in a log line or on the network.

# Overridable for the host-side tests (ci/join-test); the defaults are the node's paths.
K3S_DATA=${BAKERY_K3S_DATA:-/var/lib/rancher/k3s}
K3S_ETC=${BAKERY_K3S_ETC:-/etc/rancher/k3s}
BAKERY_STATE=${BAKERY_STATE_DIR:-/var/lib/bakery}
STATUS_PORT=${BAKERY_STATUS_PORT:-6440}
API_PORT=${BAKERY_API_PORT:-6443}

# token_part FILE hash|user|password: one part of a full-form K3s token file.
token_part() {
	local t
	t=$(tr -d '\r\n' <"$1" 2>/dev/null) || return 1
	case "$t" in K10*::*:*) ;; *) return 1 ;; esac
	case "$2" in
	hash) t=${t#K10} && echo "${t%%::*}" ;;
	user) t=${t#*::} && echo "${t%%:*}" ;;
	password) t=${t#*::} && echo "${t#*:}" ;;
	esac
}

# https_get HOST PATH [CAFILE] [USER PASSWORDFILE-PART]: the raw HTTP/1.0 response on
# stdout. With CAFILE the server certificate must chain to it and carry HOST as an IP SAN.
# The Authorization header goes through a pipe, never through argv.
https_get() {
	local host=$1 path=$2 ca=${3:-} user=${4:-} pw=${5:-} auth=
	local opts=(-quiet -connect "$host:$API_PORT")
	[ -n "$ca" ] && opts+=(-CAfile "$ca" -verify_return_error -verify_ip "$host")
	[ -n "$user" ] && auth="Authorization: Basic $(printf '%s:%s' "$user" "$pw" | base64 -w0)"$'\r\n'
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$path" "$host" "$auth" |
		timeout 20 openssl s_client "${opts[@]}" 2>/dev/null
}

# http_body: the body of an HTTP response on stdin.
http_body() { sed '1,/^\r\{0,1\}$/d'; }
http_status() { head -n 1 | awk '{print $2}'; }

# status_mac KEYFILE TEXT: the answer's authenticator.
status_mac() {
	{ tr -d '\r\n' <"$1"; printf '\n%s\n' "$2"; tr -d '\r\n' <"$1"; } | sha256sum | cut -d' ' -f1
}

# status_query HOST KIND(server|node) KEYFILE: prints the peer's state (empty, joining,
# member) when its answer is authentic, else `silent` (no answer) or `bad` (an answer that
# does not verify: a different cluster or a forgery).
status_query() {
	local host=$1 kind=$2 key=$3 nonce line a
	nonce=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	# Generous limits: a peer that boots under emulation may need seconds to answer.
	line=$(timeout 25 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "bakery-status 1 %s %s\n" "$2" "$3" >&3
		IFS= read -r -t 20 l <&3 && printf "%s\n" "$l"' "$host" "$STATUS_PORT" "$nonce" "$kind" 2>/dev/null) ||
		{ echo silent; return; }
	line=${line%$'\r'}
	# bakery-status 1 <host> <state> <mac>
	read -r -a a <<<"$line"
	if [ "${#a[@]}" -ne 5 ] || [ "${a[0]}" != bakery-status ] || [ "${a[1]}" != 1 ]; then
		echo bad
		return
	fi
	if [ "$(status_mac "$key" "$nonce ${a[2]} ${a[3]}")" != "${a[4]}" ]; then
		echo bad
		return
	fi
	case "${a[3]}" in empty | joining | member) echo "${a[3]}" ;; *) echo bad ;; esac
}

# ca_check HOST TOKENFILE CAOUT: does HOST serve our CA on /cacerts? Writes it to CAOUT.
ca_check() {
	local want have
	want=$(token_part "$2" hash) || return 2
	https_get "$1" /cacerts | http_body >"$3" || return 1
	[ -s "$3" ] || return 1
	have=$(sha256sum <"$3" | cut -d' ' -f1)
	[ "$have" = "$want" ] || return 3
}

# member_check HOST KIND KEYFILE: 0 when HOST is a member; else prints why not.
member_check() {
	local host=$1 ca rc st
	ca=$(mktemp)
	ca_check "$host" "$3" "$ca"
	rc=$?
	rm -f "$ca"
	case $rc in
	0) ;;
	1) echo "no answer on :$API_PORT/cacerts" && return 1 ;;
	2) echo "no usable token in $3" && return 1 ;;
	*) echo "serves a different CA on /cacerts" && return 1 ;;
	esac
	st=$(status_query "$host" "$2" "$3")
	case "$st" in
	member) return 0 ;;
	silent) echo "serves our CA, no bakery status answer" ;;
	bad) echo "serves our CA, its status answer does not verify" ;;
	*) echo "serves our CA, not past joining yet (status $st)" ;;
	esac
	return 1
}

# local_state: this server's own state for its status answer.
local_state() {
	local pw
	if [ ! -d "$K3S_DATA/server/db/etcd" ] && [ ! -s "$BAKERY_STATE/join-decision" ]; then
		echo empty
		return
	fi
	# Loopback: no certificate check needed (nothing can sit between us and ourselves);
	# the agent token's `node` user may read /v1-k3s/readyz.
	pw=$(token_part "$K3S_ETC/agent-token" password) || { echo joining; return; }
	if [ -d "$K3S_DATA/server/db/etcd" ] &&
		[ "$(https_get 127.0.0.1 /v1-k3s/readyz "" node "$pw" | http_body | tr -d '\r\n')" = ok ]; then
		echo member
	else
		echo joining
	fi
}
