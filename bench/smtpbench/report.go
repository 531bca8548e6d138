package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// parseConcurrency reads the -c list: comma-separated positive integers.
func parseConcurrency(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 10000 {
			return nil, fmt.Errorf("concurrency %q: want a list of numbers from 1 to 10000, like 10,50", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// summary is the median of one target's measures at one concurrency.
type summary struct {
	rounds      int
	accepted    int // in all rounds
	failed      int // in all rounds
	acceptRate  float64
	p50, p99    time.Duration
	deliverRate float64 // 0 when not measured
	notes       []string
}

func summarize(ms []measure) summary {
	s := summary{rounds: len(ms)}
	var acc, del []float64
	var p50, p99 []time.Duration
	for _, m := range ms {
		s.accepted += m.accepted
		s.failed += m.failed
		acc = append(acc, m.acceptRate)
		p50 = append(p50, m.p50)
		p99 = append(p99, m.p99)
		if m.deliverRate > 0 {
			del = append(del, m.deliverRate)
		}
		if m.note != "" {
			s.notes = append(s.notes, m.note)
		}
		s.notes = append(s.notes, m.errors...)
	}
	s.acceptRate = median(acc)
	s.deliverRate = median(del)
	s.p50, s.p99 = median(p50), median(p99)
	return s
}

// median of the values; the lower middle one for an even count, so the
// figure is one that was measured. Zero for none.
func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = append([]T(nil), v...)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[(len(v)-1)/2]
}

// ratio formats a/b, or "n/a" when either was not measured.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func rate(r float64) string {
	if r <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

func millis(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// report is everything the tables need.
type report struct {
	header      []string // lines above the tables
	kinds       []kind
	setup       map[string]string // kind key → how it was set up
	concurrency []int
	results     map[string]map[int][]measure // target key → sessions → one per round
}

// write prints one table per concurrency, then the ratios: postcote's
// accept rate against Postfix's (discard set-up), and its delivered rate
// against Postfix→LMTP→Dovecot's.
func (r *report) write(w io.Writer) {
	for _, l := range r.header {
		fmt.Fprintln(w, l)
	}
	for _, k := range r.kinds {
		if s, ok := r.setup[k.key]; ok {
			fmt.Fprintf(w, "  %-18s %s\n", k.label+":", s)
		}
	}
	for _, c := range r.concurrency {
		fmt.Fprintf(w, "\n%d concurrent sessions\n", c)
		fmt.Fprintf(w, "  %-20s %10s %8s %8s %12s %8s\n", "target", "accept/s", "p50 ms", "p99 ms", "delivered/s", "failed")
		sums := map[string]summary{}
		var notes []string
		for _, t := range r.kinds {
			ms, ok := r.results[t.key][c]
			if !ok {
				continue
			}
			s := summarize(ms)
			sums[t.key] = s
			fmt.Fprintf(w, "  %-20s %10s %8s %8s %12s %8d\n", t.label, rate(s.acceptRate), millis(s.p50), millis(s.p99), rate(s.deliverRate), s.failed)
			for _, n := range s.notes {
				notes = append(notes, t.label+": "+n)
			}
		}
		pc, ok := sums["postcote"]
		accept := func(m measure) float64 { return m.acceptRate }
		if pf, ok2 := sums["postfix"]; ok && ok2 {
			fmt.Fprintf(w, "  ratio accept     postcote / Postfix          %s%s\n", ratio(pc.acceptRate, pf.acceptRate),
				r.spread(c, "postcote", "postfix", accept))
		}
		// Like for like: both discard after the durable queue write.
		if pcd, ok := sums["postcote-discard"]; ok {
			if pf, ok2 := sums["postfix"]; ok2 {
				fmt.Fprintf(w, "  ratio accept     postcote / Postfix, both discarding  %s%s\n", ratio(pcd.acceptRate, pf.acceptRate),
					r.spread(c, "postcote-discard", "postfix", accept))
			}
		}
		if pd, ok2 := sums["postfix+dovecot"]; ok && ok2 {
			fmt.Fprintf(w, "  ratio delivered  postcote / Postfix→Dovecot  %s%s\n", ratio(pc.deliverRate, pd.deliverRate),
				r.spread(c, "postcote", "postfix+dovecot", func(m measure) float64 { return m.deliverRate }))
		}
		for _, n := range notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

// spread gives, with several rounds, the lowest and highest of the
// per-round ratios of postcote to the other kind, runs minutes apart: a
// measure of how noisy the machine was.
func (r *report) spread(c int, mine, other string, figure func(measure) float64) string {
	pc, ot := r.results[mine][c], r.results[other][c]
	var ratios []float64
	for i := 0; i < len(pc) && i < len(ot); i++ {
		if a, b := figure(pc[i]), figure(ot[i]); a > 0 && b > 0 {
			ratios = append(ratios, a/b)
		}
	}
	if len(ratios) < 2 {
		return ""
	}
	sort.Float64s(ratios)
	return fmt.Sprintf("   (per round %.2f× to %.2f×)", ratios[0], ratios[len(ratios)-1])
}
