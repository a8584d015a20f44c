package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
)

// apiError is the body of every error response.
type apiError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{Error: errorBody{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errBodyWritten: decodeJSON already answered the request.
var errBodyWritten = errors.New("admin: error response written")

// decodeJSON reads a JSON request body into dst: one object, no unknown
// fields, at most MaxBodyBytes. An empty body is allowed when optional, and
// leaves dst as it is. On failure it writes the error response (400, 413 or
// 415) and returns errBodyWritten.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			// Insisting on JSON also keeps browsers from posting forms here.
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("the body must be application/json, not %q (curl: -H 'Content-Type: application/json')", ct))
			return errBodyWritten
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body exceeds %d bytes", s.cfg.MaxBodyBytes))
		return errBodyWritten
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("reading the body: %v", err))
		return errBodyWritten
	case len(body) == 0 && optional:
		return nil
	case len(body) == 0:
		writeError(w, http.StatusBadRequest, "bad_request", "a JSON body is required")
		return errBodyWritten
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid JSON body: %v", err))
		return errBodyWritten
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: data after the object")
		return errBodyWritten
	}
	return nil
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
