package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// fakeDF puts a df first on the test server's PATH that reports free KiB
// read from a file the test writes, in POSIX format.
func fakeDF(t *testing.T, ts *testSetup) (setFreeKiB func(int64)) {
	t.Helper()
	bin := t.TempDir()
	state := filepath.Join(bin, "free")
	script := "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\necho \"/dev/fake 20480 0 $(cat " + state + ") 1% /\"\n"
	if err := os.WriteFile(filepath.Join(bin, "df"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ts.srv.env = append(ts.srv.env, "PATH="+bin+":"+os.Getenv("PATH"))
	return func(kib int64) {
		if err := os.WriteFile(state, []byte(fmt.Sprint(kib)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUploadRefusesWhenTheFileSystemIsTooSmall(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	setFree := fakeDF(t, ts)
	c := dialTest(t, ts.opts)
	src, _ := randomFile(t, 3<<20)
	dir := t.TempDir()
	dst := filepath.Join(dir, "k3s")

	setFree(2 << 10) // 2 MiB
	if _, err := c.Run(context.Background(), "true", RunOptions{Sudo: true}); err != nil {
		t.Fatal(err) // finds out how to become root, once
	}
	before := len(ts.srv.ran())
	_, err := c.Upload(context.Background(), src, dst, UploadOptions{Mode: 0o755})
	var ns *NoSpaceError
	if !errors.As(err, &ns) {
		t.Fatalf("err = %v, want a NoSpaceError", err)
	}
	if ns.Host != "127.0.0.1" || ns.Path != dir || ns.Free != 2<<20 || ns.Needed != 3<<20+SpaceMargin(3<<20) {
		t.Errorf("%+v", ns)
	}
	for _, want := range []string{"127.0.0.1", dir, "2.0 MiB free", "4.0 MiB needed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if h := HintOf(err); !strings.Contains(h, "free at least") || !strings.Contains(h, dir) {
		t.Errorf("hint %q", h)
	}
	if n := len(ts.srv.ran()) - before; n != 1 {
		t.Errorf("refusing took %d commands, want the one check", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	// With room, the same upload goes through.
	setFree(5 << 10)
	if _, err := c.Upload(context.Background(), src, dst, UploadOptions{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "k3s" {
		t.Errorf("directory holds %v, want only k3s", entries)
	}
}

func TestUploadWritesBesideTheTarget(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	src, _ := randomFile(t, 10<<20)
	dir := t.TempDir()
	dst := filepath.Join(dir, "k3s")
	var seen []string
	_, err := c.Upload(context.Background(), src, dst, UploadOptions{Progress: func(done, total int64) {
		if done > 0 && seen == nil {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				seen = append(seen, e.Name())
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], ".k3sctl-") || !strings.HasSuffix(seen[0], "-k3s.tmp") {
		t.Errorf("during the upload the directory held %v, want one .k3sctl-*-k3s.tmp", seen)
	}
}

func TestNoSpaceOnlyForSFTPFailure(t *testing.T) {
	if !isSFTPFailure(fmt.Errorf("write: %w", &sftp.StatusError{Code: uint32(sftp.ErrSSHFxFailure)})) {
		t.Error("SSH_FX_FAILURE not recognised")
	}
	if isSFTPFailure(&sftp.StatusError{Code: uint32(sftp.ErrSSHFxPermissionDenied)}) || isSFTPFailure(errors.New("Failure")) {
		t.Error("other errors taken for a failure status")
	}
}
