package ssh

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

var hostile = []string{
	"",
	"plain",
	"two words",
	"it's",
	`"double"`,
	"$(touch /tmp/k3sctl-pwned)",
	"`touch /tmp/k3sctl-pwned`",
	"${HOME}",
	"line1\nline2",
	"tab\there",
	"cr\rhere",
	`back\slash\`,
	`'\''`,
	"*",
	"-n",
	"--",
	"~",
	"~root",
	"a=b",
	"!event",
	"; rm -rf /",
	"| cat",
	"&& true",
	"> /dev/null",
	"#comment",
	"日本語 ünïcödé 🚀",
	"\x01\x7f",
	"'",
	"''",
	" leading and trailing ",
}

func TestQuoteRoundTripsThroughSh(t *testing.T) {
	for _, s := range hostile {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("Quote(%q) = %s: sh failed: %v", s, Quote(s), err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) = %s: sh read back %q", s, Quote(s), out)
		}
	}
}

func TestJoinKeepsArgumentsApart(t *testing.T) {
	line := Join(append([]string{"printf", "<%s>"}, hostile...)...)
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	var want strings.Builder
	for _, s := range hostile {
		want.WriteString("<" + s + ">")
	}
	if string(out) != want.String() {
		t.Errorf("got %q\nwant %q", out, want.String())
	}
}

func TestQuoteLeavesSafeWordsAlone(t *testing.T) {
	for s, want := range map[string]string{
		"/usr/local/bin/k3s": "/usr/local/bin/k3s",
		"v1.31.4+k3s1":       "v1.31.4+k3s1",
		"a=b":                "'a=b'",
		"~/x":                "'~/x'",
		"":                   "''",
	} {
		if got := Quote(s); got != want {
			t.Errorf("Quote(%q) = %s, want %s", s, got, want)
		}
	}
}

// Through a real SSH session the login shell parses the line once more;
// sudo's sh -c wraps it a second time.
func TestRunQuotesHostileArgumentsOverSSH(t *testing.T) {
	ts := newTestSetup(t)
	c, err := Dial(context.Background(), ts.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, sudo := range []bool{false, true} {
		for _, s := range hostile {
			res, err := c.Run(context.Background(), Join("printf", "%s", s), RunOptions{Sudo: sudo})
			if err != nil {
				t.Fatalf("sudo=%v %q: %v", sudo, s, err)
			}
			if string(res.Stdout) != s {
				t.Errorf("sudo=%v: sent %q, remote printed %q", sudo, s, res.Stdout)
			}
		}
	}
}
