package socktarget

// socktarget.c is compiled with bpf2go (clang); the generated .go and .o
// files are committed. `make generate` regenerates them.
//go:generate go tool -modfile=../../../packaging/tools/go.mod bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" socktarget socktarget.c
//go:generate go tool -modfile=../../../packaging/tools/go.mod bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" rwnd rwnd.c
