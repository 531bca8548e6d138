package doveconf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"postcote/internal/config"
)

// valueError names where the bad value came from and what to write.
func (s *Section) valueError(key, value, format string, args ...any) error {
	pos := s.PosOf(key)
	where := ""
	if pos.IsZero() {
		where = " (default)"
	}
	return &config.PosError{Pos: pos, Key: key, Msg: fmt.Sprintf("bad value %q%s: %s", truncate(value), where, fmt.Sprintf(format, args...))}
}

// Bool returns a boolean setting (yes or no; Dovecot also takes y and
// 1 for yes), with the default applied.
func (s *Section) Bool(key string) (bool, error) {
	v := s.GetDefault(key)
	b, ok := parseBool(v)
	if !ok {
		return false, s.valueError(key, v, "use yes or no")
	}
	return b, nil
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "y", "1":
		return true, true
	case "no":
		return false, true
	}
	return false, false
}

// Int returns an unsigned integer setting, with the default applied.
func (s *Section) Int(key string) (int, error) {
	v := s.GetDefault(key)
	n, ok := parseUint(v)
	if !ok {
		return 0, s.valueError(key, v, "use a non-negative decimal integer")
	}
	return n, nil
}

func parseUint(v string) (int, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
	return int(n), err == nil
}

// Mode returns an octal file mode setting such as unix_listener's
// "mode = 0660".
func (s *Section) Mode(key string) (uint32, error) {
	v := s.GetDefault(key)
	n, ok := parseMode(v)
	if !ok {
		return 0, s.valueError(key, v, "use an octal mode like 0660")
	}
	return n, nil
}

func parseMode(v string) (uint32, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
	return uint32(n), err == nil && n <= 0o7777
}

// Size returns a size setting in bytes: a number with an optional unit
// B, k, M, G or T (powers of 1024, as Dovecot), like "256M".
func (s *Section) Size(key string) (int64, error) {
	v := s.GetDefault(key)
	n, bad := parseSize(v)
	if bad != "" {
		return 0, s.valueError(key, v, "%s", bad)
	}
	return n, nil
}

func parseSize(v string) (int64, string) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, "use a number with an optional unit B, k, M, G or T, like 256M"
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, "number too large"
	}
	unit := strings.ToLower(strings.TrimSpace(v[i:]))
	if len(unit) == 2 && unit[1] == 'b' {
		unit = unit[:1]
	}
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	case "t":
		mult = 1 << 40
	default:
		return 0, fmt.Sprintf("unknown size unit %q; use B, k, M, G or T", v[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, "size too large"
	}
	return n * mult, ""
}

// Duration returns a time setting: a number with an optional unit
// (msecs, secs, mins, hours, days, weeks, also singular and s m h d w
// abbreviations); a bare number is seconds, as in Dovecot.
func (s *Section) Duration(key string) (time.Duration, error) {
	v := s.GetDefault(key)
	d, bad := parseDuration(v)
	if bad != "" {
		return 0, s.valueError(key, v, "%s", bad)
	}
	return d, nil
}

var timeUnits = map[string]time.Duration{
	"": time.Second, "ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

func parseDuration(v string) (time.Duration, string) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, "use a number with a unit, like 30 secs, 2 mins or 1 days"
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, "number too large"
	}
	unit, ok := timeUnits[strings.ToLower(strings.TrimSpace(v[i:]))]
	if !ok {
		return 0, fmt.Sprintf("unknown time unit %q; use msecs, secs, mins, hours, days or weeks", strings.TrimSpace(v[i:]))
	}
	if n > int64(math.MaxInt64/unit) {
		return 0, "time too large"
	}
	return time.Duration(n) * unit, ""
}
