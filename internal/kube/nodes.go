package kube

import (
	"context"
	"net/http"
	"net/url"
	"sort"
)

// Node is what k3sctl reads of a Node object.
type Node struct {
	Name          string
	Labels        map[string]string
	Annotations   map[string]string
	Taints        []Taint
	Unschedulable bool
	// Ready is the Ready condition's status; ReadyReason and ReadyMessage
	// say why (e.g. KubeletNotReady, NodeStatusUnknown).
	Ready        bool
	ReadyReason  string
	ReadyMessage string
	// KubeletVersion is the version the node reports, e.g. v1.31.4+k3s1.
	KubeletVersion string
	Addresses      []Address
}

// Taint is one taint of a node.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// String is the taint as node-taint and kubectl write it: key=value:Effect.
func (t Taint) String() string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + t.Effect
}

// Address is one of a node's addresses.
type Address struct {
	Type    string `json:"type"` // InternalIP, ExternalIP, Hostname
	Address string `json:"address"`
}

type nodeJSON struct {
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Taints        []Taint `json:"taints"`
		Unschedulable bool    `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
		Addresses []Address `json:"addresses"`
		NodeInfo  struct {
			KubeletVersion string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

func (n nodeJSON) node() Node {
	out := Node{
		Name:           n.Metadata.Name,
		Labels:         n.Metadata.Labels,
		Annotations:    n.Metadata.Annotations,
		Taints:         n.Spec.Taints,
		Unschedulable:  n.Spec.Unschedulable,
		KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		Addresses:      n.Status.Addresses,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			out.Ready = c.Status == "True"
			out.ReadyReason, out.ReadyMessage = c.Reason, c.Message
		}
	}
	return out
}

// ListNodes lists the cluster's nodes, sorted by name.
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	var list struct {
		Items []nodeJSON `json:"items"`
	}
	if err := c.do(ctx, "list nodes", http.MethodGet, "/api/v1/nodes", nil, "", nil, &list); err != nil {
		return nil, err
	}
	nodes := make([]Node, 0, len(list.Items))
	for _, n := range list.Items {
		nodes = append(nodes, n.node())
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// GetNode reads one node.
func (c *Client) GetNode(ctx context.Context, name string) (Node, error) {
	var n nodeJSON
	if err := c.do(ctx, "get node "+name, http.MethodGet, "/api/v1/nodes/"+url.PathEscape(name), nil, "", nil, &n); err != nil {
		return Node{}, err
	}
	return n.node(), nil
}

// NodePatch is a change to a node. Nil fields are left alone.
type NodePatch struct {
	// Labels and Annotations set each key to its value; a nil value
	// removes the key. Other keys are left alone.
	Labels      map[string]*string
	Annotations map[string]*string
	// Taints, when not nil, replaces the node's whole taint list.
	Taints *[]Taint
	// Unschedulable, when not nil, cordons (true) or uncordons (false).
	Unschedulable *bool
}

// body is the JSON merge patch (RFC 7396) of p.
func (p NodePatch) body() map[string]any {
	body := map[string]any{}
	meta := map[string]any{}
	if len(p.Labels) > 0 {
		meta["labels"] = p.Labels
	}
	if len(p.Annotations) > 0 {
		meta["annotations"] = p.Annotations
	}
	if len(meta) > 0 {
		body["metadata"] = meta
	}
	spec := map[string]any{}
	if p.Taints != nil {
		taints := *p.Taints
		if taints == nil {
			taints = []Taint{}
		}
		spec["taints"] = taints
	}
	if p.Unschedulable != nil {
		spec["unschedulable"] = *p.Unschedulable
	}
	if len(spec) > 0 {
		body["spec"] = spec
	}
	return body
}

// PatchNode applies p to a node with a JSON merge patch, as kubectl label
// and taint do, and returns the node as the API then reports it.
func (c *Client) PatchNode(ctx context.Context, name string, p NodePatch) (Node, error) {
	var n nodeJSON
	err := c.do(ctx, "patch node "+name, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), nil,
		"application/merge-patch+json", p.body(), &n)
	if err != nil {
		return Node{}, err
	}
	return n.node(), nil
}

// Cordon marks a node unschedulable.
func (c *Client) Cordon(ctx context.Context, name string) error {
	yes := true
	_, err := c.PatchNode(ctx, name, NodePatch{Unschedulable: &yes})
	return err
}

// Uncordon marks a node schedulable again.
func (c *Client) Uncordon(ctx context.Context, name string) error {
	no := false
	_, err := c.PatchNode(ctx, name, NodePatch{Unschedulable: &no})
	return err
}

// DeleteNode deletes a Node object. K3s's finalizer then removes the
// node's etcd member (embedded etcd). A node already gone is no error.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	err := c.do(ctx, "delete node "+name, http.MethodDelete, "/api/v1/nodes/"+url.PathEscape(name), nil, "", nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}
