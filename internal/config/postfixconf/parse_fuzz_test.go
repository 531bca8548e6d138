package postfixconf

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
}

// FuzzParseMain parses arbitrary main.cf text and exercises expansion,
// typed accessors and Check: no panic, no hang.
func FuzzParseMain(f *testing.F) {
	addSeeds(f, "testdata/*/main.cf")
	addSeeds(f, "testdata/*/*/main.cf")
	f.Add([]byte("a = $b$b$b\nb = ${c?$c$c}\nc = ${a:x}\n"))
	f.Add([]byte("a = ${b?{x}:{y}} $(c) ${{$x} == {y}?z}\n x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMainBytes("main.cf", data, WithHostname("fuzz.example"), WithRoot(t.TempDir()))
		if err != nil {
			return
		}
		for _, n := range m.Names() {
			m.Get(n)
			m.Bool(n)
			m.Int(n)
			m.Size(n)
			m.Duration(n)
			m.List(n)
			m.Tables(n)
		}
		m.Check()
	})
}

// FuzzParseMaster parses arbitrary master.cf text and checks it.
func FuzzParseMaster(f *testing.F) {
	addSeeds(f, "testdata/*master.cf")
	addSeeds(f, "testdata/*/*master.cf")
	f.Add([]byte("x inet n - - - - smtpd -o { a = { b } }\n  -o c=$d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMasterBytes("master.cf", data)
		if err != nil {
			return
		}
		c := &Config{Main: NewMain(WithHostname("fuzz.example")), HasMain: true, Master: ms, HasMaster: true}
		c.Check()
	})
}
