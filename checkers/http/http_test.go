package http

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

func settingsJSON(t testing.TB, m map[string]any) checkapi.Settings { return sdktest.Settings(t, m) }

func runCheck(t testing.TB, timeout time.Duration, target string, s checkapi.Settings) (*checkapi.Result, time.Duration) {
	return sdktest.Check(t, New(), timeout, target, s)
}

func wantResult(t testing.TB, res *checkapi.Result, status checkapi.Status, reason string) {
	t.Helper()
	sdktest.Want(t, res, status, reason)
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// portal is an httptest stand-in for the basic options; the real nginx
// portal is in nginx_test.go.
func portal() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form method="post"><input name="username"><input type="password" name="password"></form>`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusFound) })
	mux.HandleFunc("/hop1", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hop2", http.StatusFound) })
	mux.HandleFunc("/hop2", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusSeeOther) })
	// /chain/N redirects N times, then lands on the login page.
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		next := "/login"
		if n > 1 {
			next = "/chain/" + strconv.Itoa(n-1)
		}
		http.Redirect(w, r, next, http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://idp.invalid/sso", http.StatusFound)
	})
	mux.HandleFunc("/nolocation", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", 4096)+"needle")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "method=%s host=%s x-probe=%s", r.Method, r.Host, r.Header.Get("X-Probe"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	// Informational answers come before the real one.
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusEarlyHints)
		fmt.Fprint(w, "ready")
	})
	// A login form whose POST needs the cookie the page set.
	mux.HandleFunc("/csrf/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "csrf", Value: "t0k3n", Path: "/csrf"})
		fmt.Fprint(w, `<form method="post"><input type="password" name="password"></form>`)
	})
	mux.HandleFunc("/csrf/session", func(w http.ResponseWriter, r *http.Request) {
		if ck, err := r.Cookie("csrf"); err != nil || ck.Value != "t0k3n" {
			http.Error(w, "no csrf cookie", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "42", Path: "/"})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("/session", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if r.FormValue("user") == "alice" && r.FormValue("pass") == "alice-pw" && r.FormValue("realm") == "campus" {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "42", Path: "/"})
			http.Redirect(w, r, "/home", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/login?failed", http.StatusSeeOther)
	})
	return mux
}

func TestBasicOptions(t *testing.T) {
	srv := httptest.NewServer(portal())
	defer srv.Close()
	pw := writeFile(t, "pw", []byte("alice-pw\n"))
	badPW := writeFile(t, "badpw", []byte("nope\n"))
	login := func(pwFile string, extra map[string]any) map[string]any {
		l := map[string]any{"url": "/session", "username": "alice", "password_file": pwFile,
			"username_field": "user", "password_field": "pass", "extra_fields": map[string]string{"realm": "campus"},
			"expect_status": 303, "expect_cookie": "sid", "expect_location": "/home"}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}

	tests := []struct {
		name       string
		path       string
		settings   map[string]any
		wantStatus checkapi.Status
		wantReason string
		wantInMsg  string
	}{
		{name: "page with form", path: "/login", settings: map[string]any{"body_contains": `name="password"`}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "regex", path: "/login", settings: map[string]any{"body_regex": `type="password"\s+name="password"`}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "status list", path: "/empty", settings: map[string]any{"expect_status": []int{200, 204}}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "HEAD", path: "/echo", settings: map[string]any{"method": "HEAD"}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "host and headers", path: "/echo", settings: map[string]any{"host": "portal.example.com", "headers": map[string]string{"X-Probe": "yes"}, "body_contains": "method=GET host=portal.example.com x-probe=yes"}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "500", path: "/broken", wantStatus: checkapi.StatusFailed, wantReason: ReasonUnexpectedStatus, wantInMsg: "500"},
		{name: "204 not listed", path: "/empty", wantStatus: checkapi.StatusFailed, wantReason: ReasonUnexpectedStatus},
		{name: "redirect not followed", path: "/", wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "/login"},
		{name: "redirect expected", path: "/", settings: map[string]any{"expect_status": 302}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "redirects followed", path: "/hop1", settings: map[string]any{"follow_redirects": true, "body_contains": `name="password"`}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "5 redirects followed", path: "/chain/5", settings: map[string]any{"follow_redirects": true, "body_contains": `name="password"`}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "6 redirects", path: "/chain/6", settings: map[string]any{"follow_redirects": true}, wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "more than 5"},
		{name: "redirect loop", path: "/loop", settings: map[string]any{"follow_redirects": true}, wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "more than 5"},
		{name: "redirect to another origin", path: "/away", settings: map[string]any{"follow_redirects": true}, wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "idp.invalid"},
		{name: "redirect without Location", path: "/nolocation", wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "Location"},
		{name: "body mismatch", path: "/login", settings: map[string]any{"body_contains": "Welcome"}, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonUnexpectedResponse},
		{name: "regex mismatch", path: "/login", settings: map[string]any{"body_regex": `^<html`}, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonUnexpectedResponse},
		{name: "needle past max_body", path: "/big", settings: map[string]any{"body_contains": "needle", "max_body": 4096}, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonUnexpectedResponse, wantInMsg: "4096 bytes read"},
		{name: "needle within max_body", path: "/big", settings: map[string]any{"body_contains": "needle"}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "login", path: "/login", settings: map[string]any{"login": login(pw, nil)}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantInMsg: "login ok"},
		{name: "login wrong password", path: "/login", settings: map[string]any{"login": login(badPW, nil)}, wantStatus: checkapi.StatusFailed, wantReason: ReasonLoginFailed, wantInMsg: "/login?failed"},
		{name: "login without cookie check, wrong Location", path: "/login", settings: map[string]any{"login": login(badPW, map[string]any{"expect_cookie": ""})}, wantStatus: checkapi.StatusFailed, wantReason: ReasonLoginFailed, wantInMsg: "does not contain"},
		{name: "login wrong status", path: "/login", settings: map[string]any{"login": login(pw, map[string]any{"expect_status": 302})}, wantStatus: checkapi.StatusFailed, wantReason: ReasonLoginFailed, wantInMsg: "303"},
		{name: "login carries the page's cookie", path: "/csrf/login", settings: map[string]any{"login": map[string]any{"url": "/csrf/session",
			"username": "alice", "password_file": pw, "expect_status": 303, "expect_cookie": "sid"}}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantInMsg: "login ok"},
		{name: "early hints before the answer", path: "/early", settings: map[string]any{"body_contains": "ready"}, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantInMsg: "200 OK"},
		{name: "login password file missing", path: "/login", settings: map[string]any{"login": login("/nonexistent", nil)}, wantStatus: checkapi.StatusFailed, wantReason: ReasonLoginFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runCheck(t, 2*time.Second, srv.URL+tt.path, settingsJSON(t, tt.settings))
			wantResult(t, res, tt.wantStatus, tt.wantReason)
			if !strings.Contains(res.Message, tt.wantInMsg) {
				t.Fatalf("message %q lacks %q", res.Message, tt.wantInMsg)
			}
			names := sdktest.PhaseNames(res)
			if !slices.Contains(names, "connect") || !slices.Contains(names, "headers") {
				t.Fatalf("phases %v lack connect or headers", names)
			}
			if _, ok := res.Observations["cert_days_left"]; ok {
				t.Fatal("cert_days_left on plain http")
			}
		})
	}
}

func TestRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res, took := runCheck(t, 2*time.Second, "http://"+addr+"/", nil)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
	if took > time.Second {
		t.Fatalf("refused after %v, want at once", took)
	}
}

func TestTimeoutIsTheContextDeadline(t *testing.T) {
	srv := httptest.NewServer(portal())
	defer srv.Close()
	const deadline = 300 * time.Millisecond
	res, took := runCheck(t, deadline, srv.URL+"/slow", nil)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
	if took < deadline/2 || took > deadline+time.Second {
		t.Fatalf("timeout after %v, want about %v", took, deadline)
	}
	if !slices.Contains(sdktest.PhaseNames(res), "headers") {
		t.Fatalf("phases %v: the wait for headers should be timed", sdktest.PhaseNames(res))
	}
}

func TestTLSWithHTTPTest(t *testing.T) {
	srv := httptest.NewUnstartedServer(portal())
	// The failed handshakes below are the point; keep them out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := writeFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	res, _ := runCheck(t, 2*time.Second, srv.URL+"/login", settingsJSON(t, map[string]any{"ca_file": caFile, "body_contains": "password"}))
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	days, ok := res.Observations["cert_days_left"]
	wantDays := time.Until(srv.Certificate().NotAfter).Hours() / 24
	if !ok || days < wantDays-1 || days > wantDays+1 {
		t.Fatalf("cert_days_left = %v (present %v), want about %v", days, ok, wantDays)
	}
	if names := sdktest.PhaseNames(res); !slices.Equal(names, []string{"connect", "tls", "headers", "transfer"}) {
		t.Fatalf("phases = %v", names)
	}
	// httptest's certificate names example.com: the override verifies it.
	res, _ = runCheck(t, 2*time.Second, srv.URL+"/login", settingsJSON(t, map[string]any{"ca_file": caFile, "server_name": "example.com"}))
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	res, _ = runCheck(t, 2*time.Second, srv.URL+"/login", settingsJSON(t, map[string]any{"ca_file": caFile, "server_name": "portal.example.org"}))
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTLSInvalid)
	if !strings.Contains(res.Message, "hostname") {
		t.Fatalf("message %q should say hostname", res.Message)
	}
	// Without the CA the system roots do not know it.
	res, _ = runCheck(t, 2*time.Second, srv.URL+"/login", nil)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTLSInvalid)
	if !strings.Contains(res.Message, "untrusted") {
		t.Fatalf("message %q should say untrusted", res.Message)
	}
	// Plain HTTP to a TLS port is an answer we cannot use.
	res, _ = runCheck(t, 2*time.Second, strings.Replace(srv.URL, "https:", "http:", 1)+"/login", nil)
	wantResult(t, res, checkapi.StatusFailed, ReasonUnexpectedStatus)
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		want     []string
	}{
		{name: "empty is fine", settings: `{}`},
		{name: "everything", settings: `{"method":"POST","host":"portal.example.com","server_name":"portal.example.com","expect_status":[200,204],"body_contains":"x","body_regex":"a+","ca_file":"/ca","follow_redirects":true,"cert_warn_days":7,"max_body":1024,"headers":{"X-A":"b"},"login":{"url":"/login","username":"u","password_file":"/p","username_field":"user","password_field":"pass","extra_fields":{"a":"b"},"expect_status":303,"expect_cookie":"sid","expect_location":"/home"}}`},
		{name: "unknown key", settings: `{"timeout":"2s"}`, want: []string{"timeout"}},
		{name: "unknown login key", settings: `{"login":{"username":"u","password_file":"/p","password":"x"}}`, want: []string{"login.password"}},
		{name: "bad values", settings: `{"method":"GE T","expect_status":[99],"body_regex":"(","cert_warn_days":-1,"max_body":-5,"headers":{"Host":"x"}}`,
			want: []string{"body_regex", "cert_warn_days", "expect_status", "headers", "max_body", "method"}},
		{name: "login incomplete", settings: `{"login":{"expect_status":700}}`, want: []string{"login.expect_status", "login.password_file", "login.username"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := sdktest.ConfigureFields(t, New(), tt.settings)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("error fields %v (%v), want %v", got, errs, tt.want)
			}
		})
	}
}

func TestCheckerErrors(t *testing.T) {
	for _, tt := range []struct{ target, settings, want string }{
		{"ftp://127.0.0.1/", `{}`, "want an http:// or https:// URL"},
		{"127.0.0.1:80", `{}`, "checkers/http: target"},
		{"https://127.0.0.1/", `{"ca_file":"/nonexistent"}`, "checkers/http: ca_file"},
		{"https://127.0.0.1/", `{"bogus":1}`, "checkers/http: settings"},
	} {
		_, err := New().Check(context.Background(), &checkapi.Request{Target: tt.target, Settings: checkapi.Settings(tt.settings)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: err = %v, want %q", tt.target, tt.settings, err, tt.want)
		}
	}
}

// Describe documents exactly the settings Config accepts.
func TestDescribeMatchesConfig(t *testing.T) { sdktest.DescribeMatches(t, New(), "http", Config{}) }
