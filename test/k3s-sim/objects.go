package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Namespaced objects: pods, configmaps and poddisruptionbudgets, kept in the
// datastore like nodes, so that every server answers for them and a backup
// of the datastore carries them. Endpoints (all under the admin client
// certificate of the kubeconfig):
//
//	GET    /api/v1/pods, /api/v1/configmaps                 list, all namespaces
//	GET    /api/v1/namespaces/<ns>/<pods|configmaps>        list (labelSelector,
//	       fieldSelector: metadata.name, metadata.namespace, spec.nodeName, status.phase)
//	POST   /api/v1/namespaces/<ns>/<pods|configmaps>        create
//	GET    /api/v1/namespaces/<ns>/<pods|configmaps>/<name> get
//	PATCH  /api/v1/namespaces/<ns>/<pods|configmaps>/<name> merge / strategic merge patch
//	PUT    /api/v1/namespaces/<ns>/<pods|configmaps>/<name> replace
//	DELETE /api/v1/namespaces/<ns>/<pods|configmaps>/<name> delete (at once, no grace period)
//	POST   /api/v1/namespaces/<ns>/pods/<name>/eviction     evict, honouring disruption budgets
//	       /apis/policy/v1/[namespaces/<ns>/]poddisruptionbudgets[/<name>]  as above
//
// Pods are not run. A pod with spec.nodeName on an existing node, or one the
// scheduler places on a Ready, schedulable node whose NoSchedule/NoExecute
// taints it tolerates, is Running and Ready; others stay Pending.

type resDef struct {
	plural, singular, kind, group, version string
	short                                  []string
	columns                                []tableColumn
}

func (d resDef) apiVersion() string {
	if d.group == "" {
		return d.version
	}
	return d.group + "/" + d.version
}

// qualified is how Kubernetes names the resource in messages: "pods",
// "poddisruptionbudgets.policy".
func (d resDef) qualified() string {
	if d.group == "" {
		return d.plural
	}
	return d.plural + "." + d.group
}

