package mailstore

import (
	"os"
	"syscall"
)

func statOwner(info os.FileInfo) [2]int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return [2]int{int(st.Uid), int(st.Gid)}
	}
	return [2]int{-1, -1}
}
