package lab

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// replicaColours colour the answers in the picture.
var replicaColours = map[string]string{"sa": "#2b6cb0", "sb": "#dd8a1c", "": "#c53030"}

// WriteSVG draws which replica answered each client for each service over
// time, with the events as vertical markers.
func WriteSVG(w io.Writer, title string, start, end time.Time, samples []Sample, events []Event) error {
	const (
		left, right, top = 150.0, 30.0, 92.0
		rowH, rowGap     = 22.0, 8.0
		width            = 1100.0
	)
	segs := Segments(samples)
	var rows []Key
	seen := map[Key]bool{}
	for _, c := range []string{"ca", "cb"} {
		for _, svc := range Services {
			k := Key{c, svc}
			for _, s := range segs {
				if s.Client == c && s.Service == svc && !seen[k] {
					seen[k] = true
					rows = append(rows, k)
				}
			}
		}
	}
	span := end.Sub(start).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 {
		v := t.Sub(start).Seconds()
		if v < 0 {
			v = 0
		}
		if v > span {
			v = span
		}
		return left + v/span*(width-left-right)
	}
	height := top + float64(len(rows))*(rowH+rowGap) + 70
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	rowY := map[Key]float64{}
	for i, k := range rows {
		y := top + float64(i)*(rowH+rowGap)
		rowY[k] = y
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">client %s → %s</text>`+"\n", left-8, y+rowH*0.7, k.Client, k.Service)
	}
	for _, s := range segs {
		y, ok := rowY[Key{s.Client, s.Service}]
		if !ok {
			continue
		}
		x0, x1 := x(s.From), x(s.To)
		if x1-x0 < 0.8 {
			x1 = x0 + 0.8
		}
		who := s.Replica
		if who == "" {
			who = "no answer"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s %s: %s, %.1fs</title></rect>`+"\n",
			x0, y, x1-x0, rowH, replicaColours[s.Replica], s.Client, s.Service, who, s.To.Sub(s.From).Seconds())
	}
	axisY := top + float64(len(rows))*(rowH+rowGap)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="black"/>`+"\n", left, axisY, width-right, axisY)
	step := 5.0
	if span > 120 {
		step = 30
	} else if span > 60 {
		step = 10
	}
	for t := 0.0; t <= span+0.001; t += step {
		xx := left + t/span*(width-left-right)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/><text x="%.1f" y="%.1f" text-anchor="middle">%.0fs</text>`+"\n",
			xx, axisY, xx, axisY+5, xx, axisY+18, t)
	}
	for i, e := range events {
		xx := x(e.At)
		labelY := top - 16 - float64(i%3)*16
		colour := map[string]string{"fault": "#c53030", "repair": "#2f855a"}[e.Kind]
		if colour == "" {
			colour = "#555555"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="5,3"/>`+"\n", xx, labelY+4, xx, axisY, colour)
		// Labels in the right half end at their line, so none runs off the picture.
		tx, anchor := xx+3, "start"
		if xx > width/2 {
			tx, anchor = xx-3, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="%s" text-anchor="%s">%s</text>`+"\n", tx, labelY, colour, anchor, html.EscapeString(e.Text))
	}
	ly := axisY + 40
	lx := left
	for _, it := range []struct{ key, label string }{{"sa", "answered by sa"}, {"sb", "answered by sb"}, {"", "no answer (timeout, unreachable)"}} {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="14" height="14" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, ly-11, replicaColours[it.key], lx+18, ly, it.label)
		lx += 200
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
