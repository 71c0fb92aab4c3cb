#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Prints one record of a credstore-file store (docs/credstore-file.md formats), decrypted with
# the store's key file: tests compare what amtprov stored with what a device got, and look
# for stored secrets where they must not be. Debian's python3-cryptography
# (scripts/install-deps.sh). Usage: cred_read.py STORE_DIR NAME  (NAME "-": every record, one
# per line, as "name<TAB>value").
import hashlib, os, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

files = {}
for n in os.listdir(sys.argv[1]):
    b = open(os.path.join(sys.argv[1], n), "rb").read()
    files[b[:8]] = b
k, s = files[b"AMTPKEYS"], files[b"AMTPCRED"]
assert hashlib.sha256(k[:-32]).digest() == k[-32:]
keys = {k[16 + 36 * i:20 + 36 * i]: k[20 + 36 * i:52 + 36 * i] for i in range(struct.unpack(">H", k[10:12])[0])}
# Version 2 appends journal entries after the base records: 'P' + record + 8-byte check
# value (a later put of a name wins), 'R' + name length + name + check value (a removal).
# A torn last entry (cut short, or a bad check value at the very end) is not part of the
# store. The AAD always carries record format version 1.
def record(off):
    (l,) = struct.unpack(">H", s[off:off + 2]); name = s[off + 2:off + 2 + l]; off += 2 + l
    kid, nonce = s[off:off + 4], s[off + 4:off + 16]; (c,) = struct.unpack(">I", s[off + 16:off + 20]); off += 20
    return off + c + 16, (name, l, kid, nonce, s[off:off + c + 16])

recs = {}
off = 16
for _ in range(struct.unpack(">I", s[12:16])[0]):
    off, r = record(off)
    recs[r[0]] = r
while s[9] == 2 and off < len(s):
    start = off
    if s[off] == ord("P"):
        end, r = record(off + 1)
    elif s[off] == ord("R") and off + 3 <= len(s):
        (l,) = struct.unpack(">H", s[off + 1:off + 3]); end, r = off + 3 + l, (s[off + 3:off + 3 + l],)
    else:
        break
    if end + 8 > len(s) or hashlib.sha256(s[start:end]).digest()[:8] != s[end:end + 8]:
        break
    if len(r) > 1:
        recs[r[0]] = r
    else:
        recs.pop(r[0], None)
    off = end + 8
found = False
for name, l, kid, nonce, ct in sorted(recs.values()):
    if sys.argv[2] == "-" or name == sys.argv[2].encode():
        aad = b"AMTPCRED" + b"\x00\x01" + kid + struct.pack(">H", l) + name
        value = AESGCM(keys[kid]).decrypt(nonce, ct, aad).decode()
        if sys.argv[2] != "-":
            sys.stdout.write(value)
            sys.exit(0)
        sys.stdout.write(name.decode() + "\t" + value + "\n")
        found = True
if not found:
    sys.exit("record not found")
