package main

import (
	"encoding/json"
	"os"
	"sort"
	"sync"
	"time"
)

// The datastore. Every server holds a full copy and pulls its peers' copies
// (see cluster.go), so a server can answer alone for the whole cluster like
// an etcd member does. Records carry their own clocks and merging keeps the
// newest, which is enough for what nodes write: registration, heartbeats,
// deletion.

type member struct {
	Name     string    `json:"name"`
	NodeName string    `json:"nodeName"`
	URL      string    `json:"url"`
	Learner  bool      `json:"learner,omitempty"`
	Removed  bool      `json:"removed,omitempty"`
	Added    time.Time `json:"added"`
	Updated  time.Time `json:"updated"`
}

type taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

type nodeRec struct {
	Name           string            `json:"name"`
	UID            string            `json:"uid"`
	Created        time.Time         `json:"created"`
	PasswordHash   string            `json:"passwordHash"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Taints         []taint           `json:"taints,omitempty"`
	InternalIPs    []string          `json:"internalIPs,omitempty"`
	ExternalIPs    []string          `json:"externalIPs,omitempty"`
	Hostname       string            `json:"hostname"`
	KubeletVersion string            `json:"kubeletVersion"`
	OSImage        string            `json:"osImage"`
	Kernel         string            `json:"kernel"`
	Arch           string            `json:"arch"`
	Runtime        string            `json:"runtime"`
	PodCIDR        string            `json:"podCIDR,omitempty"`
	CPUs           int               `json:"cpus"`
	MemoryKi       int64             `json:"memoryKi"`
	Unschedulable  bool              `json:"unschedulable,omitempty"`
	Finalizers     []string          `json:"finalizers,omitempty"`
	// DeletionTimestamp is set on a Node that a finalizer holds back.
	DeletionTimestamp time.Time `json:"deletionTimestamp,omitempty"`
	Deleted           bool      `json:"deleted,omitempty"`
	ReadySince        time.Time `json:"readySince"`
	Updated           time.Time `json:"updated"`
	// StatusUpdated is when the kubelet last registered what it reports
	// (version, addresses, system info). Peers merge it apart from
	// Updated: an API write on one server (a cordon) must not bring back a
	// status that another server received later, as etcd's single store
	// would not.
	StatusUpdated time.Time `json:"statusUpdated"`
	Heartbeat     time.Time `json:"heartbeat"`

	rev int64
}

// stateData is what is written to disk and sent to peers.
type stateData struct {
	Mode           string              `json:"mode"` // "etcd", "sqlite" or "postgres"
	ClusterID      string              `json:"clusterID"`
	Bootstrap      map[string]string   `json:"bootstrap"` // tls-relative path -> PEM
	ServerPassword string              `json:"serverPassword"`
	AgentPassword  string              `json:"agentPassword"`
	Critical       map[string]string   `json:"critical"`
	Members        map[string]*member  `json:"members"`
	Nodes          map[string]*nodeRec `json:"nodes"`
	// Objects are the namespaced API objects (pods, configmaps,
	// poddisruptionbudgets), keyed by objKey.
	Objects map[string]*objRec `json:"objects,omitempty"`
}

// objRec is one namespaced API object as the apiserver stores it. A deleted
// object stays as a tombstone so that the deletion reaches every peer.
type objRec struct {
	Resource  string         `json:"resource"`
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Object    map[string]any `json:"object,omitempty"`
	Deleted   bool           `json:"deleted,omitempty"`
	Updated   time.Time      `json:"updated"`

	rev int64
}

func objKey(resource, ns, name string) string { return resource + "/" + ns + "/" + name }

type store struct {
	mu    sync.Mutex
	path  string
	d     stateData
	rev   int64
	dirty bool
	// changed is closed and replaced on every change, for watchers.
	changed chan struct{}
}

func newStore(path string) *store {
	return &store{path: path, changed: make(chan struct{}), d: stateData{
		Bootstrap: map[string]string{}, Critical: map[string]string{},
		Members: map[string]*member{}, Nodes: map[string]*nodeRec{}, Objects: map[string]*objRec{},
	}}
}

func loadStore(path string) (*store, error) {
	s := newStore(path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.d); err != nil {
		return nil, err
	}
	if s.d.Members == nil {
		s.d.Members = map[string]*member{}
	}
	if s.d.Nodes == nil {
		s.d.Nodes = map[string]*nodeRec{}
	}
	if s.d.Objects == nil {
		s.d.Objects = map[string]*objRec{}
	}
	s.rev = 1
	for _, n := range s.d.Nodes {
		n.rev = 1
	}
	for _, o := range s.d.Objects {
		o.rev = 1
	}
	return s, nil
}

// touch must be called with mu held after any change.
func (s *store) touch() {
	s.rev++
	s.dirty = true
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *store) save() error {
	if s.path == "" {
		// An external datastore keeps the state (see pg.go).
		return nil
	}
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(&s.d, "", " ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, b, 0o600)
}

// snapshot returns a deep copy, safe to encode without the lock.
func (s *store) snapshot() stateData {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(&s.d)
	var out stateData
	_ = json.Unmarshal(b, &out)
	return out
}

// merge folds a peer's copy into ours and reports whether anything changed.
func (s *store) merge(o stateData) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for name, m := range o.Members {
		cur, ok := s.d.Members[name]
		if !ok || m.Updated.After(cur.Updated) {
			c := *m
			s.d.Members[name] = &c
			changed = true
		}
	}
	for name, n := range o.Nodes {
		cur, ok := s.d.Nodes[name]
		switch {
		case !ok || n.Updated.After(cur.Updated):
			c := *n
			if ok && cur.Heartbeat.After(c.Heartbeat) {
				c.Heartbeat = cur.Heartbeat
			}
			if ok && cur.StatusUpdated.After(c.StatusUpdated) {
				copyStatus(&c, cur)
			}
			c.rev = s.rev + 1
			s.d.Nodes[name] = &c
			changed = true
		default:
			if n.StatusUpdated.After(cur.StatusUpdated) && !cur.Deleted {
				copyStatus(cur, n)
				cur.rev = s.rev + 1
				changed = true
			}
			if n.Heartbeat.After(cur.Heartbeat) && !cur.Deleted {
				cur.Heartbeat = n.Heartbeat
				cur.rev = s.rev + 1
				changed = true
			}
		}
	}
	for key, ob := range o.Objects {
		cur, ok := s.d.Objects[key]
		if !ok || ob.Updated.After(cur.Updated) {
			c := *ob
			c.rev = s.rev + 1
			s.d.Objects[key] = &c
			changed = true
		}
	}
	if changed {
		s.touch()
	}
	return changed
}

// liveMembers are the members not removed, sorted by name.
func (s *store) liveMembers() []member {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []member
	for _, m := range s.d.Members {
		if !m.Removed {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *store) nodes() []nodeRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []nodeRec
	for _, n := range s.d.Nodes {
		if !n.Deleted {
			out = append(out, *n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *store) node(name string) (nodeRec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.d.Nodes[name]
	if !ok || n.Deleted {
		return nodeRec{}, false
	}
	return *n, true
}

func (s *store) revision() (int64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.changed
}

// updateNode runs f on a node record under the lock; f returns false to
// leave the store untouched.
func (s *store) updateNode(name string, f func(n *nodeRec, exists bool) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.d.Nodes[name]
	exists := ok && !n.Deleted
	if !exists {
		n = &nodeRec{Name: name}
	}
	if !f(n, exists) {
		return
	}
	s.d.Nodes[name] = n
	n.rev = s.rev + 1
	s.touch()
}

func (s *store) updateMembers(f func(ms map[string]*member) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f(s.d.Members) {
		s.touch()
	}
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (o objRec) clone() objRec {
	o.Object = deepCopy(o.Object)
	return o
}

// objects lists the live objects of a resource, in one namespace or in all
// ("" ns), sorted by namespace and name.
func (s *store) objects(resource, ns string) []objRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []objRec
	for _, o := range s.d.Objects {
		if o.Deleted || o.Resource != resource || (ns != "" && o.Namespace != ns) {
			continue
		}
		out = append(out, o.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s *store) object(resource, ns, name string) (objRec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.d.Objects[objKey(resource, ns, name)]
	if !ok || o.Deleted {
		return objRec{}, false
	}
	return o.clone(), true
}

// updateObject runs f on an object record under the lock; f returns false
// to leave the store untouched.
func (s *store) updateObject(resource, ns, name string, f func(o *objRec, exists bool) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := objKey(resource, ns, name)
	o, ok := s.d.Objects[key]
	exists := ok && !o.Deleted
	var c objRec
	if exists {
		c = o.clone()
	} else {
		c = objRec{Resource: resource, Namespace: ns, Name: name}
	}
	if !f(&c, exists) {
		return
	}
	c.Updated = time.Now().UTC()
	c.rev = s.rev + 1
	if c.Deleted {
		c.Object = nil
	}
	s.d.Objects[key] = &c
	s.touch()
}

// copyStatus takes what the kubelet reports of a node from src.
func copyStatus(dst, src *nodeRec) {
	dst.Hostname, dst.InternalIPs, dst.ExternalIPs = src.Hostname, src.InternalIPs, src.ExternalIPs
	dst.KubeletVersion, dst.OSImage, dst.Kernel, dst.Arch = src.KubeletVersion, src.OSImage, src.Kernel, src.Arch
	dst.Runtime, dst.CPUs, dst.MemoryKi = src.Runtime, src.CPUs, src.MemoryKi
	dst.ReadySince, dst.StatusUpdated = src.ReadySince, src.StatusUpdated
}
