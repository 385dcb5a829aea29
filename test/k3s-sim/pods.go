package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// initPod fills in what the apiserver defaults and what the scheduler and
// the kubelet report for a new pod.
func (s *server) initPod(obj map[string]any, now time.Time) {
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj["spec"] = spec
	}
	for k, v := range map[string]any{"restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
		"terminationGracePeriodSeconds": 30, "serviceAccountName": "default", "enableServiceLinks": true, "priority": 0} {
		if _, ok := spec[k]; !ok {
			spec[k] = v
		}
	}
	if _, ok := spec["tolerations"]; !ok {
		spec["tolerations"] = []any{
			map[string]any{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
			map[string]any{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
		}
	}
	obj["status"] = map[string]any{"phase": "Pending", "qosClass": "BestEffort"}
	if node, _ := spec["nodeName"].(string); node != "" {
		s.startPod(obj, node, now)
		return
	}
	s.schedulePod(obj, now)
}

// schedulePod places a pod without nodeName on the node with the fewest
// pods among those it fits, or leaves it Pending with the scheduler's
// reasons.
func (s *server) schedulePod(obj map[string]any, now time.Time) bool {
	spec := obj["spec"].(map[string]any)
	nodes := s.st.nodes()
	count := map[string]int{}
	for _, p := range s.st.objects("pods", "") {
		count[strField(p.Object, "spec", "nodeName")]++
	}
	reasons := map[string]int{}
	var fits []string
	selector := stringMap(spec["nodeSelector"])
	tolerations, _ := spec["tolerations"].([]any)
	for i := range nodes {
		n := &nodes[i]
		o := n.render(now)
		switch {
		case n.Unschedulable:
			reasons["node(s) were unschedulable"]++
			continue
		case !(selectorMatches(selector, n.Labels)):
			reasons["node(s) didn't match Pod's node affinity/selector"]++
			continue
		}
		untolerated := ""
		for _, t := range o.Spec.Taints {
			if (t.Effect == "NoSchedule" || t.Effect == "NoExecute") && !tolerates(tolerations, t) {
				untolerated = t.Key
				if t.Value != "" {
					untolerated += ": " + t.Value
				}
				break
			}
		}
		if untolerated != "" {
			reasons[fmt.Sprintf("node(s) had untolerated taint {%s}", untolerated)]++
			continue
		}
		fits = append(fits, n.Name)
	}
	if len(fits) == 0 {
		var parts []string
		for r, c := range reasons {
			parts = append(parts, fmt.Sprintf("%d %s", c, r))
		}
		sort.Strings(parts)
		msg := fmt.Sprintf("0/%d nodes are available: %s.", len(nodes), strings.Join(parts, ", "))
		if len(nodes) == 0 {
			msg = "no nodes available to schedule pods"
		}
		obj["status"] = map[string]any{"phase": "Pending", "qosClass": "BestEffort", "conditions": []any{
			map[string]any{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg, "lastTransitionTime": rfc3339(now)}}}
		return false
	}
	sort.SliceStable(fits, func(i, j int) bool { return count[fits[i]] < count[fits[j]] })
	spec["nodeName"] = fits[0]
	s.startPod(obj, fits[0], now)
	return true
}

func selectorMatches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func tolerates(tolerations []any, t taintJSON) bool {
	for _, x := range tolerations {
		m, _ := x.(map[string]any)
		key, _ := m["key"].(string)
		op, _ := m["operator"].(string)
		eff, _ := m["effect"].(string)
		val, _ := m["value"].(string)
		if eff != "" && eff != t.Effect {
			continue
		}
		if key == "" && op == "Exists" {
			return true
		}
		if key != t.Key {
			continue
		}
		if op == "Exists" || val == t.Value {
			return true
		}
	}
	return false
}

// startPod is the kubelet of node starting the pod: Running and Ready with
// an address from the node's pod CIDR. On a node that does not exist the
// pod stays Pending, as no kubelet takes it.
func (s *server) startPod(obj map[string]any, node string, now time.Time) {
	n, ok := s.st.node(node)
	if !ok {
		return
	}
	ip := ""
	if _, cidr, err := net.ParseCIDR(n.PodCIDR); err == nil && cidr.IP.To4() != nil {
		// The lowest free address of the node's pod CIDR; .1 is cni0.
		used := map[string]bool{}
		for _, p := range s.st.objects("pods", "") {
			used[strField(p.Object, "status", "podIP")] = true
		}
		b := cidr.IP.To4()
		for h := 2; h < 255; h++ {
			if c := net.IPv4(b[0], b[1], b[2], byte(h)).String(); !used[c] {
				ip = c
				break
			}
		}
	}
	hostIP := ""
	if len(n.InternalIPs) > 0 {
		hostIP = n.InternalIPs[0]
	}
	spec := obj["spec"].(map[string]any)
	containers, _ := spec["containers"].([]any)
	var statuses []any
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		statuses = append(statuses, map[string]any{"name": cm["name"], "image": cm["image"], "imageID": "", "ready": true, "started": true,
			"restartCount": 0, "state": map[string]any{"running": map[string]any{"startedAt": rfc3339(now)}}})
	}
	ts := rfc3339(now)
	cond := func(t string) map[string]any {
		return map[string]any{"type": t, "status": "True", "lastProbeTime": nil, "lastTransitionTime": ts}
	}
	obj["status"] = map[string]any{"phase": "Running", "qosClass": "BestEffort", "hostIP": hostIP, "podIP": ip,
		"podIPs": []any{map[string]any{"ip": ip}}, "startTime": ts, "containerStatuses": statuses,
		"conditions": []any{cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")}}
}

// scheduleLoop is the scheduler retrying Pending pods and the pod garbage
// collector deleting pods whose node is gone.
func (s *server) scheduleLoop() {
	absent := map[string]time.Time{}
	for {
		time.Sleep(2 * time.Second)
		if !s.apiUp.Load() || !s.quorum() {
			continue
		}
		s.schedulePending(absent)
	}
}

// podGCQuarantine is how long a node must stay gone before the pod garbage
// collector deletes its pods (40s in kube-controller-manager).
func podGCQuarantine() time.Duration { return envDuration("K3S_SIM_POD_GC_QUARANTINE", 40*time.Second) }

func (s *server) schedulePending(absent map[string]time.Time) {
	for node := range absent {
		if _, ok := s.st.node(node); ok {
			delete(absent, node)
		}
	}
	for _, p := range s.st.objects("pods", "") {
		node := strField(p.Object, "spec", "nodeName")
		switch {
		case node == "":
			obj := p.Object
			if !s.schedulePod(obj, time.Now().UTC()) {
				continue
			}
			s.st.updateObject("pods", p.Namespace, p.Name, func(o *objRec, exists bool) bool {
				if !exists || strField(o.Object, "spec", "nodeName") != "" {
					return false
				}
				o.Object = obj
				return true
			})
		default:
			if _, ok := s.st.node(node); !ok {
				since, seen := absent[node]
				if !seen {
					absent[node] = time.Now()
					continue
				}
				if time.Since(since) < podGCQuarantine() {
					continue
				}
				s.st.updateObject("pods", p.Namespace, p.Name, func(o *objRec, exists bool) bool {
					if !exists {
						return false
					}
					infof("PodGC is force deleting Pod: %s/%s", p.Namespace, p.Name)
					o.Deleted = true
					return true
				})
			} else if strField(p.Object, "status", "phase") == "Pending" {
				obj := p.Object
				s.startPod(obj, node, time.Now().UTC())
				s.st.updateObject("pods", p.Namespace, p.Name, func(o *objRec, exists bool) bool {
					if !exists {
						return false
					}
					o.Object = obj
					return true
				})
			}
		}
	}
}

type pdbState struct {
	expected, healthy, desired, allowed int
}

// labelSelectorMatches evaluates a metav1.LabelSelector. A nil selector
// matches nothing; an empty one matches every pod (policy/v1).
func labelSelectorMatches(sel any, labels map[string]string) bool {
	m, ok := sel.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range stringMap(m["matchLabels"]) {
		if labels[k] != v {
			return false
		}
	}
	exprs, _ := m["matchExpressions"].([]any)
	for _, e := range exprs {
		em, _ := e.(map[string]any)
		key, _ := em["key"].(string)
		op, _ := em["operator"].(string)
		var vals []string
		if vs, ok := em["values"].([]any); ok {
			for _, v := range vs {
				if s, ok := v.(string); ok {
					vals = append(vals, s)
				}
			}
		}
		v, has := labels[key]
		in := false
		for _, x := range vals {
			if x == v {
				in = true
			}
		}
		switch op {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		}
	}
	return true
}

func podReady(p map[string]any) bool {
	st, _ := p["status"].(map[string]any)
	if st["phase"] != "Running" {
		return false
	}
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == "Ready" {
			return cm["status"] == "True"
		}
	}
	return false
}

// scaledValue resolves an IntOrString against a total, rounding up as the
// disruption controller does.
func scaledValue(v any, total int) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), true
	case string:
		if p, ok := strings.CutSuffix(x, "%"); ok {
			n, err := strconv.Atoi(p)
			if err != nil {
				return 0, false
			}
			return int(math.Ceil(float64(n) * float64(total) / 100)), true
		}
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// pdbStatus computes a budget's status from the pods it selects: pods
// without a scaling controller count as they are.
func (s *server) pdbStatus(o objRec) pdbState {
	spec, _ := o.Object["spec"].(map[string]any)
	var st pdbState
	for _, p := range s.st.objects("pods", o.Namespace) {
		if !labelSelectorMatches(spec["selector"], stringMap(meta(p.Object)["labels"])) {
			continue
		}
		st.expected++
		if podReady(p.Object) {
			st.healthy++
		}
	}
	if v, ok := spec["minAvailable"]; ok && v != nil {
		st.desired, _ = scaledValue(v, st.expected)
	} else if v, ok := spec["maxUnavailable"]; ok && v != nil {
		mu, _ := scaledValue(v, st.expected)
		st.desired = st.expected - mu
		if st.desired < 0 {
			st.desired = 0
		}
	}
	st.allowed = st.healthy - st.desired
	if st.allowed < 0 {
		st.allowed = 0
	}
	return st
}

