package ssh

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A caller that knows the local sum and that the target differs costs the
// host one command (the check after the transfer), into a directory that
// does not exist yet.
func TestUploadWithKnownSumAndDifferingTarget(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	src, sum := randomFile(t, 1<<20+7)
	dst := filepath.Join(t.TempDir(), "new dir", "k3s")
	before := len(ts.srv.ran())
	res, err := c.Upload(context.Background(), src, dst, UploadOptions{Mode: 0o755, SHA256: strings.ToUpper(sum), Differs: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.SHA256 != sum {
		t.Errorf("result %+v, want sent with sha256 %s", res, sum)
	}
	var ran []string
	for _, cmd := range ts.srv.ran()[before:] {
		if strings.Contains(cmd, "sha256()") { // not the sudo detection
			ran = append(ran, cmd)
		}
	}
	if len(ran) != 1 || strings.Contains(ran[0], "echo same") {
		t.Errorf("commands %q, want only the check after the transfer", ran)
	}
	got, _ := os.ReadFile(dst)
	want, _ := os.ReadFile(src)
	if !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}

	// A stated sum the file does not have is caught on the host, and
	// nothing is left in place.
	dst2 := filepath.Join(filepath.Dir(dst), "k3s-2")
	_, err = c.Upload(context.Background(), src, dst2, UploadOptions{SHA256: strings.Repeat("0", 64), Differs: true})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("wrong stated sum: err = %v", err)
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed check: %v", dst2, err)
	}
}
