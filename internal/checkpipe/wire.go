// Package checkpipe is how the daemon talks to its built-in checkers: small
// binary frames over a Unix socket pair that the checker process inherits as
// file descriptor 3. It does the job go-plugin's gRPC does for third-party
// plugins (Describe, Configure, Check with a deadline, many checks at once)
// without linking gRPC, protobuf and HTTP/2 into every checker process,
// which made up half of its memory, and with fewer wake-ups per check
// (docs/benchmarks.md): frames queued at about the same time go out in one
// write, both ways (batchWriter), so a tick's checks cost the other process
// one wake-up.
//
// A frame is a 4-byte big-endian length and that many bytes of body:
//
//	body   = kind (1 byte), id (uvarint), fields of the kind
//	string = uvarint length, bytes
//	int    = zig-zag varint
//	float  = 8 bytes, IEEE 754, big-endian
//
// The checker says hello first; then the host sends requests, each with an
// id of its choosing, and the checker answers each with the same id and the
// request's kind | 0x80, in any order; every answer starts with the
// checker's own error (a string, empty if none). A cancel has no answer.
package checkpipe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Version is the protocol version a checker announces in its hello.
const Version = 1

// Kinds of frames. An answer's kind is its request's kind | answerBit.
const (
	kindHello     byte = 0x01 // checker -> host, id 0: version
	kindDescribe  byte = 0x02 // no fields
	kindConfigure byte = 0x03 // deadline (Unix ns, 0 = none), target, settings
	kindCheck     byte = 0x04 // deadline, target, settings
	kindCancel    byte = 0x05 // no fields, no answer: cancel request id

	answerBit byte = 0x80
)

// maxFrame bounds a frame's body: settings and results are a few hundred
// bytes, so a larger length means a broken peer, not a big message.
const maxFrame = 1 << 20

var (
	errShort    = errors.New("checkpipe: frame ends early")
	errTrailing = errors.New("checkpipe: bytes after the frame's last field")
	errTooLong  = fmt.Errorf("checkpipe: frame longer than %d bytes", maxFrame)
)

// request is a frame from the host.
type request struct {
	kind     byte
	id       uint64
	deadline int64  // configure, check: Unix nanoseconds, 0 = none
	target   string // configure, check
	settings []byte // configure, check
}

// Result is a check's answer as the wire carries it, before the host judges
// it: Status numbers the statuses as the gRPC contract does (1 failed, 2 ok,
// 3 degraded), so that both transports are judged by one function.
type Result struct {
	Status       int32
	Reason       string
	Message      string
	Phases       []Phase
	Observations map[string]float64
}

// Phase is a phase's name and duration in seconds.
type Phase struct {
	Name    string
	Seconds float64
}

