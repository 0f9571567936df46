package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"layeh.com/radius"
)

var rfcSecret = []byte("xyzzy5461")

// RFC 2865 §7.1: Access-Request for nemo / arctangent and its Access-Accept.
var (
	rfc2865Request = []byte{
		0x01,       // Code: Access-Request
		0x00,       // Identifier
		0x00, 0x38, // Length 56
		0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4, 0x22, 0x7a, // Request Authenticator
		0x01, 0x06, 0x6e, 0x65, 0x6d, 0x6f, // User-Name "nemo"
		0x02, 0x12, 0x0d, 0xbe, 0x70, 0x8d, 0x93, 0xd4, 0x13, 0xce, 0x31, 0x96, 0xe4, 0x3f, 0x78, 0x2a, 0x0a, 0xee, // User-Password (hidden)
		0x04, 0x06, 0xc0, 0xa8, 0x01, 0x10, // NAS-IP-Address 192.168.1.16
		0x05, 0x06, 0x00, 0x00, 0x00, 0x03, // NAS-Port 3
	}
	rfc2865Accept = []byte{
		0x02,       // Code: Access-Accept
		0x00,       // Identifier
		0x00, 0x26, // Length 38
		0x86, 0xfe, 0x22, 0x0e, 0x76, 0x24, 0xba, 0x2a, 0x10, 0x05, 0xf6, 0xbf, 0x9b, 0x55, 0xe0, 0xb2, // Response Authenticator
		0x06, 0x06, 0x00, 0x00, 0x00, 0x01, // Service-Type Login
		0x0f, 0x06, 0x00, 0x00, 0x00, 0x00, // Login-Service Telnet
		0x0e, 0x06, 0xc0, 0xa8, 0x01, 0x03, // Login-IP-Host 192.168.1.3
	}
)

// RFC 5997 §6: Status-Server with Message-Authenticator and its Access-Accept.
var (
	rfc5997Status = []byte{
		0x0c,       // Code: Status-Server
		0xda,       // Identifier
		0x00, 0x26, // Length 38
		0x8a, 0x54, 0xf4, 0x68, 0x6f, 0xb3, 0x94, 0xc5, 0x28, 0x66, 0xe3, 0x02, 0x18, 0x5d, 0x06, 0x23, // Request Authenticator
		0x50, 0x12, // Message-Authenticator, length 18
		0x5a, 0x66, 0x5e, 0x2e, 0x1e, 0x84, 0x11, 0xf3, 0xe2, 0x43, 0x82, 0x20, 0x97, 0xc8, 0x4f, 0xa3, // HMAC-MD5
	}
	rfc5997Accept = []byte{
		0x02,       // Code: Access-Accept
		0xda,       // Identifier
		0x00, 0x14, // Length 20
		0xef, 0x0d, 0x55, 0x2a, 0x4b, 0xf2, 0xd6, 0x93, 0xec, 0x2b, 0x6f, 0xe8, 0xb5, 0x41, 0x1d, 0x66, // Response Authenticator
	}
)

func auth16(b []byte) (a [authLen]byte) { copy(a[:], b[4:headerLen]); return a }

func TestEncodeRequestRFC2865(t *testing.T) {
	reqAuth := auth16(rfc2865Request)
	pw, err := radius.NewUserPassword([]byte("arctangent"), rfcSecret, reqAuth[:])
	if err != nil {
		t.Fatal(err)
	}
	var attrs radius.Attributes
	attrs.Add(1, radius.Attribute("nemo"))
	attrs.Add(2, pw)
	attrs.Add(4, radius.Attribute{192, 168, 1, 16})
	attrs.Add(5, radius.Attribute{0, 0, 0, 3})
	got, err := encodeRequest(radius.CodeAccessRequest, 0, reqAuth, rfcSecret, attrs, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rfc2865Request, got); diff != "" {
		t.Fatalf("Access-Request (-want +got):\n%s", diff)
	}
}

func TestEncodeRequestRFC5997MessageAuthenticator(t *testing.T) {
	got, err := encodeRequest(radius.CodeStatusServer, 0xda, auth16(rfc5997Status), rfcSecret, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rfc5997Status, got); diff != "" {
		t.Fatalf("Status-Server (-want +got):\n%s", diff)
	}
}

