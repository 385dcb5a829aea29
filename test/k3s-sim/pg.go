package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// External datastore (datastore-endpoint: postgres://user:pass@host:5432/db).
//
// Every server of the cluster keeps its state in one PostgreSQL database,
// in a table of its own (k3s_sim: name, value, updated), under keys named
// like Kubernetes' registry paths:
//
//	/bootstrap/<first 12 hex of sha256(token password)>  CAs, passwords, critical settings,
//	                                                     AES-GCM encrypted with a key from the token
//	/registry/minions/<node>                              a node record
//	/registry/<resource>/<namespace>/<name>               pods, configmaps, poddisruptionbudgets
//
// As with K3s, the first server writes the bootstrap data; a server whose
// token opens no bootstrap entry while another exists fails with
// "bootstrap data already found and encrypted with different token".
// Servers pull the registry every second and push their changes, merging
// records by their own clocks as embedded etcd peers do.

const pgTable = "k3s_sim"

type pgStore struct {
	endpoint string
	conn     *pgx.Conn
	pushed   map[string]int64 // key -> local revision last written
}

func redactEndpoint(ep string) string {
	u, err := url.Parse(ep)
	if err != nil || u.User == nil {
		return ep
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func (p *pgStore) connect(ctx context.Context) error {
	if p.conn != nil && !p.conn.IsClosed() {
		return nil
	}
	c, err := pgx.Connect(ctx, p.endpoint)
	if err != nil {
		return err
	}
	p.conn = c
	_, err = c.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgTable+` (name text PRIMARY KEY, value bytea NOT NULL, updated timestamptz NOT NULL DEFAULT now())`)
	return err
}

func bootstrapKey(password string) string {
	d := sha256.Sum256([]byte(password))
	return "/bootstrap/" + hex.EncodeToString(d[:])[:12]
}

func tokenKey(password string, salt []byte) []byte {
	k := sha256.Sum256(append(append([]byte(nil), salt...), password...))
	return k[:]
}

func encryptBootstrap(password string, plain []byte) []byte {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	block, _ := aes.NewCipher(tokenKey(password, salt))
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return append(append(salt, nonce...), gcm.Seal(nil, nonce, plain, nil)...)
}

func decryptBootstrap(password string, data []byte) ([]byte, error) {
	if len(data) < 8+12 {
		return nil, errors.New("bootstrap data too short")
	}
	salt := data[:8]
	block, _ := aes.NewCipher(tokenKey(password, salt))
	gcm, _ := cipher.NewGCM(block)
	return gcm.Open(nil, data[8:8+gcm.NonceSize()], data[8+gcm.NonceSize():], nil)
}

type bootstrapData struct {
	ClusterID      string            `json:"clusterID"`
	Bootstrap      map[string]string `json:"bootstrap"`
	ServerPassword string            `json:"serverPassword"`
	AgentPassword  string            `json:"agentPassword"`
	Critical       map[string]string `json:"critical"`
}

// startExternalDatastore connects (retrying, as kine does) and reads or
// writes the cluster's bootstrap data.
func (s *server) startExternalDatastore(tok, agentTok *joinToken) {
	ep := s.o.str("datastore-endpoint")
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		scheme := ep
		if err == nil {
			scheme = u.Scheme
		}
		failPrepare(fmt.Errorf("creating storage endpoint: unsupported datastore endpoint scheme %q: this simulator keeps external state in PostgreSQL only", scheme))
	}
	s.pg = &pgStore{endpoint: ep, pushed: map[string]int64{}}
	infof("Configuring postgres database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s")
	infof("Configuring database table schema and indexes, this may take a moment...")
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.pg.connect(ctx)
		cancel()
		if err == nil {
			break
		}
		errorf("failed to ping connection: %v", err)
		time.Sleep(2 * time.Second)
	}
	infof("Database tables and indexes are up to date")
	infof("Kine available at unix://kine.sock")

	ctx := context.Background()
	tx, err := s.pg.conn.Begin(ctx)
	if err != nil {
		failPrepare(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// One server at a time creates the bootstrap data.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(6443)`); err != nil {
		failPrepare(err)
	}
	password := ""
	if tok != nil {
		password = tok.password
	}
	var sealed []byte
	found := false
	if password != "" {
		err := tx.QueryRow(ctx, `SELECT value FROM `+pgTable+` WHERE name = $1`, bootstrapKey(password)).Scan(&sealed)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, pgx.ErrNoRows):
			failPrepare(err)
		}
	}
	if found {
		plain, err := decryptBootstrap(password, sealed)
		if err != nil {
			failPrepare(errors.New("bootstrap data already found and encrypted with different token"))
		}
		var b bootstrapData
		if err := json.Unmarshal(plain, &b); err != nil {
			failPrepare(err)
		}
		if err := tok.validateCAHash([]byte(b.Bootstrap["server-ca.crt"])); err != nil {
			failPrepare(err)
		}
		st := newStore("")
		st.d.Mode, st.d.ClusterID, st.d.Bootstrap = "postgres", b.ClusterID, b.Bootstrap
		st.d.ServerPassword, st.d.AgentPassword, st.d.Critical = b.ServerPassword, b.AgentPassword, b.Critical
		s.st = st
		s.loadCAs()
		infof("Cluster bootstrap already complete")
		_ = tx.Commit(ctx)
		return
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgTable+` WHERE name LIKE '/bootstrap/%'`).Scan(&others); err != nil {
		failPrepare(err)
	}
	if others > 0 {
		failPrepare(errors.New("bootstrap data already found and encrypted with different token"))
	}
	s.newCluster("postgres", "", tok, agentTok)
	b := bootstrapData{ClusterID: s.st.d.ClusterID, Bootstrap: s.st.d.Bootstrap, ServerPassword: s.st.d.ServerPassword,
		AgentPassword: s.st.d.AgentPassword, Critical: s.st.d.Critical}
	plain, _ := json.Marshal(&b)
	if _, err := tx.Exec(ctx, `INSERT INTO `+pgTable+` (name, value) VALUES ($1, $2)`, bootstrapKey(s.st.d.ServerPassword), encryptBootstrap(s.st.d.ServerPassword, plain)); err != nil {
		failPrepare(err)
	}
	if err := tx.Commit(ctx); err != nil {
		failPrepare(err)
	}
}

