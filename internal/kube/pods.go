package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Pod is what draining needs of a pod.
type Pod struct {
	Namespace string
	Name      string
	UID       string
	Phase     string
	// OwnerKinds are the kinds of the pod's owners (ReplicaSet, DaemonSet, …).
	OwnerKinds []string
	// Mirror is a static pod's mirror (the kubelet owns it, the API cannot
	// evict it).
	Mirror bool
}

// ID is namespace/name.
func (p Pod) ID() string { return p.Namespace + "/" + p.Name }

// DaemonSet reports whether a DaemonSet owns the pod: draining leaves it,
// its controller would put it back at once.
func (p Pod) DaemonSet() bool {
	for _, k := range p.OwnerKinds {
		if k == "DaemonSet" {
			return true
		}
	}
	return false
}

// mirrorAnnotation marks the API's copy of a static pod.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// ListPodsOnNode lists the pods bound to a node, in every namespace.
func (c *Client) ListPodsOnNode(ctx context.Context, node string) ([]Pod, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Namespace       string            `json:"namespace"`
				Name            string            `json:"name"`
				UID             string            `json:"uid"`
				Annotations     map[string]string `json:"annotations"`
				OwnerReferences []struct {
					Kind string `json:"kind"`
				} `json:"ownerReferences"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	q := url.Values{"fieldSelector": {"spec.nodeName=" + node}}
	if err := c.do(ctx, "list pods on node "+node, http.MethodGet, "/api/v1/pods", q, "", nil, &list); err != nil {
		return nil, err
	}
	pods := make([]Pod, 0, len(list.Items))
	for _, it := range list.Items {
		p := Pod{Namespace: it.Metadata.Namespace, Name: it.Metadata.Name, UID: it.Metadata.UID, Phase: it.Status.Phase}
		for _, o := range it.Metadata.OwnerReferences {
			p.OwnerKinds = append(p.OwnerKinds, o.Kind)
		}
		_, p.Mirror = it.Metadata.Annotations[mirrorAnnotation]
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].ID() < pods[j].ID() })
	return pods, nil
}

// Evict asks the API to evict a pod (policy/v1 Eviction). A
// PodDisruptionBudget that forbids it now answers 429 (IsTooManyRequests).
// A pod already gone is no error.
func (c *Client) Evict(ctx context.Context, namespace, name string) error {
	body := map[string]any{
		"apiVersion": "policy/v1",
		"kind":       "Eviction",
		"metadata":   map[string]string{"name": name, "namespace": namespace},
	}
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(name) + "/eviction"
	err := c.do(ctx, "evict pod "+namespace+"/"+name, http.MethodPost, path, nil, "application/json", body, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// EvictUntil evicts a pod, trying again while a disruption budget refuses,
// until the deadline.
func (c *Client) EvictUntil(ctx context.Context, namespace, name string, deadline time.Time) error {
	for {
		err := c.Evict(ctx, namespace, name)
		if err == nil || !IsTooManyRequests(err) {
			return err
		}
		wait := c.PollInterval
		if left := time.Until(deadline); left <= 0 {
			return err
		} else if left < wait {
			wait = left
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// DrainResult says what a drain did.
type DrainResult struct {
	Evicted []string // namespace/name
	// Left are the pods still on the node when the timeout ran out (only
	// with force; without force that is an error).
	Left []string
}

// DrainError is a drain that ran out of time with pods left on the node.
type DrainError struct {
	Node string
	Left []string
	Err  error // the last refusal, e.g. a disruption budget's
}

func (e *DrainError) Error() string {
	return fmt.Sprintf("drain node %s: %d pod(s) could not be evicted (%s): %v; fix the PodDisruptionBudget or use --force-drain to go on",
		e.Node, len(e.Left), strings.Join(e.Left, ", "), e.Err)
}

func (e *DrainError) Unwrap() error { return e.Err }

// Drain cordons a node and evicts every pod on it that is not owned by a
// DaemonSet and not a static pod's mirror, as kubectl drain does,
// respecting PodDisruptionBudgets until timeout. Then it waits until those
// pods are gone. When pods are left at the timeout, force says to go on:
// the result lists them and the error is nil; otherwise the error is a
// *DrainError. The node stays cordoned either way.
func (c *Client) Drain(ctx context.Context, node string, timeout time.Duration, force bool) (DrainResult, error) {
	var res DrainResult
	deadline := time.Now().Add(timeout)
	if err := c.Cordon(ctx, node); err != nil {
		return res, err
	}
	pods, err := c.ListPodsOnNode(ctx, node)
	if err != nil {
		return res, err
	}
	var evict []Pod
	for _, p := range pods {
		if !p.DaemonSet() && !p.Mirror {
			evict = append(evict, p)
		}
	}
	// Every pod at once: one budget-blocked pod must not hold back the
	// others.
	var mu sync.Mutex
	var wg sync.WaitGroup
	var lastErr error
	for _, p := range evict {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.EvictUntil(ctx, p.Namespace, p.Name, deadline)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				res.Left = append(res.Left, p.ID())
				return
			}
			res.Evicted = append(res.Evicted, p.ID())
		}()
	}
	wg.Wait()
	sort.Strings(res.Evicted)
	sort.Strings(res.Left)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Evicted pods terminate; wait until they no longer run on the node.
	for {
		still, err := c.podsStill(ctx, node, evict, res.Evicted)
		if err != nil {
			return res, err
		}
		if len(still) == 0 {
			break
		}
		if time.Now().After(deadline) {
			res.Left = append(res.Left, still...)
			res.Evicted = without(res.Evicted, still)
			sort.Strings(res.Left)
			if lastErr == nil {
				lastErr = errors.New("still terminating")
			}
			break
		}
		t := time.NewTimer(c.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
	}
	if len(res.Left) > 0 && !force {
		return res, &DrainError{Node: node, Left: res.Left, Err: lastErr}
	}
	return res, nil
}

// podsStill lists the evicted pods (same UID) still on the node.
func (c *Client) podsStill(ctx context.Context, node string, evicted []Pod, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	want := map[string]string{}
	for _, p := range evicted {
		want[p.ID()] = p.UID
	}
	wasEvicted := map[string]bool{}
	for _, id := range ids {
		wasEvicted[id] = true
	}
	pods, err := c.ListPodsOnNode(ctx, node)
	if err != nil {
		return nil, err
	}
	var still []string
	for _, p := range pods {
		if wasEvicted[p.ID()] && (want[p.ID()] == "" || want[p.ID()] == p.UID) {
			still = append(still, p.ID())
		}
	}
	return still, nil
}

func without(list, drop []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}
