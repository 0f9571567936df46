package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ripcord/ripcord/internal/regfile"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"gopkg.in/yaml.v3"
)

const (
	// MaxConfigSize bounds the config file: real ones are a few KiB, and a
	// huge one would cost memory out of proportion before any error.
	MaxConfigSize = 1 << 20
	// maxPublicFileSize bounds *_file settings that are not secrets (CA bundles).
	maxPublicFileSize = 1 << 20
)

func tooLarge(file string) error {
	return &Error{File: file, Line: 1, Column: 1, Key: "(file)",
		Msg: fmt.Sprintf("larger than %s (a ripcord config is a few KiB): not parsed", regfile.Size(MaxConfigSize))}
}

// resolve makes a relative path in the config relative to the config
// file's directory, not to the working directory (as nginx and FRR do).
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.dec.file), p)
}

// isSecretKey tells which *_file keys name secrets: all but CA bundles and
// certificates, which are public.
func isSecretKey(key string) bool {
	return !strings.HasSuffix(key, "ca_file") && !strings.HasSuffix(key, "cert_file")
}

// secretFile is a secret the config names, for the permission warning.
type secretFile struct{ key, path string }

// checkFile reads what a *_file key names the way its user will: a secret
// with checkapi.ReadSecretFile (a regular file, not empty, at most
// checkapi.MaxSecretSize), anything else as a regular file of at most 1 MiB.
func (c *Config) checkFile(key, path string) error {
	var err error
	if isSecretKey(key) {
		if _, err = checkapi.ReadSecretFile(path); err == nil {
			c.secrets = append(c.secrets, secretFile{key, path})
		}
	} else {
		_, err = regfile.Read(path, maxPublicFileSize)
	}
	var pe *fs.PathError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("file %s does not exist", path)
	case errors.Is(err, checkapi.ErrEmptySecret):
		return fmt.Errorf("%s is empty (the secret is its first line)", path)
	case errors.As(err, &pe):
		return fmt.Errorf("cannot read %s: %v", path, pe.Err)
	}
	return err
}

// checkSettingsFiles resolves and checks every *_file setting, so a typo is
// found at load time rather than at the first check. The resolved path is
// written back into the settings the checker gets.
func (c *Config) checkSettingsFiles(n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.MappingNode {
			if err := c.checkSettingsFiles(v, path+"."+k.Value); err != nil {
				return err
			}
			continue
		}
		if strings.HasSuffix(k.Value, "_file") && v.Kind == yaml.ScalarNode {
			if !c.dec.resolved[v] { // an alias shares the node: resolve it once
				v.Value = c.resolve(v.Value)
				c.dec.resolved[v] = true
			}
			if err := c.checkFile(path+"."+k.Value, v.Value); err != nil {
				return c.dec.errAt(v, path+"."+k.Value, "%v", err)
			}
		}
	}
	return nil
}

// secretWarnings names secret files that others than their owner can read.
func (c *Config) secretWarnings() []string {
	var w []string
	for _, s := range c.secrets {
		fi, err := os.Stat(s.path)
		if err == nil && fi.Mode().Perm()&0o044 != 0 {
			w = append(w, fmt.Sprintf("%s: %s is readable by group or others (mode %04o): chmod 600 it", s.key, s.path, fi.Mode().Perm()))
		}
	}
	return w
}
