package rip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// AuthType selects how packets are authenticated.
type AuthType int

const (
	// AuthNone sends and accepts plain packets.
	AuthNone AuthType = iota
	// AuthPlain is the RIPv2 simple password (RFC 2453 §4.1): a 16-byte
	// cleartext password in an entry with AFI 0xFFFF, type 2.
	AuthPlain
	// AuthMD5 is keyed MD5 (RFC 2082, RFC 4822) as FRR ripd and BIRD
	// implement it.
	AuthMD5
	// AuthHMACSHA256 is RFC 4822 HMAC-SHA-256 as BIRD implements it (FRR
	// ripd has no HMAC).
	AuthHMACSHA256
)

// authNames is the one list of authentication modes: their names in
// configuration files, logs and status.
var authNames = [...]string{AuthNone: "none", AuthPlain: "plain", AuthMD5: "md5", AuthHMACSHA256: "hmac-sha256"}

func (t AuthType) String() string {
	if t >= 0 && int(t) < len(authNames) {
		return authNames[t]
	}
	return fmt.Sprintf("AuthType(%d)", int(t))
}

// AuthModes returns the name of every authentication mode, AuthNone first.
func AuthModes() []string { return slices.Clone(authNames[:]) }

// ParseAuthType returns the mode named name, as AuthModes lists them.
func ParseAuthType(name string) (AuthType, bool) {
	i := slices.Index(authNames[:], name)
	return AuthType(i), i >= 0
}

// Authentication entry types and trailer constants.
const (
	authTypePlain  = 2
	authTypeCrypto = 3

	md5Len    = 16
	sha256Len = 32
	// trailerHeaderLen is the 0xFFFF 0x0001 in front of the digest.
	trailerHeaderLen = 4
)

// hmacPad fills the digest area before the HMAC is computed (RFC 4822
// §2.5, "Apad").
var hmacPad = [4]byte{0x87, 0x8F, 0xE1, 0xF3}

// Authentication errors, wrapped with detail.
var (
	ErrAuthMissing  = errors.New("rip: authentication entry missing")
	ErrAuthType     = errors.New("rip: authentication type mismatch")
	ErrAuthKeyID    = errors.New("rip: unknown key id")
	ErrAuthLength   = errors.New("rip: authentication lengths inconsistent")
	ErrAuthTrailer  = errors.New("rip: authentication trailer missing")
	ErrAuthDigest   = errors.New("rip: wrong digest or password")
	ErrAuthKeySize  = errors.New("rip: key too long")
	ErrAuthSequence = errors.New("rip: sequence number went backwards")
)

// Auth is the authentication of one speaker. Keys are raw bytes: the
// configuration layer reads them from files. String and LogValue never
// show the key.
type Auth struct {
	Type  AuthType
	KeyID uint8  // MD5 and HMAC
	Key   []byte // at most 16 bytes for plain and MD5
	// MD5AuthDataLen is what the auth-data length field says for keyed MD5:
	// 16 (the digest alone, as RFC 2082 reads; the default here) or 20
	// (digest plus trailer header, what FRR 8.4 and BIRD 2.0.12 send).
	// FRR, BIRD and Verify accept either.
	MD5AuthDataLen int
}

// String describes the authentication without the key.
func (a Auth) String() string {
	if a.Type == AuthNone {
		return "none"
	}
	return fmt.Sprintf("%s key-id %d (key hidden)", a.Type, a.KeyID)
}