func TestEncodeRequestPutsMessageAuthenticatorFirst(t *testing.T) {
	var attrs radius.Attributes
	attrs.Add(1, radius.Attribute("alice"))
	attrs.Add(32, radius.Attribute("ripcord"))
	b, err := encodeRequest(radius.CodeAccessRequest, 7, [authLen]byte{1, 2, 3}, []byte("s"), attrs, true)
	if err != nil {
		t.Fatal(err)
	}
	if b[headerLen] != byte(typeMsgAuth) || b[headerLen+1] != 18 {
		t.Fatalf("first attribute = type %d len %d, want Message-Authenticator (80) len 18", b[headerLen], b[headerLen+1])
	}
	// Recompute independently: HMAC over the packet with the MA zeroed.
	c := bytes.Clone(b)
	clear(c[headerLen+2 : headerLen+18])
	mac := hmac.New(md5.New, []byte("s"))
	mac.Write(c)
	if !bytes.Equal(mac.Sum(nil), b[headerLen+2:headerLen+18]) {
		t.Fatal("Message-Authenticator is not HMAC-MD5 over the packet with MA zeroed")
	}
}

// signReply builds an authentic reply to request, optionally with a
// Message-Authenticator first (as FreeRADIUS 3.2.5+ sends), the way a server
// does it: MA over the packet with the Request Authenticator in the header,
// then the Response Authenticator over the result.
func signReply(t testing.TB, code radius.Code, request, secret []byte, attrs radius.Attributes, withMA bool) []byte {
	t.Helper()
	b, err := encodeRequest(code, request[1], auth16(request), secret, attrs, withMA)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.New()
	sum.Write(b[:4])
	sum.Write(request[4:headerLen])
	sum.Write(b[headerLen:])
	sum.Write(secret)
	sum.Sum(b[4:4:headerLen])
	return b
}

func TestVerifyReply(t *testing.T) {
	var msg radius.Attributes
	msg.Add(typeReplyMs, radius.Attribute("Hello alice"))
	withMA := signReply(t, radius.CodeAccessAccept, rfc5997Status, rfcSecret, msg, true)
	badMA := bytes.Clone(withMA)
	badMA[headerLen+5] ^= 1
	// Re-sign the Response Authenticator so only the MA is wrong.
	{
		sum := md5.New()
		sum.Write(badMA[:4])
		sum.Write(rfc5997Status[4:headerLen])
		sum.Write(badMA[headerLen:])
		sum.Write(rfcSecret)
		sum.Sum(badMA[4:4:headerLen])
	}
	padded := append(bytes.Clone(rfc5997Accept), 0xff, 0xff) // octets past Length are ignored
	tampered := bytes.Clone(rfc2865Accept)
	tampered[len(tampered)-1] ^= 1
	shortMA := append(bytes.Clone(rfc5997Accept[:headerLen]), 0x50, 0x04, 0, 0)
	shortMA[3] = 24

	tests := []struct {
		name      string
		reply     []byte
		request   []byte
		secret    []byte
		wantErr   error
		wantCode  radius.Code
		wantMA    bool
		wantReply string
	}{
		{name: "RFC 2865 7.1 Access-Accept", reply: rfc2865Accept, request: rfc2865Request, secret: rfcSecret, wantCode: radius.CodeAccessAccept},
		{name: "RFC 5997 Access-Accept", reply: rfc5997Accept, request: rfc5997Status, secret: rfcSecret, wantCode: radius.CodeAccessAccept},
		{name: "padding after Length", reply: padded, request: rfc5997Status, secret: rfcSecret, wantCode: radius.CodeAccessAccept},
		{name: "with Message-Authenticator", reply: withMA, request: rfc5997Status, secret: rfcSecret, wantCode: radius.CodeAccessAccept, wantMA: true, wantReply: "Hello alice"},
		{name: "wrong secret", reply: rfc2865Accept, request: rfc2865Request, secret: []byte("wrong"), wantErr: errResponseAuth},
		{name: "answer to another request", reply: rfc2865Accept, request: rfc5997Status, secret: rfcSecret, wantErr: errResponseAuth},
		{name: "attribute tampered", reply: tampered, request: rfc2865Request, secret: rfcSecret, wantErr: errResponseAuth},
		{name: "Message-Authenticator wrong", reply: badMA, request: rfc5997Status, secret: rfcSecret, wantErr: errMsgAuth},
		{name: "Message-Authenticator short", reply: shortMA, request: rfc5997Status, secret: rfcSecret, wantErr: errResponseAuth},
		{name: "short", reply: rfc2865Accept[:19], request: rfc2865Request, secret: rfcSecret, wantErr: errShortPacket},
		{name: "Length past the data", reply: rfc2865Accept[:30], request: rfc2865Request, secret: rfcSecret, wantErr: errBadLength},
		{name: "Length below header", reply: append([]byte{2, 0, 0, 19}, make([]byte, 16)...), request: rfc2865Request, secret: rfcSecret, wantErr: errBadLength},
		{name: "attribute overruns", reply: append([]byte{2, 0, 0, 23}, append(make([]byte, 16), 18, 9, 0)...), request: rfc2865Request, secret: rfcSecret, wantErr: errBadAttributes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyReply(tt.reply, tt.request, tt.secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Code != tt.wantCode || got.HasMsgAuth != tt.wantMA || got.ReplyMessage != tt.wantReply {
				t.Fatalf("got code %d MA %v Reply-Message %q, want %d %v %q", got.Code, got.HasMsgAuth, got.ReplyMessage, tt.wantCode, tt.wantMA, tt.wantReply)
			}
		})
	}
}

