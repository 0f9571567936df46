package services

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestNginxPortal(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatal("nginx not found: install the Debian package nginx")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := StartNginx(ctx, NginxOptions{Dir: t.TempDir(), Marker: "replica-b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "http://" + srv.Addr.String()
	get := func(path string) (*http.Response, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/login"); resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) || !strings.Contains(body, "replica-b") {
		t.Fatalf("/login: %s\n%s", resp.Status, body)
	}
	if resp, _ := get("/"); resp.StatusCode != 302 || !strings.HasSuffix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("/: %s Location %q", resp.Status, resp.Header.Get("Location"))
	}
	for path, want := range map[string]int{"/err500": 500, "/err502": 502, "/maintenance": 200, "/healthz": 200} {
		if resp, _ := get(path); resp.StatusCode != want {
			t.Fatalf("%s: %s, want %d", path, resp.Status, want)
		}
	}
	post := func(user, pw string) *http.Response {
		resp, err := client.PostForm(base+"/login", url.Values{"username": {user}, "password": {pw}, "realm": {"campus"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := post(NginxLoginUser, NginxLoginPassword)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/welcome" || len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != NginxSessionCookie {
		t.Fatalf("good login: %s Location %q cookies %v", resp.Status, resp.Header.Get("Location"), resp.Cookies())
	}
	resp = post(NginxLoginUser, "wrong")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/login?error=1" || len(resp.Cookies()) != 0 {
		t.Fatalf("bad login: %s Location %q cookies %v", resp.Status, resp.Header.Get("Location"), resp.Cookies())
	}

	if err := srv.Suspend(); err != nil {
		t.Fatal(err)
	}
	short := &http.Client{Timeout: 300 * time.Millisecond}
	if _, err := short.Get(base + "/healthz"); err == nil {
		t.Fatal("suspended nginx still answered")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get("/healthz"); resp.StatusCode != 200 {
		t.Fatalf("after resume: %s", resp.Status)
	}
	if err := srv.Suspend(); err != nil {
		t.Fatal(err)
	}
	// Stop must work on a suspended server too.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := short.Get(base + "/healthz"); err == nil {
		t.Fatal("stopped nginx still answered")
	}
}