var (
	podsRes = resDef{plural: "pods", singular: "pod", kind: "Pod", version: "v1", short: []string{"po"}, columns: podColumns}
	cmRes   = resDef{plural: "configmaps", singular: "configmap", kind: "ConfigMap", version: "v1", short: []string{"cm"}, columns: []tableColumn{
		nodeColumns[0],
		{"Data", "string", "", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0},
		nodeColumns[3],
	}}
	pdbRes = resDef{plural: "poddisruptionbudgets", singular: "poddisruptionbudget", kind: "PodDisruptionBudget", group: "policy", version: "v1", short: []string{"pdb"}, columns: []tableColumn{
		nodeColumns[0],
		{"Min Available", "string", "", "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".", 0},
		{"Max Unavailable", "string", "", "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".", 0},
		{"Allowed Disruptions", "integer", "", "Number of pod disruptions that are currently allowed.", 0},
		nodeColumns[3],
	}}
)

func notFoundObj(w http.ResponseWriter, d resDef, name string) {
	details := map[string]any{"name": name, "kind": d.plural}
	if d.group != "" {
		details["group"] = d.group
	}
	writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", d.qualified(), name), details)
}

func namespaceExists(ns string) bool {
	i := sort.SearchStrings(namespaces, ns)
	return i < len(namespaces) && namespaces[i] == ns
}

func meta(obj map[string]any) map[string]any {
	m, ok := obj["metadata"].(map[string]any)
	if !ok {
		m = map[string]any{}
		obj["metadata"] = m
	}
	return m
}

func strField(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			if s, ok := x.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

// objectsAPI serves one resource. ns is "" for a list across namespaces.
func (s *server) objectsAPI(w http.ResponseWriter, r *http.Request, d resDef, ns, name, sub string) {
	if ns != "" && !namespaceExists(ns) && r.Method != http.MethodGet {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("namespaces %q not found", ns), map[string]any{"name": ns, "kind": "namespaces"})
		return
	}
	if sub != "" {
		if d.plural == "pods" && sub == "eviction" && r.Method == http.MethodPost {
			s.evictPod(w, r, ns, name)
			return
		}
		if d.plural == "pods" && sub == "status" && r.Method == http.MethodGet {
			s.getObject(w, r, d, ns, name)
			return
		}
		notFound(w)
		return
	}
	switch {
	case name == "" && r.Method == http.MethodGet:
		s.listObjects(w, r, d, ns)
	case name == "" && r.Method == http.MethodPost && ns != "":
		s.createObject(w, r, d, ns)
	case name != "" && r.Method == http.MethodGet:
		s.getObject(w, r, d, ns, name)
	case name != "" && r.Method == http.MethodDelete:
		s.deleteObject(w, r, d, ns, name)
	case name != "" && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		s.changeObject(w, r, d, ns, name)
	default:
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource", nil)
	}
}

// render returns the object as the apiserver shows it, with its
// resourceVersion and, for budgets, the status the disruption controller
// keeps.
func (s *server) renderObj(d resDef, o objRec) map[string]any {
	obj := deepCopy(o.Object)
	obj["kind"], obj["apiVersion"] = d.kind, d.apiVersion()
	meta(obj)["resourceVersion"] = strconv.FormatInt(o.rev, 10)
	if d.plural == "poddisruptionbudgets" {
		st := s.pdbStatus(o)
		obj["status"] = map[string]any{
			"observedGeneration": 1, "disruptionsAllowed": st.allowed, "currentHealthy": st.healthy,
			"desiredHealthy": st.desired, "expectedPods": st.expected,
			"conditions": []any{map[string]any{"type": "DisruptionAllowed", "status": map[bool]string{true: "True", false: "False"}[st.allowed > 0],
				"reason": map[bool]string{true: "SufficientPods", false: "InsufficientPods"}[st.allowed > 0], "message": "",
				"observedGeneration": 1, "lastTransitionTime": strField(obj, "metadata", "creationTimestamp")}},
		}
	}
	return obj
}

func (s *server) objFields(d resDef, o objRec) func(string) (string, bool) {
	return func(k string) (string, bool) {
		switch k {
		case "metadata.name":
			return o.Name, true
		case "metadata.namespace":
			return o.Namespace, true
		}
		if d.plural == "pods" {
			switch k {
			case "spec.nodeName":
				return strField(o.Object, "spec", "nodeName"), true
			case "status.phase":
				return strField(o.Object, "status", "phase"), true
			}
		}
		return "", false
	}
}

func (s *server) filteredObjects(r *http.Request, d resDef, ns string) ([]objRec, error) {
	q := r.URL.Query()
	ls, err := parseSelector(q.Get("labelSelector"))
	if err != nil {
		return nil, err
	}
	fs, err := parseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, err
	}
	for _, t := range fs {
		if _, ok := s.objFields(d, objRec{})(t.key); !ok {
			return nil, fmt.Errorf("field label not supported: %s", t.key)
		}
	}
	var out []objRec
	for _, o := range s.st.objects(d.plural, ns) {
		labels := stringMap(meta(o.Object)["labels"])
		if !ls.matches(func(k string) (string, bool) { v, ok := labels[k]; return v, ok }) || !fs.matches(s.objFields(d, o)) {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

func (s *server) listObjects(w http.ResponseWriter, r *http.Request, d resDef, ns string) {
	if v := r.URL.Query().Get("watch"); v == "true" || v == "1" {
		s.watchObjects(w, r, d, ns)
		return
	}
	objs, err := s.filteredObjects(r, d, ns)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), nil)
		return
	}
	rv, _ := s.st.revision()
	if wantsTable(r) {
		writeJSON(w, 200, s.objTable(r, d, objs, rv))
		return
	}
	items := []any{}
	for _, o := range objs {
		obj := s.renderObj(d, o)
		delete(obj, "kind")
		delete(obj, "apiVersion")
		items = append(items, obj)
	}
	writeJSON(w, 200, map[string]any{"kind": d.kind + "List", "apiVersion": d.apiVersion(),
		"metadata": listMeta{ResourceVersion: strconv.FormatInt(rv, 10)}, "items": items})
}

// watchObjects streams changes like watchNodes does.
func (s *server) watchObjects(w http.ResponseWriter, r *http.Request, d resDef, ns string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeStatus(w, http.StatusInternalServerError, "InternalError", "streaming unsupported", nil)
		return
	}
	timeout := 30 * time.Minute
	if v, err := strconv.Atoi(r.URL.Query().Get("timeoutSeconds")); err == nil && v > 0 {
		timeout = time.Duration(v) * time.Second
	}
	deadline := time.After(timeout)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	fl.Flush()
	sent := map[string]map[string]any{}
	skipFirst := r.URL.Query().Get("resourceVersion") != "" && r.URL.Query().Get("resourceVersion") != "0"
	first := true
	enc := json.NewEncoder(w)
	for {
		objs, _ := s.filteredObjects(r, d, ns)
		rv, changed := s.st.revision()
		seen := map[string]bool{}
		for _, o := range objs {
			key := o.Namespace + "/" + o.Name
			seen[key] = true
			obj := s.renderObj(d, o)
			prev, had := sent[key]
			sent[key] = obj
			if (first && skipFirst) || (had && strField(prev, "metadata", "resourceVersion") == strField(obj, "metadata", "resourceVersion")) {
				continue
			}
			typ := map[bool]string{true: "MODIFIED", false: "ADDED"}[had]
			var out any = obj
			if wantsTable(r) {
				out = s.objTable(r, d, []objRec{o}, rv)
			}
			if enc.Encode(map[string]any{"type": typ, "object": out}) != nil {
				return
			}
		}
		for key, obj := range sent {
			if !seen[key] {
				delete(sent, key)
				if enc.Encode(map[string]any{"type": "DELETED", "object": obj}) != nil {
					return
				}
			}
		}
		first = false
		fl.Flush()
		if !waitWatch(r, deadline, changed) {
			return
		}
	}
}