// A reply whose MA has the right HMAC but a bad length byte must not be read
// past its end.
func TestVerifyReplyMessageAuthenticatorLength(t *testing.T) {
	b := signReply(t, radius.CodeAccessAccept, rfc5997Status, rfcSecret, radius.Attributes{{Type: typeMsgAuth, Attribute: radius.Attribute{1, 2}}}, false)
	if _, err := verifyReply(b, rfc5997Status, rfcSecret); !errors.Is(err, errMsgAuthLength) {
		t.Fatalf("err = %v, want %v", err, errMsgAuthLength)
	}
}

func FuzzVerifyReply(f *testing.F) {
	f.Add(rfc2865Accept, false)                                                                 // RFC 2865 7.1, but checked against the RFC 5997 request: bad authenticator
	f.Add(rfc5997Accept, false)                                                                 // authentic, no attributes
	f.Add(signReply(f, radius.CodeAccessReject, rfc5997Status, rfcSecret, nil, true), false)    // authentic with MA
	f.Add([]byte{2, 0xda, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 2}, false) // MA of length 2
	f.Add([]byte("Reply-Message"), true)                                                        // attributes to sign
	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		if sign {
			// Round trip: any well-formed attribute list, signed by the
			// server's rules, must verify, with or without MA.
			attrs, err := radius.ParseAttributes(data)
			if err != nil || len(data) > 1000 {
				return
			}
			for _, withMA := range []bool{false, true} {
				var clean radius.Attributes
				for _, a := range attrs {
					if a.Type != typeMsgAuth {
						clean = append(clean, a)
					}
				}
				b := signReply(t, radius.CodeAccessAccept, rfc5997Status, rfcSecret, clean, withMA)
				rep, err := verifyReply(b, rfc5997Status, rfcSecret)
				if err != nil {
					t.Fatalf("authentic reply (MA %v) rejected: %v", withMA, err)
				}
				if rep.HasMsgAuth != withMA {
					t.Fatalf("HasMsgAuth = %v, want %v", rep.HasMsgAuth, withMA)
				}
			}
			return
		}
		rep, err := verifyReply(data, rfc5997Status, rfcSecret)
		if err == nil && rep.Code != radius.Code(data[0]) {
			t.Fatalf("code %d, packet says %d", rep.Code, data[0])
		}
	})
}

// A lost first datagram is covered by the retransmission: the same bytes are
// sent again inside the deadline and the answer to them is accepted.
func TestExchangeRetransmitsSamePacket(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	secret := []byte("s3cret")
	packet, err := encodeRequest(radius.CodeStatusServer, 9, [authLen]byte{9}, secret, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	accept := signReply(t, radius.CodeAccessAccept, packet, secret, nil, true)
	got := make(chan [][]byte, 1)
	go func() {
		var seen [][]byte
		buf := make([]byte, maxPacket)
		for len(seen) < 2 {
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			seen = append(seen, bytes.Clone(buf[:n]))
			if len(seen) == 2 { // drop the first, answer the resend
				pc.WriteTo(accept, from)
			}
		}
		got <- seen
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	rep, sent, err := exchange(ctx, pc.LocalAddr().String(), packet, secret, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != radius.CodeAccessAccept || !rep.HasMsgAuth || sent != 2 {
		t.Fatalf("reply %+v after %d sends, want a verified Access-Accept after 2", rep, sent)
	}
	seen := <-got
	if len(seen) != 2 || !bytes.Equal(seen[0], packet) || !bytes.Equal(seen[1], packet) {
		t.Fatalf("server saw %d packets; both must equal the request", len(seen))
	}
}
