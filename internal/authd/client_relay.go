package authd

import (
	"context"
	"slices"
	"strings"
	"time"

	"postcote/internal/sasl"
)

// relayMechanisms are the mechanisms the client relays to the auth
// server besides PLAIN and LOGIN: the ones whose security flags package
// sasl knows, so smtpd_sasl_security_options judge them as Postfix does.
var relayMechanisms = []string{"SCRAM-SHA-1", "SCRAM-SHA-256"}

// mechanismListTimeout bounds the wait for the server's MECH lines when
// a protocol server asks which mechanisms to advertise.
const mechanismListTimeout = 5 * time.Second

// SASLMechanisms returns the mechanisms to advertise: those of PLAIN,
// LOGIN, SCRAM-SHA-1 and SCRAM-SHA-256 the auth server offers, as
// Postfix's smtpd advertises its Dovecot server's MECH list. When the
// server cannot be reached it returns PLAIN and LOGIN, which
// CheckPassword maps onto whatever the server offers once it is back.
func (c *Client) SASLMechanisms() []string {
	ctx, cancel := context.WithTimeout(context.Background(), mechanismListTimeout)
	defer cancel()
	mechs, err := c.Mechanisms(ctx)
	if err != nil {
		return []string{"PLAIN", "LOGIN"}
	}
	var out []string
	for _, m := range mechs {
		name := strings.ToUpper(m.Name)
		if name == "PLAIN" || name == "LOGIN" || slices.Contains(relayMechanisms, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return []string{"PLAIN", "LOGIN"}
	}
	return out
}

// StartMechanism implements sasl.MechanismStarter: the exchange of mech
// is relayed to the auth server step by step (AUTH, CONT, OK/FAIL), the
// protocol server passing challenges and responses through unchanged.
// It returns nil for a mechanism not relayed.
func (c *Client) StartMechanism(mech string, base sasl.Request) sasl.Server {
	mech = strings.ToUpper(mech)
	if !slices.Contains(relayMechanisms, mech) {
		return nil
	}
	return &relayServer{c: c, mech: mech, req: base}
}

// relayServer runs Client.Authenticate in a goroutine whose step function
// hands each challenge to Next and waits for the client's response.
type relayServer struct {
	c     *Client
	mech  string
	req   sasl.Request
	user  string
	start bool
	chals chan []byte // challenges from the auth server
	resps chan []byte // the protocol client's responses
	done  chan struct{}
	err   error
	stop  context.CancelFunc
}

func (r *relayServer) User() string { return r.user }

// Next implements sasl.Server.
func (r *relayServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	if !r.start {
		r.start = true
		r.chals, r.resps, r.done = make(chan []byte), make(chan []byte), make(chan struct{})
		// The exchange outlives this call (one Next per client line)
		// and is bounded by the client's timeout, as Authenticate
		// bounds it, so an exchange the protocol client abandons
		// ("*", a dropped connection) ends by itself.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.c.opts.Timeout)
		r.stop = cancel
		go func() {
			defer close(r.done)
			r.user, r.err = r.c.Authenticate(actx, r.mech, r.req, resp, func(chal []byte) ([]byte, error) {
				select {
				case r.chals <- chal:
				case <-actx.Done():
					return nil, actx.Err()
				}
				select {
				case out := <-r.resps:
					return out, nil
				case <-actx.Done():
					return nil, actx.Err()
				}
			})
		}()
	} else {
		select {
		case r.resps <- resp:
		case <-r.done:
		case <-ctx.Done():
			r.stop()
			return nil, true, ctx.Err()
		}
	}
	select {
	case chal := <-r.chals:
		return chal, false, nil
	case <-r.done:
		r.stop()
		return nil, true, r.err
	case <-ctx.Done():
		r.stop()
		<-r.done
		return nil, true, ctx.Err()
	}
}