// LogValue keeps the key out of structured logs.
func (a Auth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Validate checks the settings.
func (a Auth) Validate() error {
	switch a.Type {
	case AuthNone:
		return nil
	case AuthPlain, AuthMD5:
		if len(a.Key) == 0 || len(a.Key) > 16 {
			return fmt.Errorf("%w: %s keys are 1..16 bytes", ErrAuthKeySize, a.Type)
		}
	case AuthHMACSHA256:
		if len(a.Key) == 0 {
			return fmt.Errorf("rip: %s needs a key", a.Type)
		}
	default:
		return fmt.Errorf("rip: unknown authentication type %d", int(a.Type))
	}
	if a.MD5AuthDataLen != 0 && a.MD5AuthDataLen != 16 && a.MD5AuthDataLen != 20 {
		return fmt.Errorf("rip: md5 auth-data length %d, want 16 or 20", a.MD5AuthDataLen)
	}
	return nil
}

// MaxRouteEntries is how many route entries fit in one packet: the
// authentication entry takes one of the 25 places.
func (a Auth) MaxRouteEntries() int {
	if a.Type == AuthNone {
		return MaxEntries
	}
	return MaxEntries - 1
}

func (a Auth) digestLen() int {
	if a.Type == AuthHMACSHA256 {
		return sha256Len
	}
	return md5Len
}

// Sign turns an encoded plain packet (Packet.MarshalBinary) into the bytes
// to send: the authentication entry goes after the 4-byte header and, for
// MD5 and HMAC, the trailer after the entries. seq is the cryptographic
// sequence number (ignored for none and plain).
func (a Auth) Sign(plain []byte, seq uint32) ([]byte, error) {
	if len(plain) < headerLen {
		return nil, ErrShort
	}
	if a.Type == AuthNone {
		return plain, nil
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	// packet length = offset of the trailer = header + auth entry + routes.
	pktLen := len(plain) + entryLen
	out := make([]byte, pktLen, pktLen+trailerHeaderLen+a.digestLen())
	copy(out, plain[:headerLen])
	copy(out[headerLen+entryLen:], plain[headerLen:])
	ae := out[headerLen : headerLen+entryLen]
	binary.BigEndian.PutUint16(ae[0:], AFIAuth)
	if a.Type == AuthPlain {
		binary.BigEndian.PutUint16(ae[2:], authTypePlain)
		copy(ae[4:], a.Key) // zero-padded to 16
		return out, nil
	}
	binary.BigEndian.PutUint16(ae[2:], authTypeCrypto)
	binary.BigEndian.PutUint16(ae[4:], uint16(pktLen))
	ae[6] = a.KeyID
	ae[7] = byte(a.authDataLen())
	binary.BigEndian.PutUint32(ae[8:], seq)
	// ae[12:20] stays zero.
	out = append(out, 0xFF, 0xFF, 0x00, 0x01)
	out = append(out, a.digest(out)...)
	return out, nil
}

func (a Auth) authDataLen() int {
	if a.Type == AuthHMACSHA256 {
		// BIRD puts the bare digest length here for HMAC.
		return sha256Len
	}
	if a.MD5AuthDataLen == 20 {
		return md5Len + trailerHeaderLen
	}
	return md5Len
}

// digest computes the authentication data for msg, which runs from the RIP
// header up to and including the trailer's 0xFFFF 0x0001.
func (a Auth) digest(msg []byte) []byte {
	switch a.Type {
	case AuthHMACSHA256:
		// RFC 4822 §2.5: the digest area holds Apad while the HMAC is
		// computed. The key is used as HMAC takes it (BIRD does the same;
		// RFC 4822 would hash keys longer than 32 bytes first).
		h := hmac.New(sha256.New, a.Key)
		h.Write(msg)
		for range sha256Len / 4 {
			h.Write(hmacPad[:])
		}
		return h.Sum(nil)
	default:
		// Keyed MD5: MD5(packet incl. trailer header || key zero-padded
		// to 16 bytes).
		var key [md5Len]byte
		copy(key[:], a.Key)
		h := md5.New()
		h.Write(msg)
		h.Write(key[:])
		return h.Sum(nil)
	}
}

// Verify checks a received packet's authentication and returns the plain
// packet (header and route entries, ready for Packet.UnmarshalBinary) and
// its sequence number (0 for none and plain). It does not judge the
// sequence number: callers that keep per-neighbour state do.
func (a Auth) Verify(wire []byte) (plain []byte, seq uint32, err error) {
	if len(wire) < headerLen+entryLen {
		return nil, 0, fmt.Errorf("%w: %d bytes", ErrShort, len(wire))
	}
	ae := wire[headerLen : headerLen+entryLen]
	hasAuth := binary.BigEndian.Uint16(ae[0:]) == AFIAuth
	if a.Type == AuthNone {
		if hasAuth {
			return nil, 0, fmt.Errorf("%w: got an authentication entry, want none", ErrAuthType)
		}
		return wire, 0, nil
	}
	if !hasAuth {
		return nil, 0, ErrAuthMissing
	}
	strip := func(end int) []byte {
		p := make([]byte, 0, end-entryLen)
		p = append(p, wire[:headerLen]...)
		return append(p, wire[headerLen+entryLen:end]...)
	}
	typ := binary.BigEndian.Uint16(ae[2:])
	switch a.Type {
	case AuthPlain:
		if typ != authTypePlain {
			return nil, 0, fmt.Errorf("%w: type %d, want %d", ErrAuthType, typ, authTypePlain)
		}
		var want [16]byte
		copy(want[:], a.Key)
		if subtle.ConstantTimeCompare(ae[4:20], want[:]) != 1 {
			return nil, 0, ErrAuthDigest
		}
		return strip(len(wire)), 0, nil
	}
	if typ != authTypeCrypto {
		return nil, 0, fmt.Errorf("%w: type %d, want %d", ErrAuthType, typ, authTypeCrypto)
	}
	if ae[6] != a.KeyID {
		return nil, 0, fmt.Errorf("%w: %d", ErrAuthKeyID, ae[6])
	}
	dl := a.digestLen()
	pktLen := int(binary.BigEndian.Uint16(ae[4:]))
	adl := int(ae[7])
	// The auth-data length field has two readings in the wild: the digest
	// alone, or digest plus the trailer header.
	if adl != dl && adl != dl+trailerHeaderLen {
		return nil, 0, fmt.Errorf("%w: auth-data length %d", ErrAuthLength, adl)
	}
	if pktLen+trailerHeaderLen+dl != len(wire) || pktLen < headerLen+2*entryLen || (pktLen-headerLen)%entryLen != 0 {
		return nil, 0, fmt.Errorf("%w: packet length %d in %d bytes", ErrAuthLength, pktLen, len(wire))
	}
	if wire[pktLen] != 0xFF || wire[pktLen+1] != 0xFF || wire[pktLen+2] != 0x00 || wire[pktLen+3] != 0x01 {
		return nil, 0, ErrAuthTrailer
	}
	got := wire[pktLen+trailerHeaderLen:]
	want := a.digest(wire[:pktLen+trailerHeaderLen])
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, 0, ErrAuthDigest
	}
	return strip(pktLen), binary.BigEndian.Uint32(ae[8:]), nil
}

// Sequence hands out cryptographic sequence numbers: the Unix time in
// seconds, never lower than the last one given. Receivers such as BIRD
// reject a number lower than the last they saw from a neighbour; Unix time
// keeps the numbers non-decreasing across restarts without a state file,
// provided the clock does not step back past the previous run's numbers.
// Equal numbers are fine (BIRD rejects only lower ones).
type Sequence struct {
	last uint32
	now  func() time.Time
}

// Next returns the number for the next packet.
func (s *Sequence) Next() uint32 {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	n := uint32(now().Unix())
	if n < s.last {
		n = s.last
	}
	s.last = n
	return n
}