func nodeKey(name string) string { return "/registry/minions/" + name }

func objRegistryKey(o *objRec) string {
	return "/registry/" + o.Resource + "/" + o.Namespace + "/" + o.Name
}

// pgSync pushes local changes and pulls everyone else's, once.
func (s *server) pgSync(ctx context.Context) error {
	if err := s.pg.connect(ctx); err != nil {
		return err
	}
	// Push: records whose local revision moved since the last write.
	type rec struct {
		key string
		rev int64
		val []byte
	}
	var out []rec
	s.st.mu.Lock()
	for name, n := range s.st.d.Nodes {
		if n.rev > s.pg.pushed[nodeKey(name)] {
			b, _ := json.Marshal(n)
			out = append(out, rec{nodeKey(name), n.rev, b})
		}
	}
	for _, o := range s.st.d.Objects {
		k := objRegistryKey(o)
		if o.rev > s.pg.pushed[k] {
			b, _ := json.Marshal(o)
			out = append(out, rec{k, o.rev, b})
		}
	}
	s.st.mu.Unlock()
	for _, r := range out {
		if err := s.pgWrite(ctx, r.key, r.val); err != nil {
			return err
		}
		s.pg.pushed[r.key] = r.rev
	}
	// Pull everything and merge.
	rows, err := s.pg.conn.Query(ctx, `SELECT name, value FROM `+pgTable+` WHERE name LIKE '/registry/%'`)
	if err != nil {
		return err
	}
	d := stateData{Nodes: map[string]*nodeRec{}, Objects: map[string]*objRec{}}
	for rows.Next() {
		var name string
		var val []byte
		if err := rows.Scan(&name, &val); err != nil {
			rows.Close()
			return err
		}
		if n, ok := strings.CutPrefix(name, "/registry/minions/"); ok {
			var r nodeRec
			if json.Unmarshal(val, &r) == nil {
				d.Nodes[n] = &r
			}
			continue
		}
		var o objRec
		if json.Unmarshal(val, &o) == nil {
			d.Objects[objKey(o.Resource, o.Namespace, o.Name)] = &o
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	s.st.mu.Lock()
	before := s.st.rev
	s.st.mu.Unlock()
	if s.st.merge(d) {
		// What came from the database need not go back.
		s.st.mu.Lock()
		for name, n := range s.st.d.Nodes {
			if n.rev > before && s.pg.pushed[nodeKey(name)] < n.rev {
				if r, ok := d.Nodes[name]; ok && r.Updated.Equal(n.Updated) && r.Heartbeat.Equal(n.Heartbeat) {
					s.pg.pushed[nodeKey(name)] = n.rev
				}
			}
		}
		for k, o := range s.st.d.Objects {
			if r, ok := d.Objects[k]; ok && r.Updated.Equal(o.Updated) {
				s.pg.pushed[objRegistryKey(o)] = o.rev
			}
		}
		s.st.mu.Unlock()
	}
	return nil
}

// pgWrite stores a record unless the database holds a newer one; for nodes
// the newest heartbeat is kept either way.
func (s *server) pgWrite(ctx context.Context, key string, val []byte) error {
	tx, err := s.pg.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	var cur []byte
	err = tx.QueryRow(ctx, `SELECT value FROM `+pgTable+` WHERE name = $1 FOR UPDATE`, key).Scan(&cur)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		cur = nil
	case err != nil:
		return err
	}
	if cur != nil {
		var a, b struct {
			Updated   time.Time `json:"updated"`
			Heartbeat time.Time `json:"heartbeat"`
		}
		_ = json.Unmarshal(cur, &a)
		_ = json.Unmarshal(val, &b)
		switch {
		case b.Updated.After(a.Updated):
			if strings.HasPrefix(key, "/registry/minions/") && a.Heartbeat.After(b.Heartbeat) {
				var m map[string]any
				_ = json.Unmarshal(val, &m)
				m["heartbeat"] = a.Heartbeat
				val, _ = json.Marshal(m)
			}
		case strings.HasPrefix(key, "/registry/minions/") && b.Heartbeat.After(a.Heartbeat):
			var m map[string]any
			_ = json.Unmarshal(cur, &m)
			m["heartbeat"] = b.Heartbeat
			val, _ = json.Marshal(m)
		default:
			return tx.Commit(ctx)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+pgTable+` (name, value, updated) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated`, key, val); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (s *server) pgLoop() {
	failing := false
	var renewed time.Time
	for {
		if time.Since(renewed) > 10*time.Second {
			s.renewAPIServer()
			renewed = time.Now()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.pgSync(ctx)
		cancel()
		if err != nil {
			if !failing {
				errorf("Failed to sync with the datastore at %s: %v", redactEndpoint(s.pg.endpoint), err)
			}
			failing = true
			if s.pg.conn != nil {
				_ = s.pg.conn.Close(context.Background())
				s.pg.conn = nil
			}
		} else if failing {
			infof("Datastore at %s is reachable again", redactEndpoint(s.pg.endpoint))
			failing = false
		}
		time.Sleep(time.Second)
	}
}
