package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// module is the import path the project's programs are under (cmd/NAME).
const module = "github.com/loa-project/loa"

// built caches the programs this test process built, by name and go build flags: tests that
// run the real loa, loa-hub and loa-agent pay for a link once, not once per test.
var built struct {
	mu   sync.Mutex
	dir  string                // made on first use, removed by Main
	bins map[string]*buildOnce // "flags|name" -> its build
}

type buildOnce struct {
	once sync.Once
	path string
	err  error
}

// Binary is the path of the project's program name (loa, loa-hub or loa-agent: a folder of
// cmd/) built with the go build flags given (e.g. -race), once per test process. A package
// that uses it calls Main from its TestMain so the binaries are removed at the end.
func Binary(t testing.TB, name string, flags ...string) string {
	t.Helper()
	if name == "" || strings.ContainsAny(name, `/\`) {
		t.Fatalf("testkit.Binary: %q is not a folder of cmd/", name)
	}
	key := strings.Join(flags, " ") + "|" + name
	built.mu.Lock()
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "loa-test-bin-")
		if err != nil {
			built.mu.Unlock()
			t.Fatalf("testkit.Binary: no directory for the programs: %v", err)
		}
		built.dir, built.bins = dir, map[string]*buildOnce{}
	}
	b := built.bins[key]
	if b == nil {
		// One folder per build, as the same program built with other flags is another file.
		b = &buildOnce{path: filepath.Join(built.dir, strconv.Itoa(len(built.bins)), name)}
		built.bins[key] = b
	}
	built.mu.Unlock()
	b.once.Do(func() {
		args := append(append([]string{"build"}, flags...), "-o", b.path, module+"/cmd/"+name)
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Main runs the package's tests (call it as TestMain's body) and then removes the programs
// Binary built.
func Main(m interface{ Run() int }) {
	code := m.Run()
	built.mu.Lock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	built.mu.Unlock()
	os.Exit(code)
}
