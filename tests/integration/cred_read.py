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
off = 16
found = False
for _ in range(struct.unpack(">I", s[12:16])[0]):
    (l,) = struct.unpack(">H", s[off:off + 2]); name = s[off + 2:off + 2 + l]; off += 2 + l
    kid, nonce = s[off:off + 4], s[off + 4:off + 16]; (c,) = struct.unpack(">I", s[off + 16:off + 20]); off += 20
    ct = s[off:off + c + 16]; off += c + 16
    if sys.argv[2] == "-" or name == sys.argv[2].encode():
        aad = b"AMTPCRED" + s[8:10] + kid + struct.pack(">H", l) + name
        value = AESGCM(keys[kid]).decrypt(nonce, ct, aad).decode()
        if sys.argv[2] != "-":
            sys.stdout.write(value)
            sys.exit(0)
        sys.stdout.write(name.decode() + "\t" + value + "\n")
        found = True
if not found:
    sys.exit("record not found")
