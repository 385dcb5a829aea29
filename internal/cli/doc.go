// Package cli is k3sctl's command line and nothing more: the root command
// lists every command (NewRoot), each command turns its flags into checked
// options (NewCmdX(f, runF)) and calls the packages below, IO decides once
// whether output is a terminal, and the exit code table (exitcode.go) is
// the one place errors become exit codes.
package cli
