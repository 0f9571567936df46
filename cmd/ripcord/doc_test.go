package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// fence is one fenced block of a Markdown file.
type fence struct{ lang, text, section string }

func fences(t *testing.T, path string) []fence {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []fence
	section := ""
	for _, m := range regexp.MustCompile("(?ms)^(## [^\n]*)$|^```(\\w+)\n(.*?)^```$").FindAllStringSubmatch(string(b), -1) {
		if m[1] != "" {
			section = m[1]
			continue
		}
		out = append(out, fence{lang: m[2], text: m[3], section: section})
	}
	return out
}

// TestWritingACheckerDoc follows docs/writing-a-checker.md as a newcomer
// would, offline: its shell commands run as written (a new module built
// against this checkout, the example's code, go test, build, install, pin),
// its configuration is the one validated and checked, and its code excerpts
// are the example's code. It takes about 15 s, most of it go build.
func TestWritingACheckerDoc(t *testing.T) {
	const doc = "../../docs/writing-a-checker.md"
	example, err := os.ReadFile("../../examples/plugins/tcpconnect/main.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fences(t, doc)
	// The code shown for sections 3 to 6 is the example's, line for line
	// (a line with "// ..." stands for what is left out).
	shown := 0
	for _, f := range blocks {
		if f.lang != "go" || !regexp.MustCompile(`^## [3-6]\.`).MatchString(f.section) {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(f.text), "\n") {
			if strings.Contains(line, "// ...") || strings.TrimSpace(line) == "" {
				continue
			}
			shown++
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).Match(example) {
				t.Errorf("%s: %s shows a line that is not in the example:\n%s", doc, f.section, line)
			}
		}
	}
	if shown < 50 {
		t.Fatalf("found %d lines of code in sections 3 to 6 of %s, want the walkthrough's", shown, doc)
	}

	// The newcomer's directory: ripcord's checkout beside the new module,
	// the example's code (and tests) written as the doc says.
	work := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(repo, filepath.Join(work, "ripcord")); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(work, "ripcord-checker-tcpconnect")
	for _, f := range []string{"main.go", "main_test.go"} {
		b, err := os.ReadFile(filepath.Join("../../examples/plugins/tcpconnect", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(mod, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pluginDir := filepath.Join(work, "plugins")
	cfg := filepath.Join(work, "ripcord.yaml")
	local := strings.NewReplacer("/usr/lib/ripcord/plugins", pluginDir, "/etc/ripcord/ripcord.yaml", cfg)
	sh := func(script string) string {
		t.Helper()
		script = regexp.MustCompile(`(?m)^ripcord `).ReplaceAllString(local.Replace(script), bin+" ")
		cmd := exec.Command("bash", "-e", "-c", script)
		cmd.Dir = work
		// Offline: modules come from the module cache only.
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v running the doc's commands:\n%s\n%s", err, script, out)
		}
		return string(out)
	}

	// Every command up to the configuration, in one shell (cd carries on).
	var before, after strings.Builder
	yml := ""
	for _, f := range blocks {
		switch {
		case f.lang == "yaml":
			yml = f.text
		case f.lang == "sh" && yml == "":
			before.WriteString(f.text)
		case f.lang == "sh":
			after.WriteString(f.text)
		}
	}
	if yml == "" || !strings.Contains(before.String(), "go mod edit -replace") || !strings.Contains(after.String(), "ripcord check") {
		t.Fatalf("%s: did not find its commands and configuration", doc)
	}
	sh(before.String())

	pin, err := plugins.FileSHA256(filepath.Join(pluginDir, plugins.FilePrefix+"tcpconnect"))
	if err != nil {
		t.Fatal(err)
	}
	ssh := sdktest.Serve(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") })
	yml = strings.NewReplacer("3f1c...", pin, "127.0.0.1:22", ssh).Replace(local.Replace(yml))
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := sh(after.String())
	for _, want := range []string{
		cfg + ": ok (1 services, 1 checks)",
		"x        port   tcpconnect  ok",
		"x port:\n  phases: connect ",
		"tcpconnect 0.2.0", "sha256 " + pin + ", pinned",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the doc's commands print no %q:\n%s", want, out)
		}
	}

	// The troubleshooting table's first message, as validate prints it.
	missing := strings.Replace(yml, "checker: tcpconnect", "checker: x", 1)
	if err := os.WriteFile(cfg, []byte(missing), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, "validate", "-c", cfg)
	want := `unknown checker "x" (built in: http, ldap, peer, radius; no ripcord-checker-x in /usr/lib/ripcord/plugins)`
	if !strings.Contains(out, local.Replace(want)) {
		t.Errorf("validate with a missing plugin:\n%s\nwant the doc's %s", out, want)
	}
	if b, _ := os.ReadFile(doc); !strings.Contains(string(b), want) {
		t.Errorf("%s no longer shows %s", doc, want)
	}
}