func (s *server) objTable(r *http.Request, d resDef, objs []objRec, rv int64) table {
	now := time.Now()
	t := table{Kind: "Table", APIVersion: "meta.k8s.io/v1", Metadata: listMeta{ResourceVersion: strconv.FormatInt(rv, 10)},
		ColumnDefinitions: d.columns, Rows: []tableRow{}}
	for _, o := range objs {
		obj := s.renderObj(d, o)
		created, _ := time.Parse(time.RFC3339, strField(obj, "metadata", "creationTimestamp"))
		age := humanDuration(now.Sub(created))
		var cells []any
		switch d.plural {
		case "pods":
			cells = podCells(obj, age)
		case "configmaps":
			cells = []any{o.Name, len(stringMap(obj["data"])) + len(stringMap(obj["binaryData"])), age}
		case "poddisruptionbudgets":
			spec, _ := obj["spec"].(map[string]any)
			st, _ := obj["status"].(map[string]any)
			cells = []any{o.Name, intOrStringText(spec["minAvailable"]), intOrStringText(spec["maxUnavailable"]), st["disruptionsAllowed"], age}
		}
		var rowObj any
		switch r.URL.Query().Get("includeObject") {
		case "None":
		case "Object":
			rowObj = obj
		default:
			rowObj = map[string]any{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
		}
		t.Rows = append(t.Rows, tableRow{Cells: cells, Object: rowObj})
	}
	return t
}

func intOrStringText(v any) string {
	switch x := v.(type) {
	case nil:
		return "N/A"
	case float64:
		return strconv.Itoa(int(x))
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func podCells(obj map[string]any, age string) []any {
	spec, _ := obj["spec"].(map[string]any)
	st, _ := obj["status"].(map[string]any)
	containers, _ := spec["containers"].([]any)
	ready := 0
	if cs, ok := st["containerStatuses"].([]any); ok {
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok && m["ready"] == true {
				ready++
			}
		}
	}
	phase, _ := st["phase"].(string)
	if strField(obj, "metadata", "deletionTimestamp") != "" {
		phase = "Terminating"
	}
	ip, _ := st["podIP"].(string)
	if ip == "" {
		ip = "<none>"
	}
	node, _ := spec["nodeName"].(string)
	if node == "" {
		node = "<none>"
	}
	return []any{strField(obj, "metadata", "name"), fmt.Sprintf("%d/%d", ready, len(containers)), phase, "0", age, ip, node, "<none>", "<none>"}
}

func (s *server) getObject(w http.ResponseWriter, r *http.Request, d resDef, ns, name string) {
	o, ok := s.st.object(d.plural, ns, name)
	if !ok {
		notFoundObj(w, d, name)
		return
	}
	if wantsTable(r) {
		rv, _ := s.st.revision()
		writeJSON(w, 200, s.objTable(r, d, []objRec{o}, rv))
		return
	}
	writeJSON(w, 200, s.renderObj(d, o))
}

func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), nil)
		return nil, false
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "the object provided is unrecognized: "+err.Error(), nil)
		return nil, false
	}
	return obj, true
}

