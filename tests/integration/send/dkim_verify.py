#!/usr/bin/python3
"""Verifies every DKIM-Signature of a message with dkimpy (python3-dkim),
offline: key records come from a file of "name TXT-value" lines.

    dkim_verify.py MESSAGE RECORDS

Prints one line per signature and exits 0 only when there is at least one
signature and all verify.
"""
import sys

import dkim

records = {}
with open(sys.argv[2]) as f:
    for line in f:
        name, value = line.rstrip("\n").split(" ", 1)
        records[name.rstrip(".") + "."] = value.encode()


def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    return records.get(n.rstrip(".") + ".")


data = open(sys.argv[1], "rb").read()
d = dkim.DKIM(data)
sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
if not sigs:
    print("no DKIM-Signature")
    sys.exit(1)
ok = True
for i in range(len(sigs)):
    good = dkim.verify(data, dnsfunc=dnsfunc) if i == 0 else d.verify(idx=i, dnsfunc=dnsfunc)
    print(f"signature {i}: {'pass' if good else 'FAIL'}")
    ok = ok and good
sys.exit(0 if ok else 1)
