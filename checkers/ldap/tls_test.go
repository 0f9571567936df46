package ldap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), "ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate for localhost and 127.0.0.1 and its
// PKCS #8 key, returning both paths.
func (ca *testCA) issue(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", pkcs8)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTLS(t *testing.T) {
	ca := newTestCA(t, "ripcord test CA")
	other := newTestCA(t, "some other CA")
	certFile, keyFile := ca.issue(t)
	s := startSlapd(t, services.SlapdOptions{
		TLSCertFile: certFile, TLSKeyFile: keyFile,
		LDAPSListen: netip.MustParseAddrPort("127.0.0.1:0"),
	})
	svc := serviceSettings(t)
	tests := []struct {
		name     string
		target   string
		settings map[string]any
		status   checkapi.Status
		reason   string
		phases   []string
	}{
		{"ldaps", s.LDAPSURL(), with(svc, "ca_file", ca.file),
			checkapi.StatusOK, checkapi.ReasonOK, []string{"connect", "tls", "bind", "search"}},
		{"StartTLS", s.URL(), with(svc, "ca_file", ca.file, "start_tls", true),
			checkapi.StatusOK, checkapi.ReasonOK, []string{"connect", "tls", "bind", "search"}},
		{"StartTLS with server_name", s.URL(), with(svc, "ca_file", ca.file, "start_tls", true, "server_name", "localhost"),
			checkapi.StatusOK, checkapi.ReasonOK, nil},
		{"ldaps untrusted CA", s.LDAPSURL(), with(svc, "ca_file", other.file),
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, []string{"connect", "tls"}},
		{"ldaps system roots", s.LDAPSURL(), svc,
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, nil},
		{"StartTLS untrusted CA", s.URL(), with(svc, "ca_file", other.file, "start_tls", true),
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, []string{"connect", "tls"}},
		{"ldaps wrong server_name", s.LDAPSURL(), with(svc, "ca_file", ca.file, "server_name", "ldap.example.org"),
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, nil},
		{"ldaps to the plain port", "ldaps://" + s.Addr.String(), with(svc, "ca_file", ca.file),
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, nil},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runCheck(t, c, tt.target, tt.settings, checkTimeout)
			assertResult(t, res, tt.status, tt.reason)
			if tt.phases != nil && !slices.Equal(sdktest.PhaseNames(res), tt.phases) {
				t.Errorf("phases %v, want %v", sdktest.PhaseNames(res), tt.phases)
			}
		})
	}
}

// The reference is named by address (no DNS in the health check), its
// certificate by host name: reference_server_name is the name checked.
func TestFreshnessReferenceTLS(t *testing.T) {
	ca := newTestCA(t, "ripcord test CA")
	certFile, keyFile := ca.issue(t)
	provider := startSlapd(t, services.SlapdOptions{ServerID: 1, Marker: "provider",
		TLSCertFile: certFile, TLSKeyFile: keyFile, LDAPSListen: netip.MustParseAddrPort("127.0.0.1:0")})
	consumer := startSlapd(t, services.SlapdOptions{Provider: provider.URL(), ServerID: 2, Marker: "consumer"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	settings := with(freshSettings(t, provider.LDAPSURL(), time.Minute), "ca_file", ca.file)
	for _, tt := range []struct {
		serverName string
		status     checkapi.Status
		reason     string
	}{
		{"", checkapi.StatusOK, checkapi.ReasonOK},                                  // the certificate holds 127.0.0.1 too
		{"localhost", checkapi.StatusOK, checkapi.ReasonOK},                         // and localhost
		{"ldap.example.org", checkapi.StatusDegraded, checkapi.ReasonMisconfigured}, // never read: degraded
	} {
		s := settings
		if tt.serverName != "" {
			s = with(settings, "reference_server_name", tt.serverName)
		}
		res, _ := runCheck(t, New(), consumer.URL(), s, checkTimeout)
		assertResult(t, res, tt.status, tt.reason)
		if tt.reason == checkapi.ReasonMisconfigured && !strings.Contains(res.Message, "ldap.example.org") {
			t.Errorf("reference_server_name %s: message %q does not name the certificate mismatch", tt.serverName, res.Message)
		}
	}
}
