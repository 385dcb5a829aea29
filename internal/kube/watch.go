package kube

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"
)

// WatchNodes lists the cluster's nodes and then watches them (one
// request that stays open: GET /api/v1/nodes?watch=true), calling fn with
// every node by name after the list and after each change, until fn
// returns true (WatchNodes returns nil), ctx ends (its error) or the API
// fails. A watch the API ends goes on from the last resource version; one
// the API no longer has (410 Gone) lists again. fn gets a map of its own.
func (c *Client) WatchNodes(ctx context.Context, fn func(nodes map[string]Node) bool) error {
	nodes := map[string]Node{}
	rv, err := c.listNodesAt(ctx, nodes)
	if err != nil {
		return err
	}
	if fn(copyNodes(nodes)) {
		return nil
	}
	for {
		began := time.Now()
		next, gone, err := c.watchNodes(ctx, rv, nodes, fn)
		switch {
		case errors.Is(err, errStop):
			return nil
		case err != nil:
			return err
		case gone:
			for k := range nodes {
				delete(nodes, k)
			}
			if rv, err = c.listNodesAt(ctx, nodes); err != nil {
				return err
			}
			if fn(copyNodes(nodes)) {
				return nil
			}
			continue
		}
		rv = next
		// A watch the API ends at once is not asked again at once.
		if time.Since(began) < time.Second {
			t := time.NewTimer(c.PollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

var errStop = errors.New("stop watching")

type watchMeta struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

// listNodesAt fills nodes and returns the list's resource version.
func (c *Client) listNodesAt(ctx context.Context, nodes map[string]Node) (string, error) {
	var list struct {
		watchMeta
		Items []nodeJSON `json:"items"`
	}
	if err := c.do(ctx, "list nodes", http.MethodGet, "/api/v1/nodes", nil, "", nil, &list); err != nil {
		return "", err
	}
	for _, n := range list.Items {
		nodes[n.Metadata.Name] = n.node()
	}
	return list.Metadata.ResourceVersion, nil
}

// watchNodes follows one watch request from rv, applying its events to
// nodes. It returns the last resource version seen, and gone when the
// API no longer has rv.
func (c *Client) watchNodes(ctx context.Context, rv string, nodes map[string]Node, fn func(map[string]Node) bool) (string, bool, error) {
	const op = "watch nodes"
	u := *c.base
	u.Path = "/api/v1/nodes"
	q := url.Values{"watch": {"true"}}
	if rv != "" {
		q.Set("resourceVersion", rv)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return rv, false, &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "k3sctl")
	// The watch stays open: no overall timeout, only ctx.
	res, err := (&http.Client{Transport: c.tr}).Do(req)
	if err != nil {
		return rv, false, &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusGone {
		return rv, true, nil
	}
	if res.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return rv, false, c.statusError(op, res.StatusCode, data)
	}
	dec := json.NewDecoder(res.Body)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return rv, false, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return rv, false, nil // the API ended the watch
			}
			return rv, false, &APIError{Cluster: c.cluster, Via: c.via, Op: op, Err: err}
		}
		if ev.Type == "ERROR" {
			var st struct {
				Code int `json:"code"`
			}
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone {
				return rv, true, nil
			}
			return rv, false, c.statusError(op, st.Code, ev.Object)
		}
		var m watchMeta
		_ = json.Unmarshal(ev.Object, &m)
		if m.Metadata.ResourceVersion != "" {
			rv = m.Metadata.ResourceVersion
		}
		if ev.Type == "BOOKMARK" {
			continue
		}
		var n nodeJSON
		if err := json.Unmarshal(ev.Object, &n); err != nil || n.Metadata.Name == "" {
			continue
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			nodes[n.Metadata.Name] = n.node()
		case "DELETED":
			delete(nodes, n.Metadata.Name)
		default:
			continue
		}
		if fn(copyNodes(nodes)) {
			return rv, false, errStop
		}
	}
}

func copyNodes(nodes map[string]Node) map[string]Node {
	out := make(map[string]Node, len(nodes))
	for k, v := range nodes {
		out[k] = v
	}
	return out
}
