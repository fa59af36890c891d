package memguest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/guest/memguest"
)

// The conformance suite must catch real bugs. Each mutant below is an
// executor with one bug that a transport could plausibly have; the test
// runs the suite case that should catch it in a child process and checks
// that it fails. (Skipping validation and ignoring Close are no longer
// driver bugs: the *guest.Executor does both before any driver is called,
// which TestExecutor* in package guest proves.)

const mutantEnv = "MEMGUEST_SUITE_MUTANT"

// wrapped overrides parts of a memguest driver.
type wrapped struct {
	*memguest.Driver
	run    func(ctx context.Context, cmd guest.Command) (guest.Result, error)
	upload func(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error
}

func (w *wrapped) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	if w.run != nil {
		return w.run(ctx, cmd)
	}
	return w.Driver.Run(ctx, cmd)
}

func (w *wrapped) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	if w.upload != nil {
		return w.upload(ctx, path, r, opts)
	}
	return w.Driver.Upload(ctx, path, r, opts)
}

type mutant struct {
	name string
	// catches are the suite cases that must fail.
	catches []string
	// handler replaces runLocally, or wrap changes the executor.
	handler memguest.Handler
	wrap    func(ex *memguest.Driver) guest.Driver
}

func mutants() []mutant {
	return []mutant{
		{name: "env ignored", catches: []string{"Env"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				cmd.Env = nil
				return runLocally(ctx, cmd)
			}},
		{name: "dir ignored", catches: []string{"Dir"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				cmd.Dir = ""
				return runLocally(ctx, cmd)
			}},
		{name: "cd failure ignored", catches: []string{"DirMissingDoesNotRun"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				if _, err := os.Stat(cmd.Dir); err != nil {
					cmd.Dir = ""
				}
				return runLocally(ctx, cmd)
			}},
		{name: "naive quoting", catches: []string{"ArgsEcho", "ArgsVerbatim"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				if len(cmd.Args) > 0 {
					cmd = guest.Command{Script: strings.Join(cmd.Args, " "), Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr}
				}
				return runLocally(ctx, cmd)
			}},
		{name: "stdin dropped", catches: []string{"Stdin", "LargeStdinThroughCat"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				cmd.Stdin = nil
				return runLocally(ctx, cmd)
			}},
		{name: "stdin left open", catches: []string{"NoStdinDoesNotHang"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				if cmd.Stdin == nil {
					pr, pw := io.Pipe()
					defer pw.Close()
					cmd.Stdin = pr
				}
				return runLocally(ctx, cmd)
			}},
		{name: "output buffered until exit", catches: []string{"StreamingBeforeExit"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				var out, errb bytes.Buffer
				w1, w2 := cmd.Stdout, cmd.Stderr
				cmd.Stdout, cmd.Stderr = &out, &errb
				res, err := runLocally(ctx, cmd)
				_, _ = w1.Write(out.Bytes())
				_, _ = w2.Write(errb.Bytes())
				return res, err
			}},
		{name: "streams merged", catches: []string{"StdoutStderrSeparated", "ExitCode"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				cmd.Stderr = cmd.Stdout
				return runLocally(ctx, cmd)
			}},
		{name: "exit code lost", catches: []string{"ExitCode", "NonexistentProgram"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				res, err := runLocally(ctx, cmd)
				res.ExitCode = 0
				return res, err
			}},
		{name: "exit code off by one", catches: []string{"ExitCode"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				res, err := runLocally(ctx, cmd)
				if res.ExitCode == 3 {
					res.ExitCode = 1
				}
				return res, err
			}},
		{name: "arguments in errors", catches: []string{"ErrorsHideArguments"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				return &wrapped{Driver: ex, run: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
					res, err := ex.Run(ctx, cmd)
					if err != nil {
						err = fmt.Errorf("running %q %s: %w", cmd.Args, cmd.Script, err)
					}
					return res, err
				}}
			}},
		{name: "cancellation ignored", catches: []string{"CancelMidCommand"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				return &wrapped{Driver: ex, run: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
					// Long enough to overrun CancelGrace, short enough
					// not to keep the test waiting.
					cmd.Script = strings.Replace(cmd.Script, "sleep 30", "sleep 4", 1)
					return ex.Run(context.WithoutCancel(ctx), cmd)
				}}
			}},
		{name: "remote process not killed", catches: []string{"CancelStopsRemoteCommand"},
			handler: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
				if cmd.Script != "" {
					cmd.Script = "sh -c " + guest.ShellQuote(cmd.Script) // a child the kill misses
				}
				return runLocally(ctx, cmd)
			}},
		{name: "upload not atomic", catches: []string{"UploadOverwriteAtomic", "UploadCanceledMidway", "UploadReaderFails"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				return &wrapped{Driver: ex, upload: func(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
					f, err := os.Create(path)
					if err != nil {
						return err
					}
					defer f.Close()
					if _, err := io.Copy(f, r); err != nil {
						return err
					}
					return f.Chmod(opts.Mode.Perm() | 0o600)
				}}
			}},
		{name: "upload mode ignored", catches: []string{"Upload"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				return &wrapped{Driver: ex, upload: func(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
					opts.Mode = 0o644
					return ex.Upload(ctx, path, r, opts)
				}}
			}},
		{name: "upload ignores context", catches: []string{"UploadCanceledMidway"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				return &wrapped{Driver: ex, upload: func(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
					return ex.Upload(context.WithoutCancel(ctx), path, r, opts)
				}}
			}},
		{name: "shared output buffer", catches: []string{"ConcurrentRuns"},
			wrap: func(ex *memguest.Driver) guest.Driver {
				var mu sync.Mutex
				var last []byte
				return &wrapped{Driver: ex, run: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
					res, err := ex.Run(ctx, cmd)
					mu.Lock()
					defer mu.Unlock()
					if len(cmd.Args) > 0 && cmd.Args[0] == "printf" {
						last = res.Stdout
					} else if last != nil {
						res.Stdout = last
					}
					return res, err
				}}
			}},
	}
}

