// Package apply runs a plan over SSH: a dependency scheduler with a
// concurrency limit that emits typed events. It never imports a renderer.
package apply
