package plugins

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkTrusted refuses a plugin that anyone but root or the daemon's user
// could have changed, since it runs with the daemon's rights (root): the
// executable, its directory and every directory above must be owned by one
// of them and not writable by group or others, as sshd requires of its
// keys. Above the plugin directory a sticky directory (/tmp) may be
// world-writable: others cannot rename or replace what is in it.
func checkTrusted(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	uid := os.Geteuid()
	for p, first := real, true; ; p, first = filepath.Dir(p), false {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner to check", p)
		}
		if st.Uid != 0 && int(st.Uid) != uid {
			return fmt.Errorf("%s is owned by uid %d, not by root or ripcord's user (uid %d): a plugin runs with ripcord's rights", p, st.Uid, uid)
		}
		pluginOrDir := first || p == filepath.Dir(real)
		if fi.Mode().Perm()&0o022 != 0 && (pluginOrDir || fi.Mode()&fs.ModeSticky == 0) {
			return fmt.Errorf("%s is writable by group or others (mode %04o): others could change what ripcord runs; chmod go-w %s", p, fi.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
