// An ordinary Go net/http server (standard library only): every request to / is counted and recorded in a
// map (key k<n> → n*n) under a mutex, and answered "<hits> <sum of the map's values>"; /ticks answers how
// often a time.Ticker has fired (the runtime's timers); /gc runs the garbage collector and answers the
// hit count again. Each hit is logged on stdout. Eight goroutines locked to OS threads keep the process
// at a dozen threads (the runtime's own: sysmon, GC workers, the netpoller's). os.Args[1] is the
// workdir: the port goes to <workdir>/port, the pid to <workdir>/ready.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	workdir := os.Args[1]
	var mu sync.Mutex
	hits := 0
	squares := map[string]int{}
	var ticks atomic.Int64
	go func() {
		for range time.NewTicker(10 * time.Millisecond).C {
			ticks.Add(1)
		}
	}()
	for i := 0; i < 8; i++ {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		hits++
		squares[fmt.Sprintf("k%d", hits)] = hits * hits
		sum := 0
		for _, v := range squares {
			sum += v
		}
		return hits, sum
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, sum := count()
		fmt.Fprintf(w, "%d %d\n", n, sum)
		fmt.Printf("hit %d\n", n)
	})
	http.HandleFunc("/ticks", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", ticks.Load())
	})
	http.HandleFunc("/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		mu.Lock()
		n := hits
		mu.Unlock()
		fmt.Fprintf(w, "%d\n", n)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	put := func(name, text string) {
		tmp := filepath.Join(workdir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			panic(err)
		}
		if err := os.Rename(tmp, filepath.Join(workdir, name)); err != nil {
			panic(err)
		}
	}
	put("port", fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	put("ready", fmt.Sprint(os.Getpid()))
	panic(http.Serve(ln, nil))
}
