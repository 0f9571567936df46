package checkapi

import "testing"

func TestRedactTarget(t *testing.T) {
	for _, tc := range []struct {
		name, target, text, want string
	}{
		{"no userinfo", "http://portal/login", "500 from http://portal/login", "500 from http://portal/login"},
		{"user only", "ldap://admin@ldap1", "bind as admin@ldap1", "bind as admin@ldap1"},
		{"not a URL", "10.0.0.1:1812", "no answer from 10.0.0.1:1812", "no answer from 10.0.0.1:1812"},
		{"password in the URL", "http://admin:hunter2@portal/", "500 from http://admin:hunter2@portal/login",
			"500 from http://admin:xxxxx@portal/login"},
		{"password alone", "https://u:hunter2@h/", `wrong password "hunter2"`, `wrong password "xxxxx"`},
		{"escaped in the target, decoded in the text", "http://u:p%40ss%2Fw@h/", "login p@ss/w refused",
			"login xxxxx refused"},
		{"decoded in the target, escaped in the text", "http://u:p%40ss@h/x", "GET http://u:p%40ss@h/x: 500",
			"GET http://u:xxxxx@h/x: 500"},
		{"url.Parse refuses the target", "http://u:hunter2@h:port/", `parse "http://u:hunter2@h:port/": invalid port`,
			`parse "http://u:xxxxx@h:port/": invalid port`},
		{"@ in the path is not userinfo", "http://h/a:b@c", "404 from http://h/a:b@c", "404 from http://h/a:b@c"},
		{"empty password", "http://u:@h/", "500 from http://u:@h/", "500 from http://u:@h/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactTarget(tc.text, tc.target); got != tc.want {
				t.Errorf("RedactTarget(%q, %q) = %q, want %q", tc.text, tc.target, got, tc.want)
			}
		})
	}
}
