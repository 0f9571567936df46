package checkapi

import (
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a target's password wherever RedactTarget finds it, as
// url.URL.Redacted writes it.
const Redacted = "xxxxx"

// RedactTarget returns text with the password of target's userinfo
// (scheme://user:password@host/...) replaced by Redacted, in each form a
// message may carry it: as written in the target, decoded, and escaped as
// url.URL.String writes it. A target without a password leaves text as it
// is. The plugin host applies it to every check's message, so that status,
// logs and `ripcord check` never show the password; a very short password
// may blank out more of a message than the URL.
func RedactTarget(text, target string) string {
	raw := targetPassword(target)
	if raw == "" {
		return text
	}
	forms := []string{raw}
	if dec, err := url.PathUnescape(raw); err == nil {
		forms = append(forms, dec, strings.TrimPrefix(url.UserPassword("", dec).String(), ":"))
	}
	// Longest first, so that a form containing another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range forms {
		if f != "" {
			text = strings.ReplaceAll(text, f, Redacted)
		}
	}
	return text
}

// targetPassword returns the password in target's userinfo as written, or
// "". It reads the string itself rather than url.Parse's result, so that a
// target url.Parse refuses is redacted too.
func targetPassword(target string) string {
	_, rest, ok := strings.Cut(target, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
