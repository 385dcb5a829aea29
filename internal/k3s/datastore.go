package k3s

import (
	"fmt"
	"net/url"
	"strings"
)

// DatastoreKey is the config.yaml key of an external datastore.
const DatastoreKey = "datastore-endpoint"

// DatastoreSchemes are the external datastores k3sctl sets up: PostgreSQL,
// MySQL (or MariaDB) and an external etcd over TLS.
var DatastoreSchemes = []string{"postgres", "postgresql", "mysql", "https"}

// DatastoreExample shows the endpoint forms, without a real password.
const DatastoreExample = "postgres://k3s:${K3S_DB_PASSWORD}@db.lan:5432/k3s, mysql://k3s:${K3S_DB_PASSWORD}@tcp(db.lan:3306)/k3s or https://etcd.lan:2379"

// DatastoreError is an endpoint that is not one K3s can use. Its text
// never quotes the endpoint, which usually holds a password.
type DatastoreError struct {
	Message string
	Hint    string
}

func (e *DatastoreError) Error() string { return "datastore endpoint " + e.Message + "; " + e.Hint }

// CheckDatastore checks an external datastore endpoint: a scheme K3s
// takes and a host to connect to. Errors name the scheme at most.
func CheckDatastore(ep string) error {
	hint := "write " + DatastoreExample
	scheme, rest, ok := strings.Cut(ep, "://")
	switch {
	case strings.TrimSpace(ep) == "":
		return &DatastoreError{Message: "is empty", Hint: hint}
	case strings.ContainsAny(ep, " \t\r\n"):
		return &DatastoreError{Message: "contains whitespace", Hint: "check the variable it comes from; an endpoint is one word"}
	case !ok:
		return &DatastoreError{Message: "is not a URL", Hint: hint}
	}
	known := false
	for _, s := range DatastoreSchemes {
		if scheme == s {
			known = true
		}
	}
	if !known {
		if len(scheme) > 20 || strings.ContainsAny(scheme, ":@/") {
			scheme = "?"
		}
		return &DatastoreError{Message: fmt.Sprintf("has the scheme %q, which k3sctl does not set up", scheme),
			Hint: "use postgres://, mysql:// or https:// (external etcd), e.g. " + DatastoreExample}
	}
	switch scheme {
	case "mysql":
		// K3s's MySQL form is user:password@tcp(host:port)/database,
		// which is not a URL.
		at := strings.LastIndex(rest, "@")
		addr := rest[at+1:]
		if i := strings.Index(addr, "/"); i >= 0 {
			addr = addr[:i]
		}
		if addr == "" || addr == "tcp()" {
			return &DatastoreError{Message: "names no database host", Hint: "write mysql://user:password@tcp(host:3306)/database"}
		}
	case "https":
		// An external etcd may be several endpoints, comma-separated.
		for _, part := range strings.Split(ep, ",") {
			u, err := url.Parse(part)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return &DatastoreError{Message: "lists an etcd endpoint that is not https://host:port", Hint: "write https://etcd-1.lan:2379,https://etcd-2.lan:2379"}
			}
		}
	default:
		u, err := url.Parse(ep)
		if err != nil {
			return &DatastoreError{Message: "cannot be parsed as a URL (a password with '@', '/', '?' or '#' must be percent-encoded)", Hint: "write postgres://user:password@host:5432/database"}
		}
		if u.Host == "" {
			return &DatastoreError{Message: "names no database host", Hint: "write postgres://user:password@host:5432/database"}
		}
	}
	return nil
}
