# Build: docker build -t tickroom .
# Run:   docker run --rm -p 8080:8080 tickroom
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tickroom ./cmd/tickroom

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tickroom /usr/local/bin/tickroom
# 8081 is the admin listener, reachable from outside only with
# TICKROOM_ADMIN_LISTEN=:8081 and TICKROOM_ADMIN_TOKEN set (see README).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/tickroom", "serve"]
