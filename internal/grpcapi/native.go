package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shopstack/inventory/internal/app"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1/inventoryv1connect"
	"github.com/shopstack/inventory/internal/inventory"
)

// NewGRPCServer returns the same service, health and reflection on
// grpc-go's own server, for a port of its own (INVENTORY_GRPC_ADDR).
//
// Why two servers: the connect-go handler serves gRPC, gRPC-Web and
// Connect on the main port through net/http, whose HTTP/2 server writes
// every frame on its own; grpc-go's batches them. On this machine grpc-go
// answers a hot-SKU stock-out 1.4-1.5x as fast as GraphQL with a lower p99,
// the net/http path 0.9x (docs/BENCHMARKS.md, "Three transports"). Both
// call the same methods of server: one set of rules.
func NewGRPCServer(svc *app.Service, opts Options) *grpc.Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &server{svc: svc, opts: opts}
	auth := nativeAuth{opts}
	serverOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.ForceServerCodecV2(nativeCodec{encoding.GetCodecV2(protoenc.Name)}),
		grpc.ChainUnaryInterceptor(auth.unary),
		grpc.ChainStreamInterceptor(auth.stream),
	}
	if opts.TracerProvider != nil {
		o := []otelgrpc.Option{otelgrpc.WithTracerProvider(opts.TracerProvider)}
		if opts.Propagator != nil {
			o = append(o, otelgrpc.WithPropagators(opts.Propagator))
		}
		serverOpts = append(serverOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(o...)))
	}
	gs := grpc.NewServer(serverOpts...)
	gs.RegisterService(serviceDesc(s), s)
	healthpb.RegisterHealthServer(gs, nativeHealth{c: &checker{ready: opts.Ready}})
	reflection.Register(gs)
	return gs
}

// serviceDesc describes InventoryService for grpc-go, each method calling
// the connect-go implementation's.
func serviceDesc(s *server) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: inventoryv1connect.InventoryServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary(s.opts.Log, "GetProduct", s.GetProduct),
			unary(s.opts.Log, "BatchGetProducts", s.BatchGetProducts),
			unary(s.opts.Log, "GetProductBySku", s.GetProductBySku),
			unary(s.opts.Log, "CreateBundle", s.CreateBundle),
			unary(s.opts.Log, "StockIn", s.StockIn),
			unary(s.opts.Log, "StockOut", s.StockOut),
			unary(s.opts.Log, "AdjustStock", s.AdjustStock),
			unary(s.opts.Log, "MoveStock", s.MoveStock),
			unary(s.opts.Log, "ExpectStock", s.ExpectStock),
			unary(s.opts.Log, "BulkAdjustStock", s.BulkAdjustStock),
			unary(s.opts.Log, "ReserveStock", s.ReserveStock),
			unary(s.opts.Log, "CommitReservation", s.CommitReservation),
			unary(s.opts.Log, "ReleaseReservation", s.ReleaseReservation),
			unary(s.opts.Log, "ExtendReservation", s.ExtendReservation),
			unary(s.opts.Log, "GetReservation", s.GetReservation),
			unary(s.opts.Log, "CreateTransfer", s.CreateTransfer),
			unary(s.opts.Log, "ShipTransfer", s.ShipTransfer),
			unary(s.opts.Log, "ReceiveTransfer", s.ReceiveTransfer),
			unary(s.opts.Log, "CancelTransfer", s.CancelTransfer),
			unary(s.opts.Log, "GetTransfer", s.GetTransfer),
			unary(s.opts.Log, "ListTransfers", s.ListTransfers),
			unary(s.opts.Log, "ListMovements", s.ListMovements),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "WatchStockChanges",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				req := new(v1.WatchStockChangesRequest)
				if err := stream.RecvMsg(req); err != nil {
					return err
				}
				if fault := marked(req); fault != nil {
					return toGRPCStatus(toStatus(stream.Context(), s.opts.Log, fault))
				}
				err := s.watch(stream.Context(), req, func(m *v1.WatchStockChangesResponse) error { return stream.SendMsg(m) })
				return toGRPCStatus(err)
			},
		}},
		Metadata: "inventory/v1/inventory.proto",
	}
}

// unary adapts a connect-go method to grpc-go; a request that does not
// decode is refused as on the connect-go handler.
func unary[Req, Resp any, PReq interface {
	*Req
	proto.Message
}](log *slog.Logger, name string, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := PReq(new(Req))
			if err := dec(in); err != nil {
				return nil, err
			}
			if fault := marked(in); fault != nil {
				return nil, toGRPCStatus(toStatus(ctx, log, fault))
			}
			call := func(ctx context.Context, req any) (any, error) {
				resp, err := fn(ctx, connect.NewRequest((*Req)(req.(PReq))))
				if err != nil {
					return nil, toGRPCStatus(err)
				}
				return resp.Msg, nil
			}
			if interceptor == nil {
				return call(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/" + inventoryv1connect.InventoryServiceName + "/" + name}, call)
		},
	}
}

// toGRPCStatus turns the connect-go error the methods answer with into the
// same status, details included, for grpc-go.
func toGRPCStatus(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	st := status.New(codes.Code(ce.Code()), ce.Message())
	pb := st.Proto()
	for _, d := range ce.Details() {
		pb.Details = append(pb.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	return status.FromProto(pb).Err()
}

// nativeAuth authenticates grpc-go calls as authInterceptor does connect's,
// and names the transport for the metrics.
type nativeAuth struct{ opts Options }

func (a nativeAuth) authenticate(ctx context.Context) (context.Context, error) {
	ctx = inventory.WithTransport(ctx, "grpc")
	if a.opts.Authenticate == nil {
		return ctx, nil
	}
	header := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	ctx, err := a.opts.Authenticate(ctx, header)
	if err != nil {
		return ctx, toGRPCStatus(toStatus(ctx, a.opts.Log, err))
	}
	return ctx, nil
}

func (a nativeAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if !ours(info.FullMethod) {
		return next(ctx, req) // health and reflection need no token
	}
	ctx, err := a.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (a nativeAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if !ours(info.FullMethod) {
		return next(srv, ss)
	}
	ctx, err := a.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return next(srv, contextStream{ss, ctx})
}

// ours reports whether a full method name is InventoryService's.
func ours(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+inventoryv1connect.InventoryServiceName+"/")
}

// contextStream is a server stream with the context authentication made.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c contextStream) Context() context.Context { return c.ctx }

// nativeHealth answers grpc.health.v1 Check with the same (cached)
// readiness as the connect-go handler.
type nativeHealth struct {
	healthpb.UnimplementedHealthServer
	c *checker
}

func (h nativeHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch req.GetService() {
	case "", inventoryv1connect.InventoryServiceName:
	default:
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	if h.c.isServing(ctx) {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
}
