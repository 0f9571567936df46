package ldap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// reading is one successful read of a reference's contextCSN, for one
// replica (target) and naming context.
type reading struct {
	Target    string    `json:"target"`
	Reference string    `json:"reference"`
	Context   string    `json:"context"`
	At        time.Time `json:"at"` // this host's clock
	CSNs      []string  `json:"context_csn"`
}

func (r reading) key() string { return r.Target + "\x00" + r.Reference + "\x00" + r.Context }

// memory keeps the last reading of each reference, so that a reference that
// cannot be read does not make a replica known to be behind look fresh. It
// lives in the checker process and, when the daemon gives the checker a
// state directory (checkapi.StateDir), in one small file per reading there too,
// so a restart of the plugin or of the daemon keeps it.
type memory struct {
	dir string

	mu       sync.Mutex
	readings map[string]reading
	saved    map[string]time.Time // when each reading's file was last written
}

func newMemory(dir string) *memory {
	return &memory{dir: dir, readings: map[string]reading{}, saved: map[string]time.Time{}}
}

func (m *memory) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(m.dir, "freshness-"+hex.EncodeToString(sum[:8])+".json")
}

// recall returns the last reading for key, from the process or its file.
// A file that cannot be read or is not ours counts as no reading.
func (m *memory) recall(key string) (reading, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.readings[key]; ok {
		return r, true
	}
	if m.dir == "" {
		return reading{}, false
	}
	b, err := os.ReadFile(m.file(key))
	if err != nil {
		return reading{}, false
	}
	var r reading
	if json.Unmarshal(b, &r) != nil || r.key() != key || r.At.IsZero() {
		return reading{}, false
	}
	m.readings[key] = r
	return r, true
}

// remember keeps r, and writes its file atomically (a new file renamed over
// the old one), so a reader never sees half of it. Renaming over a file
// costs a flush on ext4 (1-6 ms measured), so when only the time of the
// reading changed the file is rewritten at most every `every`: after a
// restart the reading then looks older than it is by at most that, which
// only errs towards caution. New contextCSN values are always written.
func (m *memory) remember(r reading, every time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := r.key()
	old, had := m.readings[key]
	m.readings[key] = r
	if m.dir == "" || had && slices.Equal(old.CSNs, r.CSNs) && r.At.Sub(m.saved[key]) < every {
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(m.dir, ".freshness-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), m.file(key))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	m.saved[key] = r.At
	return nil
}
