// ttrpc-peer: Go's containerd/ttrpc (Debian's 1.1.1) as a real peer for ferry's C ttrpc, in
// both roles, speaking the ttrpc.echo.Echo service (proto/ttrpc/echo/echo.proto).
//
//	ttrpc-peer server SOCKET          serve Echo on a unix socket; prints "ready", exits when
//	                                  stdin closes
//	ttrpc-peer client SOCKET SCENARIO run one scenario against a server and print what it saw,
//	                                  one "key=value ..." line per observation (the C test
//	                                  asserts on them); exit status 0 unless the peer itself
//	                                  failed (could not connect, ...)
//	ttrpc-peer bench SOCKET ROUNDS N  N sequential small calls per round; prints one line
//	                                  "round=R ns_per_call=X" per round
//
// Scenarios: unary, error, unimplemented, deadline, timeout, metadata, near-cap,
// over-cap-request, over-cap-reply, concurrent.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const service = "ttrpc.echo.Echo"

// maxData is ttrpc's messageLengthMax (4 MiB).
const maxData = 4 << 20

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "ttrpc-peer: "+format+"\n", args...)
	os.Exit(2)
}

// ---- server ----

func echo(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req EchoRequest
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	if req.DelayMs > 0 {
		select {
		case <-time.After(time.Duration(req.DelayMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if req.FailCode != 0 {
		return nil, status.Error(codes.Code(req.FailCode), req.FailMessage)
	}
	rep := &EchoReply{Text: req.Text, Data: req.Data}
	if req.ReplyBytes > 0 {
		rep.Data = make([]byte, req.ReplyBytes)
		for i := range rep.Data {
			rep.Data[i] = pattern(i)
		}
	}
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range md[k] {
				rep.Metadata = append(rep.Metadata, k+"="+v)
			}
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		rep.TimeoutNano = time.Until(dl).Nanoseconds()
	}
	return rep, nil
}

func serve(path string) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		die("listen %s: %v", path, err)
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		die("server: %v", err)
	}
	s.Register(service, map[string]ttrpc.Method{"Echo": echo})
	go s.Serve(context.Background(), l)
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test closes our stdin (or dies)
	s.Close()
	os.Remove(path)
}

// ---- client ----

func dial(path string, opts ...ttrpc.ClientOpts) *ttrpc.Client {
	conn, err := net.Dial("unix", path)
	if err != nil {
		die("dial %s: %v", path, err)
	}
	return ttrpc.NewClient(conn, opts...)
}

// result prints "code=N msg=M" for an error (or code=0) after a prefix.
func result(prefix string, err error) string {
	st, _ := status.FromError(err)
	msg := strings.ReplaceAll(st.Message(), "\n", " ")
	return fmt.Sprintf("%scode=%d msg=%s", prefix, int(st.Code()), msg)
}

func dataOK(d []byte, want []byte) int {
	if len(d) != len(want) {
		return 0
	}
	for i := range d {
		if d[i] != want[i] {
			return 0
		}
	}
	return 1
}

// responseSize is the data length of the Response frame that carries rep with status OK
// (Go, like ferry, always sends the status).
func responseSize(rep *EchoReply) int {
	p, _ := proto.Marshal(rep)
	r, _ := proto.Marshal(&ttrpc.Response{Status: &spb.Status{}, Payload: p})
	return len(r)
}

// requestSize is the data length of the Request frame that carries req.
func requestSize(req *EchoRequest) int {
	p, _ := proto.Marshal(req)
	r, _ := proto.Marshal(&ttrpc.Request{Service: service, Method: "Echo", Payload: p})
	return len(r)
}

func scenario(path, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(c *ttrpc.Client, ctx context.Context, req *EchoRequest) (*EchoReply, error) {
		var rep EchoReply
		err := c.Call(ctx, service, "Echo", req, &rep)
		return &rep, err
	}
	switch name {
	case "unary":
		c := dial(path)
		data := make([]byte, 1000)
		for i := range data {
			data[i] = byte(i * 7)
		}
		rep, err := call(c, ctx, &EchoRequest{Text: "hello from go", Data: data})
		fmt.Printf("%s text=%s data_ok=%d\n", result("", err), rep.Text, dataOK(rep.Data, data))
		rep, err = call(c, ctx, &EchoRequest{})
		fmt.Printf("%s text=%s len=%d\n", result("empty ", err), rep.Text, len(rep.Data))
	case "error":
		c := dial(path)
		_, err := call(c, ctx, &EchoRequest{FailCode: 5, FailMessage: "container `c1` not found"})
		fmt.Println(result("", err))
		_, err = call(c, ctx, &EchoRequest{FailCode: 9, FailMessage: "migration in progress"})
		fmt.Println(result("", err))
	case "unimplemented":
		c := dial(path)
		var rep EchoReply
		fmt.Println(result("service ", c.Call(ctx, "no.such.Service", "Echo", &EchoRequest{}, &rep)))
		fmt.Println(result("method ", c.Call(ctx, service, "Nope", &EchoRequest{}, &rep)))
	case "deadline":
		// The context allows 60 s, but the Request says 200 ms: only the server can end the
		// call at 200 ms.
		c := dial(path, ttrpc.WithUnaryClientInterceptor(func(ctx context.Context,
			req *ttrpc.Request, resp *ttrpc.Response, info *ttrpc.UnaryClientInfo,
			invoker ttrpc.Invoker) error {
			req.TimeoutNano = int64(200 * time.Millisecond)
			return invoker(ctx, req, resp)
		}))
		t0 := time.Now()
		_, err := call(c, ctx, &EchoRequest{DelayMs: 10000})
		fmt.Printf("%s elapsed_ms=%d\n", result("", err), time.Since(t0).Milliseconds())
	case "timeout":
		c := dial(path)
		tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer tcancel()
		rep, err := call(c, tctx, &EchoRequest{})
		fmt.Printf("%s timeout_nano=%d\n", result("", err), rep.TimeoutNano)
	case "metadata":
		c := dial(path)
		md := ttrpc.MD{}
		md.Set("zeta", "last")
		md.Set("alpha", "1", "2")
		rep, err := call(c, ttrpc.WithMetadata(ctx, md), &EchoRequest{})
		fmt.Printf("%s metadata=%s\n", result("", err), strings.Join(rep.Metadata, ","))
	case "near-cap":
		// A Request of exactly 4 MiB (answered with one byte), then a Response of exactly
		// 4 MiB.  No deadline: it would add timeout_nano to both.
		ctx := context.Background()
		c := dial(path)
		req := &EchoRequest{Data: make([]byte, maxData-64), ReplyBytes: 1}
		for requestSize(req) < maxData {
			req.Data = append(req.Data, 0)
		}
		for i := range req.Data {
			req.Data[i] = byte(i*13 + 1)
		}
		rep, err := call(c, ctx, req)
		fmt.Printf("%s request_bytes=%d len=%d\n", result("request ", err), requestSize(req),
			len(rep.Data))
		n := maxData - 64
		for responseSize(&EchoReply{Data: make([]byte, n+1)}) <= maxData {
			n++
		}
		want := make([]byte, n)
		for i := range want {
			want[i] = pattern(i)
		}
		rep, err = call(c, ctx, &EchoRequest{ReplyBytes: uint32(n)})
		fmt.Printf("%s response_bytes=%d data_ok=%d\n", result("reply ", err),
			responseSize(&EchoReply{Data: want}), dataOK(rep.Data, want))
	case "over-cap-request":
		ctx := context.Background()
		c := dial(path)
		req := &EchoRequest{Data: make([]byte, maxData-64)}
		for requestSize(req) <= maxData {
			req.Data = append(req.Data, 0)
		}
		_, err := call(c, ctx, req)
		fmt.Printf("%s request_bytes=%d\n", result("", err), requestSize(req))
		rep, err := call(c, ctx, &EchoRequest{Text: "after"})
		fmt.Printf("%s text=%s\n", result("after ", err), rep.Text)
	case "over-cap-reply":
		c := dial(path)
		_, err := call(c, ctx, &EchoRequest{ReplyBytes: maxData})
		fmt.Println(result("", err))
		rep, err := call(c, ctx, &EchoRequest{Text: "after"})
		fmt.Printf("%s text=%s\n", result("after ", err), rep.Text)
	case "concurrent":
		c := dial(path)
		const n = 100
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, bad := 0, 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				text := "call-" + strconv.Itoa(i)
				rep, err := call(c, ctx, &EchoRequest{Text: text, DelayMs: uint32(20 + (i*37)%80)})
				mu.Lock()
				if err == nil && rep.Text == text {
					ok++
				} else {
					bad++
					fmt.Fprintf(os.Stderr, "call %d: %v %q\n", i, err, rep.Text)
				}
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		fmt.Printf("ok=%d failed=%d\n", ok, bad)
	default:
		die("unknown scenario %q", name)
	}
}

func bench(path string, rounds, n int) {
	c := dial(path)
	ctx := context.Background()
	req := &EchoRequest{Text: "x"}
	var rep EchoReply
	for i := 0; i < n/10+1; i++ { // warm up
		if err := c.Call(ctx, service, "Echo", req, &rep); err != nil {
			die("call: %v", err)
		}
	}
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if err := c.Call(ctx, service, "Echo", req, &rep); err != nil {
				die("call: %v", err)
			}
		}
		fmt.Printf("round=%d ns_per_call=%d\n", r, time.Since(t0).Nanoseconds()/int64(n))
	}
}

func main() {
	if len(os.Args) < 3 {
		die("usage: ttrpc-peer server SOCKET | client SOCKET SCENARIO | bench SOCKET ROUNDS N")
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2])
	case "client":
		if len(os.Args) < 4 {
			die("client needs a scenario")
		}
		scenario(os.Args[2], os.Args[3])
	case "bench":
		if len(os.Args) < 5 {
			die("bench needs ROUNDS and N")
		}
		rounds, _ := strconv.Atoi(os.Args[3])
		n, _ := strconv.Atoi(os.Args[4])
		bench(os.Args[2], rounds, n)
	default:
		die("unknown mode %q", os.Args[1])
	}
}
