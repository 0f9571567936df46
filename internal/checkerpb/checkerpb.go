// Package checkerpb is the wire contract between the ripcord daemon and its
// checker plugins: the gRPC service generated from checker.proto and the
// go-plugin handshake both sides must agree on. Only plugins (the host) and
// plugins/sdk (the plugin side) import it.
package checkerpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative checker.proto

import plugin "github.com/hashicorp/go-plugin"

// PluginName is the name under which the Checker service is dispensed.
const PluginName = "checker"

// Handshake is the go-plugin handshake shared by host and plugins. The cookie
// is not a secret, only a way to tell a human who runs a plugin by hand what
// it is. ProtocolVersion changes when checker.proto changes incompatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "RIPCORD_PLUGIN",
	MagicCookieValue: "c7d1f0e4a9b25863-checker",
}
