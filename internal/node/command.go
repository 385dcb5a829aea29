package node

import (
	"strings"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Quote returns s quoted for a POSIX shell so that sh reads it back as
// exactly one word with exactly these bytes. It is the one quoting function
// every remote command goes through.
func Quote(s string) string { return ssh.Quote(s) }

// Command builds one simple command from its argument list, each argument
// quoted: Command("systemctl", "restart", "--no-block", svc).
func Command(args ...string) string { return ssh.Join(args...) }

// And joins commands with &&: each runs only when the one before succeeded.
func And(cmds ...string) string { return strings.Join(cmds, " && ") }

// Or joins commands with ||: each runs only when the one before failed.
func Or(cmds ...string) string { return strings.Join(cmds, " || ") }

// Seq runs commands one after the other whatever their status.
func Seq(cmds ...string) string { return strings.Join(cmds, "; ") }

// Quiet discards a command's output.
func Quiet(cmd string) string { return cmd + " >/dev/null 2>&1" }

// QuietOut discards a command's standard output only.
func QuietOut(cmd string) string { return cmd + " >/dev/null" }

// If runs then when cond succeeds, otherwise els (when not empty).
func If(cond, then, els string) string {
	s := "if " + cond + "; then " + then + "; "
	if els != "" {
		s += "else " + els + "; "
	}
	return s + "fi"
}

// Group makes a compound of commands one operand of And/Or.
func Group(cmd string) string { return "{ " + cmd + "; }" }
