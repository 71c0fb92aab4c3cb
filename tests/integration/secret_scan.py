#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Fails when any secret appears in any file, raw, base64 or hex (either case). Secrets come
# from SECRETS files, one per line as "label<TAB>value"; a value that is a PEM private key
# also counts by its base64 body lines and its DER (base64 and hex). Prints the label and
# the file of each find, never the secret. Usage: secret_scan.py SECRETS -- FILE...
import base64, binascii, sys

sep = sys.argv.index("--")
secrets = []
for path in sys.argv[1:sep]:
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if "\t" in line:
            label, value = line.split("\t", 1)
            secrets.append((label, value.replace("\\n", "\n")))

def forms(value):
    out = []
    if "PRIVATE KEY-----" in value:
        body = "".join(l for l in value.splitlines() if l and "-----" not in l)
        der = base64.b64decode(body)
        out += [("PEM line", l.encode()) for l in value.splitlines() if len(l) >= 32 and "-----" not in l]
        out += [("DER base64", base64.b64encode(der)[8:72]), ("DER hex", binascii.hexlify(der)[16:144])]
        return out
    raw = value.encode()
    b64 = base64.b64encode(raw)
    out += [("raw", raw), ("base64", b64.rstrip(b"=")), ("hex", binascii.hexlify(raw))]
    return out

bad = 0
if not secrets:
    sys.exit("secret_scan: no secrets given: the check would test nothing")
for f in sys.argv[sep + 1:]:
    data = open(f, "rb").read()
    for label, value in secrets:
        if len(value) < 6:
            sys.exit("secret_scan: secret %s is too short to look for reliably" % label)
        for kind, needle in forms(value):
            if needle in data or needle.lower() in data.lower():
                print("secret %s found (%s) in %s" % (label, kind, f))
                bad += 1
print("secret_scan: %d secrets, %d files, %d finds" % (len(secrets), len(sys.argv) - sep - 1, bad))
sys.exit(1 if bad else 0)
