package k3s

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Where K3s releases come from.
const (
	DefaultDownloadURL = "https://github.com/k3s-io/k3s/releases/download"
	DefaultChannelURL  = "https://update.k3s.io/v1-release/channels"
	DefaultChannel     = "stable"
)

// Named release channels besides the per-minor ones (v1.NN).
var namedChannels = []string{"stable", "latest", "testing"}

var minorChannel = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// IsChannel reports whether s names a release channel rather than a version:
// stable, latest, testing or v1.NN.
func IsChannel(s string) bool {
	for _, c := range namedChannels {
		if s == c {
			return true
		}
	}
	return minorChannel.MatchString(s)
}

// ParseVersionOrChannel reads what a user gives as "the K3s version": either
// an exact version or a channel to resolve later. Empty means the stable
// channel. Exactly one of the results is set.
func ParseVersionOrChannel(s string) (Version, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Version{}, DefaultChannel, nil
	}
	if IsChannel(s) {
		return Version{}, s, nil
	}
	v, err := ParseVersion(s)
	if err != nil {
		return Version{}, "", fmt.Errorf("%q is neither a K3s version (e.g. v1.31.4+k3s1) nor a channel (stable, latest, testing, v1.NN)", s)
	}
	return v, "", nil
}

// Release says where to find K3s releases. The zero value uses the public
// GitHub releases and the public channel server.
type Release struct {
	DownloadURL string
	ChannelURL  string
	HTTP        *http.Client
}

func (r Release) downloadURL() string {
	if r.DownloadURL == "" {
		return DefaultDownloadURL
	}
	return strings.TrimRight(r.DownloadURL, "/")
}

func (r Release) channelURL() string {
	if r.ChannelURL == "" {
		return DefaultChannelURL
	}
	return strings.TrimRight(r.ChannelURL, "/")
}

func (r Release) client() *http.Client {
	if r.HTTP == nil {
		return http.DefaultClient
	}
	return r.HTTP
}

// AssetURL is the download address of one release asset. The + of the
// version is escaped; GitHub accepts both forms but proxies and mirrors in
// front of it do not always.
func (r Release) AssetURL(v Version, asset string) string {
	return r.downloadURL() + "/" + strings.ReplaceAll(v.String(), "+", "%2B") + "/" + url.PathEscape(asset)
}

// Resolve turns a version or channel (see ParseVersionOrChannel) into a
// version, asking the channel server only for channels.
func (r Release) Resolve(ctx context.Context, versionOrChannel string) (Version, error) {
	v, ch, err := ParseVersionOrChannel(versionOrChannel)
	if err != nil || ch == "" {
		return v, err
	}
	return r.ResolveChannel(ctx, ch)
}

// ResolveChannel asks the channel server which version a channel points to.
// The server answers with a redirect to the release page; the redirect is
// read, not followed, so GitHub is not contacted.
func (r Release) ResolveChannel(ctx context.Context, channel string) (Version, error) {
	if !IsChannel(channel) {
		return Version{}, fmt.Errorf("unknown K3s channel %q: want stable, latest, testing or v1.NN", channel)
	}
	u := r.channelURL() + "/" + channel
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Version{}, fmt.Errorf("resolve K3s channel %q: %w", channel, err)
	}
	c := *r.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return Version{}, fmt.Errorf("resolve K3s channel %q: %w\nhint: without access to %s, give an exact version such as v1.31.4+k3s1", channel, err, r.channelURL())
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	loc := resp.Header.Get("Location")
	if !isRedirect(resp.StatusCode) || loc == "" {
		return Version{}, fmt.Errorf("resolve K3s channel %q: GET %s answered %s, want a redirect to the release", channel, u, resp.Status)
	}
	lu, err := url.Parse(loc)
	if err != nil {
		return Version{}, fmt.Errorf("resolve K3s channel %q: bad redirect %q: %w", channel, loc, err)
	}
	last := path.Base(strings.TrimRight(lu.Path, "/"))
	v, err := ParseVersion(last)
	if err != nil {
		return Version{}, fmt.Errorf("resolve K3s channel %q: redirect to %s: %w", channel, loc, err)
	}
	return v, nil
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}
