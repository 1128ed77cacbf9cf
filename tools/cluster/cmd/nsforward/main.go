// Command nsforward listens on an address of the network namespace it starts in and forwards each
// connection to an address inside another network namespace, so that the host reaches the API server of
// the cluster's node without a route or firewall rule between the two namespaces.
//
//	nsforward -listen 127.0.0.1:16443 -netns /run/netns/physlite-cluster -to 127.0.0.1:6443
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:16443", "address to listen on, in the starting namespace")
	netns := flag.String("netns", "", "network namespace file (e.g. /run/netns/NAME) to connect in")
	to := flag.String("to", "127.0.0.1:6443", "address to connect to, inside -netns")
	flag.Parse()
	if *netns == "" {
		log.Fatal("nsforward: -netns is required")
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("nsforward: listen on %s: %v", *listen, err)
	}
	dial, err := dialerIn(*netns)
	if err != nil {
		log.Fatal(err)
	}
	for {
		client, err := listener.Accept()
		if err != nil {
			log.Fatalf("nsforward: accept: %v", err)
		}
		go forward(client, dial, *to)
	}
}

type dialRequest struct {
	address string
	reply   chan dialResult
}

type dialResult struct {
	conn net.Conn
	err  error
}

// dialerIn returns a dial function whose sockets are created by one OS thread that lives in the namespace
// at path; a socket keeps the namespace it was created in.
func dialerIn(path string) (func(string) (net.Conn, error), error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nsforward: open network namespace %s: %w", path, err)
	}
	requests := make(chan dialRequest)
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, not reused elsewhere
		err := unix.Setns(int(file.Fd()), unix.CLONE_NEWNET)
		if err != nil {
			ready <- fmt.Errorf("nsforward: enter network namespace %s: %w", path, err)
			return
		}
		ready <- nil
		for request := range requests {
			conn, err := net.Dial("tcp", request.address)
			request.reply <- dialResult{conn, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return func(address string) (net.Conn, error) {
		reply := make(chan dialResult)
		requests <- dialRequest{address, reply}
		result := <-reply
		return result.conn, result.err
	}, nil
}

// forward copies both directions between client and a new connection to address.
func forward(client net.Conn, dial func(string) (net.Conn, error), address string) {
	defer client.Close()
	server, err := dial(address)
	if err != nil {
		log.Printf("nsforward: connect to %s: %v", address, err)
		return
	}
	defer server.Close()
	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); _, _ = io.Copy(server, client); server.(*net.TCPConn).CloseWrite() }()
	go func() { defer done.Done(); _, _ = io.Copy(client, server); client.(*net.TCPConn).CloseWrite() }()
	done.Wait()
}
