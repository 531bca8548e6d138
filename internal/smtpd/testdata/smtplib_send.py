#!/usr/bin/env python3
"""Send one message through postcote's smtpd with Python's smtplib:
EHLO, STARTTLS (verifying the test CA), EHLO, AUTH, MAIL, RCPT, DATA.
Usage: smtplib_send.py HOST PORT CAFILE USER PASSWORD RCPT"""
import smtplib
import ssl
import sys
from email.message import EmailMessage

host, port, cafile, user, password, rcpt = sys.argv[1:7]
msg = EmailMessage()
msg["From"] = user
msg["To"] = rcpt
msg["Subject"] = "smtplib test"
msg.set_content("Sent by smtplib.\n.A line starting with a dot.\n")

ctx = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP(host, int(port), local_hostname="python.example", timeout=10) as s:
    s.ehlo()
    if not s.has_extn("starttls"):
        sys.exit("no STARTTLS offered")
    if s.has_extn("auth"):
        sys.exit("AUTH offered before TLS")
    s.starttls(context=ctx)  # verifies the IP address SAN
    s.ehlo()
    s.login(user, password)
    refused = s.send_message(msg)
    if refused:
        sys.exit("refused: %r" % refused)
print("sent")
