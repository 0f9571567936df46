package sdk

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrEmptySecret is wrapped by ReadSecretFile when the file holds no secret.
var ErrEmptySecret = errors.New("is empty")

// ReadSecretFile reads a secret (password, shared secret, key) from a
// `*_file` setting: the first line of the file, without the line ending
// editors add. An empty secret is an error wrapping ErrEmptySecret. Callers
// add which setting it was; the secret itself never appears in an error.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s %w", path, ErrEmptySecret)
	}
	return line, nil
}
