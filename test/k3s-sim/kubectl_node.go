package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// The node commands of the node's kubectl: label, taint, cordon, uncordon,
// sending the patches the upstream kubectl sends.

func (c *kubeClient) getNodeObj(name string) (nodeJSON, error) {
	var n nodeJSON
	b, err := c.get("/api/v1/nodes/"+url.PathEscape(name), "application/json")
	if err != nil {
		return n, err
	}
	return n, json.Unmarshal(b, &n)
}

func (c *kubeClient) patchNode(name, contentType string, patch any) error {
	body, _ := json.Marshal(patch)
	_, err := c.requestBody(http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), "application/json", contentType, body)
	return err
}

// nodeArgs splits "node <name> args…" or "node/<name> args…".
func nodeArgs(f *kubectlFlags) (string, []string, bool) {
	rest := f.args[1:]
	if len(rest) == 0 {
		return "", nil, false
	}
	if t, n, ok := strings.Cut(rest[0], "/"); ok {
		if p, _, ok := resourcePath(t); ok && p == "nodes" {
			return n, rest[1:], true
		}
		return "", nil, false
	}
	if p, _, ok := resourcePath(rest[0]); !ok || p != "nodes" || len(rest) < 2 {
		return "", nil, false
	}
	return rest[1], rest[2:], true
}

func (c *kubeClient) label(f *kubectlFlags) int {
	name, changes, ok := nodeArgs(f)
	if !ok || len(changes) == 0 {
		fmt.Fprintln(os.Stderr, "error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
		return 1
	}
	n, err := c.getNodeObj(name)
	if err != nil {
		return c.fail(err)
	}
	labels := map[string]any{}
	for _, ch := range changes {
		if k, ok := strings.CutSuffix(ch, "-"); ok && !strings.Contains(ch, "=") {
			labels[k] = nil
			continue
		}
		k, v, ok := strings.Cut(ch, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "error: invalid label spec: %s\n", ch)
			return 1
		}
		if old, has := n.Metadata.Labels[k]; has && !f.overwrite && old != v {
			fmt.Fprintf(os.Stderr, "error: '%s' already has a value (%s), and --overwrite is false\n", k, old)
			return 1
		}
		labels[k] = v
	}
	changed := false
	for k, v := range labels {
		old, has := n.Metadata.Labels[k]
		if (v == nil && has) || (v != nil && (!has || old != v)) {
			changed = true
		}
	}
	if !changed {
		fmt.Printf("node/%s not labeled\n", name)
		return 0
	}
	if err := c.patchNode(name, "application/merge-patch+json", map[string]any{"metadata": map[string]any{"labels": labels}}); err != nil {
		return c.fail(err)
	}
	verb := "labeled"
	allRemovals := true
	for _, v := range labels {
		if v != nil {
			allRemovals = false
		}
	}
	if allRemovals {
		verb = "unlabeled"
	}
	fmt.Printf("node/%s %s\n", name, verb)
	return 0
}

func (c *kubeClient) taint(f *kubectlFlags) int {
	name, specs, ok := nodeArgs(f)
	if !ok || len(specs) == 0 {
		fmt.Fprintln(os.Stderr, "error: at least one taint update is required")
		return 1
	}
	n, err := c.getNodeObj(name)
	if err != nil {
		return c.fail(err)
	}
	var cur []taintJSON
	for _, t := range n.Spec.Taints {
		if !controllerTaint(t.Key) {
			cur = append(cur, taintJSON{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
	}
	removedAny, addedAny := false, false
	for _, sp := range specs {
		if spec, ok := strings.CutSuffix(sp, "-"); ok {
			key, effect, _ := strings.Cut(spec, ":")
			k, _, _ := strings.Cut(key, "=")
			var keep []taintJSON
			found := false
			for _, t := range cur {
				if t.Key == k && (effect == "" || t.Effect == effect) {
					found = true
					continue
				}
				keep = append(keep, t)
			}
			if !found {
				fmt.Fprintf(os.Stderr, "error: taint %q not found\n", spec)
				return 1
			}
			cur, removedAny = keep, true
			continue
		}
		t, err := parseTaint(sp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			return 1
		}
		replaced := false
		for i := range cur {
			if cur[i].Key == t.Key && cur[i].Effect == t.Effect {
				if !f.overwrite {
					fmt.Fprintf(os.Stderr, "error: node %s already has %s taint(s) with same effect(s) and --overwrite is false\n", name, t.Key)
					return 1
				}
				cur[i].Value, replaced = t.Value, true
			}
		}
		if !replaced {
			cur = append(cur, taintJSON{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
		addedAny = true
	}
	var taints any = cur
	if len(cur) == 0 {
		taints = nil
	}
	if err := c.patchNode(name, "application/strategic-merge-patch+json", map[string]any{"spec": map[string]any{"taints": taints}}); err != nil {
		return c.fail(err)
	}
	verb := "tainted"
	switch {
	case removedAny && addedAny:
		verb = "modified"
	case removedAny:
		verb = "untainted"
	}
	fmt.Printf("node/%s %s\n", name, verb)
	return 0
}

func (c *kubeClient) cordon(f *kubectlFlags, on bool) int {
	if len(f.args) < 2 {
		fmt.Fprintln(os.Stderr, "error: USAGE: cordon NODE [flags]")
		return 1
	}
	status := 0
	for _, name := range f.args[1:] {
		name = strings.TrimPrefix(name, "node/")
		n, err := c.getNodeObj(name)
		if err != nil {
			status = c.fail(err)
			continue
		}
		word := map[bool]string{true: "cordoned", false: "uncordoned"}[on]
		if n.Spec.Unschedulable == on {
			fmt.Printf("node/%s already %s\n", name, word)
			continue
		}
		var v any = true
		if !on {
			v = nil
		}
		if err := c.patchNode(name, "application/strategic-merge-patch+json", map[string]any{"spec": map[string]any{"unschedulable": v}}); err != nil {
			status = c.fail(err)
			continue
		}
		fmt.Printf("node/%s %s\n", name, word)
	}
	return status
}
