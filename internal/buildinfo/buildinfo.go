package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags "-X github.com/k3sctl/k3sctl/internal/buildinfo.Version=v0.1.0 ...".
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is the identity of this build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
}

// Get returns the link-time values, completed from the module build info.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fill(info)
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		case "vcs.modified":
			if s.Value == "true" && info.Commit != "" && Commit == "" {
				info.Commit += "-dirty"
			}
		}
	}
	return fill(info)
}

func fill(i Info) Info {
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if rev, dirty, ok := strings.Cut(i.Commit, "-"); Commit == "" && len(rev) > 12 {
		i.Commit = rev[:12]
		if ok {
			i.Commit += "-" + dirty
		}
	}
	return i
}
