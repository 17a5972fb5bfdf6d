# The inventory service as a static binary on a distroless base.
#   docker build -t inventory .
#   docker run -p 127.0.0.1:8080:8080 -e INVENTORY_AUTH_TOKENS='me:admin:<16+ random chars>' inventory
# (SQLite in /data, in-process lock.) Without tokens the server listens on
# the container's own loopback, out of reach: every caller would be admin.
# To try it without tokens anyway, on your machine only:
#   docker run -p 127.0.0.1:8080:8080 -e INVENTORY_ALLOW_ANONYMOUS=true inventory
# docker-compose.yml runs two replicas with PostgreSQL, Redis, etcd and the
# observability stack.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/inventoryd ./cmd/inventoryd \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/inventoryd /usr/local/bin/inventoryd
COPY --from=build --chown=nonroot:nonroot /out/data /data
COPY deploy/flow-rules.yaml /etc/inventory/flow-rules.yaml
WORKDIR /data
ENV INVENTORY_ADDR=:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/inventoryd"]
