#!/usr/bin/python3
"""A receiving server that requires TLS and AUTH (python3-aiosmtpd), as a
smarthost or a third-party submission service would.

    auth_receiver.py PORT OUTDIR CERT KEY MODE USER PASSWORD

MODE "starttls": STARTTLS required before AUTH (ports 25/587);
MODE "implicit": TLS from the first byte (port 465).
Offers AUTH PLAIN and LOGIN; only USER/PASSWORD is accepted.  Each message
goes to OUTDIR/msg-<n>.eml preceded by "X-Rcpt:", "X-Auth: <user>" and
"X-Port: PORT" lines.  OUTDIR/auth.log gets "PORT ok|bad <user>" per
attempt.  Prints "ready".
"""
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT = int(sys.argv[1])
OUT = sys.argv[2]
CERT, KEY, MODE, USER, PASSWORD = sys.argv[3:8]
counter = [0]


def log(line):
    with open(os.path.join(OUT, "auth.log"), "a") as f:
        f.write(line + "\n")


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode()
    ok = login == USER and auth_data.password.decode() == PASSWORD
    log(f"{PORT} {'ok' if ok else 'bad'} {login} {mechanism}")
    return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        counter[0] += 1
        path = os.path.join(OUT, "msg-%d-%d.eml" % (PORT, counter[0]))
        with open(path + ".tmp", "wb") as f:
            for r in envelope.rcpt_tos:
                f.write(b"X-Rcpt: " + r.encode() + b"\r\n")
            f.write(b"X-Auth: " + str(session.auth_data).encode() + b"\r\n")
            f.write(b"X-Port: " + str(PORT).encode() + b"\r\n")
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode()
            f.write(data)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Message accepted"


tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(CERT, KEY)
common = dict(hostname="127.0.0.1", port=PORT, decode_data=False, ready_timeout=10,
              authenticator=authenticator, auth_exclude_mechanism=["DONT"])
# aiosmtpd only counts STARTTLS as TLS; with implicit TLS every byte is
# protected anyway.
if MODE == "implicit":
    ctl = Controller(Handler(), ssl_context=tls, auth_require_tls=False, **common)
else:
    ctl = Controller(Handler(), tls_context=tls, require_starttls=True, auth_require_tls=True,
                     **common)
ctl.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    ctl.stop()
