package ebpf

// The blocker's programs (block.c, zone.h) are compiled apart from the
// throttlers' so the two can change independently.
//go:generate go tool -modfile=../../packaging/tools/go.mod bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" block block.c
