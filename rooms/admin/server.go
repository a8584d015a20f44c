package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/rooms"
)

//go:embed dashboard openapi.json
var assets embed.FS

// Server is a node's admin listener.
type Server struct {
	cfg       Config
	reg       *rooms.Registry
	net       *netcode.Server
	log       *slog.Logger
	tokenHash [sha256.Size]byte
	ready     atomic.Bool
	streams   chan struct{} // a slot per open event stream
	http      *http.Server
	handler   http.Handler
	feed      *feed
	cluster   clusterSlot // set by SetCluster when the node is in a cluster

	ctx    context.Context // ends at Shutdown; event streams watch it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sampler
	once   sync.Once
}

// New returns an admin server for a node's rooms and connections. It starts
// nothing until Serve.
func New(cfg Config, reg *rooms.Registry, srv *netcode.Server) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil || srv == nil {
		return nil, errors.New("admin: nil Registry or netcode Server")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		reg:     reg,
		net:     srv,
		log:     log,
		streams: make(chan struct{}, cfg.MaxStreams),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	s.feed = newFeed(s, int(cfg.History/cfg.SampleInterval))

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(
		newCollector(reg, srv, &s.cluster),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.handler = s.routes(promhttp.HandlerFor(metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the admin routes, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets what /readyz reports: whether the node accepts players.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve starts the sampler and serves the admin routes on ln until
// Shutdown, then returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.once.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.feed.run(s.ctx)
		}()
	})
	return s.http.Serve(ln)
}

// Shutdown ends the event streams and the sampler, and shuts the listener
// down gracefully, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	err := s.http.Shutdown(ctx)
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// routes builds the mux. Paths are registered without methods and each
// handler checks its own, so that wrong methods and unknown paths get the
// same JSON errors as everything else rather than net/http's plain text.
func (s *Server) routes(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", only("GET", s.healthz))
	mux.Handle("/readyz", only("GET", s.readyz))

	static, err := fs.Sub(assets, "dashboard")
	if err != nil {
		panic(err) // the embedded directory exists by construction
	}
	files := http.FileServerFS(static)
	// The dashboard page and its scripts hold no data (they ask for the
	// token and fetch everything with it), so a browser can load them
	// without one.
	mux.Handle("/{$}", only("GET", pageHeaders(files).ServeHTTP))
	mux.Handle("/static/", only("GET", http.StripPrefix("/static", pageHeaders(files)).ServeHTTP))

	auth := s.auth
	mux.Handle("/openapi.json", auth(only("GET", s.openapi)))
	mux.Handle("/metrics", auth(only("GET", metrics.ServeHTTP)))
	mux.Handle("/admin/events", auth(only("GET", s.events)))
	mux.Handle("/admin/cluster", auth(only("GET", s.clusterStatus)))
	mux.Handle("/admin/rooms", auth(methods{"GET": s.listRooms, "POST": s.createRoom}))
	mux.Handle("/admin/rooms/{id}", auth(methods{"GET": s.getRoom, "DELETE": s.deleteRoom}))
	mux.Handle("/admin/rooms/{id}/players/{pid}/kick", auth(only("POST", s.kick)))
	mux.Handle("/admin/rooms/{id}/broadcast", auth(only("POST", s.broadcast)))
	mux.Handle("/admin/rooms/{id}/pause", auth(only("POST", s.pause)))
	mux.Handle("/admin/rooms/{id}/resume", auth(only("POST", s.resume)))
	mux.Handle("/admin/rooms/{id}/step", auth(only("POST", s.step)))
	mux.Handle("/admin/rooms/{id}/state", auth(only("GET", s.state)))
	mux.Handle("/admin/rooms/{id}/watch", auth(only("GET", s.watch)))
	mux.Handle("/admin/rooms/{id}/move", auth(only("POST", s.moveRoom)))
	mux.Handle("/admin/drain", auth(only("POST", s.drain)))

	mux.Handle("/debug/pprof/", auth(only("GET", pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", auth(only("GET", pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", auth(only("GET", pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", auth(methods{"GET": pprof.Symbol, "POST": pprof.Symbol}))
	mux.Handle("/debug/pprof/trace", auth(only("GET", pprof.Trace)))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s", r.URL.Path))
	})
	// A web page the operator visits must not be able to drive the API
	// through the browser (there may be no token on loopback): refuse
	// cross-origin POSTs and DELETEs, which browsers mark with
	// Sec-Fetch-Site or Origin.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross_origin", "cross-origin requests are refused")
	}))
	return s.loopbackHost(s.accessLog(csrf.Handler(mux)))
}

// loopbackHost refuses, when no token is configured, requests whose Host is
// not a loopback address. Without a token the listener is on loopback only,
// but a web page could still reach it through the operator's browser by
// DNS rebinding (its own name made to resolve to 127.0.0.1), and would then
// count as same-origin; its Host header still names it.
func (s *Server) loopbackHost(next http.Handler) http.Handler {
	if s.cfg.Token != "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopback(strings.Trim(host, "[]")) {
			writeError(w, http.StatusForbidden, "bad_host", fmt.Sprintf("without a token this listener answers only requests to a loopback host, not %q", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pageHeaders keeps the dashboard's page from being framed by another site
// or run with anything but its own scripts.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// accessLog logs every request that changes something (all but GET and
// HEAD), with its outcome and who asked: the operators' audit trail. The
// rooms log what the change did.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Info("admin request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", rec.status, "remote", r.RemoteAddr)
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// methods routes a path's requests by method; others get 405.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m["GET"]; ok {
			h(w, r)
			return
		}
	}
	allowed := make([]string, 0, len(m)+1)
	for method := range m {
		allowed = append(allowed, method)
	}
	if _, ok := m["GET"]; ok {
		allowed = append(allowed, http.MethodHead)
	}
	w.Header().Set("Allow", strings.Join(sortedStrings(allowed), ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
}

func only(method string, h http.HandlerFunc) methods { return methods{method: h} }

// auth requires the bearer token, when one is configured.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" {
			scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			ok = ok && strings.EqualFold(scheme, "Bearer") // schemes are case-insensitive (RFC 9110)
			// Hashes have equal lengths, so the comparison takes the same
			// time whatever the guess.
			sum := sha256.Sum256([]byte(token))
			if !ok || subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tickroom admin"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required (Authorization: Bearer TOKEN)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the node is starting or shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("openapi.json")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
