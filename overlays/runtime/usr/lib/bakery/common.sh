# bakery runtime: shared shell helpers (sourced by the bakery-* scripts).
# shellcheck shell=bash
# Lines start with "bakery: " and go to the journal and the console (the units use
# StandardOutput=journal+console); tests read them from the serial console.

log() { echo "bakery: $*"; }
fail() {
	echo "bakery: FAIL $1: $2"
	exit 1
}
# Overridable for host-side tests of the scripts (ci/join-test); the node uses the defaults.
BOOT=${BAKERY_BOOT:-/boot/firmware}
# B is for the scripts that source this file.
# shellcheck disable=SC2034
B=$BOOT/bakery
RUN=${BAKERY_RUN:-/run/bakery}
# Kernel command line value: cmdline_arg NAME DEFAULT
cmdline_arg() {
	local v="$2" w words
	read -r -a words </proc/cmdline
	for w in "${words[@]}"; do
		case "$w" in "$1="*) v="${w#*=}" ;; "$1") v=1 ;; esac
	done
	echo "$v"
}
load_env() {
	[ -r "$RUN/node.env" ] || fail env "$RUN/node.env missing (bakery-node.service did not run)"
	# shellcheck disable=SC1091
	. "$RUN/node.env"
}
