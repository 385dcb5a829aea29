package node

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hashFacts runs the facts' hashing of bin with stamp locally and returns
// the sha256 it reports, and whether it hashed the file (the fake
// sha256sum leaves a mark).
func hashFacts(t *testing.T, dir, bin, stamp string) (string, bool) {
	t.Helper()
	mark := filepath.Join(dir, "hashed")
	_ = os.Remove(mark)
	fake := filepath.Join(dir, "bin")
	if err := os.MkdirAll(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	real, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("no sha256sum")
	}
	script := "#!/bin/sh\ntouch " + mark + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(fake, "sha256sum"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	prelude := `p() { printf '%s\t%s\n' "$1" "$2"; }
h() { if [ -f "$2" ]; then s=$(sha256sum < "$2") && p "$1" "${s%% *}" && p "$1.stat" "$(stat -c '%s %a' -- "$2")"; fi; }
`
	cmd := exec.Command("/bin/sh", "-c", prelude+binaryHashScript("k3ssha", bin, stamp))
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sum := ""
	stat := false
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, "\t")
		switch k {
		case "k3ssha":
			sum = v
		case "k3ssha.stat":
			stat = v != ""
		}
	}
	if sum != "" && !stat {
		t.Errorf("no size and mode beside the sha256: %s", out)
	}
	_, err = os.Stat(mark)
	return sum, err == nil
}

func TestBinaryStampStandsForTheHashUntilTheFileChanges(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "k3s")
	stamp := filepath.Join(dir, "state", "k3sctl-binary.stamp")
	body := []byte("\x7fELF k3s")
	if err := os.WriteFile(bin, body, 0o755); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(body)
	want := hex.EncodeToString(h[:])

	// No stamp: hashed.
	if sum, hashed := hashFacts(t, dir, bin, stamp); sum != want || !hashed {
		t.Fatalf("without a stamp: %q hashed=%v", sum, hashed)
	}
	// Stamped: taken from the stamp, not hashed.
	if out, err := exec.Command("/bin/sh", "-c", stampBinaryCommand(bin, stamp, want)).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if sum, hashed := hashFacts(t, dir, bin, stamp); sum != want || hashed {
		t.Fatalf("with a stamp: %q hashed=%v", sum, hashed)
	}
	// Changed in place (same size): the change time moves on, so hashed
	// again. The test waits for the seconds the stamp records to change.
	time.Sleep(1100 * time.Millisecond)
	other := []byte("\x7fELF k3z")
	if err := os.WriteFile(bin, other, 0o755); err != nil {
		t.Fatal(err)
	}
	h = sha256.Sum256(other)
	if sum, hashed := hashFacts(t, dir, bin, stamp); sum != hex.EncodeToString(h[:]) || !hashed {
		t.Fatalf("after a change: %q hashed=%v", sum, hashed)
	}
	// Replaced by another file: a new inode, hashed again.
	if out, err := exec.Command("/bin/sh", "-c", stampBinaryCommand(bin, stamp, hex.EncodeToString(h[:]))).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	repl := filepath.Join(dir, "k3s.new")
	if err := os.WriteFile(repl, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, bin); err != nil {
		t.Fatal(err)
	}
	if sum, hashed := hashFacts(t, dir, bin, stamp); sum != want || !hashed {
		t.Fatalf("after a replacement: %q hashed=%v", sum, hashed)
	}
	// No binary: nothing reported, whatever the stamp says.
	os.Remove(bin)
	if sum, _ := hashFacts(t, dir, bin, stamp); sum != "" {
		t.Fatalf("without a binary: %q", sum)
	}
}
