package main

import (
	"net/http"
	"strings"
)

// OpenAPI v3, as far as kubectl reads it before create and apply: the
// index of group versions and, per group version, the PATCH operations with
// their fieldValidation parameter, which tells kubectl that the server
// validates fields itself. Schemas are left out, so kubectl builds its
// patches from its own types.

var openAPIGroups = map[string][]resDef{
	"api/v1":         {podsRes, cmRes, {plural: "nodes", kind: "Node", version: "v1"}, {plural: "namespaces", kind: "Namespace", version: "v1"}},
	"apis/policy/v1": {pdbRes},
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/openapi/v3" {
		paths := map[string]any{}
		for gv := range openAPIGroups {
			paths[gv] = map[string]string{"serverRelativeURL": "/openapi/v3/" + gv + "?hash=" + strings.ToUpper(hashCA([]byte(version + gv))[:32])}
		}
		writeJSON(w, 200, map[string]any{"paths": paths})
		return
	}
	defs, ok := openAPIGroups[strings.TrimPrefix(p, "/openapi/v3/")]
	if !ok {
		notFound(w)
		return
	}
	paths := map[string]any{}
	for _, d := range defs {
		base := "/" + strings.TrimPrefix(p, "/openapi/v3/")
		item := base + "/" + d.plural + "/{name}"
		if d.plural != "nodes" && d.plural != "namespaces" {
			item = base + "/namespaces/{namespace}/" + d.plural + "/{name}"
		}
		paths[item] = map[string]any{"patch": map[string]any{
			"operationId": "patch" + d.kind,
			"parameters": []any{
				map[string]any{"name": "dryRun", "in": "query", "schema": map[string]string{"type": "string"}},
				map[string]any{"name": "fieldManager", "in": "query", "schema": map[string]string{"type": "string"}},
				map[string]any{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"}},
				map[string]any{"name": "force", "in": "query", "schema": map[string]string{"type": "boolean"}},
			},
			"x-kubernetes-action":             "patch",
			"x-kubernetes-group-version-kind": map[string]string{"group": d.group, "version": d.version, "kind": d.kind},
		}}
	}
	writeJSON(w, 200, map[string]any{"openapi": "3.0.0", "info": map[string]string{"title": "Kubernetes", "version": version},
		"paths": paths, "components": map[string]any{"schemas": map[string]any{}}})
}
