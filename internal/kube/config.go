package kube

import (
	"encoding/base64"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Config is what a client needs of a kubeconfig: where the API is and the
// admin credentials.
type Config struct {
	// Server is the API URL, e.g. https://127.0.0.1:6443.
	Server string
	// CA is the PEM of the cluster CA the serving certificate is checked
	// against.
	CA []byte
	// Cert and Key are the PEM client certificate and key.
	Cert, Key []byte
}

// ParseKubeconfig reads the cluster and user of the current context of a
// kubeconfig such as K3s's /etc/rancher/k3s/k3s.yaml, with the CA and
// client credentials inline (*-data).
func ParseKubeconfig(data []byte) (Config, error) {
	var kc struct {
		CurrentContext string `yaml:"current-context"`
		Clusters       []struct {
			Name    string `yaml:"name"`
			Cluster struct {
				Server string `yaml:"server"`
				CAData string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Contexts []struct {
			Name    string `yaml:"name"`
			Context struct {
				Cluster string `yaml:"cluster"`
				User    string `yaml:"user"`
			} `yaml:"context"`
		} `yaml:"contexts"`
		Users []struct {
			Name string `yaml:"name"`
			User struct {
				CertData string `yaml:"client-certificate-data"`
				KeyData  string `yaml:"client-key-data"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return Config{}, fmt.Errorf("kubeconfig: %w", err)
	}
	clusterName, userName := "", ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext || (kc.CurrentContext == "" && len(kc.Contexts) == 1) {
			clusterName, userName = c.Context.Cluster, c.Context.User
		}
	}
	if clusterName == "" {
		return Config{}, fmt.Errorf("kubeconfig: no context %q", kc.CurrentContext)
	}
	var cfg Config
	found := false
	for _, c := range kc.Clusters {
		if c.Name == clusterName {
			found = true
			cfg.Server = c.Cluster.Server
			ca, err := decodeData("certificate-authority-data", c.Cluster.CAData)
			if err != nil {
				return Config{}, err
			}
			cfg.CA = ca
		}
	}
	if !found || cfg.Server == "" {
		return Config{}, fmt.Errorf("kubeconfig: no server for cluster %q", clusterName)
	}
	found = false
	for _, u := range kc.Users {
		if u.Name == userName {
			found = true
			var err error
			if cfg.Cert, err = decodeData("client-certificate-data", u.User.CertData); err != nil {
				return Config{}, err
			}
			if cfg.Key, err = decodeData("client-key-data", u.User.KeyData); err != nil {
				return Config{}, err
			}
		}
	}
	if !found {
		return Config{}, fmt.Errorf("kubeconfig: no user %q", userName)
	}
	return cfg, nil
}

func decodeData(field, s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("kubeconfig: " + field + " is missing (K3s's admin kubeconfig has it inline)")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %s: %w", field, err)
	}
	return b, nil
}
