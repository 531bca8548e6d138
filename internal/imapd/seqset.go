package imapd

import (
	"sort"
	"strconv"
	"strings"
)

// seqRange is one element of a sequence set; 0 stands for "*".
type seqRange struct{ lo, hi uint32 }

// seqSet is a sequence-set of RFC 3501 9 ("1:4,7,*:9").
type seqSet []seqRange

// maxSeqSetRanges bounds the number of ranges one set may hold.
const maxSeqSetRanges = 10000

// parseSeqSet parses a sequence set from its atom form.
func parseSeqSet(s string) (seqSet, error) {
	if s == "" {
		return nil, badSyntax("empty sequence set")
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxSeqSetRanges {
		return nil, badSyntax("sequence set too long")
	}
	set := make(seqSet, 0, len(parts))
	for _, part := range parts {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseSeqNumber(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parseSeqNumber(hi); err != nil {
				return nil, err
			}
		}
		set = append(set, seqRange{a, b})
	}
	return set, nil
}

func parseSeqNumber(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	if s == "" || s[0] == '0' {
		return 0, badSyntax("invalid sequence number %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, badSyntax("invalid sequence number %q", s)
	}
	return uint32(n), nil
}

// resolve returns the ranges with "*" replaced by max and each range
// ordered low to high (RFC 3501 9: "4:2" is "2:4").
func (set seqSet) resolve(max uint32) []seqRange {
	out := make([]seqRange, len(set))
	for i, r := range set {
		if r.lo == 0 {
			r.lo = max
		}
		if r.hi == 0 {
			r.hi = max
		}
		if r.lo > r.hi {
			r.lo, r.hi = r.hi, r.lo
		}
		out[i] = r
	}
	return out
}

// formatUIDSet writes ascending UIDs compactly ("1:3,7"), as COPYUID and
// APPENDUID use (RFC 4315 3). The order of uids is kept.
func formatUIDSet(uids []uint32) string {
	var sb strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			sb.WriteByte(':')
			sb.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return sb.String()
}

// sortUint32 sorts in place and removes duplicates.
func sortUint32(v []uint32) []uint32 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	out := v[:0]
	for i, x := range v {
		if i == 0 || x != v[i-1] {
			out = append(out, x)
		}
	}
	return out
}
