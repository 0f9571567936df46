package checkapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ripcord/ripcord/internal/regfile"
)

// ErrEmptySecret is wrapped by ReadSecretFile when the file holds no secret.
var ErrEmptySecret = errors.New("is empty")

// MaxSecretSize bounds a secret file: a secret is one line.
const MaxSecretSize = 64 << 10

// ReadSecretFile reads a secret (password, shared secret, key) from a
// `*_file` setting: the first line of the file, without the line ending
// editors add. The file must be a regular file of at most MaxSecretSize
// bytes: a named pipe is refused at once instead of blocking the reader. An
// empty secret is an error wrapping ErrEmptySecret. Callers add which
// setting it was; the secret itself never appears in an error.
func ReadSecretFile(path string) (string, error) {
	b, err := regfile.Read(path, MaxSecretSize)
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
