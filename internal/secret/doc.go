// Package secret holds values that must never be printed: join tokens, sudo
// passwords, key passphrases. Formatting one, as text or JSON, redacts it.
package secret
