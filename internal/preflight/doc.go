// Package preflight owns the checks made for every host before a run
// changes any host, and how their problems are reported: all of them
// together, sorted by host, each with what is wrong and the fix.
package preflight
