package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Servers of an etcd cluster pull each other's datastore every syncInterval.
// A peer whose copy could not be fetched for peerTimeout counts as down;
// without a majority of voting members up, the API refuses to serve, as
// Kubernetes does when etcd has lost quorum.
const syncInterval = 2 * time.Second

func peerTimeout() time.Duration { return envDuration("K3S_SIM_PEER_TIMEOUT", 7*time.Second) }

func learnerTimeout() time.Duration { return envDuration("K3S_SIM_LEARNER_TIMEOUT", time.Minute) }

func (s *server) syncLoop() {
	down := map[string]bool{}
	hadQuorum := true
	var lastMembership time.Time
	for {
		var wg sync.WaitGroup
		for _, m := range s.st.liveMembers() {
			if m.Name == s.memberName {
				continue
			}
			wg.Add(1)
			go func(m member) {
				defer wg.Done()
				err := s.pull(m)
				s.peerMu.Lock()
				defer s.peerMu.Unlock()
				if err != nil {
					if !down[m.Name] {
						down[m.Name] = true
						warnf("Failed to reach etcd member %s at %s: %v", m.Name, peerURL(m.URL), netCause(err))
					}
					return
				}
				if down[m.Name] {
					infof("etcd member %s at %s is reachable again", m.Name, peerURL(m.URL))
				}
				delete(down, m.Name)
			}(m)
		}
		wg.Wait()
		if err := s.membershipError(); err != nil {
			if time.Since(lastMembership) > 15*time.Second {
				infof("Failed to test data store connection: %v", err)
				lastMembership = time.Now()
			}
		}
		if q := s.quorum(); q != hadQuorum && s.apiUp.Load() {
			if q {
				infof("etcd cluster has a quorum of members again; datastore available")
			} else {
				errorf("etcd cluster has lost quorum: etcdserver: no leader")
			}
			hadQuorum = q
		}
		time.Sleep(syncInterval)
	}
}

func (s *server) peerClient(name string) *http.Client {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	c, ok := s.peerC[name]
	if !ok {
		c = caClient(s.serverCA.certPEM, 3*time.Second)
		s.peerC[name] = c
	}
	return c
}

func (s *server) pull(m member) error {
	body, err := do(s.peerClient(m.Name), http.MethodGet, m.URL+"/v1-k3s/sim/state", "server", s.st.d.ServerPassword, s.memberHeader(), nil)
	if err != nil {
		return err
	}
	var d stateData
	if err := json.Unmarshal(body, &d); err != nil {
		return err
	}
	if d.ClusterID != s.st.d.ClusterID {
		return errClusterID
	}
	s.st.merge(d)
	s.peerMu.Lock()
	s.peerOK[m.Name] = time.Now()
	s.peerMu.Unlock()
	return nil
}

// netCause drops the request URL from a client error; what matters in the
// log is why the member could not be reached.
func netCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// memberHeader names the calling member, so that a request from a peer
// counts as a sign of life of that peer, as etcd's heartbeats go both ways.
func (s *server) memberHeader() map[string]string {
	return map[string]string{"k3s-Member-Name": s.memberName}
}

func (s *server) sawMember(name string) {
	if name == "" || name == s.memberName {
		return
	}
	s.peerMu.Lock()
	s.peerOK[name] = time.Now()
	s.peerMu.Unlock()
}

type simpleError string

func (e simpleError) Error() string { return string(e) }

const errClusterID = simpleError("member belongs to a different cluster")

// quorum reports whether a majority of voting members, this server among
// them, is reachable.
func (s *server) quorum() bool {
	if s.st.d.Mode != "etcd" {
		return true
	}
	voters, up, self := 0, 0, false
	now := time.Now()
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	for _, m := range s.st.liveMembers() {
		if m.Learner {
			continue
		}
		voters++
		switch {
		case m.Name == s.memberName:
			self = true
			up++
		case now.Sub(s.peerOK[m.Name]) < peerTimeout():
			up++
		}
	}
	return self && up*2 > voters
}

func (s *server) waitQuorum() {
	last := time.Now()
	for !s.quorum() {
		if time.Since(last) > 15*time.Second {
			if err := s.membershipError(); err != nil {
				infof("Failed to test data store connection: %v", err)
			}
			infof("Waiting for etcd server to become available")
			last = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// membershipError is what k3s reports when this server's etcd member was
// removed from the cluster (its Node deleted, or the remove annotation).
func (s *server) membershipError() error {
	if s.st.d.Mode != "etcd" || s.memberName == "" {
		return nil
	}
	var found []string
	for _, m := range s.st.liveMembers() {
		if m.Name == s.memberName {
			return nil
		}
		found = append(found, m.Name+"="+peerURL(m.URL))
	}
	return fmt.Errorf("this server is a not a member of the etcd cluster. Found %v, expect: %s=%s", found, s.memberName, peerURL(s.url))
}

// handleJoin adds a learner member, refusing a second learner at a time as
// etcd does.
func (s *server) handleJoin(w http.ResponseWriter, r *http.Request) {
	if s.st.d.Mode != "etcd" {
		http.Error(w, "etcd disabled", http.StatusBadRequest)
		return
	}
	if !s.quorum() {
		http.Error(w, "etcdserver: no leader", http.StatusServiceUnavailable)
		return
	}
	var req joinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || req.URL == "" {
		http.Error(w, "bad join request", http.StatusBadRequest)
		return
	}
	refused := false
	s.st.updateMembers(func(ms map[string]*member) bool {
		now := time.Now().UTC()
		changed := false
		for _, m := range ms {
			if m.Removed || m.Name == req.Name {
				continue
			}
			if m.URL == req.URL {
				infof("Removing name=%s peerURL=%s from etcd cluster", m.Name, peerURL(m.URL))
				m.Removed, m.Updated, changed = true, now, true
				continue
			}
			if m.Learner {
				if now.Sub(m.Added) > learnerTimeout() {
					infof("Removing learner member %s that failed to promote", m.Name)
					m.Removed, m.Updated, changed = true, now, true
					continue
				}
				refused = true
			}
		}
		if refused {
			return changed
		}
		ms[req.Name] = &member{Name: req.Name, NodeName: req.NodeName, URL: req.URL, Learner: true, Added: now, Updated: now}
		return true
	})
	if refused {
		http.Error(w, "etcdserver: too many learner members in cluster", http.StatusInternalServerError)
		return
	}
	infof("Added learner member %s=%s to etcd cluster", req.Name, peerURL(req.URL))
	s.writeState(w)
}

// handlePromote makes a caught-up learner a voting member.
func (s *server) handlePromote(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" {
		http.Error(w, "bad promote request", http.StatusBadRequest)
		return
	}
	if !s.quorum() {
		http.Error(w, "etcdserver: no leader", http.StatusServiceUnavailable)
		return
	}
	found := false
	s.st.updateMembers(func(ms map[string]*member) bool {
		m, ok := ms[req.Name]
		if !ok || m.Removed {
			return false
		}
		found = true
		if !m.Learner {
			return false
		}
		m.Learner = false
		m.Updated = time.Now().UTC()
		return true
	})
	if !found {
		http.Error(w, "etcdserver: member not found", http.StatusNotFound)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (s *server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	if s.st.d.Mode != "etcd" {
		warnf("Received HTTP bootstrap request from %s, but embedded etcd is not enabled.", r.RemoteAddr)
		http.Error(w, "etcd disabled", http.StatusBadRequest)
		return
	}
	snap := s.st.snapshot()
	snap.Nodes = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&snap)
}

func (s *server) writeState(w http.ResponseWriter) {
	snap := s.st.snapshot()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&snap)
}
