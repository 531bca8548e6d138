package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// point is one line of the report.
type point struct {
	driver, scheme string
	clients        int
}

// report gathers every round's results and prints one line per point.
type report struct {
	o       options
	kinds   []kind
	header  []string
	results map[point]map[string][]Result // point → kind key → one per round
	failed  int
	notes   []string
}

func newReport(o options, kinds []kind) *report {
	return &report{o: o, kinds: kinds, header: headerLines(o), results: map[point]map[string][]Result{}}
}

func (r *report) add(p point, kind string, res Result) {
	if r.results[p] == nil {
		r.results[p] = map[string][]Result{}
	}
	r.results[p][kind] = append(r.results[p][kind], res)
	r.failed += res.Failed
	for _, e := range res.Errors {
		r.notes = append(r.notes, fmt.Sprintf("%s %s %d clients, %s: %s", p.driver, p.scheme, p.clients, kind, e))
	}
}

// median of xs: the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianDur(rs []Result, f func(Result) time.Duration) time.Duration {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = float64(f(r))
	}
	return time.Duration(median(xs))
}

func medianRate(rs []Result) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = r.Rate()
	}
	return median(xs)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// write prints the header and the table; with two kinds, the last column
// is the ratio of the medians, postcote ÷ Dovecot, followed by the lowest
// and highest per-round ratio when there was more than one round.
func (r *report) write(w io.Writer) {
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cols := []string{"driver", "scheme", "clients"}
	for _, k := range r.kinds {
		cols = append(cols, k.label+" logins/s", "p50", "p99", "failed")
	}
	if len(r.kinds) == 2 {
		cols = append(cols, "ratio "+r.kinds[0].key+"/"+r.kinds[1].key)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, d := range r.o.drivers {
		for _, s := range r.o.schemes {
			for _, c := range r.o.clients {
				p := point{d.key, s.Key, c}
				byKind, ok := r.results[p]
				if !ok {
					continue
				}
				row := []string{d.label, s.Label, fmt.Sprint(c)}
				for _, k := range r.kinds {
					rs := byKind[k.key]
					if len(rs) == 0 {
						row = append(row, "-", "-", "-", "-")
						continue
					}
					failed := 0
					for _, x := range rs {
						failed += x.Failed
					}
					row = append(row, fmt.Sprintf("%.1f", medianRate(rs)),
						ms(medianDur(rs, func(x Result) time.Duration { return x.P50 })),
						ms(medianDur(rs, func(x Result) time.Duration { return x.P99 })),
						fmt.Sprint(failed))
				}
				if len(r.kinds) == 2 {
					row = append(row, ratioCell(byKind[r.kinds[0].key], byKind[r.kinds[1].key]))
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
		}
	}
	tw.Flush()
	if len(r.notes) > 0 {
		fmt.Fprintln(w, "\nfailed logins:")
		for _, n := range r.notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
}

// ratioCell is median(a)/median(b), and the per-round range.
func ratioCell(a, b []Result) string {
	ma, mb := medianRate(a), medianRate(b)
	if len(a) == 0 || len(b) == 0 || mb == 0 {
		return "-"
	}
	cell := fmt.Sprintf("%.2f×", ma/mb)
	n := min(len(a), len(b))
	if n > 1 {
		var ratios []float64
		for i := 0; i < n; i++ {
			if b[i].Rate() > 0 {
				ratios = append(ratios, a[i].Rate()/b[i].Rate())
			}
		}
		if len(ratios) > 0 {
			cell += fmt.Sprintf(" (%.2f–%.2f)", slices.Min(ratios), slices.Max(ratios))
		}
	}
	return cell
}
