package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

const (
	uploadSize = 100 << 20
	rounds     = 3
	latencyMS  = 40
)

// BenchmarkUpload prints one table: MB/s of scp and of k3sctl per path and
// their ratio. Each figure is the median of a few rounds that alternate
// between the two tools, so that a noisy moment hurts both alike. Both
// timings include connecting and logging in.
func BenchmarkUpload(b *testing.B) {
	if _, err := exec.LookPath("scp"); err != nil {
		b.Skip("scp not installed")
	}
	w := world.New(b)
	h := w.Start(b, "bench")[0]

	src := filepath.Join(b.TempDir(), "payload")
	writeRandomFile(b, src, uploadSize)

	proxy := startLatencyProxy(b, net.JoinHostPort(h.IP, "22"), latencyMS)
	proxyHost, proxyPort, _ := net.SplitHostPort(proxy)
	port, _ := strconv.Atoi(proxyPort)

	paths := []struct {
		name string
		host string
		port int
	}{
		{"direct", h.IP, 22},
		{fmt.Sprintf("+%d ms latency (toxiproxy)", latencyMS), proxyHost, port},
	}
	type row struct {
		name           string
		scp, k3sctl    float64
		scpAll, k3sAll []float64
	}
	var rows []row
	for range b.N {
		rows = rows[:0]
		for _, p := range paths {
			r := row{name: p.name}
			for i := 0; i < rounds; i++ {
				h.Exec(b, "rm -f /home/pi/bench-scp.bin /home/pi/bench-k3sctl.bin")
				r.scpAll = append(r.scpAll, mbps(timeIt(b, func() error { return runSCP(w.Key, p.host, p.port, src, "/home/pi/bench-scp.bin") })))
				r.k3sAll = append(r.k3sAll, mbps(timeIt(b, func() error {
					return uploadK3sctl(b, w.Key, p.host, p.port, src, "/home/pi/bench-k3sctl.bin")
				})))
			}
			r.scp, r.k3sctl = median(r.scpAll), median(r.k3sAll)
			rows = append(rows, r)
		}
	}
	b.StopTimer()

	fmt.Printf("\nupload of %d MB to %s (median of %d rounds, connect included)\n", uploadSize>>20, h.IP, rounds)
	fmt.Printf("%-28s %12s %12s %14s\n", "path", "scp MB/s", "k3sctl MB/s", "k3sctl/scp")
	for _, r := range rows {
		fmt.Printf("%-28s %12.1f %12.1f %14.2f\n", r.name, r.scp, r.k3sctl, r.k3sctl/r.scp)
		b.Logf("%s: scp %v, k3sctl %v MB/s", r.name, fmtAll(r.scpAll), fmtAll(r.k3sAll))
	}
	if len(rows) == 2 {
		b.ReportMetric(rows[0].k3sctl/rows[0].scp, "ratio-direct")
		b.ReportMetric(rows[1].k3sctl/rows[1].scp, "ratio-latency")
	}
}

func fmtAll(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(s, " ")
}

func mbps(d time.Duration) float64 { return float64(uploadSize) / 1e6 / d.Seconds() }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func timeIt(b *testing.B, f func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func writeRandomFile(b *testing.B, p string, size int64) {
	b.Helper()
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
}

// runSCP is OpenSSH scp as a user would run it: default cipher and
// protocol (SFTP since OpenSSH 9.0).
func runSCP(key, host string, port int, src, dst string) error {
	cmd := exec.Command("scp", "-q", "-i", key, "-P", strconv.Itoa(port),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", src, "pi@"+host+":"+dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scp: %v: %s", err, out)
	}
	return nil
}

func uploadK3sctl(b *testing.B, key, host string, port int, src, dst string) error {
	ctx := context.Background()
	c, err := ssh.Dial(ctx, ssh.Options{
		Address:        host,
		Port:           port,
		User:           "pi",
		KeyFiles:       []string{key},
		KnownHostsFile: filepath.Join(b.TempDir(), "known_hosts"),
		ConfigFile:     os.DevNull,
		ConnectRetry:   -1,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Upload(ctx, src, dst, ssh.UploadOptions{Mode: 0o644, Owner: "pi:pi"})
	if err != nil {
		return err
	}
	if res.Skipped {
		return fmt.Errorf("upload to %s was skipped; the benchmark needs a real transfer", dst)
	}
	return nil
}

// startLatencyProxy runs toxiproxy in this process between 127.0.0.1 and
// upstream, with latency added to the data coming back from the host, which
// delays every acknowledgement and window update by that much.
func startLatencyProxy(b *testing.B, upstream string, ms int) string {
	b.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "ssh", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	toxic := fmt.Sprintf(`{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, ms)
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		b.Fatal(err)
	}
	return p.Listen
}
