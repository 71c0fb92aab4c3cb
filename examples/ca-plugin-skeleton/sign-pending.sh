#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The "person who signs" of ca-skeleton's manual workflow, as a script around a small
# OpenSSL CA (`openssl ca`), issuing certificates that keep amtprov's CA contract
# (include/amtprov/ca.h, docs/plugin-guide.md): the request's key and subject, the EKU of the
# purpose read from <cookie>.info, subjectAltName = the FQDN, a CRL distribution point, and
# the chain up to the root in the .pem it drops into the inbox. It also carries out
# revocation orders and publishes the CRL.
#
#   sign-pending.sh init CA_DIR                       make the CA (root key 0600, config)
#   sign-pending.sh run CA_DIR OUTBOX INBOX CRL_URL   one pass over the outbox; the CRL is
#                                                     written to CA_DIR/crl/ca.crl (DER):
#                                                     serve that directory at CRL_URL's dir
#
# A lab tool and a worked example, not a production CA.
set -euo pipefail
umask 077

die() { echo "sign-pending: $*" >&2; exit 1; }

init() {
	local d=$1
	mkdir -p "$d/newcerts" "$d/crl"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = skeleton
[ skeleton ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = \$dir/root.pem
private_key = \$dir/root.key
default_md = sha256
default_days = 365
default_crl_days = 7
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
EOF
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/root.key" -out "$d/root.pem" \
		-subj "/CN=ca-skeleton lab root" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 600 "$d/root.key"
	gencrl "$d"
}

gencrl() {
	local d=$1
	openssl ca -batch -config "$d/ca.cnf" -gencrl -out "$d/crl/ca.crl.pem" 2>/dev/null
	openssl crl -in "$d/crl/ca.crl.pem" -outform DER -out "$d/crl/ca.crl.tmp"
	chmod 644 "$d/crl/ca.crl.tmp"
	mv "$d/crl/ca.crl.tmp" "$d/crl/ca.crl"
}

# value KEY FILE: the value of "KEY=..." in FILE.
value() { sed -n "s/^$1=//p" "$2" | head -n 1; }

sign() { # CA_DIR CSR INFO OUT CRL_URL
	local d=$1 csr=$2 info=$3 out=$4 crl=$5 purpose fqdn eku ext
	purpose=$(value purpose "$info")
	fqdn=$(value fqdn "$info")
	case "$purpose" in
	web-server) eku=serverAuth ;;
	802.1x-client) eku=clientAuth ;;
	*) echo "unsupported purpose '$purpose'" >"${out%.pem}.rejected"; return 0 ;;
	esac
	[[ $fqdn =~ ^[A-Za-z0-9.-]+$ ]] || { echo "bad FQDN" >"${out%.pem}.rejected"; return 0; }
	ext=$(mktemp)
	printf '%s\n' "[ leaf ]" "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=$eku" \
		"subjectAltName=DNS:$fqdn" "crlDistributionPoints=URI:$crl" >"$ext"
	# The subject is the request's (amtprov asks for CN = the FQDN); the key is the request's.
	openssl ca -batch -config "$d/ca.cnf" -in "$csr" -out "$out.leaf" -notext \
		-extfile "$ext" -extensions leaf -preserveDN 2>/dev/null
	rm -f "$ext"
	# The leaf, then the chain up to the root: amtprov trusts only this chain for the device.
	cat "$out.leaf" "$d/root.pem" >"$out.tmp"
	rm -f "$out.leaf"
	chmod 644 "$out.tmp"
	mv "$out.tmp" "$out"
}

run() {
	local d=$1 outbox=$2 inbox=$3 crl=$4 csr cookie order serial changed=0
	for csr in "$outbox"/*.csr; do
		[ -e "$csr" ] || continue
		cookie=$(basename "$csr" .csr)
		[ -e "$inbox/$cookie.pem" ] || [ -e "$inbox/$cookie.rejected" ] && continue
		[ -e "$outbox/$cookie.info" ] || continue
		sign "$d" "$csr" "$outbox/$cookie.info" "$inbox/$cookie.pem" "$crl"
	done
	for order in "$outbox"/revoke-*.txt; do
		[ -e "$order" ] || continue
		serial=$(value serial "$order")
		[ -e "$inbox/revoke-$serial.done" ] && continue
		[ -e "$d/newcerts/$serial.pem" ] || continue # not ours: leave it to a person
		openssl ca -batch -config "$d/ca.cnf" -revoke "$d/newcerts/$serial.pem" \
			-crl_reason superseded 2>/dev/null || true # already revoked is fine
		changed=1
		: >"$inbox/revoke-$serial.done"
	done
	[ "$changed" = 0 ] || gencrl "$d"
}

case "${1:-}" in
init) [ $# -eq 2 ] || die "usage: sign-pending.sh init CA_DIR"; init "$2" ;;
run) [ $# -eq 5 ] || die "usage: sign-pending.sh run CA_DIR OUTBOX INBOX CRL_URL"
	run "$2" "$3" "$4" "$5" ;;
*) die "usage: sign-pending.sh init CA_DIR | run CA_DIR OUTBOX INBOX CRL_URL" ;;
esac
