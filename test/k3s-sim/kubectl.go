package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// The kubectl every k3s node carries ("k3s kubectl" or the kubectl link).
// It covers what is used on nodes to look at a cluster: get, version,
// cluster-info, delete node, get --raw; and label, taint, cordon, uncordon
// of nodes (kubectl_node.go).

type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server   string `yaml:"server"`
			CAData   string `yaml:"certificate-authority-data"`
			CAFile   string `yaml:"certificate-authority"`
			Insecure bool   `yaml:"insecure-skip-tls-verify"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			CertData string `yaml:"client-certificate-data"`
			KeyData  string `yaml:"client-key-data"`
			CertFile string `yaml:"client-certificate"`
			KeyFile  string `yaml:"client-key"`
			Token    string `yaml:"token"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster   string `yaml:"cluster"`
			User      string `yaml:"user"`
			Namespace string `yaml:"namespace"`
		} `yaml:"context"`
	} `yaml:"contexts"`
}

type kubeClient struct {
	server    string
	host      string
	http      *http.Client
	token     string
	namespace string
}

type kubectlFlags struct {
	kubeconfig    string
	context       string
	namespace     string
	output        string
	selector      string
	allNamespaces bool
	noHeaders     bool
	showLabels    bool
	raw           string
	client        bool
	waitFor       string
	timeout       time.Duration
	all           bool
	overwrite     bool
	args          []string
}

