package admin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/rooms/admin"
	"github.com/tickroom/tickroom/rooms/roomstest"
)

// testToken is the admin token of nodes started by startNode.
const testToken = "test-token-7f3a"

// node is a real tickroom node with its admin listener, on 127.0.0.1.
type node struct {
	*roomstest.Server // the game endpoint: URL is ws://…/ws
	Admin             *admin.Server
	AdminURL          string // http://127.0.0.1:PORT
	Token             string
}

// startNode runs a node until the test ends. mutate, if not nil, adjusts the
// admin configuration (the token is testToken unless mutate changes it).
func startNode(t *testing.T, mutate func(*admin.Config)) *node {
	t.Helper()
	game := roomstest.StartDefault(t)
	cfg := admin.DefaultConfig()
	cfg.Token = testToken
	cfg.SampleInterval = 100 * time.Millisecond
	cfg.History = 10 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	adm, err := admin.New(cfg, game.Registry, game.Net)
	require.NoError(t, err)
	ln, err := admin.Listen("127.0.0.1:0", cfg.Token)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- adm.Serve(ln) }()
	adm.SetReady(true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, adm.Shutdown(ctx))
		require.True(t, errors.Is(<-served, http.ErrServerClosed))
	})
	return &node{Server: game, Admin: adm, AdminURL: "http://" + ln.Addr().String(), Token: cfg.Token}
}

// do sends a request to the admin listener with the node's token and a JSON
// body (if body is not empty), and returns the status and the response body.
func (n *node) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return n.doWith(t, method, path, body, n.Token)
}

// doWith is do with another token ("" sends none).
func (n *node) doWith(t *testing.T, method, path, body, token string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.AdminURL+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestStartNodeServesHealth(t *testing.T) {
	n := startNode(t, nil)
	status, body := n.doWith(t, "GET", "/healthz", "", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, string(body))
}
