// Go message types of ferry's proto/ttrpc/echo/echo.proto, written by hand: Debian's ttrpc
// 1.1.1 marshals with gogo/protobuf, whose reflection-based marshaller only needs the struct
// tags (field number, wire type, proto3) and the Reset/String/ProtoMessage methods, so no
// generated code (and no protoc-gen-gogo) is needed to build this peer offline.
package main

import "fmt"

// EchoRequest is ttrpc.echo.EchoRequest.
type EchoRequest struct {
	Text        string `protobuf:"bytes,1,opt,name=text,proto3"`
	Data        []byte `protobuf:"bytes,2,opt,name=data,proto3"`
	DelayMs     uint32 `protobuf:"varint,3,opt,name=delay_ms,proto3"`
	FailCode    int32  `protobuf:"varint,4,opt,name=fail_code,proto3"`
	FailMessage string `protobuf:"bytes,5,opt,name=fail_message,proto3"`
	ReplyBytes  uint32 `protobuf:"varint,6,opt,name=reply_bytes,proto3"`
	Count       uint32 `protobuf:"varint,7,opt,name=count,proto3"`
}

func (m *EchoRequest) Reset()         { *m = EchoRequest{} }
func (m *EchoRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*EchoRequest) ProtoMessage()    {}

// EchoReply is ttrpc.echo.EchoReply.
type EchoReply struct {
	Text        string   `protobuf:"bytes,1,opt,name=text,proto3"`
	Data        []byte   `protobuf:"bytes,2,opt,name=data,proto3"`
	Metadata    []string `protobuf:"bytes,3,rep,name=metadata,proto3"`
	TimeoutNano int64    `protobuf:"varint,4,opt,name=timeout_nano,proto3"`
	Seq         uint32   `protobuf:"varint,5,opt,name=seq,proto3"`
}

func (m *EchoReply) Reset()         { *m = EchoReply{} }
func (m *EchoReply) String() string { return fmt.Sprintf("%+v", *m) }
func (*EchoReply) ProtoMessage()    {}

// pattern is byte i of a reply_bytes reply (as tests/lib/echo_svc.h).
func pattern(i int) byte { return byte(i % 251) }
