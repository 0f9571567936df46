package checkpipe

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// Golden frames, one wire field per line.
var (
	// Check of http://a/ with settings {} and a deadline 300 ns after the epoch.
	goldenCheck = cat(
		[]byte{0, 0, 0, 0x11},  // body length 17
		[]byte{0x04},           // kind: check
		[]byte{0x07},           // id 7
		[]byte{0xd8, 0x04},     // deadline 300 (zig-zag varint)
		[]byte{0x09},           // target: 9 bytes
		[]byte("http://a/"),    //
		[]byte{0x02, '{', '}'}, // settings: 2 bytes
	)
	// Its answer: degraded, reason slow, message "12ms", one phase of 0.5 s,
	// one observation.
	goldenCheckAnswer = cat(
		[]byte{0, 0, 0, 0x26},        // body length 38
		[]byte{0x84},                 // kind: check answer
		[]byte{0x07},                 // id 7
		[]byte{0x00},                 // error: none
		[]byte{0x06},                 // status 3, degraded (zig-zag varint)
		[]byte{0x04}, []byte("slow"), // reason
		[]byte{0x04}, []byte("12ms"), // message
		[]byte{0x01},              // one phase
		[]byte{0x01}, []byte("c"), // its name
		[]byte{0x3f, 0xe0, 0, 0, 0, 0, 0, 0}, // 0.5 seconds
		[]byte{0x01},                         // one observation
		[]byte{0x03}, []byte("lag"),          // its name
		[]byte{0x40, 0x28, 0, 0, 0, 0, 0, 0}, // 12.0
	)
	goldenHello = cat(
		[]byte{0, 0, 0, 0x03}, // body length 3
		[]byte{0x01},          // kind: hello
		[]byte{0x00},          // id 0
		[]byte{0x01},          // version 1
	)
	goldenDescribeAnswer = cat(
		[]byte{0, 0, 0, 0x13},        // body length 19
		[]byte{0x82},                 // kind: describe answer
		[]byte{0x01},                 // id 1
		[]byte{0x00},                 // error: none
		[]byte{0x04}, []byte("http"), // name
		[]byte{0x01}, []byte("1"), // version
		[]byte{0x00},              // summary: empty
		[]byte{0x01},              // one field
		[]byte{0x01}, []byte("u"), // its name
		[]byte{0x01}, []byte("s"), // type
		[]byte{0x01}, // required
		[]byte{0x00}, // default: empty
		[]byte{0x00}, // help: empty
	)
)

func TestGolden(t *testing.T) {
	req := request{kind: kindCheck, id: 7, deadline: 300, target: "http://a/", settings: []byte("{}")}
	if got := req.append(nil); !bytes.Equal(got, goldenCheck) {
		t.Errorf("check request:\n got %x\nwant %x", got, goldenCheck)
	}
	gotReq, err := parseRequest(goldenCheck[4:])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, gotReq, cmp.AllowUnexported(request{})); diff != "" {
		t.Errorf("parsed check request (-want +got):\n%s", diff)
	}

	answers := []struct {
		name   string
		answer answer
		wire   []byte
	}{
		{"check", answer{kind: kindCheck | answerBit, id: 7, result: Result{Status: 3, Reason: "slow", Message: "12ms",
			Phases: []Phase{{"c", 0.5}}, Observations: map[string]float64{"lag": 12}}}, goldenCheckAnswer},
		{"hello", answer{kind: kindHello, version: 1}, goldenHello},
		{"describe", answer{kind: kindDescribe | answerBit, id: 1, desc: checkapi.Description{Name: "http", Version: "1",
			Settings: []checkapi.Field{{Name: "u", Type: "s", Required: true}}}}, goldenDescribeAnswer},
	}
	for _, tc := range answers {
		if got := tc.answer.append(nil); !bytes.Equal(got, tc.wire) {
			t.Errorf("%s answer:\n got %x\nwant %x", tc.name, got, tc.wire)
		}
		got, err := parseAnswer(tc.wire[4:])
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.answer, got, cmp.AllowUnexported(answer{})); diff != "" {
			t.Errorf("parsed %s answer (-want +got):\n%s", tc.name, diff)
		}
	}
}

// Every prefix of a valid body is an error, never a panic or a success.
func TestTruncated(t *testing.T) {
	for _, wire := range [][]byte{goldenCheck, goldenCheckAnswer, goldenDescribeAnswer} {
		body := wire[4:]
		for n := range len(body) {
			_, err1 := parseRequest(body[:n])
			_, err2 := parseAnswer(body[:n])
			if err1 == nil && err2 == nil {
				t.Errorf("%x: a %d-byte prefix parsed", body, n)
			}
		}
	}
	if _, err := parseAnswer(append(slices.Clone(goldenHello[4:]), 0)); !errors.Is(err, errTrailing) {
		t.Errorf("a byte after the hello: %v, want errTrailing", err)
	}
}

func TestReadFrame(t *testing.T) {
	two := cat(goldenCheck, goldenHello)
	r := bytes.NewReader(two)
	buf := make([]byte, 0, 4)
	for _, want := range [][]byte{goldenCheck[4:], goldenHello[4:]} {
		got, err := readFrame(r, buf)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("readFrame: %x, %v; want %x", got, err, want)
		}
	}
	if _, err := readFrame(r, buf); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	if _, err := readFrame(bytes.NewReader(goldenCheck[:10]), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("cut frame: %v, want unexpected EOF", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0x10, 0, 1}), nil); !errors.Is(err, errTooLong) {
		t.Errorf("1 MiB + 1 length: %v, want errTooLong", err)
	}
}

// A body either fails to parse or parses to what it encodes to.
func FuzzRequest(f *testing.F) {
	f.Add(goldenCheck[4:])                                                      // check
	f.Add((&request{kind: kindConfigure, id: 1, deadline: -5}).append(nil)[4:]) // configure, no settings
	f.Add([]byte{kindCancel, 0x80, 0x01})                                       // cancel, id 128
	f.Add([]byte{0x7f, 0x00})                                                   // unknown kind
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseRequest(body)
		if err != nil {
			return
		}
		again, err := parseRequest(req.append(nil)[4:])
		if err != nil {
			t.Fatalf("accepted request does not round-trip: %v", err)
		}
		if diff := cmp.Diff(req, again, cmp.AllowUnexported(request{})); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzAnswer(f *testing.F) {
	f.Add(goldenCheckAnswer[4:])    // check answer
	f.Add(goldenDescribeAnswer[4:]) // describe answer
	f.Add(goldenHello[4:])          // hello
	f.Add((&answer{kind: kindConfigure | answerBit, id: 3, err: "x",
		fieldErrs: []checkapi.FieldError{{Field: "a", Message: "b"}}}).append(nil)[4:]) // configure answer
	f.Add([]byte{0x84, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0xff}) // a count the frame cannot hold
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseAnswer(body)
		if err != nil {
			return
		}
		again, err := parseAnswer(a.append(nil)[4:])
		if err != nil {
			t.Fatalf("accepted answer does not round-trip: %v", err)
		}
		if diff := cmp.Diff(a, again, cmp.AllowUnexported(answer{}), cmp.Comparer(sameFloat)); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// sameFloat compares bit patterns, so that NaN equals itself.
func sameFloat(a, b float64) bool { return a == b || (a != a && b != b) }
