package ssh

import "github.com/k3sctl/k3sctl/internal/secret"

type secretValue = secret.Value

func newSecret(s string) secret.Value { return secret.New(s) }
