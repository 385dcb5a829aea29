package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	if p, err := DefaultPath(); err != nil || p != filepath.Join(home, ".kube", "config") {
		t.Errorf("without KUBECONFIG: %q, %v", p, err)
	}
	sep := string(filepath.ListSeparator)
	t.Setenv("KUBECONFIG", sep+"/a/first"+sep+"/b/second")
	if p, err := DefaultPath(); err != nil || p != "/a/first" {
		t.Errorf("with KUBECONFIG: %q, %v, want the first entry", p, err)
	}
}

func TestUpdateCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".kube")
	path := filepath.Join(dir, "config")
	err := Update(path, func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("old = %q for a missing file, want nil", old)
		}
		return Merge(old, fixture(t, "k3s.yaml"), edge1)
	})
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, dir, 0o700|fs.ModeDir)
	assertMode(t, path, 0o600)
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left behind (kubectl would refuse to write): %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only config (no temporary files)", len(entries))
	}
	b, _ := os.ReadFile(path)
	if k := parse(t, b); k.CurrentContext != "edge-1" {
		t.Errorf("current-context = %q", k.CurrentContext)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode() & (fs.ModePerm | fs.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestUpdateModes(t *testing.T) {
	for _, tc := range []struct{ before, after fs.FileMode }{
		{0o644, 0o600}, // too open: tightened
		{0o400, 0o400}, // stricter: kept
		{0o600, 0o600},
	} {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\n"), tc.before); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.before); err != nil {
			t.Fatal(err)
		}
		err := Update(path, func(old []byte) ([]byte, error) { return Merge(old, fixture(t, "k3s.yaml"), edge1) })
		if err != nil {
			t.Fatal(err)
		}
		assertMode(t, path, tc.after)
	}
}

func TestUpdateWritesNothingOnErrorOrNoChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	orig := []byte("apiVersion: v1\nkind: Config\n# mine\n")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Update(path, func([]byte) ([]byte, error) { return []byte("garbage"), boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v, want fn's error", err)
	}
	// A malformed file is refused by Merge and so left alone.
	if err := os.WriteFile(path, []byte("clusters: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, func(b []byte) ([]byte, error) { return Merge(b, fixture(t, "k3s.yaml"), edge1) }); err == nil {
		t.Error("malformed kubeconfig accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "clusters: [\n" {
		t.Errorf("malformed file was rewritten: %q", b)
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, func(b []byte) ([]byte, error) { return b, nil }); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(old) {
		t.Error("unchanged content was written anyway")
	}
}

func TestUpdateKeepsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "kubeconfig")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink("dotfiles/kubeconfig", link); err != nil {
		t.Fatal(err)
	}
	err := Update(link, func(old []byte) ([]byte, error) { return Merge(old, fixture(t, "k3s.yaml"), edge1) })
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("symlink replaced by a file: %v %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(real)
	if !strings.Contains(string(b), "edge-1") {
		t.Errorf("target not updated:\n%s", b)
	}
}

// addContext merges a cluster named name, as a k3sctl run would.
func addContext(t testing.TB, path, name string, k3s []byte) error {
	return Update(path, func(old []byte) ([]byte, error) {
		return Merge(old, k3s, MergeOptions{Name: name, Server: "https://" + name + ".example:6443"})
	})
}

func countContexts(t *testing.T, path string, want int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k := parse(t, b)
	cl, cx, us := names(k)
	if len(cl) != want || len(cx) != want || len(us) != want {
		t.Errorf("%d clusters, %d contexts, %d users; want %d of each (updates were lost)", len(cl), len(cx), len(us), want)
	}
}

func TestUpdateConcurrentGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	k3s := fixture(t, "k3s.yaml")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- addContext(t, path, fmt.Sprintf("c%02d", i), k3s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	countContexts(t, path, n)
}

// TestUpdateConcurrentProcesses runs this test binary several times at
// once, each process adding contexts to one file.
func TestUpdateConcurrentProcesses(t *testing.T) {
	if path := os.Getenv("KUBECONFIG_TEST_CHILD"); path != "" {
		k3s := fixture(t, "k3s.yaml")
		id := os.Getenv("KUBECONFIG_TEST_ID")
		for i := range 5 {
			if err := addContext(t, path, fmt.Sprintf("p%s-%d", id, i), k3s); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	path := filepath.Join(t.TempDir(), "config")
	const procs = 6
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateConcurrentProcesses$")
		cmd.Env = append(os.Environ(), "KUBECONFIG_TEST_CHILD="+path, "KUBECONFIG_TEST_ID="+strconv.Itoa(i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	countContexts(t, path, procs*5)
}

func TestLockWaitsForKubectl(t *testing.T) {
	// kubectl holds its lock by the file's existence alone, briefly.
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := update(path, func([]byte) ([]byte, error) { return []byte("x"), nil }, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), path+".lock") {
		t.Errorf("err = %v, want a timeout naming the lock file", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("wrote while kubectl held the lock")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Remove(path + ".lock")
	}()
	if err := update(path, func([]byte) ([]byte, error) { return []byte("x"), nil }, 5*time.Second); err != nil {
		t.Errorf("after kubectl let go: %v", err)
	}
}

func TestLockTakesOverStaleLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path+".lock", old, old); err != nil {
		t.Fatal(err)
	}
	if err := update(path, func([]byte) ([]byte, error) { return []byte("x"), nil }, 2*time.Second); err != nil {
		t.Fatalf("stale lock from a crashed process blocks: %v", err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Error("stale lock file not cleaned up")
	}
}

func TestLockHeldByLiveProcessIsNotStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	release, err := acquire(path+".lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Even an old lock file is respected while its owner is alive.
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path+".lock", old, old); err != nil {
		t.Fatal(err)
	}
	if err := update(path, func([]byte) ([]byte, error) { return []byte("x"), nil }, 200*time.Millisecond); err == nil {
		t.Error("took a lock that a live process holds")
	}
}
