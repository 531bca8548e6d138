#!/usr/bin/env python3
"""Send a message through submission (STARTTLS + AUTH) with smtplib and
read it back over IMAPS with imaplib: what a mail client does.

usage: submit_and_read.py SUBMISSION_PORT IMAPS_PORT USER PASSWORD SUBJECT
Prints the UID the message got. Exits non-zero with a message on failure.
"""
import email.message
import imaplib
import smtplib
import ssl
import sys
import time

sub_port, imaps_port, user, password, subject = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

msg = email.message.EmailMessage()
msg["From"] = user
msg["To"] = user
msg["Subject"] = subject
msg.set_content("Hello from smtplib.\nA second line.\n")

with smtplib.SMTP("127.0.0.1", int(sub_port), timeout=20) as s:
    s.ehlo("client.example")
    s.starttls(context=ctx)
    s.ehlo("client.example")
    s.login(user, password)
    refused = s.send_message(msg)
    assert not refused, refused

deadline = time.time() + 20
with imaplib.IMAP4_SSL("127.0.0.1", int(imaps_port), ssl_context=ctx, timeout=20) as m:
    m.login(user, password)
    while True:
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.uid("SEARCH", None, "SUBJECT", '"%s"' % subject)
        assert typ == "OK", data
        uids = data[0].split()
        if uids:
            break
        if time.time() > deadline:
            sys.exit("message did not arrive in INBOX within 20 s")
        time.sleep(0.1)
    assert len(uids) == 1, "expected one message, got %r" % uids
    typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[] FLAGS)")
    assert typ == "OK", data
    body = data[0][1].decode()
    assert "Subject: " + subject in body, body
    assert "Hello from smtplib." in body, body
    assert "Received: from client.example" in body, body
    print(uids[0].decode())
