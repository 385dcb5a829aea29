// Package inventory owns the inventory file: its format, the defaults that
// fill what the file leaves out, and validation that reports every mistake at
// once with its file:line:column and what to write instead. It reads only the
// local file system (the inventory and the files it lists) and never a host.
package inventory
