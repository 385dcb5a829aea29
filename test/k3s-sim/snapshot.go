package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Snapshots and cluster reset.
//
// "k3s etcd-snapshot save [--name N]" asks the running server (by default
// https://127.0.0.1:6443, --server to change; authenticated with the token
// in <data-dir>/server/token or --token) to write
// server/db/snapshots/<N>-<node>-<unix time>; N defaults to "on-demand".
// Without embedded etcd the server refuses and the command ends with
// "see server log for details: etcd datastore disabled". A snapshot holds
// the whole datastore: bootstrap data, members, nodes and objects.
//
// "k3s server --cluster-reset [--cluster-reset-restore-path=<file>]"
// resets the etcd membership to this server alone, after restoring the
// snapshot if one is given (a bare file name is looked up in
// server/db/snapshots), then exits asking for a restart without the flag.
// The snapshot's bootstrap data is bound to the token of the cluster it came
// from; another token fails with "bootstrap data already found and
// encrypted with different token".

type snapshotRequest struct {
	Operation string `json:"operation"`
	Name      string `json:"name"`
}

type snapshotResult struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

func (s *server) snapshotDir() string {
	if d := s.o.str("etcd-snapshot-dir"); d != "" {
		return hostPath(d)
	}
	return filepath.Join(s.serverDir, "db", "snapshots")
}

// handleSnapshot serves POST /db/snapshot for "k3s etcd-snapshot save".
func (s *server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	if s.supervisorUser(r) != "server" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	var req snapshotRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Operation != "save" {
		http.Error(w, "invalid snapshot request", http.StatusBadRequest)
		return
	}
	if s.st.d.Mode != "etcd" {
		errorf("Error in etcd snapshot handler: etcd datastore disabled")
		http.Error(w, "etcd datastore disabled", http.StatusInternalServerError)
		return
	}
	if !s.quorum() {
		http.Error(w, "etcdserver: no leader", http.StatusServiceUnavailable)
		return
	}
	if req.Name == "" {
		req.Name = "on-demand"
	}
	name := fmt.Sprintf("%s-%s-%d", req.Name, s.nodeName, time.Now().Unix())
	path := filepath.Join(s.snapshotDir(), name)
	infof("Saving etcd snapshot to %s", displayPath(path))
	snap := s.st.snapshot()
	b, _ := json.MarshalIndent(&snap, "", " ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		errorf("Error in etcd snapshot handler: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		errorf("Error in etcd snapshot handler: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, snapshotResult{Name: name, Path: displayPath(path)})
}

// snapshotSave is the client side of "k3s etcd-snapshot save".
func snapshotSave(args []string, dataDir string) int {
	name, serverURL, token := "", "https://127.0.0.1:6443", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch strings.SplitN(a, "=", 2)[0] {
		case "--name":
			name = val()
		case "--server", "-s":
			serverURL = val()
		case "--token", "-t":
			token = val()
		}
	}
	tokenFile := filepath.Join(hostPath(dataDir), "server", "token")
	if token == "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			fatalf("open %s: no such file or directory", displayPath(tokenFile))
		}
		token = strings.TrimSpace(string(b))
	}
	t, err := parseToken(token)
	if err != nil {
		fatalf("%v", err)
	}
	base, err := normalizeServerURL(serverURL)
	if err != nil {
		fatalf("%v", err)
	}
	ca, err := os.ReadFile(filepath.Join(hostPath(dataDir), "server", "tls", "server-ca.crt"))
	if err != nil {
		if ca, err = getCACerts(base); err != nil {
			fatalf("%v", err)
		}
	}
	body, _ := json.Marshal(snapshotRequest{Operation: "save", Name: name})
	resp, err := do(caClient(ca, time.Minute), http.MethodPost, base+"/db/snapshot", "server", t.password, nil, body)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			fatalf("see server log for details: %s", strings.TrimSpace(he.body))
		}
		fatalf("%v", err)
	}
	var res snapshotResult
	if err := json.Unmarshal(resp, &res); err != nil {
		fatalf("%v", err)
	}
	infof("Snapshot %s saved.", res.Name)
	return 0
}

// clusterReset runs "k3s server --cluster-reset" and exits.
func (s *server) clusterReset(tok *joinToken, etcdState string) {
	restore := s.o.str("cluster-reset-restore-path")
	var st *store
	if restore != "" {
		path := restore
		if !strings.Contains(path, "/") {
			path = filepath.Join(s.snapshotDir(), path)
		} else {
			path = hostPath(path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			failPrepare(fmt.Errorf("start managed database: etcd: snapshot path does not exist: %s", restore))
		}
		st = newStore(etcdState)
		if err := json.Unmarshal(b, &st.d); err != nil || st.d.Mode != "etcd" || st.d.Bootstrap["server-ca.crt"] == "" {
			failPrepare(fmt.Errorf("start managed database: failed to restore snapshot %s: not an etcd snapshot", restore))
		}
		password := ""
		if tok != nil {
			if err := tok.validateCAHash([]byte(st.d.Bootstrap["server-ca.crt"])); err != nil {
				failPrepare(err)
			}
			password = tok.password
		} else if b, err := os.ReadFile(filepath.Join(s.serverDir, "token")); err == nil {
			if t, err := parseToken(strings.TrimSpace(string(b))); err == nil {
				password = t.password
			}
		}
		if password != st.d.ServerPassword {
			failPrepare(errors.New("bootstrap data already found and encrypted with different token"))
		}
		old := filepath.Join(s.serverDir, "db", "etcd")
		if fileExists(old) {
			moved := fmt.Sprintf("%s-old-%d", old, time.Now().Unix())
			if err := os.Rename(old, moved); err != nil {
				failPrepare(err)
			}
			infof("Pre-restore etcd database moved to %s", displayPath(moved))
		}
		infof("Restoring etcd snapshot %s", displayPath(path))
	} else {
		var err error
		if st, err = loadStore(etcdState); err != nil {
			failPrepare(fmt.Errorf("start managed database: etcd: cluster-reset requires an existing etcd database: %v", err))
		}
		if tok != nil && tok.password != st.d.ServerPassword {
			failPrepare(errors.New("bootstrap data already found and encrypted with different token"))
		}
	}
	if st.d.Members == nil {
		st.d.Members = map[string]*member{}
	}
	if st.d.Nodes == nil {
		st.d.Nodes = map[string]*nodeRec{}
	}
	if st.d.Objects == nil {
		st.d.Objects = map[string]*objRec{}
	}
	if b, err := os.ReadFile(filepath.Join(s.serverDir, "db", "etcd", "name")); err == nil && restore == "" {
		s.memberName = strings.TrimSpace(string(b))
	} else {
		s.memberName = s.newMemberName()
	}
	now := time.Now().UTC()
	st.d.Members = map[string]*member{s.memberName: {Name: s.memberName, NodeName: s.nodeName, URL: s.url, Added: now, Updated: now}}
	st.path = etcdState
	st.mu.Lock()
	st.touch()
	st.mu.Unlock()
	s.st = st
	s.ensureEtcdFiles()
	if err := s.st.save(); err != nil {
		failPrepare(err)
	}
	s.loadCAs()
	s.writeBootstrapFiles()
	s.writeTokenFiles(false)
	infof("Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")
	exitFunc(0)
}