func dryRun(r *http.Request) bool { return r.URL.Query().Get("dryRun") == "All" }

func (s *server) createObject(w http.ResponseWriter, r *http.Request, d resDef, ns string) {
	obj, ok := readBody(w, r)
	if !ok {
		return
	}
	m := meta(obj)
	name, _ := m["name"].(string)
	if name == "" {
		if g, _ := m["generateName"].(string); g != "" {
			name = g + strings.ToLower(randomHex(3)[:5])
		}
	}
	if name == "" {
		writeStatus(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("%s %q is invalid: metadata.name: Required value: name or generateName is required", d.kind, ""), map[string]any{"kind": d.kind})
		return
	}
	if n, _ := m["namespace"].(string); n != "" && n != ns {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request", nil)
		return
	}
	if msg := validateObject(d, obj); msg != "" {
		writeStatus(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("%s %q is invalid: %s", d.kind, name, msg), map[string]any{"name": name, "kind": d.kind})
		return
	}
	now := time.Now().UTC()
	m["name"], m["namespace"] = name, ns
	m["uid"] = newUID()
	m["creationTimestamp"] = rfc3339(now)
	delete(m, "resourceVersion")
	delete(obj, "kind")
	delete(obj, "apiVersion")
	if d.plural == "pods" {
		s.initPod(obj, now)
	}
	if d.plural == "poddisruptionbudgets" {
		m["generation"] = 1
		delete(obj, "status")
	}
	exists := false
	var stored objRec
	s.st.updateObject(d.plural, ns, name, func(o *objRec, ex bool) bool {
		if ex {
			exists = true
			return false
		}
		o.Object = obj
		stored = *o
		return !dryRun(r)
	})
	if exists {
		writeStatus(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("%s %q already exists", d.qualified(), name), map[string]any{"name": name, "kind": d.plural})
		return
	}
	if o, ok := s.st.object(d.plural, ns, name); ok && !dryRun(r) {
		stored = o
	}
	writeJSON(w, http.StatusCreated, s.renderObj(d, stored))
}

