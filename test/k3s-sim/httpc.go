package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"time"
)

const clientTimeout = 10 * time.Second

var insecureClient = &http.Client{
	Timeout: clientTimeout,
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	},
}

// caClient trusts only the cluster CA, as k3s's joining side does once it
// has fetched and checked /cacerts.
func caClient(caPEM []byte, timeout time.Duration, certs ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: certs},
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

type httpError struct {
	url    string
	status string
	code   int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("%s: %s", e.url, e.status) }

// do sends a request with basic auth and extra headers and returns the body
// of a 2xx answer; anything else is an error worded like k3s's client.
func do(c *http.Client, method, url, user, pass string, headers map[string]string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &httpError{url: url, status: resp.Status, code: resp.StatusCode, body: string(data)}
	}
	return data, nil
}

// getCACerts fetches /cacerts without trusting the server, then checks that
// the server's certificate is signed by what it served.
func getCACerts(base string) ([]byte, error) {
	u := base + "/cacerts"
	ca, err := do(insecureClient, http.MethodGet, u, "", "", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get CA certs: %w", err)
	}
	if _, err := do(caClient(ca, clientTimeout), http.MethodGet, u, "", "", nil, nil); err != nil {
		return nil, fmt.Errorf("CA cert validation failed: %w", err)
	}
	return ca, nil
}
