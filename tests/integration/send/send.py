#!/usr/bin/python3
"""Submits one message over submission (STARTTLS + AUTH PLAIN).

    send.py PORT USER PASSWORD FROM TO SUBJECT
"""
import smtplib
import ssl
import sys

port, user, password, mail_from, rcpt, subject = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = (f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n"
       "Hello from mailfleet's send test.\r\nA second line.\r\n")
with smtplib.SMTP("127.0.0.1", int(port), timeout=60) as s:
    s.starttls(context=ctx)
    s.login(user, password)
    s.sendmail(mail_from, [rcpt], msg.encode())
print("sent")
