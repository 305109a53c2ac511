package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// maxHTTPBody bounds what one GET may ask for.
const maxHTTPBody = 1 << 30

// serveHTTP answers GET /N with N bytes of payload, for tests that run real
// HTTP clients (curl, wget).
func serveHTTP(listen, cc string) error {
	ln, err := listenTCP(listen, cc)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
		if err != nil || n < 0 || n > maxHTTPBody {
			http.Error(w, "GET /N with 0 ≤ N ≤ 1073741824", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k, err := w.Write(buf[:min(n, int64(len(buf)))])
			if err != nil {
				return
			}
			n -= int64(k)
		}
	}))
}