// validateObject checks what Kubernetes would refuse and the simulator
// depends on.
func validateObject(d resDef, obj map[string]any) string {
	switch d.plural {
	case "pods":
		spec, _ := obj["spec"].(map[string]any)
		cs, _ := spec["containers"].([]any)
		if len(cs) == 0 {
			return "spec.containers: Required value"
		}
		for i, c := range cs {
			cm, _ := c.(map[string]any)
			if n, _ := cm["name"].(string); n == "" {
				return fmt.Sprintf("spec.containers[%d].name: Required value", i)
			}
			if im, _ := cm["image"].(string); im == "" {
				return fmt.Sprintf("spec.containers[%d].image: Required value", i)
			}
		}
	case "poddisruptionbudgets":
		spec, _ := obj["spec"].(map[string]any)
		if spec["minAvailable"] != nil && spec["maxUnavailable"] != nil {
			return "spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both set"
		}
	}
	return ""
}

func (s *server) changeObject(w http.ResponseWriter, r *http.Request, d resDef, ns, name string) {
	var patch map[string]any
	var ok bool
	if r.Method == http.MethodPatch {
		patch, ok = readPatch(w, r)
	} else {
		patch, ok = readBody(w, r)
	}
	if !ok {
		return
	}
	found := false
	msg := ""
	s.st.updateObject(d.plural, ns, name, func(o *objRec, exists bool) bool {
		if !exists {
			return false
		}
		found = true
		var next map[string]any
		if r.Method == http.MethodPatch {
			next = toMap(mergePatch(o.Object, patch))
		} else {
			next = patch
		}
		delete(next, "kind")
		delete(next, "apiVersion")
		m, old := meta(next), meta(o.Object)
		for _, k := range []string{"uid", "creationTimestamp", "name", "namespace"} {
			m[k] = old[k]
		}
		delete(m, "resourceVersion")
		if d.plural == "pods" {
			// Spec fields of a pod other than images are immutable; keep
			// the status the node reported.
			next["status"] = o.Object["status"]
			if strField(next, "spec", "nodeName") != strField(o.Object, "spec", "nodeName") {
				msg = fmt.Sprintf("Pod %q is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)", name)
				return false
			}
		}
		if d.plural == "poddisruptionbudgets" {
			gen, _ := old["generation"].(float64)
			m["generation"] = int(gen) + 1
			delete(next, "status")
		}
		if equalJSON(next, o.Object) {
			return false
		}
		o.Object = next
		return !dryRun(r)
	})
	if !found {
		notFoundObj(w, d, name)
		return
	}
	if msg != "" {
		writeStatus(w, http.StatusUnprocessableEntity, "Invalid", msg, map[string]any{"name": name, "kind": d.kind})
		return
	}
	o, _ := s.st.object(d.plural, ns, name)
	writeJSON(w, http.StatusOK, s.renderObj(d, o))
}

func (s *server) deleteObject(w http.ResponseWriter, r *http.Request, d resDef, ns, name string) {
	var last objRec
	found := false
	s.st.updateObject(d.plural, ns, name, func(o *objRec, exists bool) bool {
		if !exists {
			return false
		}
		found = true
		last = o.clone()
		if dryRun(r) {
			return false
		}
		o.Deleted = true
		return true
	})
	if !found {
		notFoundObj(w, d, name)
		return
	}
	obj := s.renderObj(d, last)
	if d.plural == "pods" {
		// A pod's deletion answers with the pod as it goes away.
		meta(obj)["deletionTimestamp"] = rfc3339(time.Now())
		meta(obj)["deletionGracePeriodSeconds"] = 0
		writeJSON(w, http.StatusOK, obj)
		return
	}
	details := map[string]any{"name": name, "kind": d.plural, "uid": meta(obj)["uid"]}
	if d.group != "" {
		details["group"] = d.group
	}
	writeStatus(w, http.StatusOK, "", "", details)
}

// waitWatch waits until the store changes (or two seconds pass, for the
// heartbeat-driven Ready condition) and reports false when the watch is
// over: the client went away or its timeout passed.
func waitWatch(r *http.Request, deadline <-chan time.Time, changed <-chan struct{}) bool {
	select {
	case <-r.Context().Done():
		return false
	case <-deadline:
		return false
	case <-changed:
	case <-time.After(2 * time.Second):
	}
	return true
}
