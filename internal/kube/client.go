package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DialFunc opens a connection to addr ("127.0.0.1:6443"); an SSH client's
// DialContext is one.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Client talks to one cluster's API. Close it.
type Client struct {
	cluster string // for messages
	via     string // the server the API is reached through, for messages
	base    *url.URL
	tr      *http.Transport
	hc      *http.Client
	// PollInterval is how long Evict waits before trying again after a
	// disruption budget refused, and Drain between checks; default 2s.
	PollInterval time.Duration
}

// New builds a client of cluster's API from cfg, reaching it with dial
// (nil: a plain TCP dial). via names the server the connection goes
// through, for messages. The serving certificate is verified against
// cfg.CA.
func New(cluster, via string, cfg Config, dial DialFunc) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("cluster %s: API address %q is not an https URL", cluster, cfg.Server)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.CA) {
		return nil, fmt.Errorf("cluster %s: the kubeconfig's certificate authority holds no PEM certificate", cluster)
	}
	cert, err := tls.X509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: the kubeconfig's client certificate: %w", cluster, err)
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
			ServerName:   u.Hostname(),
			MinVersion:   tls.VersionTLS12,
		},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		cluster:      cluster,
		via:          via,
		base:         u,
		tr:           tr,
		hc:           &http.Client{Transport: tr, Timeout: 30 * time.Second},
		PollInterval: 2 * time.Second,
	}, nil
}

// Close drops idle connections (channels of the SSH connection).
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Cluster is the cluster's name, as given to New.
func (c *Client) Cluster() string { return c.cluster }

// Via is the server the API is reached through, as given to New.
func (c *Client) Via() string { return c.via }

// APIError is a request the API refused or could not be sent.
type APIError struct {
	Cluster string
	Via     string
	Op      string // what was asked, e.g. "patch node w1"
	Code    int    // HTTP status; 0 when the request did not reach the API
	Reason  string // the Status reason, e.g. NotFound, TooManyRequests
	Message string
	Err     error // transport error when Code is 0
}

func (e *APIError) Error() string {
	where := "cluster " + e.Cluster
	if e.Via != "" {
		where += " (API through " + e.Via + ")"
	}
	if e.Code == 0 {
		return fmt.Sprintf("%s: %s: %v", where, e.Op, e.Err)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	reason := e.Reason
	if reason == "" {
		reason = fmt.Sprint(e.Code)
	}
	return fmt.Sprintf("%s: %s: %s (%s)", where, e.Op, msg, reason)
}

func (e *APIError) Unwrap() error { return e.Err }

// IsNotFound reports whether err is the API's NotFound.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// IsTooManyRequests reports whether err is a 429, which an eviction gets
// when a PodDisruptionBudget forbids it for now.
func IsTooManyRequests(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusTooManyRequests
}

// do sends one request and decodes a 2xx JSON answer into out (when not
// nil).
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, contentType string, body any, out any) error {
	u := *c.base
	u.Path = path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "k3sctl")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
	}
	if res.StatusCode/100 != 2 {
		return c.statusError(op, res.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Code: res.StatusCode, Err: fmt.Errorf("decode the answer: %w", err), Message: "undecodable answer: " + err.Error()}
		}
	}
	return nil
}

// statusError is the APIError of an answer with a non-2xx code and a
// Status body.
func (c *Client) statusError(op string, code int, data []byte) error {
	var st struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
		Details struct {
			Causes []struct {
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	_ = json.Unmarshal(data, &st)
	msg := st.Message
	for _, cause := range st.Details.Causes {
		if cause.Message != "" {
			msg += ": " + cause.Message
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	return &APIError{Cluster: c.cluster, Via: c.via, Op: op, Code: code, Reason: st.Reason, Message: msg}
}
