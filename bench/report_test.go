package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBusyTicks(t *testing.T) {
	stat := "cpu  100 5 40 900 20 3 2 1 7 0\ncpu0 50 2 20 450 10 1 1 0 0 0\nintr 1 2 3\n"
	got, err := BusyTicks(strings.NewReader(stat))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal; idle, iowait and guest (inside user) left out.
	if want := uint64(100 + 5 + 40 + 3 + 2 + 1); got != want {
		t.Errorf("BusyTicks = %d, want %d", got, want)
	}
	if _, err := BusyTicks(strings.NewReader("cpu0 1 2 3 4 5 6 7 8\n")); err == nil {
		t.Error("no aggregate cpu line: want an error")
	}
	if _, err := BusyTicks(strings.NewReader("cpu  1 2 3\n")); err == nil {
		t.Error("short cpu line: want an error")
	}
}

func TestTxBytes(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
br-0a1b2c3d4e5f: 2222 20 0 0 0 0 0 0 73400320 5000 0 0 0 0 0 0
`
	got, err := TxBytes(strings.NewReader(dev), "br-0a1b2c3d4e5f")
	if err != nil {
		t.Fatal(err)
	}
	if got != 73400320 {
		t.Errorf("TxBytes = %d, want 73400320 (the transmit column, not receive)", got)
	}
	if _, err := TxBytes(strings.NewReader(dev), "br-missing"); err == nil {
		t.Error("unknown interface: want an error")
	}
}

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes(" 2, 1+8 ,20")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 8 || got[2] != 20 {
		t.Errorf("ParseSizes = %v, want [2 8 20]", got)
	}
	for _, bad := range []string{"", "x", "2,-1", "500"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q): want an error", bad)
		}
	}
}

func TestPadFileAndChecksum(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "k3s")
	head := []byte("\x7fELF pretend binary")
	if err := os.WriteFile(bin, head, 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := PadFile(bin, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 1<<20 || string(data[:len(head)]) != string(head) {
		t.Fatalf("padded file: %d bytes, starts %q; want 1 MiB starting with the original", len(data), data[:len(head)])
	}
	d := sha256.Sum256(data)
	if sum != hex.EncodeToString(d[:]) {
		t.Errorf("PadFile sum %s is not the sha256 of the padded file", sum)
	}
	if zeros := strings.Count(string(data[len(head):len(head)+4096]), "\x00"); zeros > 100 {
		t.Errorf("padding has %d zero bytes in 4 KiB; want random bytes", zeros)
	}
	// Padding to a smaller size leaves the file alone.
	if again, err := PadFile(bin, 10); err != nil || again != sum {
		t.Errorf("PadFile to a smaller size: %s, %v; want the same sum", again, err)
	}

	sums := filepath.Join(dir, "sha256sum-amd64.txt")
	old := "aaaa  k3s-airgap-images-amd64.tar\nbbbb  k3s\n"
	if err := os.WriteFile(sums, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetChecksum(sums, "k3s", sum); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(sums)
	if want := "aaaa  k3s-airgap-images-amd64.tar\n" + sum + "  k3s\n"; string(got) != want {
		t.Errorf("checksum file:\n%s\nwant:\n%s", got, want)
	}
	if err := SetChecksum(sums, "k3s-arm64", sum); err == nil {
		t.Error("asset without a line: want an error")
	}
}

func TestFastest(t *testing.T) {
	s := []Sample{{Wall: 3 * time.Second, LocalCPU: 1}, {Wall: 2 * time.Second, LocalCPU: 2}, {Wall: 4 * time.Second}}
	got, ok := Fastest(s)
	if !ok || got.Wall != 2*time.Second || got.LocalCPU != 2 {
		t.Errorf("Fastest = %+v, want the 2 s sample with its own CPU figure", got)
	}
	if _, ok := Fastest(nil); ok {
		t.Error("Fastest(nil): want ok=false")
	}
}

func TestMarkdown(t *testing.T) {
	floor := &Case{Name: "floor", Samples: map[int][]Sample{
		2: {{Wall: 4 * time.Second, LocalCPU: time.Second, MachineCPU: 5 * time.Second, TxBytes: 210e6}},
	}}
	apply := &Case{Name: "apply", Samples: map[int][]Sample{
		2: {{Wall: 7 * time.Second}, {Wall: 6 * time.Second, LocalCPU: 3 * time.Second, MachineCPU: 9 * time.Second, TxBytes: 215e6}},
	}}
	tb := &Table{
		Title:     "t",
		Notes:     []string{"a note"},
		Sizes:     []int{2, 8},
		Floor:     floor,
		Cases:     []*Case{floor, apply},
		NoChange:  map[int][]Sample{2: {{Wall: 3 * time.Second}}},
		SSHRound:  map[int][]Sample{2: {{Wall: 1500 * time.Millisecond}}},
		BinaryLen: 70e6,
	}
	md := tb.Markdown()
	for _, want := range []string{
		"| case | 1+2 | 1+8 |",
		"| floor | 4.00 (1.00×) | — |",
		"| apply | 6.00 (1.50×) | — |",
		"3.00 vs 1.50 (2.00×)",
		"| apply | 3.00 / 9.00 | — |",
		"| apply | 215.0 | — |",
		"the binary is 70.0 MB",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestKnownHostsLines(t *testing.T) {
	got := KnownHostsLines("172.28.1.11", "ssh-ed25519 AAAAC3Nz root@n01\n\necdsa-sha2-nistp256 AAAAE2Vj root@n01\n")
	want := "172.28.1.11 ssh-ed25519 AAAAC3Nz\n172.28.1.11 ecdsa-sha2-nistp256 AAAAE2Vj\n"
	if got != want {
		t.Errorf("KnownHostsLines =\n%s\nwant\n%s", got, want)
	}
}

func TestClusterInventory(t *testing.T) {
	// The inventory must name the first host as the only server and the
	// rest as agents of one cluster.
	inv := clusterInventoryIPs("/k", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"})
	for _, want := range []string{"servers: [10.0.0.1]", "agents: [10.0.0.2, 10.0.0.3]", "keyFile: /k", "version: " + benchVersion} {
		if !strings.Contains(inv, want) {
			t.Errorf("inventory lacks %q:\n%s", want, inv)
		}
	}
	if inv := clusterInventoryIPs("/k", []string{"10.0.0.1"}); strings.Contains(inv, "agents") {
		t.Errorf("one host: want no agents line:\n%s", inv)
	}
}
