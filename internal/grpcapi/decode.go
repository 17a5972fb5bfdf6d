package grpcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

// A request that does not decode is refused as any bad input is: a
// BAD_USER_INPUT through toStatus, in our words and naming the field at
// fault where it can be told. connect-go decodes a unary request before
// any interceptor runs and answers a failure with its codec's text
// ("unmarshal message: … proto: …"), so the handler's codecs never fail:
// a request that does not decode is left empty, carrying the refusal as
// an unknown field of faultNumber, which refuseUndecoded answers. (An
// unknown field of that number sent by a client is dropped.)
const faultNumber = protowire.MaxValidNumber

// codec is connect-go's codec of its name ("proto" or "json", as connect
// names them), which marks a request that does not decode instead of
// failing.
type codec struct {
	name string
	json bool
}

// codecs are the handler's codecs, as connect-go's defaults.
func codecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(codec{name: "proto"}),
		connect.WithCodec(codec{name: "json", json: true}),
		connect.WithCodec(codec{name: "json; charset=utf-8", json: true}),
	}
}

func (c codec) Name() string   { return c.name }
func (c codec) IsBinary() bool { return !c.json }

func (c codec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

func (c codec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	if c.json {
		return protojson.MarshalOptions{}.MarshalAppend(dst, m.(proto.Message))
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m.(proto.Message))
}

func (c codec) MarshalStable(m any) ([]byte, error) {
	if c.json {
		b, err := protojson.MarshalOptions{}.Marshal(m.(proto.Message))
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		err = json.Compact(&out, b)
		return out.Bytes(), err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m.(proto.Message))
}

func (c codec) Unmarshal(data []byte, m any) error {
	msg := m.(proto.Message)
	if !c.json {
		return decoded(msg, proto.Unmarshal(data, msg), protoFault)
	}
	// Unknown fields are dropped, as connect-go's codec does, so a client
	// of a newer proto can call an older server; an unknown enum name is
	// not (protojson would drop it too, and the field would read as its
	// default).
	err := protojson.Unmarshal(data, msg)
	if err != nil && jsonFault(msg, data) == nil {
		proto.Reset(msg)
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
	}
	return decoded(msg, err, func(msg proto.Message) *inventory.Error {
		if fault := jsonFault(msg, data); fault != nil {
			return fault
		}
		return inventory.Invalid(inventory.BodyField, "the request does not decode as a %s message (which field is at fault cannot be told)",
			msg.ProtoReflect().Descriptor().FullName())
	})
}

// nativeCodec is grpc-go's own protobuf codec, whose failure to decode a
// request of the service is marked as codec's is.
type nativeCodec struct{ encoding.CodecV2 }

func (c nativeCodec) Unmarshal(data mem.BufferSlice, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return c.CodecV2.Unmarshal(data, m)
	}
	return decoded(msg, c.CodecV2.Unmarshal(data, m), protoFault)
}

// decoded finishes the decoding of a request of the service into msg,
// which failed with err: then msg is left empty with fault's mark, and no
// error. A message of another service (health, reflection) keeps err.
func decoded(msg proto.Message, err error, fault func(proto.Message) *inventory.Error) error {
	if err == nil {
		dropMark(msg)
		return nil
	}
	if msg.ProtoReflect().Descriptor().ParentFile().Package() != v1.File_inventory_v1_inventory_proto.Package() {
		return err
	}
	f := fault(msg)
	proto.Reset(msg)
	mark(msg, f)
	return nil
}

// mark records fault in msg as an unknown field of faultNumber.
func mark(msg proto.Message, fault *inventory.Error) {
	b := protowire.AppendTag(nil, faultNumber, protowire.BytesType)
	b = protowire.AppendString(b, fault.Field+"\x00"+fault.Message)
	msg.ProtoReflect().SetUnknown(b)
}

// marked returns the fault mark recorded in msg, if any.
func marked(msg proto.Message) *inventory.Error {
	b := msg.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil
		}
		if num == faultNumber && typ == protowire.BytesType {
			v, _ := protowire.ConsumeString(b[n:])
			field, message, _ := strings.Cut(v, "\x00")
			return inventory.Invalid(field, "%s", message)
		}
		b = b[n+m:]
	}
	return nil
}

// dropMark removes a client's unknown field of faultNumber from msg.
func dropMark(msg proto.Message) {
	b := msg.ProtoReflect().GetUnknown()
	if len(b) == 0 {
		return
	}
	var kept []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return
		}
		if num != faultNumber {
			kept = append(kept, b[:n+m]...)
		}
		b = b[n+m:]
	}
	msg.ProtoReflect().SetUnknown(kept)
}

// protoFault describes a protobuf request that does not decode: the
// field at fault cannot be told from the wire.
func protoFault(msg proto.Message) *inventory.Error {
	return inventory.Invalid(inventory.BodyField, "the request is not a valid %s message in protobuf (which field is at fault cannot be told)",
		msg.ProtoReflect().Descriptor().FullName())
}

// refuseUndecoded answers a request that did not decode with its fault,
// before any other interceptor sees it.
type refuseUndecoded struct{ log *slog.Logger }

func (r refuseUndecoded) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if msg, ok := req.Any().(proto.Message); ok && !req.Spec().IsClient {
			if fault := marked(msg); fault != nil {
				return nil, toStatus(ctx, r.log, fault)
			}
		}
		return next(ctx, req)
	}
}

func (r refuseUndecoded) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r refuseUndecoded) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, checkedConn{conn, func(fault *inventory.Error) error { return toStatus(ctx, r.log, fault) }})
	}
}

// checkedConn refuses a received message that did not decode.
type checkedConn struct {
	connect.StreamingHandlerConn
	refuse func(*inventory.Error) error
}

func (c checkedConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	if msg, ok := m.(proto.Message); ok {
		if fault := marked(msg); fault != nil {
			return c.refuse(fault)
		}
	}
	return nil
}
