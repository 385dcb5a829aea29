package bench

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

func BenchmarkScratch(b *testing.B) {
	w := world.New(b)
	h := w.Start(b, "s")[0]
	src := filepath.Join(b.TempDir(), "payload")
	writeRandomFile(b, src, uploadSize)
	t0 := time.Now()
	f, _ := os.Open(src)
	hh := sha256.New()
	io.Copy(hh, f)
	f.Close()
	b.Logf("local sha256: %s", time.Since(t0))
	ctx := context.Background()
	c, err := ssh.Dial(ctx, ssh.Options{Address: h.IP, User: "pi", KeyFiles: []string{w.Key}, KnownHostsFile: filepath.Join(b.TempDir(), "kh"), ConfigFile: os.DevNull})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{1, 2, 4, 8} {
		h.Exec(b, "rm -f /home/pi/x")
		t0 = time.Now()
		_, err := c.Upload(ctx, src, "/home/pi/x", ssh.UploadOptions{Owner: "pi:pi", Concurrency: n})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("upload streams=%d: %s", n, time.Since(t0))
	}
	t0 = time.Now()
	c.Run(ctx, "sha256sum /home/pi/x", ssh.RunOptions{})
	b.Logf("remote sha256sum: %s", time.Since(t0))
	t0 = time.Now()
	c.Run(ctx, "openssl dgst -sha256 /home/pi/x", ssh.RunOptions{})
	b.Logf("remote openssl sha256: %s", time.Since(t0))
	t0 = time.Now()
	c.Run(ctx, "cat /home/pi/x > /dev/null", ssh.RunOptions{})
	b.Logf("remote cat: %s", time.Since(t0))
	t0 = time.Now()
	c.Run(ctx, "cat > /home/pi/y", ssh.RunOptions{Stdin: func() io.Reader { f, _ := os.Open(src); return f }()})
	b.Logf("cat > upload: %s", time.Since(t0))
}
