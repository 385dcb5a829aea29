package kubeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckGoodAndMissing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config")
	if err := os.WriteFile(good, fixture(t, "k3s.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(good); err != nil {
		t.Errorf("good kubeconfig: %v", err)
	}
	if _, err := os.Stat(good + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left behind: %v", err)
	}
	missing := filepath.Join(dir, "new", "deeper", "config")
	if err := Check(missing); err != nil {
		t.Errorf("missing file in a writable directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Error("Check created a directory")
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(empty); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestCheckProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	broken := write("broken", "apiVersion: v1\nclusters: [\n", 0o600)
	notList := write("notlist", "apiVersion: v1\nclusters: foo\n", 0o600)
	readOnly := write("readonly", "apiVersion: v1\nkind: Config\n", 0o400)
	roDir := filepath.Join(dir, "rodir")
	if err := os.Mkdir(roDir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(roDir, 0o700) })
	file := write("file", "", 0o600)

	for _, tc := range []struct {
		name, path, want string
	}{
		{"broken", broken, "kubeconfig " + broken + ": is not a valid kubeconfig: yaml: line 2: did not find expected node content\nhint: repair the file, or move it aside and let k3sctl write a new one"},
		{"not a list", notList, "kubeconfig " + notList + ": is not a valid kubeconfig: line 2: clusters is not a list\nhint: repair the file, or move it aside and let k3sctl write a new one"},
		{"read-only file", readOnly, "kubeconfig " + readOnly + ": is read-only (mode 0400); k3sctl does not replace a read-only kubeconfig\nhint: make it writable (chmod u+w " + readOnly + "), or use another kubeconfig (--kubeconfig or KUBECONFIG)"},
		{"read-only directory", filepath.Join(roDir, "config"), "kubeconfig " + filepath.Join(roDir, "config") + ": directory " + roDir + " is read-only (mode 0500)\nhint: make it writable (chmod u+w " + roDir + "), or use another kubeconfig (--kubeconfig or KUBECONFIG)"},
		{"under a file", filepath.Join(file, "config"), "kubeconfig " + filepath.Join(file, "config") + ": " + file + " is not a directory\nhint: use another kubeconfig (--kubeconfig or KUBECONFIG)"},
		{"a directory", dir, "kubeconfig " + dir + ": is a directory\nhint: give the path of a file (--kubeconfig or KUBECONFIG)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.path)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v", err)
			}
			if err.Error() != tc.want {
				t.Errorf("\n got %s\nwant %s", err, tc.want)
			}
		})
	}
	// A broken file is left as it was.
	if b, _ := os.ReadFile(broken); string(b) != "apiVersion: v1\nclusters: [\n" {
		t.Errorf("broken file changed: %q", b)
	}
}

func TestCheckLockedByAnother(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := acquire(path+".lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = check(path, 50*time.Millisecond)
	if err == nil || !strings.HasPrefix(err.Error(), "kubeconfig "+path+": cannot be locked: locked by another process") ||
		!strings.HasSuffix(err.Error(), "\nhint: wait for the other kubectl or k3sctl to finish") {
		t.Errorf("err = %v", err)
	}
}