// TestMutantChild is the child process side: it runs one suite case
// against one mutant. It does nothing in a normal test run.
func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("only run as a child of TestSuiteCatchesMutants")
	}
	for _, m := range mutants() {
		if m.name != name {
			continue
		}
		h := localHarness(runLocally)
		if m.handler != nil {
			h = localHarness(m.handler)
		}
		h.Patience = mutantPatience
		if m.wrap != nil {
			h.New = func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
				d := memguest.NewDriver(guest.Linux, &memguest.Options{Default: runLocally, Upload: writeLocally})
				ex := guest.New(m.wrap(d), opts)
				t.Cleanup(func() { _ = ex.Close() })
				return ex, t.TempDir()
			}
		}
		guesttest.Run(t, h)
		return
	}
	t.Fatalf("no mutant %q", name)
}

// mutantPatience is the suite's Harness.Patience in the mutant children:
// the commands run on this machine and answer within milliseconds, so the
// cases that wait for a broken executor give up after 2 s, not 10 s.
const mutantPatience = 2 * time.Second

// mutantsAtOnce bounds the child processes running at the same time. They
// mostly wait on timers, so more of them than -test.parallel (GOMAXPROCS)
// allows run at once.
const mutantsAtOnce = 8

func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child test process per mutant")
	}
	needShell(t, "/bin/sh")
	t.Parallel()
	type child struct {
		mutant, suiteCase string
		out               []byte
		err               error
		done              chan struct{}
	}
	var children []*child
	for _, m := range mutants() {
		for _, c := range m.catches {
			children = append(children, &child{mutant: m.name, suiteCase: c, done: make(chan struct{})})
		}
	}
	sem := make(chan struct{}, mutantsAtOnce)
	for _, ch := range children {
		go func() {
			defer close(ch.done)
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutantChild$/^"+ch.suiteCase+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+ch.mutant)
			ch.out, ch.err = cmd.CombinedOutput()
		}()
	}
	for _, ch := range children {
		t.Run(ch.mutant+"/"+ch.suiteCase, func(t *testing.T) {
			<-ch.done
			var ee *exec.ExitError
			if !errors.As(ch.err, &ee) {
				t.Fatalf("child: %v\n%s", ch.err, ch.out)
			}
			if !strings.Contains(string(ch.out), "--- FAIL: TestMutantChild/"+ch.suiteCase+" ") {
				t.Fatalf("the suite case %s did not catch the mutant %q:\n%s", ch.suiteCase, ch.mutant, ch.out)
			}
		})
	}
}
