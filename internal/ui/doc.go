// Package ui turns apply events into what a person or a program watches: a
// live terminal view, plain timestamped lines, or JSON lines. It consumes
// events only and never reaches back into the apply.
package ui