// answer is a frame from the checker.
type answer struct {
	kind      byte
	id        uint64
	version   uint64                // hello
	desc      checkapi.Description  // describe
	err       string                // the checker's own error, "" if none
	targetErr string                // configure: why the target is invalid, "" if it is not
	fieldErrs []checkapi.FieldError // configure
	result    Result                // check
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// frame starts a frame of kind and id at the end of b; finish fills in the
// length of the frame that starts at b[start:].
func frame(b []byte, kind byte, id uint64) []byte {
	b = append(b, 0, 0, 0, 0, kind)
	return binary.AppendUvarint(b, id)
}

func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// append appends r's frame to b.
func (r *request) append(b []byte) []byte {
	start := len(b)
	b = frame(b, r.kind, r.id)
	switch r.kind {
	case kindConfigure, kindCheck:
		b = binary.AppendVarint(b, r.deadline)
		b = appendString(b, r.target)
		b = appendString(b, string(r.settings))
	}
	return finish(b, start)
}

// append appends a's frame to b.
func (a *answer) append(b []byte) []byte {
	start := len(b)
	b = frame(b, a.kind, a.id)
	switch a.kind {
	case kindHello:
		b = binary.AppendUvarint(b, a.version)
	case kindDescribe | answerBit:
		b = appendString(b, a.err)
		b = appendString(b, a.desc.Name)
		b = appendString(b, a.desc.Version)
		b = appendString(b, a.desc.Summary)
		b = binary.AppendUvarint(b, uint64(len(a.desc.Settings)))
		for _, f := range a.desc.Settings {
			b = appendString(b, f.Name)
			b = appendString(b, f.Type)
			b = appendBool(b, f.Required)
			b = appendString(b, f.Default)
			b = appendString(b, f.Help)
		}
	case kindConfigure | answerBit:
		b = appendString(b, a.err)
		b = appendString(b, a.targetErr)
		b = binary.AppendUvarint(b, uint64(len(a.fieldErrs)))
		for _, fe := range a.fieldErrs {
			b = appendString(b, fe.Field)
			b = appendString(b, fe.Message)
		}
	case kindCheck | answerBit:
		r := &a.result
		b = appendString(b, a.err)
		b = binary.AppendVarint(b, int64(r.Status))
		b = appendString(b, r.Reason)
		b = appendString(b, r.Message)
		b = binary.AppendUvarint(b, uint64(len(r.Phases)))
		for _, p := range r.Phases {
			b = appendString(b, p.Name)
			b = appendFloat(b, p.Seconds)
		}
		b = binary.AppendUvarint(b, uint64(len(r.Observations)))
		for k, v := range r.Observations {
			b = appendString(b, k)
			b = appendFloat(b, v)
		}
	}
	return finish(b, start)
}

// decoder reads fields from a frame's body; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next string's bytes, still in the frame's buffer.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// bytes returns a copy of the next string's bytes (nil if empty): the
// frame's buffer is reused.
func (d *decoder) bytes() []byte {
	if v := d.raw(); len(v) > 0 {
		return append([]byte(nil), v...)
	}
	return nil
}

func (d *decoder) string() string { return string(d.raw()) }

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) bool() bool {
	if len(d.b) < 1 {
		d.fail(errShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail(fmt.Errorf("checkpipe: bool byte %d", v))
	}
	return v == 1
}

// count reads the number of elements of a list, each at least min bytes
// long: a count the rest of the frame cannot hold is an error, not an
// allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errTrailing
	}
	return d.err
}

// parseRequest decodes a frame's body sent by the host.
func parseRequest(body []byte) (request, error) {
	if len(body) == 0 {
		return request{}, errShort
	}
	d := decoder{b: body[1:]}
	r := request{kind: body[0], id: d.uvarint()}
	switch r.kind {
	case kindDescribe, kindCancel:
	case kindConfigure, kindCheck:
		r.deadline = d.varint()
		r.target = d.string()
		r.settings = d.bytes()
	default:
		return r, fmt.Errorf("checkpipe: unknown request kind 0x%02x", r.kind)
	}
	return r, d.end()
}

// parseAnswer decodes a frame's body sent by the checker.
func parseAnswer(body []byte) (answer, error) {
	if len(body) == 0 {
		return answer{}, errShort
	}
	d := decoder{b: body[1:]}
	a := answer{kind: body[0], id: d.uvarint()}
	switch a.kind {
	case kindHello:
		a.version = d.uvarint()
	case kindDescribe | answerBit:
		a.err = d.string()
		a.desc = checkapi.Description{Name: d.string(), Version: d.string(), Summary: d.string()}
		for n := d.count(5); n > 0; n-- {
			a.desc.Settings = append(a.desc.Settings, checkapi.Field{
				Name: d.string(), Type: d.string(), Required: d.bool(), Default: d.string(), Help: d.string()})
		}
	case kindConfigure | answerBit:
		a.err = d.string()
		a.targetErr = d.string()
		for n := d.count(2); n > 0; n-- {
			a.fieldErrs = append(a.fieldErrs, checkapi.FieldError{Field: d.string(), Message: d.string()})
		}
	case kindCheck | answerBit:
		a.err = d.string()
		r := &a.result
		r.Status = int32(d.varint())
		r.Reason = d.string()
		r.Message = d.string()
		for n := d.count(9); n > 0; n-- {
			r.Phases = append(r.Phases, Phase{Name: d.string(), Seconds: d.float()})
		}
		if n := d.count(9); n > 0 {
			r.Observations = make(map[string]float64, n)
			for ; n > 0; n-- {
				k := d.string()
				r.Observations[k] = d.float()
			}
		}
	default:
		return a, fmt.Errorf("checkpipe: unknown answer kind 0x%02x", a.kind)
	}
	return a, d.end()
}

// readFrame reads one frame's body into buf (grown as needed) and returns it.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, errTooLong
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
