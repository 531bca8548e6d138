//go:build pam && cgo

package userdb

/*
#cgo LDFLAGS: -lpam
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

// pc_data is the conversation's state: what it answers with, and the
// last message a module showed (for failure_show_msg and the log).
struct pc_data {
	const char *user;
	const char *pass;
	char msg[256];
};

static void pc_free_responses(struct pam_response *r, int n) {
	for (int i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			memset(r[i].resp, 0, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

// pc_conv answers PAM's prompts as Dovecot's pam_userpass_conv does: the
// password for a hidden prompt, the user name for a visible one; error
// and info messages are kept, anything else fails the conversation.
static int pc_conv(int n, const struct pam_message **msg,
                   struct pam_response **resp, void *appdata) {
	struct pc_data *d = appdata;
	struct pam_response *r;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			r[i].resp = strdup(d->pass);
			break;
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(d->user);
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			if (msg[i]->msg != NULL) {
				strncpy(d->msg, msg[i]->msg, sizeof(d->msg) - 1);
				d->msg[sizeof(d->msg) - 1] = '\0';
			}
			continue;
		default:
			pc_free_responses(r, n);
			return PAM_CONV_ERR;
		}
		if (r[i].resp == NULL) {
			pc_free_responses(r, n);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

// pc_login runs one login: authenticate, account check, optional
// credentials and session, as Dovecot's try_pam_auth does. step says how
// far it got (0 start, 1 authenticate, 2 acct_mgmt, 3 setcred, 4
// session); err receives pam_strerror of a failure; user_out the name
// PAM settled on.
static int pc_login(const char *service, struct pc_data *d, const char *rhost,
                    int setcred, int session, int *step,
                    char *err, size_t errlen, char *user_out, size_t userlen) {
	struct pam_conv conv = { pc_conv, d };
	pam_handle_t *ph = NULL;
	int st;
	const void *item = NULL;

	*step = 0;
	st = pam_start(service, d->user, &conv, &ph);
	if (st != PAM_SUCCESS) {
		strncpy(err, "pam_start() failed", errlen - 1);
		return st;
	}
	if (rhost[0] != '\0')
		(void)pam_set_item(ph, PAM_RHOST, rhost);
	// pam_access and others want a TTY.
	(void)pam_set_item(ph, PAM_TTY, "dovecot");

	*step = 1;
	st = pam_authenticate(ph, 0);
	if (st == PAM_SUCCESS) {
		*step = 2;
		st = pam_acct_mgmt(ph, 0);
	}
	if (st == PAM_SUCCESS && setcred) {
		*step = 3;
		st = pam_setcred(ph, PAM_ESTABLISH_CRED);
	}
	if (st == PAM_SUCCESS && session) {
		*step = 4;
		st = pam_open_session(ph, 0);
		if (st == PAM_SUCCESS)
			st = pam_close_session(ph, 0);
	}
	if (st == PAM_SUCCESS) {
		if (pam_get_item(ph, PAM_USER, &item) == PAM_SUCCESS && item != NULL) {
			strncpy(user_out, (const char *)item, userlen - 1);
			user_out[userlen - 1] = '\0';
		}
	} else {
		strncpy(err, pam_strerror(ph, st), errlen - 1);
		err[errlen - 1] = '\0';
	}
	pam_end(ph, st);
	return st;
}
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"unsafe"
)

// PAMLibrary reports whether this build calls the system's libpam (built
// with -tags pam and cgo). In this build it does.
const PAMLibrary = true

// libPAMPassDB is the pam passdb of the "-tags pam" build.
type libPAMPassDB struct {
	args    pamArgs
	opts    Options
	workers chan struct{} // a slot per running conversation
}

func newPAMBackend(a pamArgs, opts Options) (PassDB, error) {
	opts.verbosef("passdb pam: using libpam, service %q", a.service)
	return &libPAMPassDB{args: a, opts: opts, workers: make(chan struct{}, pamWorkers)}, nil
}

// DriverName implements Named.
func (p *libPAMPassDB) DriverName() string { return "pam" }

// pamOutcome is one conversation's result.
type pamOutcome struct {
	status int
	step   int
	err    string
	msg    string
	user   string
}

var pamSteps = []string{"pam_start()", "pam_authenticate()", "pam_acct_mgmt()", "pam_setcred()", "pam_open_session()"}

// Verify runs a PAM conversation in a worker slot. A conversation that
// outlives ctx keeps its slot until PAM returns (it cannot be
// interrupted), so slow modules cannot make more than pamWorkers threads.
func (p *libPAMPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	if strings.IndexByte(req.User, 0) >= 0 || strings.IndexByte(password, 0) >= 0 {
		// C strings end at NUL: such a name or password could only
		// ever be checked truncated.
		return PassResult{Status: PassMismatch, Reason: "NUL in user name or password"}, nil
	}
	if err := ctx.Err(); err != nil {
		return PassResult{}, fmt.Errorf("passdb pam: %w", err)
	}
	service := Expand(p.args.service, req.Vars())
	select {
	case p.workers <- struct{}{}:
	case <-ctx.Done():
		return PassResult{}, fmt.Errorf("passdb pam: waiting for a worker: %w", ctx.Err())
	}
	done := make(chan pamOutcome, 1)
	go func() {
		defer func() { <-p.workers }()
		done <- pamLogin(service, req.User, password, req.RemoteIP, p.args.setcred, p.args.session)
	}()
	var out pamOutcome
	select {
	case out = <-done:
	case <-ctx.Done():
		return PassResult{}, fmt.Errorf("passdb pam: %w", ctx.Err())
	}
	return p.result(req, out)
}

// result maps PAM's status as Dovecot's passdb-pam.c does, except that
// statuses saying the back end could not answer are errors (a temporary
// failure), not a wrong password.
func (p *libPAMPassDB) result(req Request, out pamOutcome) (PassResult, error) {
	where := pamSteps[out.step]
	detail := where + " failed: " + out.err
	if out.msg != "" && p.args.failureShowMsg {
		detail += " (" + out.msg + ")"
	}
	switch out.status {
	case C.PAM_SUCCESS:
		var f Fields
		if out.user != "" {
			f.Set("user", out.user)
		}
		return PassResult{Status: PassOK, Fields: f}, nil
	case C.PAM_USER_UNKNOWN:
		return PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	case C.PAM_NEW_AUTHTOK_REQD, C.PAM_ACCT_EXPIRED, C.PAM_AUTHTOK_EXPIRED:
		return PassResult{Status: PassMismatch, Reason: "password or account expired: " + detail}, nil
	case C.PAM_AUTHINFO_UNAVAIL, C.PAM_SYSTEM_ERR, C.PAM_BUF_ERR, C.PAM_ABORT, C.PAM_CONV_ERR:
		return PassResult{}, fmt.Errorf("passdb pam(%s,%s): %s", logUser(req.User), req.RemoteIP, detail)
	}
	if out.step == 0 {
		return PassResult{}, fmt.Errorf("passdb pam(%s,%s): %s", logUser(req.User), req.RemoteIP, detail)
	}
	return PassResult{Status: PassMismatch, Reason: detail}, nil
}

// pamLogin calls pc_login with C copies of the strings, wiping the
// password copy afterwards.
func pamLogin(service, user, password, rhost string, setcred, session bool) pamOutcome {
	cService, cUser, cRhost := C.CString(service), C.CString(user), C.CString(rhost)
	cPass := C.CString(password)
	defer func() {
		C.memset(unsafe.Pointer(cPass), 0, C.size_t(len(password)))
		C.free(unsafe.Pointer(cPass))
		C.free(unsafe.Pointer(cService))
		C.free(unsafe.Pointer(cUser))
		C.free(unsafe.Pointer(cRhost))
	}()
	d := (*C.struct_pc_data)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_pc_data{}))))
	defer C.free(unsafe.Pointer(d))
	d.user, d.pass = cUser, cPass
	var errBuf, userBuf [256]C.char
	var step C.int
	st := C.pc_login(cService, d, cRhost, cBool(setcred), cBool(session), &step,
		&errBuf[0], C.size_t(len(errBuf)), &userBuf[0], C.size_t(len(userBuf)))
	return pamOutcome{
		status: int(st), step: int(step),
		err:  C.GoString(&errBuf[0]),
		msg:  C.GoString(&d.msg[0]),
		user: C.GoString(&userBuf[0]),
	}
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
