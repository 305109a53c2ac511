package ebpf

import "encoding/binary"

// hostEndian is the byte order of BPF records; the objects are built for
// little-endian (bpfel) targets only.
var hostEndian = binary.LittleEndian