// evictPod is the eviction subresource (policy/v1 Eviction): it deletes the
// pod unless a disruption budget forbids it.
func (s *server) evictPod(w http.ResponseWriter, r *http.Request, ns, name string) {
	var ev struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "the object provided is unrecognized: "+err.Error(), nil)
		return
	}
	if ev.Metadata.Name != "" && ev.Metadata.Name != name {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "name in URL does not match name in Eviction object", nil)
		return
	}
	pod, ok := s.st.object("pods", ns, name)
	if !ok {
		notFoundObj(w, podsRes, name)
		return
	}
	phase := strField(pod.Object, "status", "phase")
	if phase != "Succeeded" && phase != "Failed" {
		labels := stringMap(meta(pod.Object)["labels"])
		var budgets []objRec
		for _, b := range s.st.objects("poddisruptionbudgets", ns) {
			spec, _ := b.Object["spec"].(map[string]any)
			if labelSelectorMatches(spec["selector"], labels) {
				budgets = append(budgets, b)
			}
		}
		if len(budgets) > 1 {
			writeStatus(w, http.StatusInternalServerError, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", nil)
			return
		}
		if len(budgets) == 1 {
			st := s.pdbStatus(budgets[0])
			if st.allowed <= 0 && podReady(pod.Object) {
				writeStatus(w, http.StatusTooManyRequests, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
					map[string]any{"causes": []any{map[string]any{"reason": "DisruptionBudget",
						"message": fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", budgets[0].Name, st.desired, st.healthy)}}})
				return
			}
		}
	}
	if dryRun(r) {
		writeStatus(w, http.StatusCreated, "", "", nil)
		return
	}
	s.st.updateObject("pods", ns, name, func(o *objRec, exists bool) bool {
		if !exists {
			return false
		}
		o.Deleted = true
		return true
	})
	writeStatus(w, http.StatusCreated, "", "", nil)
}
