package server

import "github.com/godbus/dbus/v5"

func signatureOf(v any) string { return dbus.SignatureOf(v).String() }
