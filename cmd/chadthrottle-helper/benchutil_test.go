//go:build bench && linux

package main

import (
	"encoding/binary"
)

func nativeEndian() binary.ByteOrder { return binary.LittleEndian }
