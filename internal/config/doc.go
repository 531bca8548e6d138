// Package config holds what the two configuration dialects share: a
// position in a configuration file (Pos) and the findings of a check
// (Diagnostic). The dialects themselves live in the subpackages
// postfixconf (main.cf, master.cf) and doveconf (dovecot.conf and its
// *.conf.ext files).
package config
