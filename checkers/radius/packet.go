package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"layeh.com/radius"
)

// The wire work layeh.com/radius leaves to its callers: Message-Authenticator
// (RFC 3579 §3.2, RFC 5997 §3) on requests and both authenticators on replies.

const (
	headerLen   = 20
	authLen     = 16
	maxPacket   = radius.MaxPacketLength
	typeMsgAuth = radius.Type(80) // Message-Authenticator
	typeReplyMs = radius.Type(18) // Reply-Message
)

var (
	errShortPacket   = errors.New("packet shorter than its header")
	errBadLength     = errors.New("bad packet length")
	errBadAttributes = errors.New("malformed attributes")
	errResponseAuth  = errors.New("Response Authenticator does not match (wrong shared secret?)")
	errMsgAuth       = errors.New("Message-Authenticator does not match")
	errMsgAuthLength = errors.New("Message-Authenticator is not 16 bytes")
)

// encodeRequest builds an Access-Request or Status-Server packet. When
// withMA is set, Message-Authenticator goes first: a server checks it before
// looking at anything else, and BlastRADIUS (CVE-2024-3596) mitigations
// expect it there. The MA is HMAC-MD5(secret) over the whole packet with the
// MA value zeroed; the Request Authenticator is the caller's random value.
func encodeRequest(code radius.Code, id byte, reqAuth [authLen]byte, secret []byte, attrs radius.Attributes, withMA bool) ([]byte, error) {
	all := make(radius.Attributes, 0, len(attrs)+1)
	if withMA {
		all = append(all, &radius.AVP{Type: typeMsgAuth, Attribute: make(radius.Attribute, authLen)})
	}
	all = append(all, attrs...)
	p := radius.Packet{Code: code, Identifier: id, Authenticator: reqAuth, Attributes: all}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if withMA {
		mac := hmac.New(md5.New, secret)
		mac.Write(b)
		// The MA value starts after the header and the attribute's type and length.
		mac.Sum(b[headerLen+2 : headerLen+2 : headerLen+2+authLen])
	}
	return b, nil
}

// reply is a verified answer to one request.
type reply struct {
	Code         radius.Code
	Identifier   byte
	Attributes   radius.Attributes
	HasMsgAuth   bool
	ReplyMessage string
}

// verifyReply checks that b is an authentic answer to request under secret:
// the Response Authenticator MD5(Code+ID+Length+RequestAuth+Attributes+Secret)
// and, when present, the Message-Authenticator, an HMAC-MD5 over the reply
// with the Request Authenticator in place of its own and the MA zeroed.
// It does not compare identifiers; the caller skips stray packets first.
func verifyReply(b, request, secret []byte) (*reply, error) {
	if len(b) < headerLen || len(request) < headerLen {
		return nil, errShortPacket
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < headerLen || length > maxPacket || length > len(b) {
		return nil, errBadLength
	}
	// Octets past Length are padding (RFC 2865 §3) and ignored.
	b = b[:length]
	attrs, err := radius.ParseAttributes(b[headerLen:])
	if err != nil {
		return nil, errBadAttributes
	}
	sum := md5.New()
	sum.Write(b[:4])
	sum.Write(request[4:headerLen])
	sum.Write(b[headerLen:])
	sum.Write(secret)
	if subtle.ConstantTimeCompare(sum.Sum(nil), b[4:headerLen]) != 1 {
		return nil, errResponseAuth
	}
	r := &reply{Code: radius.Code(b[0]), Identifier: b[1], Attributes: attrs}
	if off, ok := msgAuthOffset(b); ok {
		if int(b[off+1]) != 2+authLen {
			return nil, errMsgAuthLength
		}
		c := make([]byte, len(b))
		copy(c, b)
		copy(c[4:headerLen], request[4:headerLen])
		clear(c[off+2 : off+2+authLen])
		mac := hmac.New(md5.New, secret)
		mac.Write(c)
		if !hmac.Equal(mac.Sum(nil), b[off+2:off+2+authLen]) {
			return nil, errMsgAuth
		}
		r.HasMsgAuth = true
	}
	if v, ok := attrs.Lookup(typeReplyMs); ok {
		r.ReplyMessage = string(v)
	}
	return r, nil
}

// msgAuthOffset finds the first Message-Authenticator attribute in a packet
// whose attributes already parsed.
func msgAuthOffset(b []byte) (int, bool) {
	for off := headerLen; off+2 <= len(b); off += int(b[off+1]) {
		if b[off+1] < 2 {
			return 0, false
		}
		if radius.Type(b[off]) == typeMsgAuth {
			return off, true
		}
	}
	return 0, false
}

func codeName(c radius.Code) string {
	switch c {
	case radius.CodeAccessAccept:
		return "Access-Accept"
	case radius.CodeAccessReject:
		return "Access-Reject"
	case radius.CodeAccessChallenge:
		return "Access-Challenge"
	}
	return fmt.Sprintf("code %d", int(c))
}
