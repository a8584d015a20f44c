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
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tickroom", "serve"]
