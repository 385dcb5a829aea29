package node

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"time"
)

// Cert is one certificate file on a host: when it expires and whether it
// is a CA. Err says why the file could not be read as a certificate.
type Cert struct {
	Path     string    `json:"path"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"notAfter"`
	CA       bool      `json:"ca,omitempty"`
	Err      string    `json:"error,omitempty"`
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(path string, data []byte) Cert {
	c := Cert{Path: path}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			c.Err = errors.New("no PEM certificate in the file").Error()
			return c
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			c.Err = err.Error()
			return c
		}
		c.Subject = x.Subject.CommonName
		c.NotAfter = x.NotAfter.UTC()
		c.CA = x.IsCA
		return c
	}
}
