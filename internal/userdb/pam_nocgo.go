//go:build !pam || !cgo

package userdb

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// PAMLibrary reports whether this build calls the system's libpam (built
// with -tags pam and cgo). In this build it does not.
const PAMLibrary = false

// unixPassDB is the pam passdb of the default build: pam_unix's checks on
// passwd(5) and shadow(5), see pam.go.
type unixPassDB struct {
	args   pamArgs
	files  *SystemIDs
	opts   Options
	limits Limits
	now    func() time.Time
}

func newPAMBackend(a pamArgs, opts Options) (PassDB, error) {
	db := &unixPassDB{args: a, files: systemFiles(opts), opts: opts, limits: opts.limits(), now: time.Now}
	opts.logf("passdb pam: this build has no PAM library; checking %s as pam_unix does (build with -tags pam for PAM)", db.files.ShadowPath())
	checkShadowReadable("passdb pam", db.files, opts)
	return db, nil
}

// DriverName implements Named.
func (u *unixPassDB) DriverName() string { return "pam" }

// Verify checks the password as pam_authenticate with pam_unix would,
// then the account as pam_acct_mgmt would.
func (u *unixPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	if err := ctx.Err(); err != nil {
		return PassResult{}, err
	}
	pw, found, err := u.files.LookupPasswd(req.User)
	if err != nil {
		return PassResult{}, fmt.Errorf("passdb pam: %w", err)
	}
	if !found {
		return PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	// pam_unix reads the shadow file when the passwd field says so
	// ("x", or "##name" for the old adjunct form).
	hash := pw.Password
	shadowed := hash == "x" || strings.HasPrefix(hash, "##")
	sp, inShadow, err := u.files.LookupShadow(req.User)
	if err != nil && shadowed {
		return PassResult{}, fmt.Errorf("passdb pam: %w", err)
	}
	if err != nil {
		inShadow = false // account checks need the line; a bad one refuses below
	}
	if shadowed {
		if !inShadow {
			return u.refuse(req, "user is in passwd but has no shadow entry"), nil
		}
		hash = sp.Password
	}
	if !validCryptField(hash) {
		return u.refuse(req, lockedReason(hash)), nil
	}
	var f Fields
	f.Set("user", pw.Name)
	res := verifyStored(u.opts, u.limits, "pam", req, password, "{CRYPT}"+hash, "CRYPT", PassResult{Status: PassOK, Fields: f})
	if res.Status != PassOK {
		return res, nil
	}
	// pam_acct_mgmt: pam_unix passes an account without a shadow line.
	if inShadow {
		now := u.now()
		if sp.AccountExpired(now) {
			return u.refuse(req, "account expired"), nil
		}
		if why := sp.PasswordAgeProblem(now); why != "" {
			return u.refuse(req, why), nil
		}
	}
	return res, nil
}

// refuse is a failed login with a reason for the log; with
// failure_show_msg=yes the reason is logged as PAM's message would be.
func (u *unixPassDB) refuse(req Request, reason string) PassResult {
	if u.args.failureShowMsg {
		u.opts.logf("pam(%s,%s): %s", logUser(req.User), req.RemoteIP, reason)
	}
	return PassResult{Status: PassMismatch, Reason: reason}
}
