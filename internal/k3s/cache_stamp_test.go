package k3s

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// A cached binary is hashed once: later runs trust its size and
// modification time, and a change to either has it hashed (and, when the
// content differs, fetched) again.
func TestCacheStampStandsForTheHash(t *testing.T) {
	f := newFakeReleases(t)
	body := binaryBody(100)
	want := f.publish(testVersion, ARM64, "k3s-arm64", body)
	c := &Cache{Dir: t.TempDir()}
	path, _, err := c.Binary(context.Background(), f.release(), v1314, ARM64, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Same size and time, other bytes: the stamp is what is checked, so
	// the file is not read.
	other := bytes.Repeat([]byte("x"), len(body))
	if err := os.WriteFile(path, other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	_, sum, err := c.Binary(context.Background(), f.release(), v1314, ARM64, nil)
	if err != nil || sum != want {
		t.Fatalf("sum %s, %v; want the recorded %s", sum, err, want)
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s-arm64"); n != 1 {
		t.Errorf("downloaded %d times, want 1 (the stamp matched)", n)
	}
	// A new modification time: hashed, found changed, fetched again.
	later := st.ModTime().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Binary(context.Background(), f.release(), v1314, ARM64, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Error("a changed cache entry was used")
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s-arm64"); n != 2 {
		t.Errorf("downloaded %d times, want 2", n)
	}
}
