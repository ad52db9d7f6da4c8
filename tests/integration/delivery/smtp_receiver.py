#!/usr/bin/python3
"""A receiving SMTP server for delivery tests (python3-aiosmtpd).

    smtp_receiver.py PORT OUTDIR [CERT KEY]

With CERT and KEY it offers STARTTLS (not required).
Accepts mail on 127.0.0.1:PORT (PIPELINING, 8BITMIME, SMTPUTF8) and writes
each message to OUTDIR/msg-<n>.eml, preceded by "X-Rcpt: <addr>" lines for
its recipients.  Recipients' localparts choose the behaviour:
  fail550*    RCPT answered with a two-line 550 5.1.1 reply
  tempthen*   RCPT answered 451 4.7.1 the first time, 250 afterwards
  slow*       the first message's end of DATA is answered after 30 s with
              451 (the sending worker is killed meanwhile); later ones are
              accepted at once
  anything else is accepted.
OUTDIR/rcpt.log gets one "<addr> <code>" line per RCPT.  Prints "ready".
"""
import asyncio
import os
import sys
import time

from aiosmtpd.controller import Controller

PORT = int(sys.argv[1])
OUT = sys.argv[2]
seen = set()
counter = [0]


def log(line):
    with open(os.path.join(OUT, "rcpt.log"), "a") as f:
        f.write(line + "\n")


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("fail550"):
            log(f"{address} 550")
            return ("550-5.1.1 The mailbox " + address + " does not exist here.\r\n"
                    "550 5.1.1 Please check the address and try again.")
        if local.startswith("tempthen") and address not in seen:
            seen.add(address)
            log(f"{address} 451")
            return "451 4.7.1 Greylisted, please try again later"
        log(f"{address} 250")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        session = server.session
        slow = [r for r in envelope.rcpt_tos if r.split("@")[0].lower().startswith("slow")]
        if slow and ("data:" + slow[0]) not in seen:
            seen.add("data:" + slow[0])
            open(os.path.join(OUT, "slow-started"), "a").close()
            await asyncio.sleep(30)
            return "451 4.4.2 Too slow, try again"
        counter[0] += 1
        path = os.path.join(OUT, "msg-%d-%d.eml" % (os.getpid(), counter[0]))
        with open(path + ".tmp", "wb") as f:
            for r in envelope.rcpt_tos:
                f.write(b"X-Rcpt: " + r.encode() + b"\r\n")
            f.write(b"X-TLS: " + (b"yes" if session.ssl else b"no") + b"\r\n")
            f.write(b"X-Mail-From: " + (envelope.mail_from or "").encode() + b"\r\n")
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode()
            f.write(data)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Message accepted"


kwargs = {}
if len(sys.argv) > 4:
    import ssl
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])
    kwargs = {"tls_context": tls, "require_starttls": False}
ctl = Controller(Handler(), hostname="127.0.0.1", port=PORT, enable_SMTPUTF8=True,
                 decode_data=False, ready_timeout=10, **kwargs)
ctl.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    ctl.stop()
