package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var hostile = []string{
	"",
	"plain",
	"two words",
	" leading and trailing ",
	"it's",
	`"double"`,
	"'",
	"''",
	`'\''`,
	"$(touch /tmp/k3sctl-pwned)",
	"`touch /tmp/k3sctl-pwned`",
	"${HOME}",
	"$HOME",
	"line1\nline2",
	"trailing newline\n",
	"tab\there",
	`back\slash\`,
	"-n",
	"--",
	"--no-block",
	"-rf /",
	"*",
	"~",
	"a=b",
	"!event",
	"; rm -rf /",
	"| cat",
	"&& true",
	"> /dev/null",
	"#comment",
	"日本語 ünïcödé",
	"\xff\xfe not UTF-8 \xc3\x28",
	"\x01\x7f",
}

func TestCommandKeepsHostileArgumentsApart(t *testing.T) {
	line := Command(append([]string{"printf", "<%s>"}, hostile...)...)
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

// A command word that is hostile runs nothing but the command named: the
// substitution in it is never evaluated.
func TestCommandNeverEvaluates(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "pwned")
	for _, s := range []string{"$(touch " + mark + ")", "`touch " + mark + "`", "; touch " + mark, "\ntouch " + mark} {
		_ = exec.Command("/bin/sh", "-c", Command("test", "-e", s)).Run()
		_ = exec.Command("/bin/sh", "-c", Command("echo", s)).Run()
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("a quoted argument was evaluated by the shell")
	}
}

func TestBuilders(t *testing.T) {
	for _, c := range []struct {
		cmd, want string
	}{
		{And(Command("true"), Command("echo", "a b")), "a b\n"},
		{And(Command("false"), Command("echo", "no")), ""},
		{Or(Command("false"), Command("echo", "x;y")), "x;y\n"},
		{Seq(Command("false"), Command("echo", "$z")), "$z\n"},
		{If(Command("true"), Command("echo", "then"), Command("echo", "else")), "then\n"},
		{If(Command("false"), Command("echo", "then"), Command("echo", "else")), "else\n"},
		{If(Command("false"), Command("echo", "then"), ""), ""},
		{Seq(Quiet(Command("echo", "hidden")), QuietOut(Command("echo", "hidden too"))), ""},
		{And(Group(Seq(Command("false"), Command("true"))), Command("echo", "grouped")), "grouped\n"},
	} {
		out, err := exec.Command("/bin/sh", "-c", c.cmd).Output()
		if err != nil && c.want != "" {
			t.Errorf("%s: %v", c.cmd, err)
		}
		if string(out) != c.want {
			t.Errorf("%s printed %q, want %q", c.cmd, out, c.want)
		}
	}
}
