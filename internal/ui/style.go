package ui

import (
	"bytes"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
)

// styles keep to the 16 basic colours, which every colour terminal has and
// which follow the person's own theme.
type styles struct {
	ok, fail, warn, faint, bold, accent lipgloss.Style
}

func newStyles() styles {
	base := lipgloss.NewStyle()
	return styles{
		ok:     base.Foreground(lipgloss.Green),
		fail:   base.Foreground(lipgloss.Red),
		warn:   base.Foreground(lipgloss.Yellow),
		faint:  base.Faint(true),
		bold:   base.Bold(true),
		accent: base.Foreground(lipgloss.Cyan),
	}
}

// downsample fits styled text to what the output can show. The live view
// gets this from Bubble Tea; text printed above the view is written as is,
// so it needs the same treatment here.
func downsample(s string, p colorprofile.Profile) string {
	if p == colorprofile.TrueColor {
		return s
	}
	var b bytes.Buffer
	w := &colorprofile.Writer{Forward: &b, Profile: p}
	if _, err := w.WriteString(s); err != nil {
		return s
	}
	return b.String()
}
