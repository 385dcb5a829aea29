package cli

import (
	"fmt"
	"strings"
)

// Exit codes of k3sctl. exitCodes is the one table that names them and
// says what they mean; the help and the docs are written from it.
const (
	ExitOK             = 0
	ExitError          = 1
	ExitUsage          = 2
	ExitHostsFailed    = 3
	ExitChangesPending = 4
	ExitPreflight      = 5
	ExitUnhealthy      = 6
	ExitInterrupted    = 130
)

// ExitCode is one row of the table: the number, a short name and when
// k3sctl exits with it.
type ExitCode struct {
	Code    int
	Name    string
	Meaning string
}

var exitCodes = []ExitCode{
	{ExitOK, "ok", "success"},
	{ExitError, "error", "any other failure, e.g. the K3s version could not be resolved"},
	{ExitUsage, "usage", "a mistake in the command line or the inventory file; nothing was done"},
	{ExitHostsFailed, "hosts-failed", "one or more hosts failed, were refused by the plan or could not be reached"},
	{ExitChangesPending, "changes-pending", "plan --detailed-exitcode: the plan would change something; status: a host differs from the inventory"},
	{ExitPreflight, "preflight", "problems found before any change (kubeconfig, addresses, tokens, sudo, duplicate hostnames, hosts locked by another run); nothing was changed"},
	{ExitUnhealthy, "unhealthy", "status: a host is unreachable, its K3s service or node is not running and Ready, or a certificate expired"},
	{ExitInterrupted, "interrupted", "interrupted by Ctrl-C or SIGTERM"},
}

// ExitCodes returns the table of exit codes, lowest first.
func ExitCodes() []ExitCode { return append([]ExitCode(nil), exitCodes...) }

// exitCodeHelp is the table, or the rows for codes, as a help section.
// The rows are indented four spaces so that the Markdown reference shows
// them as a block too.
func exitCodeHelp(codes ...int) string {
	rows := selectExitCodes(codes)
	var b strings.Builder
	b.WriteString("Exit codes:\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "    %-4d%-17s%s\n", r.Code, r.Name, r.Meaning)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ExitCodesMarkdown is the table as Markdown, as the README shows it.
func ExitCodesMarkdown() string {
	var b strings.Builder
	b.WriteString("| code | name | meaning |\n| --- | --- | --- |\n")
	for _, r := range exitCodes {
		fmt.Fprintf(&b, "| %d | `%s` | %s |\n", r.Code, r.Name, r.Meaning)
	}
	return b.String()
}

func selectExitCodes(codes []int) []ExitCode {
	if len(codes) == 0 {
		return exitCodes
	}
	var rows []ExitCode
	for _, r := range exitCodes {
		for _, c := range codes {
			if r.Code == c {
				rows = append(rows, r)
			}
		}
	}
	return rows
}
