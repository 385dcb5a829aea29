package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// PATCH as kubectl sends it: "kubectl label" sends a JSON merge patch
// (RFC 7396), "kubectl taint", "cordon" and "uncordon" a strategic merge
// patch. For the fields they touch (metadata.labels, metadata.annotations,
// spec.taints, spec.unschedulable) both behave alike: maps merge, null
// removes a key, lists (Node.spec.taints has no merge key) are replaced.
// JSON patch (RFC 6902) is refused with the apiserver's message.

const maxBody = 3 << 20

// readPatch reads a PATCH body and checks its content type.
func readPatch(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/merge-patch+json", "application/strategic-merge-patch+json":
	case "application/apply-patch+yaml":
		writeStatus(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json", nil)
		return nil, false
	default:
		writeStatus(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got %q)", ct), nil)
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), nil)
		return nil, false
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "error decoding patch: "+err.Error(), nil)
		return nil, false
	}
	return p, true
}

// mergePatch applies a merge patch to doc and returns the result. Strategic
// merge patch directives ("$patch", "$setElementOrder/…", "$retainKeys")
// are honoured as far as they matter for maps: "$patch": "delete" removes
// the key, "$patch": "replace" replaces the map; the rest is ignored.
func mergePatch(doc any, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	if d, ok := pm["$patch"]; ok {
		switch d {
		case "delete":
			return nil
		case "replace":
			out := map[string]any{}
			for k, v := range pm {
				if !strings.HasPrefix(k, "$") {
					out[k] = v
				}
			}
			return out
		}
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	out := map[string]any{}
	for k, v := range dm {
		out[k] = v
	}
	for k, v := range pm {
		if strings.HasPrefix(k, "$") {
			continue
		}
		if v == nil {
			delete(out, k)
			continue
		}
		if sub, ok := v.(map[string]any); ok && sub["$patch"] == "delete" {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

func toMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// controllerTaints are set by the node lifecycle controller from the node's
// state; a patch that carries them back is not a user's taint.
func controllerTaint(key string) bool {
	switch key {
	case "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready":
		return true
	}
	return false
}

// patchNode applies a PATCH to a node and stores the fields a client may
// change: labels, annotations, taints, unschedulable.
func (s *server) patchNode(w http.ResponseWriter, r *http.Request, name string) {
	p, ok := readPatch(w, r)
	if !ok {
		return
	}
	var status int
	var msg, reason string
	forced := false
	s.st.updateNode(name, func(n *nodeRec, exists bool) bool {
		if !exists {
			status, reason, msg = http.StatusNotFound, "NotFound", fmt.Sprintf("nodes %q not found", name)
			return false
		}
		now := time.Now()
		merged := toMap(mergePatch(toMap(n.render(now)), p))
		var nj nodeJSON
		b, _ := json.Marshal(merged)
		if err := json.Unmarshal(b, &nj); err != nil {
			status, reason, msg = http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("Node %q is invalid: %v", name, err)
			return false
		}
		var taints []taint
		for i, t := range nj.Spec.Taints {
			if controllerTaint(t.Key) {
				continue
			}
			switch t.Effect {
			case "NoSchedule", "PreferNoSchedule", "NoExecute":
			default:
				status, reason = http.StatusUnprocessableEntity, "Invalid"
				msg = fmt.Sprintf("Node %q is invalid: spec.taints[%d].effect: Unsupported value: %q: supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"", name, i, t.Effect)
				return false
			}
			taints = append(taints, taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		}
		if nj.Metadata.Name != "" && nj.Metadata.Name != name {
			status, reason = http.StatusUnprocessableEntity, "Invalid"
			msg = fmt.Sprintf("Node %q is invalid: metadata.name: Invalid value: %q: field is immutable", name, nj.Metadata.Name)
			return false
		}
		changed := !equalJSON(n.Labels, nj.Metadata.Labels) || !equalJSON(n.Annotations, nj.Metadata.Annotations) ||
			!equalJSON(n.Taints, taints) || n.Unschedulable != nj.Spec.Unschedulable || !equalJSON(n.Finalizers, nj.Metadata.Finalizers)
		n.Labels, n.Annotations, n.Taints, n.Unschedulable = nj.Metadata.Labels, nj.Metadata.Annotations, taints, nj.Spec.Unschedulable
		n.Finalizers = nj.Metadata.Finalizers
		if changed {
			n.Updated = now.UTC()
		}
		if !n.DeletionTimestamp.IsZero() && len(n.Finalizers) == 0 {
			// The last finalizer is gone: the deletion completes, without
			// what the finalizers would have done (a force delete).
			*n = nodeRec{Name: name, Deleted: true, Updated: now.UTC()}
			forced = true
		}
		return changed
	})
	if status != 0 {
		details := map[string]any{"name": name, "kind": "nodes"}
		writeStatus(w, status, reason, msg, details)
		return
	}
	if n, ok := s.st.node(name); ok && n.Annotations[etcdRemoveAnnotation] == "true" && n.Annotations[etcdRemovedAnnotation] == "" {
		s.removeMemberByAnnotation(name)
	}
	n, ok := s.st.node(name)
	if !ok && forced {
		infof("Deleted node %s and its node password", name)
		writeJSON(w, http.StatusOK, map[string]any{"kind": "Node", "apiVersion": "v1", "metadata": map[string]string{"name": name}})
		return
	}
	writeJSON(w, http.StatusOK, n.render(time.Now()))
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	if string(x) == "null" || string(x) == "{}" || string(x) == "[]" {
		x = nil
	}
	if string(y) == "null" || string(y) == "{}" || string(y) == "[]" {
		y = nil
	}
	return string(x) == string(y)
}

const (
	etcdRemoveAnnotation  = "etcd.k3s.cattle.io/remove"
	etcdRemovedAnnotation = "etcd.k3s.cattle.io/removed-node-name"
)

// removeMemberByAnnotation is k3s's etcd member controller acting on the
// etcd.k3s.cattle.io/remove annotation: the node's member leaves the etcd
// cluster, the Node stays, marked with the removed member's name. As with
// deletion, a server never removes itself.
func (s *server) removeMemberByAnnotation(name string) {
	var removed string
	others := 0
	for _, m := range s.st.liveMembers() {
		if m.NodeName != name {
			others++
		}
	}
	if others == 0 {
		errorf("error syncing '%s': handler managed-etcd-controller: not removing self from etcd cluster, requeuing", name)
		return
	}
	s.st.updateMembers(func(ms map[string]*member) bool {
		changed := false
		for _, m := range ms {
			if m.NodeName == name && !m.Removed {
				infof("Removing name=%s peerURL=%s from etcd cluster", m.Name, peerURL(m.URL))
				m.Removed, m.Updated, changed = true, time.Now().UTC(), true
				removed = m.Name
			}
		}
		return changed
	})
	if removed == "" {
		return
	}
	s.st.updateNode(name, func(n *nodeRec, exists bool) bool {
		if !exists {
			return false
		}
		n.Annotations = mergeStrings(n.Annotations, map[string]string{etcdRemovedAnnotation: removed})
		n.Updated = time.Now().UTC()
		return true
	})
}