func parseKubectlArgs(args []string) (*kubectlFlags, error) {
	f := &kubectlFlags{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--kubeconfig":
			f.kubeconfig, err = next()
		case "--context":
			f.context, err = next()
		case "-n", "--namespace":
			f.namespace, err = next()
		case "-o", "--output":
			f.output, err = next()
		case "-l", "--selector":
			f.selector, err = next()
		case "--raw":
			f.raw, err = next()
		case "--for":
			f.waitFor, err = next()
		case "--timeout":
			var v string
			if v, err = next(); err == nil {
				f.timeout, err = time.ParseDuration(v)
			}
		case "--all":
			f.all = true
		case "--overwrite":
			f.overwrite = val != "false"
		case "--request-timeout", "-v", "--v", "--cluster", "--user", "--field-selector", "--sort-by", "--chunk-size":
			_, err = next()
		case "-A", "--all-namespaces":
			f.allNamespaces = true
		case "--no-headers":
			f.noHeaders = true
		case "--show-labels":
			f.showLabels = true
		case "--client":
			f.client = true
		case "-w", "--watch", "--insecure-skip-tls-verify":
		default:
			switch {
			case strings.HasPrefix(a, "-o") && len(a) > 2:
				f.output = a[2:]
			case strings.HasPrefix(a, "-n") && len(a) > 2:
				f.namespace = a[2:]
			case strings.HasPrefix(a, "-l") && len(a) > 2:
				f.selector = a[2:]
			case strings.HasPrefix(a, "-v") && len(a) > 2:
			case strings.HasPrefix(a, "-") && a != "-":
				return nil, fmt.Errorf("unknown flag: %s", name)
			default:
				f.args = append(f.args, a)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func kubectlMain(args []string) int {
	f, err := parseKubectlArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\nSee 'kubectl --help' for usage.\n", err)
		return 1
	}
	if len(f.args) == 0 {
		if f.raw != "" {
			f.args = []string{"get"}
		} else {
			fmt.Fprintln(os.Stdout, "kubectl controls the Kubernetes cluster manager.\n\n Find more information at: https://kubernetes.io/docs/reference/kubectl/\n\nUsage:\n  kubectl [flags] [options]")
			return 0
		}
	}
	cmd := f.args[0]
	if cmd == "version" && f.client {
		printKubectlVersion(f, nil)
		return 0
	}
	switch cmd {
	case "get", "version", "cluster-info", "delete", "wait", "label", "taint", "cordon", "uncordon":
	default:
		fmt.Fprintf(os.Stderr, "error: unknown command %q for \"kubectl\"\n", cmd)
		return 1
	}
	c, err := newKubeClient(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	switch cmd {
	case "version":
		return c.version(f)
	case "cluster-info":
		if _, err := c.get("/api", "application/json"); err != nil {
			return c.fail(err)
		}
		fmt.Printf("\x1b[0;32mKubernetes control plane\x1b[0m is running at \x1b[0;33m%s\x1b[0m\n\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n", c.server)
		return 0
	case "delete":
		return c.delete(f)
	case "wait":
		return c.wait(f)
	case "label":
		return c.label(f)
	case "taint":
		return c.taint(f)
	case "cordon", "uncordon":
		return c.cordon(f, cmd == "cordon")
	}
	if f.raw != "" {
		b, err := c.get(f.raw, "application/json")
		if err != nil {
			return c.fail(err)
		}
		os.Stdout.Write(b)
		return 0
	}
	return c.getCmd(f)
}

// kubeconfigPath follows k3s's kubectl: --kubeconfig, then $KUBECONFIG,
// then the server's k3s.yaml when it exists, then ~/.kube/config.
func kubeconfigPath(f *kubectlFlags) string {
	if f.kubeconfig != "" {
		return f.kubeconfig
	}
	if v := os.Getenv("KUBECONFIG"); v != "" {
		return strings.Split(v, string(os.PathListSeparator))[0]
	}
	if _, err := os.Stat(hostPath(defaultKubeconfig)); err == nil {
		return defaultKubeconfig
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

func newKubeClient(f *kubectlFlags) (*kubeClient, error) {
	path := kubeconfigPath(f)
	data, err := os.ReadFile(hostPath(path))
	if err != nil {
		if errors.Is(err, os.ErrPermission) && path == defaultKubeconfig {
			warnf("Unable to read %s, please start server with --write-kubeconfig-mode or --write-kubeconfig-group to modify kube config permissions", path)
		}
		if os.IsNotExist(err) && f.kubeconfig == "" {
			return nil, errors.New("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
		}
		return nil, fmt.Errorf("error loading config file %q: %v", path, unwrapPathErr(err, path))
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("error loading config file %q: %v", path, err)
	}
	ctxName := f.context
	if ctxName == "" {
		ctxName = kc.CurrentContext
	}
	var clusterName, userName, ns string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == ctxName {
			clusterName, userName, ns, found = c.Context.Cluster, c.Context.User, c.Context.Namespace, true
		}
	}
	if !found {
		return nil, fmt.Errorf("context was not found for specified context: %s", ctxName)
	}
	c := &kubeClient{namespace: ns}
	if f.namespace != "" {
		c.namespace = f.namespace
	}
	if c.namespace == "" {
		c.namespace = "default"
	}
	tlsCfg := &tls.Config{}
	for _, cl := range kc.Clusters {
		if cl.Name != clusterName {
			continue
		}
		c.server = strings.TrimRight(cl.Cluster.Server, "/")
		var ca []byte
		if cl.Cluster.CAData != "" {
			if ca, err = base64.StdEncoding.DecodeString(cl.Cluster.CAData); err != nil {
				return nil, fmt.Errorf("error loading config file %q: illegal base64 data", path)
			}
		} else if cl.Cluster.CAFile != "" {
			if ca, err = os.ReadFile(hostPath(cl.Cluster.CAFile)); err != nil {
				return nil, err
			}
		}
		if len(ca) > 0 {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			tlsCfg.RootCAs = pool
		}
		tlsCfg.InsecureSkipVerify = cl.Cluster.Insecure
	}
	if c.server == "" {
		return nil, errors.New("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		certPEM, keyPEM := []byte(nil), []byte(nil)
		if u.User.CertData != "" {
			certPEM, _ = base64.StdEncoding.DecodeString(u.User.CertData)
			keyPEM, _ = base64.StdEncoding.DecodeString(u.User.KeyData)
		} else if u.User.CertFile != "" {
			certPEM, _ = os.ReadFile(hostPath(u.User.CertFile))
			keyPEM, _ = os.ReadFile(hostPath(u.User.KeyFile))
		}
		if len(certPEM) > 0 {
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return nil, fmt.Errorf("tls: %v", err)
			}
			tlsCfg.Certificates = []tls.Certificate{cert}
		}
		c.token = u.User.Token
	}
	if u, err := url.Parse(c.server); err == nil {
		c.host = u.Host
	}
	c.http = &http.Client{Timeout: 32 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	return c, nil
}

func unwrapPathErr(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %v", pe.Op, path, pe.Err)
	}
	return err
}

type apiError struct {
	code   int
	reason string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func (c *kubeClient) request(method, path, accept string) ([]byte, error) {
	return c.requestBody(method, path, accept, "", nil)
}

func (c *kubeClient) requestBody(method, path, accept, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.server+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "kubectl/"+version+" (linux/amd64) kubernetes/"+shortCommit())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var st statusJSON
		if json.Unmarshal(data, &st) == nil && st.Kind == "Status" {
			return nil, &apiError{code: resp.StatusCode, reason: st.Reason, msg: st.Message}
		}
		return nil, &apiError{code: resp.StatusCode, msg: strings.TrimSpace(string(data))}
	}
	return data, nil
}

func (c *kubeClient) get(path, accept string) ([]byte, error) {
	return c.request(http.MethodGet, path, accept)
}

// fail prints an error the way kubectl does and returns its exit status.
func (c *kubeClient) fail(err error) int {
	var ae *apiError
	var opErr *net.OpError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.code == http.StatusUnauthorized:
			fmt.Fprintln(os.Stderr, "error: You must be logged in to the server (Unauthorized)")
		case ae.reason != "":
			fmt.Fprintf(os.Stderr, "Error from server (%s): %s\n", ae.reason, ae.msg)
		default:
			fmt.Fprintf(os.Stderr, "Error from server: %s\n", ae.msg)
		}
	case errors.As(err, &opErr) && errors.Is(err, syscall.ECONNREFUSED):
		fmt.Fprintf(os.Stderr, "The connection to the server %s was refused - did you specify the right host or port?\n", c.host)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		fmt.Fprintf(os.Stderr, "Unable to connect to the server: %v\n", err)
	}
	return 1
}

func printKubectlVersion(f *kubectlFlags, server map[string]string) {
	major, minor := kubeMajorMinor()
	client := map[string]string{"major": major, "minor": minor, "gitVersion": version, "gitCommit": gitCommit(),
		"gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": runtime.Version(),
		"compiler": "gc", "platform": "linux/" + runtime.GOARCH}
	switch f.output {
	case "json", "yaml":
		out := map[string]any{"clientVersion": client, "kustomizeVersion": "v5.4.2"}
		if server != nil {
			out["serverVersion"] = server
		}
		if f.output == "json" {
			b, _ := json.MarshalIndent(out, "", "  ")
			fmt.Println(string(b))
		} else {
			b, _ := yaml.Marshal(out)
			os.Stdout.Write(b)
		}
		return
	}
	fmt.Printf("Client Version: %s\nKustomize Version: v5.4.2\n", version)
	if server != nil {
		fmt.Printf("Server Version: %s\n", server["gitVersion"])
	}
}

func (c *kubeClient) version(f *kubectlFlags) int {
	b, err := c.get("/version", "application/json")
	if err != nil {
		printKubectlVersion(f, nil)
		return c.fail(err)
	}
	var sv map[string]string
	_ = json.Unmarshal(b, &sv)
	printKubectlVersion(f, sv)
	return 0
}

// resourcePath maps what a user types to the API path and kind.
func resourcePath(res string) (plural string, namespaced bool, ok bool) {
	switch strings.ToLower(res) {
	case "node", "nodes", "no":
		return "nodes", false, true
	case "namespace", "namespaces", "ns":
		return "namespaces", false, true
	case "pod", "pods", "po":
		return "pods", true, true
	case "configmap", "configmaps", "cm":
		return "configmaps", true, true
	case "poddisruptionbudget", "poddisruptionbudgets", "pdb", "poddisruptionbudget.policy", "poddisruptionbudgets.policy":
		return "poddisruptionbudgets", true, true
	}
	return "", false, false
}

// apiBase is the group version path a resource is served under.
func apiBase(plural string) string {
	if plural == "poddisruptionbudgets" {
		return "/apis/policy/v1"
	}
	return "/api/v1"
}

func splitTypeName(f *kubectlFlags) (string, []string) {
	rest := f.args[1:]
	if len(rest) == 0 {
		return "", nil
	}
	if t, n, ok := strings.Cut(rest[0], "/"); ok {
		names := []string{n}
		for _, r := range rest[1:] {
			if _, n2, ok := strings.Cut(r, "/"); ok {
				names = append(names, n2)
			}
		}
		return t, names
	}
	return rest[0], rest[1:]
}

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func (c *kubeClient) getCmd(f *kubectlFlags) int {
	typ, names := splitTypeName(f)
	if typ == "" {
		fmt.Fprintln(os.Stderr, "You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.")
		return 1
	}
	plural, namespaced, ok := resourcePath(typ)
	if !ok {
		fmt.Fprintf(os.Stderr, "error: the server doesn't have a resource type %q\n", typ)
		return 1
	}
	base := apiBase(plural) + "/" + plural
	if namespaced && !f.allNamespaces {
		base = apiBase(plural) + "/namespaces/" + url.PathEscape(c.namespace) + "/" + plural
	}
	q := url.Values{}
	if f.selector != "" {
		q.Set("labelSelector", f.selector)
	}
	asTable := f.output == "" || f.output == "wide"
	accept := "application/json"
	if asTable {
		accept = tableAccept
	}
	var objs []map[string]any
	var tables []table
	paths := []string{base + "?" + q.Encode()}
	if len(names) > 0 {
		paths = nil
		for _, n := range names {
			paths = append(paths, base+"/"+url.PathEscape(n))
		}
	}
	status := 0
	for _, p := range paths {
		b, err := c.get(strings.TrimSuffix(p, "?"), accept)
		if err != nil {
			status = c.fail(err)
			continue
		}
		if asTable {
			var t table
			if err := json.Unmarshal(b, &t); err != nil {
				return c.fail(err)
			}
			tables = append(tables, t)
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(b, &o); err != nil {
			return c.fail(err)
		}
		if items, ok := o["items"].([]any); ok {
			kind := strings.TrimSuffix(fmt.Sprint(o["kind"]), "List")
			for _, it := range items {
				m, _ := it.(map[string]any)
				if m != nil {
					m["apiVersion"], m["kind"] = o["apiVersion"], kind
					objs = append(objs, m)
				}
			}
		} else {
			objs = append(objs, o)
		}
	}
	list := len(names) != 1
	if asTable {
		var cols []tableColumn
		var rows []tableRow
		for _, t := range tables {
			cols = t.ColumnDefinitions
			rows = append(rows, t.Rows...)
		}
		if len(rows) == 0 {
			if status == 0 {
				if namespaced && !f.allNamespaces {
					fmt.Fprintf(os.Stderr, "No resources found in %s namespace.\n", c.namespace)
				} else {
					fmt.Fprintln(os.Stderr, "No resources found")
				}
			}
			return status
		}
		if namespaced && f.allNamespaces {
			// kubectl's own NAMESPACE column, from each row's object.
			cols = append([]tableColumn{{Name: "Namespace", Type: "string"}}, cols...)
			for i := range rows {
				ns := ""
				if m, ok := rows[i].Object.(map[string]any); ok {
					if md, ok := m["metadata"].(map[string]any); ok {
						ns, _ = md["namespace"].(string)
					}
				}
				rows[i].Cells = append([]any{ns}, rows[i].Cells...)
			}
		}
		printTable(os.Stdout, cols, rows, f)
		return status
	}
	if err := printObjects(os.Stdout, objs, list, f.output); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	return status
}

func printTable(w io.Writer, cols []tableColumn, rows []tableRow, f *kubectlFlags) {
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	wide := f.output == "wide"
	if !f.noHeaders {
		var hdr []string
		for _, c := range cols {
			if c.Priority == 0 || wide {
				hdr = append(hdr, strings.ToUpper(c.Name))
			}
		}
		if f.showLabels {
			hdr = append(hdr, "LABELS")
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	}
	for _, r := range rows {
		var cells []string
		for i, c := range cols {
			if i < len(r.Cells) && (c.Priority == 0 || wide) {
				cells = append(cells, cellString(r.Cells[i]))
			}
		}
		if f.showLabels {
			cells = append(cells, rowLabels(r.Object))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func cellString(v any) string {
	switch x := v.(type) {
	case nil:
		return "<none>"
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	}
	return fmt.Sprint(v)
}

func rowLabels(obj any) string {
	m, _ := obj.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	labels, _ := md["labels"].(map[string]any)
	if len(labels) == 0 {
		return "<none>"
	}
	var kv []string
	for k, v := range labels {
		kv = append(kv, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func printObjects(w io.Writer, objs []map[string]any, list bool, output string) error {
	var doc any
	if list {
		items := make([]any, 0, len(objs))
		for _, o := range objs {
			items = append(items, o)
		}
		doc = map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}
	} else if len(objs) == 1 {
		doc = objs[0]
	} else {
		return nil
	}
	switch {
	case output == "json":
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "    ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return err
		}
		_, err := w.Write(buf.Bytes())
		return err
	case output == "yaml":
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return err
		}
		_, err := w.Write(buf.Bytes())
		return err
	case output == "name":
		for _, o := range objs {
			md, _ := o["metadata"].(map[string]any)
			fmt.Fprintf(w, "%s/%v\n", strings.ToLower(fmt.Sprint(o["kind"])), md["name"])
		}
		return nil
	case strings.HasPrefix(output, "jsonpath="), strings.HasPrefix(output, "jsonpath-as-json="):
		tmpl := output[strings.Index(output, "=")+1:]
		b, _ := json.Marshal(doc)
		var generic any
		_ = json.Unmarshal(b, &generic)
		out, err := evalJSONPath(tmpl, generic)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, out)
		return err
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,jsonpath,jsonpath-as-json,name,wide,yaml", output)
}

func (c *kubeClient) delete(f *kubectlFlags) int {
	typ, names := splitTypeName(f)
	plural, namespaced, ok := resourcePath(typ)
	if !ok || plural == "namespaces" {
		fmt.Fprintf(os.Stderr, "error: the server doesn't have a resource type %q\n", typ)
		return 1
	}
	base := apiBase(plural) + "/" + plural
	if namespaced {
		base = apiBase(plural) + "/namespaces/" + url.PathEscape(c.namespace) + "/" + plural
	}
	singular := map[string]string{"nodes": "node", "pods": "pod", "configmaps": "configmap", "poddisruptionbudgets": "poddisruptionbudget.policy"}[plural]
	status := 0
	for _, n := range names {
		if _, err := c.request(http.MethodDelete, base+"/"+url.PathEscape(n), "application/json"); err != nil {
			status = c.fail(err)
			continue
		}
		fmt.Printf("%s %q deleted\n", singular, n)
	}
	return status
}

// wait covers "kubectl wait --for=condition=Ready|--for=delete" on nodes.
func (c *kubeClient) wait(f *kubectlFlags) int {
	typ, names := splitTypeName(f)
	if plural, _, ok := resourcePath(typ); !ok || plural != "nodes" {
		fmt.Fprintf(os.Stderr, "error: the server doesn't have a resource type %q\n", typ)
		return 1
	}
	cond, isCond := strings.CutPrefix(f.waitFor, "condition=")
	want := "True"
	if k, v, ok := strings.Cut(cond, "="); ok {
		cond, want = k, v
	}
	if !isCond && f.waitFor != "delete" {
		fmt.Fprintf(os.Stderr, "error: unrecognized condition: %q\n", f.waitFor)
		return 1
	}
	timeout := f.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if f.all || len(names) == 0 {
		b, err := c.get("/api/v1/nodes", "application/json")
		if err != nil {
			return c.fail(err)
		}
		var list struct{ Items []nodeJSON }
		_ = json.Unmarshal(b, &list)
		names = nil
		for _, n := range list.Items {
			names = append(names, n.Metadata.Name)
		}
		if len(names) == 0 {
			fmt.Fprintln(os.Stderr, "error: no matching resources found")
			return 1
		}
	}
	for _, name := range names {
		for {
			b, err := c.get("/api/v1/nodes/"+url.PathEscape(name), "application/json")
			var ae *apiError
			if f.waitFor == "delete" && errors.As(err, &ae) && ae.code == http.StatusNotFound {
				fmt.Printf("node/%s condition met\n", name)
				break
			}
			if err != nil && !(errors.As(err, &ae) && ae.code == http.StatusServiceUnavailable) {
				return c.fail(err)
			}
			if err == nil && isCond {
				var n nodeJSON
				_ = json.Unmarshal(b, &n)
				met := false
				for _, cd := range n.Status.Conditions {
					if strings.EqualFold(cd.Type, cond) && strings.EqualFold(cd.Status, want) {
						met = true
					}
				}
				if met {
					fmt.Printf("node/%s condition met\n", name)
					break
				}
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "error: timed out waiting for the condition on nodes/%s\n", name)
				return 1
			}
			time.Sleep(time.Second)
		}
	}
	return 0
}
