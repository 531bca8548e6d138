//go:build !linux

package qctl

import (
	"errors"
	"net"
)

// peerUID is not implemented off Linux: requests that change messages
// are refused over the socket there (stop the server to run postsuper).
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials not supported on this system")
}
