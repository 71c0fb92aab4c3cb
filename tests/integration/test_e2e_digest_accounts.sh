#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Digest account order (R-PROV-08/09, issue 13): the Digest accounts for a device start with
# its own stored admin password, then the site's setup accounts. pc1 is provisioned without a
# single refused Digest answer: before its admin password is set the setup account is the only
# candidate, and after it (the commit and the managed second stage) the stored password is
# offered first. pc2's store holds an outdated admin password (as after a reset by hand): the
# device refuses it and the setup account that follows is taken; pc2 is still provisioned and
# its stored password is replaced by the new one.
TEST_NAME=e2e_digest_accounts
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
claim_net

make_prov_pki "$T/pki"   # sets ROOT_HASH (lib.sh)
check "amtsim serves the fleet" \
  start_fleet_sim 2 10 "$(fleet_dev pc1 "$NET.1")" "$(fleet_dev pc2 "$NET.2" 12.0.45)"
make_lab_site digest
run_agents pc1 pc2
for id in pc1 pc2; do
  "$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/$id.agent.json" >/dev/null
done
# pc2: an admin password amtprov kept from before, which the device no longer has.
printf 'Outdated-Adm1n-Pw!' | "$AMTPROV" -m "$T/site/site.json" cred set device/pc2.contoso.com/admin --stdin

expect_rc 0 "amtprovd provisions both devices" "$AMTPROVD" -m "$T/site/site.json" -l debug --once=120 2>"$T/amtprovd.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
"$AMTPROV" -m "$T/site/site.json" --json device list >"$T/devices.json"
check "both devices are PROVISIONED" \
  python3 -c 'import json,sys; s=[x["state"] for x in json.load(open(sys.argv[1]))]; print(s); assert s==["PROVISIONED"]*2' "$T/devices.json"
for id in pc1 pc2; do "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.dump.json"; done
refused() { # device: how many Digest answers the device refused
  python3 -c 'import json,sys; print(sum("http digest refused" in e["event"] for e in json.load(open(sys.argv[1]))["audit"]))' "$T/$1.dump.json"
}
check "R-PROV-09: pc1 committed and was configured as a managed device" \
  python3 -c 'import json,sys; a=[e["event"] for e in json.load(open(sys.argv[1]))["audit"]]; assert any("CommitChanges: provisioned" in e for e in a), a' "$T/pc1.dump.json"
n1=$(refused pc1)
check "issue 13: pc1 refused no Digest answer (stored admin password first once it exists; got $n1)" test "$n1" = 0
n2=$(refused pc2)
check "R-PROV-09: pc2 refused its outdated stored password, then took the setup account (refused $n2)" test "$n2" -ge 1
/usr/bin/python3 "$(dirname "$0")/cred_read.py" "$T/site/state/plugins/creds" - >"$T/creds.tsv"
check "R-PROV-12: pc2's stored admin password is the new one, not the outdated one" \
  bash -c "grep -q '^device/pc2.contoso.com/admin	' '$T/creds.tsv' && ! grep -q 'Outdated-Adm1n-Pw!' '$T/creds.tsv'"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
