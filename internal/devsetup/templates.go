package devsetup

import "text/template"

// The files below are the guides' dialects, commented for a reader who
// knows Postfix and Dovecot. Paths point into the data folder so nothing
// outside it is touched.

var mainCF = template.Must(template.New("main.cf").Parse(`# postcote dev: Postfix main.cf for a single-host test server.
# Everything lives in {{.Dir}}; ports are unprivileged (see master.cf).

myhostname = localhost
mydomain = {{.Domain}}
myorigin = $mydomain
smtpd_banner = $myhostname ESMTP $mail_name
append_dot_mydomain = no

# Where postcote keeps its queue.
queue_directory = {{.Dir}}/spool

# Nothing is local in the Unix sense: mail for {{.Domain}} goes into the
# mailboxes of the users in {{.Dir}}/users (Dovecot's passwd-file).
mydestination =
virtual_mailbox_domains = {{.Domain}}
virtual_transport = virtual

# Relaying only for authenticated users and this host.
mynetworks = 127.0.0.0/8 [::1]/128
mynetworks_style = host
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
# Mail to other domains stays here: this is a test server.
default_transport = error: this postcote dev server does not send mail to other domains

# TLS with the self-signed certificate postcote dev made.
smtpd_tls_cert_file = {{.Dir}}/cert.pem
smtpd_tls_key_file = {{.Dir}}/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes

# SASL through the users Dovecot's passdb knows.
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = yes

message_size_limit = 26214400
recipient_delimiter = +
inet_interfaces = loopback-only
inet_protocols = ipv4
`))

var masterCF = template.Must(template.New("master.cf").Parse(`# postcote dev: Postfix master.cf. Only the listeners matter to postcote;
# the other stock lines are accepted and need no change.
#
# service type  private unpriv  chroot  wakeup  maxproc command + args
{{.Address}}:{{.Ports.SMTP}} inet n - n - - smtpd
{{.Address}}:{{.Ports.Submission}} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
{{.Address}}:{{.Ports.Submissions}} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
error     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
`))

var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# postcote dev: dovecot.conf for the mailbox side.
protocols = imap
listen = {{.Address}}

ssl = yes
ssl_cert = <{{.Dir}}/cert.pem
ssl_key = <{{.Dir}}/key.pem

# Plaintext logins only over TLS (STARTTLS on {{.Ports.IMAP}}, or {{.Ports.IMAPS}}).
disable_plaintext_auth = yes
auth_mechanisms = plain login

mail_location = maildir:~/Maildir

passdb {
  driver = passwd-file
  args = scheme=BLF-CRYPT username_format=%u {{.Dir}}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
  default_fields = home={{.Dir}}/mail/%d/%n
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = create
  }
}

service imap-login {
  inet_listener imap {
    port = {{.Ports.IMAP}}
  }
  inet_listener imaps {
    port = {{.Ports.IMAPS}}
    ssl = yes
  }
}

service auth {
  # Postfix finds it as smtpd_sasl_path = private/auth, relative to its
  # queue_directory, as in guide 004.
  unix_listener {{.Dir}}/spool/private/auth {
    mode = 0600
  }
}
`))
