package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/maillog"
)

const (
	crashDirEnv   = "POSTCOTE_QUEUE_CRASH_DIR"
	crashModeEnv  = "POSTCOTE_QUEUE_CRASH_DELIVER"
	crashMessages = 2000
	crashWriters  = 20
)

// crashOptions are shared by child and parent: small segments and a low
// large-message threshold so that kills land in rotations, compaction and
// large-file writes too.
func crashOptions() Options {
	return Options{
		Logger:         maillog.Discard(),
		Hostname:       "crash.example.net",
		SegmentSize:    256 << 10,
		LargeThreshold: 8 << 10,
	}
}

func crashBody(id ID, i int) string {
	pad := 300
	if i%97 == 0 {
		pad = 12 << 10 // goes to large/
	}
	return fmt.Sprintf("Message-ID: <%s@crash>\r\nSubject: %s\r\n\r\n%s\r\n", id, id, strings.Repeat("y", pad))
}

// TestCrashChild is the child side of TestCrash: it enqueues messages from
// many goroutines and prints "S id" before and "A id" after each Enqueue
// (one write each, so lines never interleave), and, in deliver mode, runs
// the scheduler and prints "D id" for each delivery, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrash")
	}
	q, err := Open(dir, crashOptions())
	if err != nil {
		fmt.Fprintf(os.Stdout, "E %v\n", err)
		os.Exit(3)
	}
	out := func(kind string, id ID) { os.Stdout.Write([]byte(kind + " " + string(id) + "\n")) }
	if os.Getenv(crashModeEnv) != "" {
		// Through the per-destination scheduler, as the server runs it.
		go q.Run(context.Background(), &crashRouter{deliver: func(msg *Message, rcpts []int) []Result {
			out("D", msg.ID)
			var res []Result
			for _, i := range rcpts {
				res = append(res, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok"})
			}
			return res
		}})
	}
	var wg sync.WaitGroup
	per := crashMessages / crashWriters
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				id := q.NewID()
				env := &Envelope{ID: id, Sender: "s@example.org", Recipients: []Recipient{{Address: "r@example.net"}}}
				out("S", id)
				if err := q.Enqueue(context.Background(), env, strings.NewReader(crashBody(id, w*per+i))); err != nil {
					fmt.Fprintf(os.Stdout, "E %v\n", err)
					os.Exit(3)
				}
				out("A", id)
			}
		}()
	}
	wg.Wait()
	// Stay alive until killed, so the kill can also land after the last
	// Enqueue.
	time.Sleep(time.Minute)
}

// crashRouter routes every recipient to one destination per domain.
type crashRouter struct {
	deliver func(msg *Message, rcpts []int) []Result
}

func (r *crashRouter) Route(_ context.Context, rcpt string) (Destination, error) {
	_, domain, _ := strings.Cut(rcpt, "@")
	return Destination{Transport: "smtp", Nexthop: domain}, nil
}

func (r *crashRouter) Limits(string) Limits {
	return Limits{Concurrency: 20, Recipients: 50, Process: 100, Initial: 5, FailedCohorts: 1}
}

func (r *crashRouter) DeliverTo(_ context.Context, _ Destination, msg *Message, rcpts []int) []Result {
	return r.deliver(msg, rcpts)
}

func (r *crashRouter) Deliver(_ context.Context, msg *Message, rcpts []int) []Result {
	return r.deliver(msg, rcpts)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary; skipped with -short")
	}
	rounds := []struct {
		deliver   bool
		killAfter int // acknowledged messages seen before the kill
	}{
		{false, 1 + rand.IntN(300)},
		{false, 300 + rand.IntN(1200)},
		{true, 1 + rand.IntN(600)},
		{true, 600 + rand.IntN(1300)},
		{false, crashMessages}, // after everything was acknowledged
	}
	dir := t.TempDir() // one spool across rounds: recovery of recovered spools too
	totalDup := 0
	for r, round := range rounds {
		started, acked, delivered := runCrashChild(t, dir, round.deliver, round.killAfter)
		if len(acked) == 0 {
			t.Fatalf("round %d: child acknowledged nothing", r)
		}
		// Recover and deliver the rest.
		q, err := Open(dir, crashOptions())
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", r, err)
		}
		var mu sync.Mutex
		bad := 0
		agent := AgentFunc(func(ctx context.Context, msg *Message, rcpts []int) []Result {
			rc, err := msg.Open()
			ok := err == nil
			if ok {
				b, _ := io.ReadAll(rc)
				rc.Close()
				ok = strings.Contains(string(b), "Subject: "+string(msg.ID)+"\r\n")
			}
			mu.Lock()
			delivered[msg.ID]++
			if !ok {
				bad++
			}
			mu.Unlock()
			var res []Result
			for _, i := range rcpts {
				res = append(res, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok"})
			}
			return res
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- q.Run(ctx, agent) }()
		deadline := time.Now().Add(60 * time.Second)
		for len(q.List()) > 0 {
			if time.Now().After(deadline) {
				for _, s := range q.List() {
					t.Logf("left: %+v", s)
				}
				t.Fatalf("round %d: queue did not drain", r)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		q.Close()
		if bad > 0 {
			t.Errorf("round %d: %d deliveries with wrong or unreadable content", r, bad)
		}
		lost, dup, unknown := 0, 0, 0
		for id := range acked {
			switch n := delivered[id]; {
			case n == 0:
				lost++
				if lost <= 5 {
					t.Errorf("round %d: acknowledged message %s was never delivered", r, id)
				}
			case n > 1:
				dup++
			}
		}
		for id := range delivered {
			if !started[id] {
				unknown++
				t.Errorf("round %d: delivered unknown message %s", r, id)
			}
		}
		totalDup += dup
		t.Logf("round %d (deliver=%v): killed after %d acknowledged of %d started; lost %d, duplicates %d, unacknowledged but delivered %d",
			r, round.deliver, len(acked), len(started), lost, dup, len(delivered)-countIn(delivered, acked))
	}
	t.Logf("duplicates over all rounds: %d", totalDup)
}

func countIn(m map[ID]int, set map[ID]bool) int {
	n := 0
	for id := range m {
		if set[id] {
			n++
		}
	}
	return n
}

// runCrashChild starts the child on dir, kills it with SIGKILL once it has
// acknowledged killAfter messages (or finished), and returns what it said.
func runCrashChild(t *testing.T, dir string, deliver bool, killAfter int) (started, acked map[ID]bool, delivered map[ID]int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	if deliver {
		cmd.Env = append(cmd.Env, crashModeEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started, acked, delivered = map[ID]bool{}, map[ID]bool{}, map[ID]int{}
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	timeout := time.AfterFunc(15*time.Second, kill)
	defer timeout.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		kind, id, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch kind {
		case "S":
			started[ID(id)] = true
		case "A":
			acked[ID(id)] = true
			if len(acked) >= killAfter {
				kill()
			}
		case "D":
			delivered[ID(id)]++
		case "E":
			t.Errorf("child error: %s", id)
			kill()
		}
	}
	kill()
	cmd.Wait()
	if len(acked) < killAfter && len(acked) < crashMessages {
		t.Logf("child stopped early after %s acknowledged", strconv.Itoa(len(acked)))
	}
	return started, acked, delivered
}
