package admin_test

// This file holds openapi.json, the admin API's OpenAPI document, to what the
// server does.
//
//   - Routes: the (path, method) operations the document lists are the ones
//     the server serves. Read from server.go's routes() (so a route added
//     there under a new path fails here until it is documented) and probed
//     on a running node: every method of {GET, POST, DELETE, PUT, PATCH} a
//     documented path does not list gets 405 with an Allow header naming
//     exactly the documented ones; paths the document does not list get 404.
//   - Operations: every documented operation and its error cases run against
//     a real node with real players, and each answer's status, Content-Type,
//     required headers and JSON body are checked against the document (see
//     oaChecker.check), which also makes sure no documented method answers
//     405.
//   - Streams: the Server-Sent Events feeds, event by event.
//
// The JSON bodies are checked by a small JSON Schema validator for the subset
// of keywords the document uses; it refuses keywords it does not know, so the
// document cannot outgrow it unnoticed. TestOpenAPIValidator shows it rejects
// wrong bodies.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms/admin"
)

// oaProbeMethods are the methods tried on every documented path.
var oaProbeMethods = []string{"GET", "POST", "DELETE", "PUT", "PATCH"}

// ---------------------------------------------------------------------------
// The document.

// oaDoc is the part of an OpenAPI 3.1 document the tests read.
type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas       map[string]any            `json:"schemas"`
		Responses     map[string]*oaResponse    `json:"responses"`
		Parameters    map[string]*oaParameter   `json:"parameters"`
		RequestBodies map[string]*oaRequestBody `json:"requestBodies"`
		Headers       map[string]*oaHeader      `json:"headers"`
	} `json:"components"`

	ops map[oaOpKey]*oaOperation // resolved
}

type oaOpKey struct{ path, method string }

func (k oaOpKey) String() string { return k.method + " " + k.path }

type oaOperation struct {
	Security    *[]map[string][]string `json:"security"`
	Parameters  []*oaParameter         `json:"parameters"`
	RequestBody *oaRequestBody         `json:"requestBody"`
	Responses   map[string]*oaResponse `json:"responses"`

	requiresToken bool
}

type oaParameter struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
	Schema   any    `json:"schema"`
}

type oaRequestBody struct {
	Ref      string              `json:"$ref"`
	Required bool                `json:"required"`
	Content  map[string]*oaMedia `json:"content"`
}

type oaResponse struct {
	Ref         string               `json:"$ref"`
	Description string               `json:"description"`
	ErrorCodes  []string             `json:"x-error-codes"`
	Headers     map[string]*oaHeader `json:"headers"`
	Content     map[string]*oaMedia  `json:"content"`
}

type oaHeader struct {
	Ref      string `json:"$ref"`
	Required bool   `json:"required"`
	Schema   any    `json:"schema"`
}

type oaMedia struct {
	Schema any `json:"schema"`
	// Events maps a Server-Sent Event's name to the schema of its data.
	Events map[string]any `json:"x-sse-events"`
}

// oaDecodeStrict decodes one JSON value, keeping numbers as json.Number, and
// refuses anything after it.
func oaDecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// oaResolve returns the component a "$ref" names under prefix.
func oaResolve[T any](refs map[string]*T, ref, prefix string) (*T, error) {
	name, ok := strings.CutPrefix(ref, prefix)
	if !ok || refs[name] == nil {
		return nil, fmt.Errorf("unresolvable $ref %q", ref)
	}
	return refs[name], nil
}

// oaParseDoc decodes the document and resolves the $refs of operations.
func oaParseDoc(b []byte) (*oaDoc, error) {
	var d oaDoc
	if err := oaDecodeStrict(b, &d); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1.") {
		return nil, fmt.Errorf("openapi is %q, want 3.1.x", d.OpenAPI)
	}
	resolveResponse := func(r *oaResponse) (*oaResponse, error) {
		if r.Ref != "" {
			var err error
			if r, err = oaResolve(d.Components.Responses, r.Ref, "#/components/responses/"); err != nil {
				return nil, err
			}
		}
		if r.Description == "" {
			return nil, errors.New("a response without a description")
		}
		for name, h := range r.Headers {
			if h.Ref != "" {
				rh, err := oaResolve(d.Components.Headers, h.Ref, "#/components/headers/")
				if err != nil {
					return nil, err
				}
				r.Headers[name] = rh
			}
		}
		return r, nil
	}
	for _, r := range d.Components.Responses {
		if _, err := resolveResponse(r); err != nil {
			return nil, err
		}
	}
	d.ops = make(map[oaOpKey]*oaOperation)
	for path, item := range d.Paths {
		var shared []*oaParameter
		methods := map[string]json.RawMessage{}
		for key, raw := range item {
			switch {
			case key == "summary" || key == "description":
			case key == "parameters":
				if err := oaDecodeStrict(raw, &shared); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
			case slices.Contains(oaProbeMethods, strings.ToUpper(key)):
				methods[strings.ToUpper(key)] = raw
			default: // head, options, trace...: the probe would not see them
				return nil, fmt.Errorf("%s: unexpected key %q", path, key)
			}
		}
		for method, raw := range methods {
			where := oaOpKey{path, method}
			var op oaOperation
			if err := oaDecodeStrict(raw, &op); err != nil {
				return nil, fmt.Errorf("%v: %w", where, err)
			}
			params := append(slices.Clone(shared), op.Parameters...)
			for i, p := range params {
				if p.Ref != "" {
					rp, err := oaResolve(d.Components.Parameters, p.Ref, "#/components/parameters/")
					if err != nil {
						return nil, fmt.Errorf("%v: %w", where, err)
					}
					params[i] = rp
				}
			}
			op.Parameters = params
			for _, name := range oaTemplateParams(path) {
				if op.param("path", name) == nil {
					return nil, fmt.Errorf("%v: path parameter %q is not described", where, name)
				}
			}
			if rb := op.RequestBody; rb != nil && rb.Ref != "" {
				rrb, err := oaResolve(d.Components.RequestBodies, rb.Ref, "#/components/requestBodies/")
				if err != nil {
					return nil, fmt.Errorf("%v: %w", where, err)
				}
				op.RequestBody = rrb
			}
			if len(op.Responses) == 0 {
				return nil, fmt.Errorf("%v: no responses", where)
			}
			for status, r := range op.Responses {
				rr, err := resolveResponse(r)
				if err != nil {
					return nil, fmt.Errorf("%v %s: %w", where, status, err)
				}
				op.Responses[status] = rr
			}
			security := d.Security
			if op.Security != nil {
				security = *op.Security
			}
			op.requiresToken = len(security) > 0
			d.ops[where] = &op
		}
	}
	return &d, nil
}

func (op *oaOperation) param(in, name string) *oaParameter {
	for _, p := range op.Parameters {
		if p.In == in && p.Name == name {
			return p
		}
	}
	return nil
}

// methods returns the methods the document lists for path, sorted.
func (d *oaDoc) methods(path string) []string {
	var ms []string
	for k := range d.ops {
		if k.path == path {
			ms = append(ms, k.method)
		}
	}
	slices.Sort(ms)
	return ms
}

// sortedOps returns the operations in path and method order.
func (d *oaDoc) sortedOps() []oaOpKey {
	return slices.SortedFunc(maps.Keys(d.ops), func(a, b oaOpKey) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
}

// oaTemplateParams returns the names of a path template's parameters.
func oaTemplateParams(template string) []string {
	var names []string
	for seg := range strings.SplitSeq(template, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			names = append(names, strings.TrimSuffix(name, "}"))
		}
	}
	return names
}

// oaMatch matches a request path against a path template, returning
// the parameters' values.
func oaMatch(template, path string) (map[string]string, bool) {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	values := map[string]string{}
	for i, t := range ts {
		if name, ok := strings.CutPrefix(t, "{"); ok {
			if ps[i] == "" {
				return nil, false
			}
			values[strings.TrimSuffix(name, "}")] = ps[i]
			continue
		}
		if t != ps[i] {
			return nil, false
		}
	}
	return values, true
}

// oaFill puts values into a path template.
func oaFill(template string, values map[string]string) string {
	for name, v := range values {
		template = strings.ReplaceAll(template, "{"+name+"}", url.PathEscape(v))
	}
	return template
}

func oaLoadDoc(t testing.TB) (*oaDoc, []byte) {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	doc, err := oaParseDoc(b)
	require.NoError(t, err, "openapi.json")
	return doc, b
}

// ---------------------------------------------------------------------------
// The JSON Schema validator.

// oaValidator checks JSON values, decoded with json.Number, against the subset
// of JSON Schema 2020-12 the document uses. $refs point into
// components/schemas.
type oaValidator struct {
	schemas map[string]any
}

// oaAnnotations are keywords that do not constrain a value.
var oaAnnotations = map[string]bool{
	"description": true, "title": true, "default": true, "examples": true, "$comment": true,
	"deprecated": true, "readOnly": true, "writeOnly": true, "contentMediaType": true, "contentEncoding": true,
}

func (v oaValidator) validate(schema, value any) error { return v.check(schema, value, "$") }

func (v oaValidator) check(schema, value any, at string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, ok := schema.(bool); ok {
			if !b {
				return fmt.Errorf("%s: no value is allowed", at)
			}
			return nil
		}
		return fmt.Errorf("%s: the schema is a %T", at, schema)
	}
	for _, key := range slices.Sorted(maps.Keys(s)) {
		kw := s[key]
		var err error
		switch key {
		case "$ref":
			name, ok := strings.CutPrefix(kw.(string), "#/components/schemas/")
			target, found := v.schemas[name]
			if !ok || !found {
				return fmt.Errorf("%s: unresolvable $ref %q", at, kw)
			}
			err = v.check(target, value, at)
		case "type":
			err = oaCheckType(kw, value, at)
		case "enum":
			if !slices.ContainsFunc(kw.([]any), func(e any) bool { return oaJSONEqual(e, value) }) {
				err = fmt.Errorf("%s: %v is not one of %v", at, value, kw)
			}
		case "anyOf":
			var errs []error
			for _, sub := range kw.([]any) {
				e := v.check(sub, value, at)
				if e == nil {
					errs = nil
					break
				}
				errs = append(errs, e)
			}
			if errs != nil {
				err = fmt.Errorf("%s: matches none of anyOf: %w", at, errors.Join(errs...))
			}
		case "properties":
			if obj, ok := value.(map[string]any); ok {
				props := kw.(map[string]any)
				for _, name := range slices.Sorted(maps.Keys(obj)) {
					if sub, ok := props[name]; ok {
						if err = v.check(sub, obj[name], at+"."+name); err != nil {
							break
						}
					}
				}
			}
		case "additionalProperties":
			if obj, ok := value.(map[string]any); ok {
				props, _ := s["properties"].(map[string]any)
				for _, name := range slices.Sorted(maps.Keys(obj)) {
					if _, declared := props[name]; declared {
						continue
					}
					if kw == false {
						err = fmt.Errorf("%s: unknown property %q", at, name)
						break
					}
					if err = v.check(kw, obj[name], at+"."+name); err != nil {
						break
					}
				}
			}
		case "required":
			if obj, ok := value.(map[string]any); ok {
				for _, name := range kw.([]any) {
					if _, ok := obj[name.(string)]; !ok {
						err = fmt.Errorf("%s: required property %q is missing", at, name)
						break
					}
				}
			}
		case "propertyNames":
			if obj, ok := value.(map[string]any); ok {
				for _, name := range slices.Sorted(maps.Keys(obj)) {
					if err = v.check(kw, name, at+" name "+strconv.Quote(name)); err != nil {
						break
					}
				}
			}
		case "maxProperties":
			if obj, ok := value.(map[string]any); ok && float64(len(obj)) > oaNumber(kw) {
				err = fmt.Errorf("%s: %d properties, at most %v", at, len(obj), kw)
			}
		case "items":
			if arr, ok := value.([]any); ok {
				for i, e := range arr {
					if err = v.check(kw, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
						break
					}
				}
			}
		case "minItems", "maxItems":
			if arr, ok := value.([]any); ok {
				n := float64(len(arr))
				if (key == "minItems" && n < oaNumber(kw)) || (key == "maxItems" && n > oaNumber(kw)) {
					err = fmt.Errorf("%s: %d items, %s %v", at, len(arr), key, kw)
				}
			}
		case "minimum", "maximum", "exclusiveMinimum":
			if n, ok := value.(json.Number); ok {
				f, bound := oaNumber(n), oaNumber(kw)
				if (key == "minimum" && f < bound) || (key == "maximum" && f > bound) || (key == "exclusiveMinimum" && f <= bound) {
					err = fmt.Errorf("%s: %v is out of bounds (%s %v)", at, n, key, kw)
				}
			}
		case "minLength", "maxLength":
			if str, ok := value.(string); ok {
				n := float64(utf8.RuneCountInString(str))
				if (key == "minLength" && n < oaNumber(kw)) || (key == "maxLength" && n > oaNumber(kw)) {
					err = fmt.Errorf("%s: %q has a length out of bounds (%s %v)", at, str, key, kw)
				}
			}
		case "format":
			if str, ok := value.(string); ok && kw == "date-time" {
				if _, perr := time.Parse(time.RFC3339Nano, str); perr != nil {
					err = fmt.Errorf("%s: %q is not a date-time: %w", at, str, perr)
				}
			}
		default:
			if !oaAnnotations[key] {
				err = fmt.Errorf("%s: unsupported schema keyword %q", at, key)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func oaCheckType(kw, value any, at string) error {
	types, ok := kw.([]any)
	if !ok {
		types = []any{kw}
	}
	for _, t := range types {
		if oaHasType(t.(string), value) {
			return nil
		}
	}
	return fmt.Errorf("%s: %s is not of type %v", at, oaDescribe(value), kw)
}

func oaHasType(t string, value any) bool {
	switch t {
	case "null":
		return value == nil
	case "boolean":
		_, ok := value.(bool)
		return ok
	case "string":
		_, ok := value.(string)
		return ok
	case "number":
		_, ok := value.(json.Number)
		return ok
	case "integer":
		n, ok := value.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "object":
		_, ok := value.(map[string]any)
		return ok
	case "array":
		_, ok := value.([]any)
		return ok
	}
	return false
}

func oaDescribe(value any) string {
	b, _ := json.Marshal(value)
	if len(b) > 60 {
		b = append(b[:60], "..."...)
	}
	return string(b)
}

func oaNumber(v any) float64 {
	n, ok := v.(json.Number)
	if !ok {
		panic(fmt.Sprintf("not a number: %v", v))
	}
	f, err := n.Float64()
	if err != nil {
		panic(err)
	}
	return f
}

func oaJSONEqual(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		return oaNumber(an) == oaNumber(bn)
	}
	return fmt.Sprintf("%T %v", a, a) == fmt.Sprintf("%T %v", b, b)
}

// oaParamValue turns a parameter's text into the JSON value its schema types.
func oaParamValue(p *oaParameter, raw string) (any, error) {
	s, _ := p.Schema.(map[string]any)
	switch s["type"] {
	case "integer", "number":
		if _, err := strconv.ParseFloat(raw, 64); err != nil {
			return nil, fmt.Errorf("%s=%q is not a number", p.Name, raw)
		}
		return json.Number(raw), nil
	case "boolean":
		if raw != "true" && raw != "false" {
			return nil, fmt.Errorf("%s=%q is not a boolean", p.Name, raw)
		}
		return raw == "true", nil
	}
	return raw, nil
}

func (v oaValidator) param(p *oaParameter, raw string) error {
	val, err := oaParamValue(p, raw)
	if err != nil {
		return err
	}
	return v.check(p.Schema, val, p.Name)
}

// ---------------------------------------------------------------------------
// Calling the API and checking its answers.

// oaChecker calls a node's admin API and checks every answer against the
// document. The coverage maps are shared by the subtests.
type oaChecker struct {
	doc  *oaDoc
	val  oaValidator
	n    *node
	http *http.Client

	seen   map[oaOpKey]map[int]bool    // statuses each operation answered
	events map[oaOpKey]map[string]bool // events each stream sent
	codes  map[string]bool             // error codes answered, each checked against its response
}

func newOAChecker(doc *oaDoc) *oaChecker {
	return &oaChecker{
		doc:    doc,
		val:    oaValidator{schemas: doc.Components.Schemas},
		http:   &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		seen:   make(map[oaOpKey]map[int]bool),
		events: make(map[oaOpKey]map[string]bool),
		codes:  make(map[string]bool),
	}
}

// on returns a copy that calls n, sharing the coverage.
func (a *oaChecker) on(n *node) *oaChecker {
	b := *a
	b.n = n
	return &b
}

// oaCall is one request.
type oaCall struct {
	method   string
	template string // the documented path
	path     string // the request's path and query; template if empty
	body     string
	ctype    string // the Content-Type; application/json when empty and there is a body
	token    string // the bearer token; the node's when empty
	noToken  bool
	header   map[string]string
	host     string // the Host header; the listener's address when empty
}

func (c oaCall) target() string {
	if c.path == "" {
		return c.template
	}
	return c.path
}

type oaAnswer struct {
	status int
	header http.Header
	body   []byte
}

// send makes the request without checking anything: safe from any goroutine.
func (a *oaChecker) send(ctx context.Context, c oaCall) (*http.Response, error) {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, a.n.AdminURL+c.target(), body)
	if err != nil {
		return nil, err
	}
	switch {
	case c.ctype != "":
		req.Header.Set("Content-Type", c.ctype)
	case c.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.noToken:
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	default:
		req.Header.Set("Authorization", "Bearer "+a.n.Token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.host != "" {
		req.Host = c.host
	}
	return a.http.Do(req)
}

func (a *oaChecker) fetch(ctx context.Context, c oaCall) (oaAnswer, error) {
	resp, err := a.send(ctx, c)
	if err != nil {
		return oaAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return oaAnswer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// do makes a documented request and checks the answer.
func (a *oaChecker) do(t *testing.T, c oaCall) oaAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ans, err := a.fetch(ctx, c)
	require.NoError(t, err, "%s %s", c.method, c.target())
	a.check(t, c, ans)
	return ans
}

// expect is do, requiring the status (and, for errors, the code).
func (a *oaChecker) expect(t *testing.T, c oaCall, status int, code ...string) oaAnswer {
	t.Helper()
	ans := a.do(t, c)
	require.Equal(t, status, ans.status, "%s %s: %s", c.method, c.target(), ans.body)
	if len(code) > 0 {
		require.Equal(t, code[0], oaErrorCode(t, ans.body), "%s %s", c.method, c.target())
	}
	return ans
}

func oaErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return e.Error.Code
}

// check holds an answer to a documented operation to the document.
func (a *oaChecker) check(t *testing.T, c oaCall, ans oaAnswer) {
	t.Helper()
	key := oaOpKey{c.template, c.method}
	op := a.doc.ops[key]
	require.NotNil(t, op, "%v is not documented", key)
	u, err := url.Parse(c.target())
	require.NoError(t, err)
	pathValues, ok := oaMatch(c.template, u.EscapedPath())
	require.True(t, ok, "%s does not fit %s", u.Path, c.template)
	what := fmt.Sprintf("%s %s -> %d %.200q", c.method, c.target(), ans.status, ans.body)

	require.NotEqual(t, http.StatusMethodNotAllowed, ans.status, "a documented method was refused: %s", what)
	if c.noToken || c.token != "" {
		if op.requiresToken {
			require.Equal(t, http.StatusUnauthorized, ans.status, "documented as needing the token: %s", what)
		} else {
			require.NotEqual(t, http.StatusUnauthorized, ans.status, "documented as open: %s", what)
		}
	}
	resp := op.Responses[strconv.Itoa(ans.status)]
	require.NotNil(t, resp, "the status is not documented: %s", what)
	a.checkResponse(t, what, resp, ans)
	if a.seen[key] == nil {
		a.seen[key] = make(map[int]bool)
	}
	a.seen[key][ans.status] = true

	if ans.status/100 != 2 {
		return
	}
	// The server took the request: so must the document.
	for name, values := range u.Query() {
		p := op.param("query", name)
		require.NotNil(t, p, "query parameter %q is not documented: %s", name, what)
		require.NoError(t, a.val.param(p, values[0]), what)
	}
	for name, value := range pathValues {
		raw, err := url.PathUnescape(value)
		require.NoError(t, err)
		require.NoError(t, a.val.param(op.param("path", name), raw), what)
	}
	switch {
	case c.body == "":
		require.False(t, op.RequestBody != nil && op.RequestBody.Required, "accepted without its required body: %s", what)
	case c.ctype == "" || c.ctype == "application/json":
		require.NotNil(t, op.RequestBody, "accepted a body it does not document: %s", what)
		media := op.RequestBody.Content["application/json"]
		require.NotNil(t, media, what)
		var v any
		require.NoError(t, oaDecodeStrict([]byte(c.body), &v), what)
		require.NoError(t, a.val.validate(media.Schema, v), "the accepted body does not fit the documented schema: %s", what)
	}
}

// checkResponse holds an answer to one documented response.
func (a *oaChecker) checkResponse(t *testing.T, what string, resp *oaResponse, ans oaAnswer) {
	t.Helper()
	for name, h := range resp.Headers {
		if h.Required {
			require.NotEmpty(t, ans.header.Get(name), "header %s is missing: %s", name, what)
		}
	}
	if len(resp.Content) == 0 {
		require.Empty(t, ans.body, "documented without a body: %s", what)
		return
	}
	mt, _, err := mime.ParseMediaType(ans.header.Get("Content-Type"))
	require.NoError(t, err, what)
	media := resp.Content[mt]
	require.NotNil(t, media, "Content-Type %s is not documented (%v): %s", mt, slices.Sorted(maps.Keys(resp.Content)), what)
	if mt != "application/json" {
		return
	}
	var v any
	require.NoError(t, oaDecodeStrict(ans.body, &v), what)
	require.NoError(t, a.val.validate(media.Schema, v), what)
	// Errors, and answers documented with codes though not errors (a 307
	// placed_elsewhere), carry one of the codes the response names.
	if ans.status >= 400 || len(resp.ErrorCodes) > 0 {
		require.NotEmpty(t, resp.ErrorCodes, "the response names no x-error-codes: %s", what)
		code := oaErrorCode(t, ans.body)
		require.Contains(t, resp.ErrorCodes, code, "the code is not documented for this response: %s", what)
		a.codes[code] = true
	}
}

// requireParamRefused checks that the document, too, refuses a parameter
// value the server refused.
func (a *oaChecker) requireParamRefused(t *testing.T, key oaOpKey, in, name, raw string) {
	t.Helper()
	p := a.doc.ops[key].param(in, name)
	require.NotNil(t, p, "%v has no %s parameter %s", key, in, name)
	require.Error(t, a.val.param(p, raw), "%v: the document allows %s=%q, which the server refuses", key, name, raw)
}

// requireBodyRefused checks that the document, too, refuses a request body
// the server refused.
func (a *oaChecker) requireBodyRefused(t *testing.T, key oaOpKey, body string) {
	t.Helper()
	var v any
	if oaDecodeStrict([]byte(body), &v) != nil {
		return // not JSON: nothing to validate
	}
	schema := a.doc.ops[key].RequestBody.Content["application/json"].Schema
	require.Error(t, a.val.validate(schema, v), "%v: the document allows %s, which the server refuses", key, body)
}

// oaStream is an open Server-Sent Events answer.
type oaStream struct {
	key    oaOpKey
	rd     *bufio.Reader
	events map[string]any
}

// stream opens a documented event stream; it must answer 200. Reads end
// when ctx does.
func (a *oaChecker) stream(t *testing.T, ctx context.Context, c oaCall) *oaStream {
	t.Helper()
	resp, err := a.send(ctx, c)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		a.check(t, c, oaAnswer{resp.StatusCode, resp.Header, b})
		t.Fatalf("%s %s: %d %s", c.method, c.target(), resp.StatusCode, b)
	}
	// The body goes on: check the status and the headers alone.
	key := oaOpKey{c.template, c.method}
	op := a.doc.ops[key]
	require.NotNil(t, op, "%v is not documented", key)
	documented := op.Responses["200"]
	require.NotNil(t, documented, "%v documents no 200", key)
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", mt)
	media := documented.Content[mt]
	require.NotNil(t, media, "%v does not document %s", key, mt)
	require.NotEmpty(t, media.Events, "%v lists no x-sse-events", key)
	if a.seen[key] == nil {
		a.seen[key] = make(map[int]bool)
	}
	a.seen[key][http.StatusOK] = true
	return &oaStream{key: key, rd: bufio.NewReader(resp.Body), events: media.Events}
}

// next reads the next event, checks its data against the event's schema and
// returns its name and data.
func (a *oaChecker) next(t *testing.T, s *oaStream) (string, []byte) {
	t.Helper()
	var name string
	var data []byte
	for {
		line, err := s.rd.ReadString('\n')
		require.NoError(t, err, "%v: reading the stream", s.key)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && name == "" && data == nil:
			continue
		case line == "":
			schema, ok := s.events[name]
			require.True(t, ok, "%v sent event %q, which is not documented", s.key, name)
			var v any
			require.NoError(t, oaDecodeStrict(data, &v), "%v event %s", s.key, name)
			require.NoError(t, a.val.validate(schema, v), "%v event %s: %s", s.key, name, data)
			if a.events[s.key] == nil {
				a.events[s.key] = make(map[string]bool)
			}
			a.events[s.key][name] = true
			return name, data
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(line, "data: ")...)
		default:
			t.Fatalf("%v: unexpected line %q", s.key, line)
		}
	}
}

// ---------------------------------------------------------------------------
// Helpers for nodes and players.

// oaWaitFor polls cond until it holds, failing the test after timeout.
func oaWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// oaJoin connects a game client to the node and joins the room.
func oaJoin(t *testing.T, n *node, roomID string) (*client.Client, *client.Joined) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := client.DefaultConfig()
	cfg.Name = "openapi-test"
	cfg.Reconnect.Attempts = 0
	c, err := client.Dial(ctx, n.URL, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	seat, err := c.Join(ctx, client.JoinOptions{RoomID: roomID})
	require.NoError(t, err)
	return c, seat
}

// oaWaitEvent reads a client's events until one of kind arrives (and, if
// given, that match).
func oaWaitEvent(t *testing.T, c *client.Client, kind client.EventKind, match ...func(client.Event) bool) client.Event {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.Events():
			require.True(t, ok, "the client's events ended")
			if e.Kind == kind && (len(match) == 0 || match[0](e)) {
				return e
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for client event %d", kind)
		}
	}
}

// oaRoom is what the tests read of a room's detail.
type oaRoom struct {
	ID     string `json:"id"`
	Paused bool   `json:"paused"`
	Tick   struct {
		Current uint64 `json:"current"`
		Game    uint64 `json:"game"`
	} `json:"tick"`
	Players []oaPlayer `json:"players"`
}

type oaPlayer struct {
	ID        uint32   `json:"id"`
	State     string   `json:"state"`
	HeldSince *string  `json:"held_since"`
	RTTMs     *float64 `json:"rtt_ms"`
	Conn      *uint64  `json:"conn"`
}

func oaDecode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(body, &v), "%s", body)
	return v
}

// ---------------------------------------------------------------------------
// The tests.

func TestOpenAPI(t *testing.T) {
	doc, raw := oaLoadDoc(t)
	api := newOAChecker(doc)
	t.Run("Routes", func(t *testing.T) { testOpenAPIRoutes(t, api.on(startNode(t, nil)), raw) })
	t.Run("Operations", func(t *testing.T) { testOpenAPIOperations(t, api.on(startNode(t, nil))) })
	t.Run("Streams", func(t *testing.T) {
		testOpenAPIStreams(t, api.on(startNode(t, func(c *admin.Config) { c.MaxStreams = 2 })))
	})
	t.Run("Cluster", func(t *testing.T) { testOpenAPICluster(t, api.on(startNode(t, nil))) })
	t.Run("WithoutToken", func(t *testing.T) {
		a := api.on(startNode(t, func(c *admin.Config) { c.Token = "" }))
		a.expect(t, oaCall{method: "POST", template: "/admin/rooms", body: `{"mode":"arena"}`, host: "evil.example"}, http.StatusForbidden, "bad_host")
		a.expect(t, oaCall{method: "POST", template: "/admin/rooms", body: `{"mode":"arena"}`, host: "localhost"}, http.StatusCreated)
	})
	if t.Failed() {
		return
	}
	// Every error code was answered by a real response and held to that
	// response's schema and x-error-codes, but for those that cannot be
	// caused from outside (an unexpected failure, a room too busy to
	// answer, a listener shutting down under a request, a node at its
	// MaxRooms of 10000): a new code must be exercised above.
	unprovoked := []string{"internal", "room_unresponsive", "cancelled", "too_many_rooms"}
	var unanswered []string
	for _, code := range oaErrorCodes(doc) {
		if !api.codes[code] && !slices.Contains(unprovoked, code) {
			unanswered = append(unanswered, code)
		}
	}
	require.Empty(t, unanswered, "error codes no response answered")
	// Every documented operation answered with success at least once, and
	// every stream sent each documented event: a new operation or event must
	// be exercised above.
	var unseen []string
	for _, key := range doc.sortedOps() {
		op := doc.ops[key]
		ok := slices.ContainsFunc(slices.Collect(maps.Keys(api.seen[key])), func(s int) bool { return s/100 == 2 })
		require.True(t, ok, "%v was never answered with success (%v)", key, api.seen[key])
		for _, status := range slices.Sorted(maps.Keys(op.Responses)) {
			if s, _ := strconv.Atoi(status); !api.seen[key][s] {
				unseen = append(unseen, fmt.Sprintf("%v %s", key, status))
			}
		}
		if r := op.Responses["200"]; r != nil && r.Content["text/event-stream"] != nil {
			for name := range r.Content["text/event-stream"].Events {
				require.True(t, api.events[key][name], "%v never sent event %q", key, name)
			}
		}
	}
	// Some failures cannot be caused from outside (a room too busy to
	// answer, a game failing to marshal its state, 10000 rooms).
	t.Logf("documented answers not exercised: %s", strings.Join(unseen, "; "))
}

// oaRoute is a pattern routes() registers.
type oaRoute struct {
	pattern string
	methods []string
	auth    bool
}

// oaRegisteredRoutes reads the patterns server.go's routes() registers, with
// their methods (from only(...) and methods{...}) and whether auth wraps
// them.
func oaRegisteredRoutes(t *testing.T) []oaRoute {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "server.go", nil, 0)
	require.NoError(t, err)
	var routes []oaRoute
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "routes" {
			continue
		}
		ast.Inspect(fn.Body, func(node ast.Node) bool {
			ce, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := ce.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(ce.Args) != 2 {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
				return true
			}
			lit, ok := ce.Args[0].(*ast.BasicLit)
			require.True(t, ok, "server.go registers a pattern that is not a literal")
			pattern, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			r := oaRoute{pattern: pattern}
			ast.Inspect(ce.Args[1], func(node ast.Node) bool {
				switch x := node.(type) {
				case *ast.CallExpr:
					switch fun, _ := x.Fun.(*ast.Ident); {
					case fun == nil:
					case fun.Name == "auth":
						r.auth = true
					case fun.Name == "only":
						m, err := strconv.Unquote(x.Args[0].(*ast.BasicLit).Value)
						require.NoError(t, err)
						r.methods = append(r.methods, m)
					}
				case *ast.CompositeLit:
					if typ, ok := x.Type.(*ast.Ident); ok && typ.Name == "methods" {
						for _, e := range x.Elts {
							m, err := strconv.Unquote(e.(*ast.KeyValueExpr).Key.(*ast.BasicLit).Value)
							require.NoError(t, err)
							r.methods = append(r.methods, m)
						}
					}
				}
				return true
			})
			slices.Sort(r.methods)
			routes = append(routes, r)
			return true
		})
	}
	require.NotEmpty(t, routes, "found no mux.Handle calls in server.go's routes(): update oaRegisteredRoutes")
	return routes
}

// oaServerErrorCodes reads the codes the package's writeError calls use.
func oaServerErrorCodes(t *testing.T) []string {
	t.Helper()
	files, err := os.ReadDir(".")
	require.NoError(t, err)
	var codes []string
	for _, e := range files {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(node ast.Node) bool {
			ce, ok := node.(*ast.CallExpr)
			if !ok || len(ce.Args) != 4 {
				return true
			}
			if fun, ok := ce.Fun.(*ast.Ident); !ok || fun.Name != "writeError" {
				return true
			}
			lit, ok := ce.Args[2].(*ast.BasicLit)
			require.True(t, ok, "%s: writeError with a code that is not a literal", e.Name())
			code, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			if !slices.Contains(codes, code) {
				codes = append(codes, code)
			}
			return true
		})
	}
	slices.Sort(codes)
	return codes
}

// oaErrorCodes returns the Error schema's codes, sorted.
func oaErrorCodes(doc *oaDoc) []string {
	var enum []string
	errSchema := doc.Components.Schemas["Error"].(map[string]any)["properties"].(map[string]any)["error"]
	for _, c := range errSchema.(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any) {
		enum = append(enum, c.(string))
	}
	slices.Sort(enum)
	return enum
}

// testOpenAPIRoutes checks that the document lists exactly the operations the
// server serves, that it is what GET /openapi.json serves, and that its error
// codes are those the server writes.
//
// The probe finds a method added to or removed from a documented path (the
// Allow header no longer matches). It cannot find a route under a new path,
// since nothing tells it to try that path: oaRegisteredRoutes reads those
// from server.go, so a new route fails here until openapi.json documents it,
// and then testOpenAPIOperations must exercise it or TestOpenAPI's coverage
// check fails. A route registered other than by mux.Handle in routes()
// escapes both, so register them all there.
func testOpenAPIRoutes(t *testing.T, a *oaChecker, raw []byte) {
	doc := a.doc

	// Served: the document, byte for byte.
	served := a.expect(t, oaCall{method: "GET", template: "/openapi.json"}, http.StatusOK)
	require.Equal(t, string(raw), string(served.body), "GET /openapi.json serves another document")

	// Read from server.go: every registered pattern is documented, with the
	// same methods and the same need for the token.
	claimed := map[string]bool{}
	exact := map[string]bool{}
	routes := oaRegisteredRoutes(t)
	for _, r := range routes {
		exact[strings.TrimSuffix(r.pattern, "{$}")] = true
	}
	for _, r := range routes {
		if r.pattern == "/" {
			continue // the catch-all answering 404 not_found
		}
		p := strings.TrimSuffix(r.pattern, "{$}")
		var paths []string
		if _, ok := doc.Paths[p]; ok {
			paths = append(paths, p)
		}
		if strings.HasSuffix(p, "/") { // a subtree: its documented leaves
			for d := range doc.Paths {
				rest, ok := strings.CutPrefix(d, p)
				if ok && !exact[d] && strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}") && !strings.Contains(rest, "/") {
					paths = append(paths, d)
				}
			}
		}
		require.NotEmpty(t, paths, "server.go registers %q, which openapi.json does not document", r.pattern)
		for _, d := range paths {
			claimed[d] = true
			require.Equal(t, r.methods, doc.methods(d), "methods of %s (registered as %q)", d, r.pattern)
			for _, m := range r.methods {
				require.Equal(t, r.auth, doc.ops[oaOpKey{d, m}].requiresToken, "%s %s: needs the token in server.go: %v", m, d, r.auth)
			}
		}
	}
	for d := range doc.Paths {
		require.True(t, claimed[d], "openapi.json documents %s, which server.go does not register", d)
	}

	// The error codes: the schema's enum, the codes the responses name, and
	// the codes the server writes are the same.
	enum := oaErrorCodes(doc)
	named := map[string]bool{}
	for _, r := range doc.Components.Responses {
		for _, c := range r.ErrorCodes {
			named[c] = true
		}
	}
	for _, op := range doc.ops {
		for _, r := range op.Responses {
			for _, c := range r.ErrorCodes {
				named[c] = true
			}
		}
	}
	require.Equal(t, oaServerErrorCodes(t), enum, "the Error schema's codes and the codes server code writes")
	require.Equal(t, enum, slices.Sorted(maps.Keys(named)), "the Error schema's codes and the codes responses name")

	// Bounds the document states as the configuration's defaults.
	cfg := admin.DefaultConfig()
	step := doc.ops[oaOpKey{"/admin/rooms/{id}/step", "POST"}].param("query", "ticks").Schema.(map[string]any)
	require.Equal(t, float64(cfg.MaxSteps), oaNumber(step["maximum"]), "ticks' maximum is MaxSteps")
	watch := doc.ops[oaOpKey{"/admin/rooms/{id}/watch", "GET"}].param("query", "hz").Schema.(map[string]any)
	require.Equal(t, float64(cfg.WatchRate), oaNumber(watch["maximum"]), "hz's maximum is WatchRate")

	// Probed: every method a documented path does not list gets 405 naming
	// exactly the ones it lists. (That the listed ones are not refused is
	// checked for every call in oaChecker.check.)
	created := a.expect(t, oaCall{method: "POST", template: "/admin/rooms", body: `{"mode":"arena"}`}, http.StatusCreated)
	values := map[string]string{"id": oaDecode[oaRoom](t, created.body).ID, "pid": "1", "path": "app.js", "profile": "heap"}
	notAllowed := doc.Components.Responses["MethodNotAllowed"]
	require.NotNil(t, notAllowed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, template := range slices.Sorted(maps.Keys(doc.Paths)) {
		documented := doc.methods(template)
		require.NotEmpty(t, documented, template)
		path := oaFill(template, values)
		for _, m := range oaProbeMethods {
			if slices.Contains(documented, m) {
				continue
			}
			ans, err := a.fetch(ctx, oaCall{method: m, path: path})
			require.NoError(t, err)
			what := fmt.Sprintf("%s %s -> %d %.200q", m, path, ans.status, ans.body)
			require.Equal(t, http.StatusMethodNotAllowed, ans.status, "not documented, so it must be refused: %s", what)
			allow := documented
			if slices.Contains(allow, "GET") { // HEAD is answered wherever GET is
				allow = append(slices.Clone(allow), "HEAD")
				slices.Sort(allow)
			}
			require.Equal(t, strings.Join(allow, ", "), ans.header.Get("Allow"), what)
			a.checkResponse(t, what, notAllowed, ans)
		}
	}
	// What every operation shares, each refused before the request does
	// anything: the token, where needed; the cross-origin check, for
	// methods a browser must not be made to send; and, for JSON bodies,
	// the media type, the size and unknown fields.
	for _, key := range doc.sortedOps() {
		op := doc.ops[key]
		c := oaCall{method: key.method, template: key.path, path: oaFill(key.path, values)}
		if op.requiresToken {
			c.noToken = true
			a.expect(t, c, http.StatusUnauthorized, "unauthorized")
			c.noToken, c.token = false, "wrong"
			a.expect(t, c, http.StatusUnauthorized, "unauthorized")
			c.token = ""
		}
		if key.method != "GET" {
			c.header = map[string]string{"Sec-Fetch-Site": "cross-site"}
			a.expect(t, c, http.StatusForbidden, "cross_origin")
			c.header = nil
		}
		if op.RequestBody == nil || op.RequestBody.Content["application/json"] == nil {
			continue
		}
		c.body, c.ctype = `{}`, "text/plain"
		a.expect(t, c, http.StatusUnsupportedMediaType, "unsupported_media_type")
		c.body, c.ctype = `{"zz":"`+strings.Repeat("z", 70<<10)+`"}`, ""
		a.expect(t, c, http.StatusRequestEntityTooLarge, "too_large")
		c.body = `{"zz":1}`
		a.expect(t, c, http.StatusBadRequest, "bad_request")
		a.requireBodyRefused(t, key, c.body)
	}

	// GET routes answer HEAD too, as the document says.
	for _, path := range []string{"/healthz", "/admin/rooms", oaFill("/admin/rooms/{id}", values)} {
		ans, err := a.fetch(ctx, oaCall{method: "HEAD", path: path})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ans.status, "HEAD %s", path)
		require.Empty(t, ans.body)
	}

	// Undocumented paths are unknown, with a token or without.
	notFound := doc.Components.Responses["NotFound"]
	require.NotNil(t, notFound)
	for _, path := range []string{
		"/admin", "/admin/", "/admin/rooms/", "/admin/room", "/admin/rooms/{id}/", "/admin/rooms/{id}/players",
		"/admin/rooms/{id}/players/1", "/admin/rooms/{id}/players/1/kick/now", "/admin/rooms/{id}/state/x",
		"/admin/rooms/{id}/events", "/admin/events/x", "/healthz/x", "/metrics/x", "/openapi.yaml", "/index.html", "/api/rooms",
	} {
		path = oaFill(path, values)
		for template := range doc.Paths {
			_, match := oaMatch(template, path)
			require.False(t, match, "%s is documented as %s", path, template)
		}
		for _, noToken := range []bool{false, true} {
			for _, m := range []string{"GET", "POST"} {
				ans, err := a.fetch(ctx, oaCall{method: m, path: path, noToken: noToken})
				require.NoError(t, err)
				what := fmt.Sprintf("%s %s -> %d %.200q", m, path, ans.status, ans.body)
				require.Equal(t, http.StatusNotFound, ans.status, what)
				a.checkResponse(t, what, notFound, ans)
			}
		}
	}
}

// testOpenAPIOperations runs every documented operation but the streams, and
// the documented ways each fails, against a node with real players.
func testOpenAPIOperations(t *testing.T, a *oaChecker) {
	n := a.n
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A CPU profile takes a second: run it meanwhile, checked at the end.
	profile := make(chan oaAnswer, 1)
	profileCall := oaCall{method: "GET", template: "/debug/pprof/profile", path: "/debug/pprof/profile?seconds=1"}
	go func() {
		ans, err := a.fetch(ctx, profileCall)
		if err != nil {
			ans = oaAnswer{status: -1, body: []byte(err.Error())}
		}
		profile <- ans
	}()

	// Health, the dashboard, the documents.
	a.expect(t, oaCall{method: "GET", template: "/healthz", noToken: true}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/readyz", noToken: true}, http.StatusOK)
	n.Admin.SetReady(false)
	a.expect(t, oaCall{method: "GET", template: "/readyz", noToken: true}, http.StatusServiceUnavailable, "not_ready")
	n.Admin.SetReady(true)
	a.expect(t, oaCall{method: "GET", template: "/", noToken: true}, http.StatusOK)
	dir, err := os.ReadDir("dashboard")
	require.NoError(t, err)
	for _, e := range dir {
		if !e.IsDir() && e.Name() != "index.html" {
			a.expect(t, oaCall{method: "GET", template: "/static/{path}", path: "/static/" + e.Name(), noToken: true}, http.StatusOK)
		}
	}
	a.expect(t, oaCall{method: "GET", template: "/static/{path}", path: "/static/index.html", noToken: true}, http.StatusMovedPermanently)
	a.expect(t, oaCall{method: "GET", template: "/static/{path}", path: "/static/no-such-file.js", noToken: true}, http.StatusNotFound)
	metrics := a.expect(t, oaCall{method: "GET", template: "/metrics"}, http.StatusOK)
	require.Contains(t, string(metrics.body), "tickroom_rooms ")
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/"}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/{profile}", path: "/debug/pprof/heap"}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/{profile}", path: "/debug/pprof/goroutine?debug=1"}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/{profile}", path: "/debug/pprof/no-such-profile"}, http.StatusNotFound)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/{profile}", path: "/debug/pprof/heap?seconds=0"}, http.StatusBadRequest)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/cmdline"}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/symbol"}, http.StatusOK)
	a.expect(t, oaCall{method: "POST", template: "/debug/pprof/symbol", body: "0x1", ctype: "text/plain"}, http.StatusOK)
	a.expect(t, oaCall{method: "GET", template: "/debug/pprof/trace", path: "/debug/pprof/trace?seconds=0.05"}, http.StatusOK)

	// Creating rooms, and the ways a body is refused.
	const create = "/admin/rooms"
	createKey := oaOpKey{create, "POST"}
	room := oaDecode[oaRoom](t, a.expect(t, oaCall{method: "POST", template: create,
		body: `{"mode":"arena","max_players":4,"private":true,"metadata":{"purpose":"openapi"}}`}, http.StatusCreated).body)
	other := a.expect(t, oaCall{method: "POST", template: create, body: `{"mode":"arena"}`}, http.StatusCreated)
	require.Equal(t, "/admin/rooms/"+oaDecode[oaRoom](t, other.body).ID, other.header.Get("Location"))
	otherID := oaDecode[oaRoom](t, other.body).ID
	metadata := make(map[string]string)
	for i := range 33 {
		metadata[fmt.Sprint("k", i)] = "v"
	}
	tooMany, err := json.Marshal(map[string]any{"mode": "arena", "metadata": metadata})
	require.NoError(t, err)
	for _, body := range []string{
		`{`, `[]`, `{"mode":"arena"} {}`, `{}`, `{"mode":""}`, `{"mode":"arena","max_players":-1}`,
		`{"mode":"arena","max_players":257}`, `{"mode":"arena","max_players":2.5}`, `{"mode":"arena","color":"red"}`,
		string(tooMany), `{"mode":"arena","metadata":{"":"empty key"}}`,
	} {
		a.expect(t, oaCall{method: "POST", template: create, body: body}, http.StatusBadRequest, "bad_request")
		a.requireBodyRefused(t, createKey, body)
	}
	a.expect(t, oaCall{method: "POST", template: create}, http.StatusBadRequest, "bad_request")
	a.expect(t, oaCall{method: "POST", template: create, body: `{"mode":"chess"}`}, http.StatusBadRequest, "unknown_mode")
	a.expect(t, oaCall{method: "POST", template: create, body: `{"mode":"arena"}`, ctype: "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "unsupported_media_type")
	a.expect(t, oaCall{method: "POST", template: create, body: `{"mode":"arena"}`, header: map[string]string{"Origin": "https://evil.example"}}, http.StatusForbidden, "cross_origin")

	// Players: two connected, and one seat held after its connection died.
	c1, seat1 := oaJoin(t, n, room.ID)
	c2, seat2 := oaJoin(t, n, room.ID)
	roomPath := "/admin/rooms/" + room.ID
	get := oaCall{method: "GET", template: "/admin/rooms/{id}", path: roomPath}
	oaWaitFor(t, 5*time.Second, "both players' round trips to be measured", func() bool {
		d := oaDecode[oaRoom](t, a.expect(t, get, http.StatusOK).body)
		measured := 0
		for _, p := range d.Players {
			if p.RTTMs != nil {
				measured++
			}
		}
		return measured == 2
	})
	raw := netcodetest.DialHello(t, n.URL)
	raw.Send(raw.Enc.Join(wire.Join{ReqID: 1, RoomID: room.ID}))
	heldID := raw.Expect(wire.TypeJoined).Joined.Player
	require.NoError(t, raw.NC.Close())
	var detail oaRoom
	oaWaitFor(t, 5*time.Second, "the dropped player's seat to be held", func() bool {
		detail = oaDecode[oaRoom](t, a.expect(t, get, http.StatusOK).body)
		return len(detail.Players) == 3 && slices.ContainsFunc(detail.Players, func(p oaPlayer) bool { return p.State == "held" })
	})
	for _, p := range detail.Players {
		if p.ID == heldID {
			require.Equal(t, "held", p.State)
			require.NotNil(t, p.HeldSince)
			require.Nil(t, p.Conn)
			require.Nil(t, p.RTTMs)
		} else {
			require.Equal(t, "connected", p.State)
			require.Nil(t, p.HeldSince)
			require.NotNil(t, p.Conn)
		}
	}
	a.expect(t, oaCall{method: "GET", template: "/admin/rooms/{id}", path: "/admin/rooms/000000000000"}, http.StatusNotFound, "room_not_found")

	// Listing and paging.
	const list = "/admin/rooms"
	listKey := oaOpKey{list, "GET"}
	type page struct {
		Rooms []struct {
			ID string `json:"id"`
		} `json:"rooms"`
		Total      int     `json:"total"`
		NextCursor *string `json:"next_cursor"`
	}
	all := oaDecode[page](t, a.expect(t, oaCall{method: "GET", template: list}, http.StatusOK).body)
	require.Equal(t, 2, all.Total)
	first := oaDecode[page](t, a.expect(t, oaCall{method: "GET", template: list, path: list + "?limit=1"}, http.StatusOK).body)
	require.Len(t, first.Rooms, 1)
	require.NotNil(t, first.NextCursor)
	require.Equal(t, all.Total, first.Total)
	rest := oaDecode[page](t, a.expect(t, oaCall{method: "GET", template: list, path: list + "?limit=500&cursor=" + url.QueryEscape(*first.NextCursor)}, http.StatusOK).body)
	require.Len(t, rest.Rooms, all.Total-1)
	require.Nil(t, rest.NextCursor)
	a.expect(t, oaCall{method: "GET", template: list, path: list + "?mode=arena&has_free_seats=true"}, http.StatusOK)
	full := oaDecode[page](t, a.expect(t, oaCall{method: "GET", template: list, path: list + "?has_free_seats=false"}, http.StatusOK).body)
	require.Zero(t, full.Total)
	for _, q := range []struct{ name, value string }{{"limit", "0"}, {"limit", "501"}, {"limit", "ten"}, {"has_free_seats", "maybe"}} {
		a.expect(t, oaCall{method: "GET", template: list, path: list + "?" + q.name + "=" + q.value}, http.StatusBadRequest, "bad_request")
		a.requireParamRefused(t, listKey, "query", q.name, q.value)
	}
	a.expect(t, oaCall{method: "GET", template: list, path: list + "?cursor=abc"}, http.StatusBadRequest, "bad_request")
	a.expect(t, oaCall{method: "GET", template: list, path: list + "?page=2"}, http.StatusBadRequest, "bad_request")
	require.Nil(t, a.doc.ops[listKey].param("query", "page"), "page is not a parameter of the list")

	// Broadcast: the players get the data as MessagePack from the operator.
	const broadcast = "/admin/rooms/{id}/broadcast"
	broadcastKey := oaOpKey{broadcast, "POST"}
	bc := oaCall{method: "POST", template: broadcast, path: roomPath + "/broadcast"}
	data := `{"msg":"hello","n":3,"list":[1,2.5,true,null]}`
	bc.body = `{"data":` + data + `}`
	sent := oaDecode[struct{ Recipients int }](t, a.expect(t, bc, http.StatusOK).body)
	require.Equal(t, 2, sent.Recipients)
	for _, c := range []*client.Client{c1, c2} {
		e := oaWaitEvent(t, c, client.EventRoomMessage)
		require.Equal(t, wire.FromOperator, e.From)
		require.Equal(t, uint32(4294967295), e.From)
		var got any
		require.NoError(t, msgpack.Unmarshal(e.Payload, &got))
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, data, string(b))
	}
	bc.body = `{"data":null}`
	a.expect(t, bc, http.StatusOK)
	for _, body := range []string{`{}`, `{"data":1,"to":2}`, `{`, `"hello"`} {
		bc.body = body
		a.expect(t, bc, http.StatusBadRequest, "bad_request")
		a.requireBodyRefused(t, broadcastKey, body)
	}
	bc.body = ""
	a.expect(t, bc, http.StatusBadRequest, "bad_request")
	bc.body = `{"data":"` + strings.Repeat("x", 2000) + `"}`
	a.expect(t, bc, http.StatusRequestEntityTooLarge, "too_large")
	a.expect(t, oaCall{method: "POST", template: broadcast, path: "/admin/rooms/000000000000/broadcast", body: `{"data":1}`}, http.StatusNotFound, "room_not_found")

	// Pause, step, resume.
	pause := oaCall{method: "POST", template: "/admin/rooms/{id}/pause", path: roomPath + "/pause"}
	resume := oaCall{method: "POST", template: "/admin/rooms/{id}/resume", path: roomPath + "/resume"}
	step := func(q string) oaCall {
		return oaCall{method: "POST", template: "/admin/rooms/{id}/step", path: roomPath + "/step" + q}
	}
	type pauseState struct {
		Paused   bool   `json:"paused"`
		GameTick uint64 `json:"game_tick"`
	}
	a.expect(t, step(""), http.StatusConflict, "not_paused")
	a.expect(t, resume, http.StatusConflict, "not_paused")
	paused := oaDecode[pauseState](t, a.expect(t, pause, http.StatusOK).body)
	require.True(t, paused.Paused)
	a.expect(t, pause, http.StatusConflict, "already_paused")
	// Paused: the room ticks on, the game does not.
	oaWaitFor(t, 5*time.Second, "the paused room to tick on", func() bool {
		d := oaDecode[oaRoom](t, a.expect(t, get, http.StatusOK).body)
		require.Equal(t, paused.GameTick, d.Tick.Game, "the game stepped while paused")
		require.True(t, d.Paused)
		return d.Tick.Current > d.Tick.Game+2
	})
	stepped := oaDecode[pauseState](t, a.expect(t, step("?ticks=3"), http.StatusOK).body)
	require.True(t, stepped.Paused)
	require.Greater(t, stepped.GameTick, paused.GameTick+2)
	a.expect(t, step(""), http.StatusOK)
	withBody := step("")
	withBody.body = `{}`
	a.expect(t, withBody, http.StatusOK)
	for _, q := range []string{"0", "601", "-1", "x"} {
		a.expect(t, step("?ticks="+q), http.StatusBadRequest, "bad_request")
		a.requireParamRefused(t, oaOpKey{"/admin/rooms/{id}/step", "POST"}, "query", "ticks", q)
	}
	withBody.body = `{"ticks":2}`
	a.expect(t, withBody, http.StatusBadRequest, "bad_request")
	a.requireBodyRefused(t, oaOpKey{"/admin/rooms/{id}/step", "POST"}, withBody.body)
	a.expect(t, oaCall{method: "POST", template: "/admin/rooms/{id}/step", path: "/admin/rooms/000000000000/step"}, http.StatusNotFound, "room_not_found")

	// A long step: another is refused; a resume ends it early.
	before := oaDecode[oaRoom](t, a.expect(t, get, http.StatusOK).body).Tick.Game
	long := step("?ticks=600")
	longDone := make(chan oaAnswer, 1)
	go func() {
		ans, err := a.fetch(ctx, long)
		if err != nil {
			ans = oaAnswer{status: -1, body: []byte(err.Error())}
		}
		longDone <- ans
	}()
	oaWaitFor(t, 5*time.Second, "the long step to run", func() bool {
		return oaDecode[oaRoom](t, a.expect(t, get, http.StatusOK).body).Tick.Game > before
	})
	a.expect(t, step(""), http.StatusConflict, "stepping")
	resumed := oaDecode[pauseState](t, a.expect(t, resume, http.StatusOK).body)
	require.False(t, resumed.Paused)
	select {
	case ans := <-longDone:
		a.check(t, long, ans)
		require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
		require.False(t, oaDecode[pauseState](t, ans.body).Paused)
	case <-ctx.Done():
		t.Fatal("the step did not end at the resume")
	}
	a.expect(t, resume, http.StatusConflict, "not_paused")
	a.expect(t, oaCall{method: "POST", template: "/admin/rooms/{id}/pause", path: "/admin/rooms/000000000000/pause"}, http.StatusNotFound, "room_not_found")
	withBody = pause
	withBody.body = `{"now":true}`
	a.expect(t, withBody, http.StatusBadRequest, "bad_request")
	a.expect(t, oaCall{method: "POST", template: "/admin/rooms/{id}/resume", path: "/admin/rooms/000000000000/resume"}, http.StatusNotFound, "room_not_found")

	// The state: the game's MarshalState bytes (MessagePack for the arena).
	state := a.expect(t, oaCall{method: "GET", template: "/admin/rooms/{id}/state", path: roomPath + "/state"}, http.StatusOK)
	var v any
	require.NoError(t, msgpack.Unmarshal(state.body, &v), "the arena's state is MessagePack")
	_, err = strconv.ParseUint(state.header.Get("X-Tickroom-Tick"), 10, 64)
	require.NoError(t, err)
	require.Equal(t, "arena", state.header.Get("X-Tickroom-Mode"))
	require.Contains(t, state.header.Get("Content-Disposition"), "room-"+room.ID+"-arena-tick-")
	a.expect(t, oaCall{method: "GET", template: "/admin/rooms/{id}/state", path: "/admin/rooms/000000000000/state"}, http.StatusNotFound, "room_not_found")

	// Kicks.
	const kick = "/admin/rooms/{id}/players/{pid}/kick"
	kickPath := func(room string, pid any) string { return fmt.Sprintf("/admin/rooms/%s/players/%v/kick", room, pid) }
	kicked := a.expect(t, oaCall{method: "POST", template: kick, path: kickPath(room.ID, seat2.Player), body: `{"reason":"openapi test"}`}, http.StatusOK)
	require.Equal(t, uint64(seat2.Player), oaDecode[struct{ Player uint64 }](t, kicked.body).Player)
	select {
	case <-c2.Done():
		var ce *client.CloseError
		require.ErrorAs(t, c2.Err(), &ce)
		require.Equal(t, wire.CloseKicked, ce.Code)
		require.Equal(t, "openapi test", ce.Reason)
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked player's connection stayed open")
	}
	left := oaWaitEvent(t, c1, client.EventPlayerLeft, func(e client.Event) bool { return e.Player == seat2.Player })
	require.Equal(t, "kicked", left.Reason)
	// The held seat, without a body (its grace may just have run out).
	held := a.do(t, oaCall{method: "POST", template: kick, path: kickPath(room.ID, heldID)})
	require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, held.status, "%s", held.body)
	a.expect(t, oaCall{method: "POST", template: kick, path: kickPath(room.ID, 999), body: `{}`}, http.StatusNotFound, "player_not_found")
	a.expect(t, oaCall{method: "POST", template: kick, path: kickPath("000000000000", 1)}, http.StatusNotFound, "room_not_found")
	for _, pid := range []string{"0", "abc", "4294967296"} {
		a.expect(t, oaCall{method: "POST", template: kick, path: kickPath(room.ID, pid)}, http.StatusBadRequest, "bad_request")
		a.requireParamRefused(t, oaOpKey{kick, "POST"}, "path", "pid", pid)
	}
	for _, body := range []string{`{"reason":"` + strings.Repeat("r", 124) + `"}`, `{"reason":"x","ban":true}`, `{`} {
		a.expect(t, oaCall{method: "POST", template: kick, path: kickPath(room.ID, seat1.Player), body: body}, http.StatusBadRequest, "bad_request")
	}
	a.requireBodyRefused(t, oaOpKey{kick, "POST"}, `{"reason":"x","ban":true}`)

	// Closing rooms: members keep their connections and learn of it.
	del := oaCall{method: "DELETE", template: "/admin/rooms/{id}", path: roomPath}
	a.expect(t, del, http.StatusNoContent)
	require.Equal(t, "closed by operator", oaWaitEvent(t, c1, client.EventRoomClosed).Reason)
	a.expect(t, get, http.StatusNotFound, "room_not_found")
	a.expect(t, del, http.StatusNotFound, "room_not_found")
	a.expect(t, oaCall{method: "DELETE", template: "/admin/rooms/{id}", path: "/admin/rooms/" + otherID}, http.StatusNoContent)
	require.Zero(t, oaDecode[page](t, a.expect(t, oaCall{method: "GET", template: list}, http.StatusOK).body).Total)

	// A node shutting down creates no rooms.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer closeCancel()
	require.NoError(t, n.Registry.Close(closeCtx))
	a.expect(t, oaCall{method: "POST", template: create, body: `{"mode":"arena"}`}, http.StatusServiceUnavailable, "shutting_down")

	select {
	case ans := <-profile:
		a.check(t, profileCall, ans)
		require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
	case <-ctx.Done():
		t.Fatal("the CPU profile did not finish")
	}
}

// testOpenAPIStreams reads the event streams of a node allowing two of them.
func testOpenAPIStreams(t *testing.T, a *oaChecker) {
	n := a.n
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The node feed: history first (just after the node started, so likely
	// with no samples yet), then samples.
	const events = "/admin/events"
	feed := a.stream(t, ctx, oaCall{method: "GET", template: events})
	name, data := a.next(t, feed)
	require.Equal(t, "history", name)
	var hist struct {
		IntervalMs int64 `json:"interval_ms"`
	}
	require.NoError(t, json.Unmarshal(data, &hist))
	require.Equal(t, int64(100), hist.IntervalMs)

	// A room with a player, and a player who came and went, so that samples
	// list rooms and disconnects.
	room := oaDecode[oaRoom](t, a.expect(t, oaCall{method: "POST", template: "/admin/rooms", body: `{"mode":"arena","max_players":2}`}, http.StatusCreated).body)
	oaJoin(t, n, room.ID)
	gone, _ := oaJoin(t, n, room.ID)
	require.NoError(t, gone.Close())
	oaWaitFor(t, 5*time.Second, "a sample listing the room and the disconnect", func() bool {
		name, data := a.next(t, feed)
		require.Equal(t, "sample", name)
		var s struct {
			RoomList    []any `json:"room_list"`
			Disconnects []struct {
				Reason string `json:"reason"`
			} `json:"recent_disconnects"`
		}
		require.NoError(t, json.Unmarshal(data, &s))
		return len(s.RoomList) == 1 && len(s.Disconnects) > 0
	})

	// A room's watch feed: the view, then frames and the room's detail.
	const watch = "/admin/rooms/{id}/watch"
	watchPath := "/admin/rooms/" + room.ID + "/watch"
	w := a.stream(t, ctx, oaCall{method: "GET", template: watch, path: watchPath + "?hz=30"})
	name, _ = a.next(t, w)
	require.Equal(t, "view", name)
	seen := map[string]bool{}
	for !seen["frame"] || !seen["room"] {
		name, data := a.next(t, w)
		require.Contains(t, []string{"frame", "room"}, name)
		seen[name] = true
		if name == "frame" {
			var f struct{ Entities [][]int64 }
			require.NoError(t, json.Unmarshal(data, &f))
			require.NotEmpty(t, f.Entities, "the player's entity")
		}
	}

	// Both slots are taken.
	a.expect(t, oaCall{method: "GET", template: events}, http.StatusServiceUnavailable, "too_many_streams")
	a.expect(t, oaCall{method: "GET", template: watch, path: watchPath}, http.StatusServiceUnavailable, "too_many_streams")

	// Refused before a slot is taken.
	a.expect(t, oaCall{method: "GET", template: watch, path: "/admin/rooms/000000000000/watch"}, http.StatusNotFound, "room_not_found")
	for _, hz := range []string{"0", "31", "fast"} {
		a.expect(t, oaCall{method: "GET", template: watch, path: watchPath + "?hz=" + hz}, http.StatusBadRequest, "bad_request")
		a.requireParamRefused(t, oaOpKey{watch, "GET"}, "query", "hz", hz)
	}

	// Closing the room ends its watch feed with "closed".
	a.expect(t, oaCall{method: "DELETE", template: "/admin/rooms/{id}", path: "/admin/rooms/" + room.ID}, http.StatusNoContent)
	for {
		name, data := a.next(t, w)
		if name == "closed" {
			require.JSONEq(t, `{"room":"`+room.ID+`"}`, string(data))
			break
		}
	}
	_, err := w.rd.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the watch feed ends after closed")
}

// testOpenAPICluster runs GET /admin/cluster and the cluster's answers to
// POST /admin/rooms on a node, first alone, then with a fake Cluster.
func testOpenAPICluster(t *testing.T, a *oaChecker) {
	n := a.n
	const status, create = "/admin/cluster", "/admin/rooms"
	get := oaCall{method: "GET", template: status}
	post := func(query, body string) oaCall {
		return oaCall{method: "POST", template: create, path: create + query, body: body}
	}

	// Alone: no cluster, and placed means nothing.
	a.expect(t, get, http.StatusNotFound, "no_cluster")
	created := a.expect(t, post("?placed=1", `{"mode":"arena"}`), http.StatusCreated)
	roomID := oaDecode[struct {
		ID string `json:"id"`
	}](t, created.body).ID
	move := func(id, query string) oaCall {
		return oaCall{method: "POST", template: "/admin/rooms/{id}/move", path: "/admin/rooms/" + id + "/move" + query}
	}
	drain := oaCall{method: "POST", template: "/admin/drain"}
	a.expect(t, move(roomID, "?to=node-b"), http.StatusNotFound, "no_cluster")
	a.expect(t, drain, http.StatusNotFound, "no_cluster")

	fake := newFakeCluster(sampleClusterStatus())
	n.Admin.SetCluster(fake)
	ans := a.expect(t, get, http.StatusOK)
	require.Equal(t, sampleClusterStatus(), oaDecode[admin.ClusterStatus](t, ans.body))
	// Every member state, and a node with no rooms and no lag samples.
	st := sampleClusterStatus()
	st.Members = append(st.Members, admin.ClusterMember{ID: "node-d-1", Name: "node-d", State: "left", Since: "2026-01-02T03:07:00Z"})
	st.Directory = admin.DirectoryStatus{}
	st.Placement = nil
	fake.setStatus(st)
	ans = a.expect(t, get, http.StatusOK)
	require.Len(t, oaDecode[admin.ClusterStatus](t, ans.body).Members, 4)
	a.expect(t, oaCall{method: "GET", template: status, token: "wrong"}, http.StatusUnauthorized, "unauthorized")

	// Placed here, elsewhere, and where it cannot be reached.
	const body = `{"mode":"arena","max_players":2}`
	before := len(n.Registry.List())
	a.expect(t, post("", body), http.StatusCreated)
	fake.setPlacement(fakePlacement{adminURL: "http://127.0.0.2:8081", node: "node-b", ok: true})
	moved := a.expect(t, post("", body), http.StatusTemporaryRedirect, "placed_elsewhere")
	require.Equal(t, "http://127.0.0.2:8081/admin/rooms?placed=1", moved.header.Get("Location"))
	a.expect(t, post("?placed=1", body), http.StatusCreated)
	fake.setPlacement(fakePlacement{node: "node-b", ok: true})
	a.expect(t, post("", body), http.StatusServiceUnavailable, "no_admin_url")
	fake.setPlacement(fakePlacement{adminURL: "://node-b", node: "node-b", ok: true})
	a.expect(t, post("", body), http.StatusBadGateway, "bad_admin_url")
	// Refused here before the cluster is asked.
	a.expect(t, post("", `{"mode":"chess"}`), http.StatusBadRequest, "unknown_mode")
	a.expect(t, post("", `{"mode":"arena","max_players":257}`), http.StatusBadRequest, "bad_request")
	require.Equal(t, []fakeAsk{{"arena", 2}, {"arena", 2}, {"arena", 2}, {"arena", 2}}, fake.placements())

	// Moves and drains, and the ways they fail.
	a.expect(t, move(roomID, "?to=node-b"), http.StatusOK)
	a.expect(t, move("nosuch", ""), http.StatusNotFound, "room_not_found")
	a.expect(t, oaCall{method: "POST", template: "/admin/rooms/{id}/move", path: "/admin/rooms/" + roomID + "/move", token: "wrong"}, http.StatusUnauthorized, "unauthorized")
	for code, status := range map[string]int{"no_target": http.StatusConflict, "not_replicated": http.StatusConflict, "move_failed": http.StatusBadGateway} {
		fake.mu.Lock()
		fake.moveErr = &admin.MoveError{Status: status, Code: code, Message: code}
		fake.mu.Unlock()
		a.expect(t, move(roomID, ""), status, code)
	}
	a.expect(t, drain, http.StatusAccepted)
	fake.mu.Lock()
	fake.drainErr = &admin.MoveError{Status: http.StatusConflict, Code: "not_replicated", Message: "no key"}
	fake.mu.Unlock()
	a.expect(t, drain, http.StatusConflict, "not_replicated")
	require.Len(t, n.Registry.List(), before+2, "only the rooms placed here were created")
}

// The cluster's schemas are its Go types' JSON: the same properties, and
// required unless omitempty. (Responses are checked against the schemas,
// but a property the Go type lacks would pass unnoticed if not required.)
func TestOpenAPIClusterSchemasMatchGo(t *testing.T) {
	doc, _ := oaLoadDoc(t)
	for name, typ := range map[string]reflect.Type{
		"ClusterStatus":    reflect.TypeFor[admin.ClusterStatus](),
		"ClusterMember":    reflect.TypeFor[admin.ClusterMember](),
		"DirectoryStatus":  reflect.TypeFor[admin.DirectoryStatus](),
		"NodePlacement":    reflect.TypeFor[admin.NodePlacement](),
		"GossipStatus":     reflect.TypeFor[admin.GossipStatus](),
		"RoutingStatus":    reflect.TypeFor[admin.RoutingStatus](),
		"PlacementCounter": reflect.TypeFor[admin.PlacementCounter](),
	} {
		schema, ok := doc.Components.Schemas[name].(map[string]any)
		require.True(t, ok, "no schema %s", name)
		require.Equal(t, false, schema["additionalProperties"], "%s allows unknown properties", name)
		var props, required []string
		for i := range typ.NumField() {
			tag, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			require.NotEmpty(t, tag, "%s.%s has no JSON name", typ.Name(), typ.Field(i).Name)
			props = append(props, tag)
			if !slices.Contains(strings.Split(opts, ","), "omitempty") {
				required = append(required, tag)
			}
		}
		var docRequired []string
		for _, r := range schema["required"].([]any) {
			docRequired = append(docRequired, r.(string))
		}
		require.ElementsMatch(t, props, slices.Collect(maps.Keys(schema["properties"].(map[string]any))), "%s's properties", name)
		require.ElementsMatch(t, required, docRequired, "%s's required properties", name)
	}
}

// TestOpenAPIValidator shows the validator refuses what the document does
// not allow, so that the checks above cannot pass for want of checking.
func TestOpenAPIValidator(t *testing.T) {
	doc, _ := oaLoadDoc(t)
	v := oaValidator{schemas: doc.Components.Schemas}
	good := map[string]string{
		"RoomSummary": `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,
			"created":"2026-01-02T03:04:05.123456Z","age_s":1.5,"tick_p99_ms":0.02,"metadata":{"k":"v"}}`,
		"Player":     `{"id":1,"state":"connected","last_input_seq":0,"rtt_ms":null,"bytes_in":10,"bytes_out":20,"conn":3,"remote":"127.0.0.1:5"}`,
		"Error":      `{"error":{"code":"room_not_found","message":"no room"}}`,
		"WatchView":  `{"room":"r","mode":"m","max_players":2,"tick_rate":60,"view":null}`,
		"RoomList":   `{"rooms":[],"total":0}`,
		"KickResult": `{"room":"r","player":4294967295,"kicked":true}`,
		"ClusterStatus": `{"self":"a","members":[{"id":"a","name":"n","state":"alive","self":true,"gossipAddr":"127.0.0.1:7946",
			"gameUrl":"ws://127.0.0.1:8080/ws","ready":true,"draining":false,"rooms":0,"players":0,"capacity":1,"since":"2026-01-02T03:04:05Z"}],
			"directory":{"rooms":0,"tombstones":0,"lagSamples":0,"lagP50Ms":0,"lagP99Ms":0,"lagMaxMs":0},"placement":[],
			"gossip":{"bytesIn":0,"bytesOut":0,"packetsIn":0,"packetsOut":0,"dropped":0},"routing":{"redirects":0,"proxied":0},
			"placementDecisions":{"toFreeSeat":0,"toNewRoom":0,"local":0},
			"ownership":{"enabled":true,"draining":false,"hostedRooms":1,"witnessedRooms":0,"witnessBytes":0,
			"rooms":[{"id":"r","epoch":2,"witnesses":["b","c"],"checkpointAgeMs":-1,"fenced":false,"frozen":false}],
			"maxCheckpointAgeMs":0,"checkpointsSent":0,"checkpointBytesSent":0,"checkpointsStored":0,"checkpointsRefused":0,
			"failovers":0,"failoverFailures":0,"handOffs":0,"handOffFailures":0,"handOffsReceived":0,"fenced":0,"rewitnessed":0,
			"freezeP50Ms":0,"freezeP99Ms":0,"freezeMaxMs":0}}`,
	}
	bad := []struct{ schema, body, why string }{
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,"created":"2026-01-02T03:04:05Z","age_s":1.5,"metadata":{}}`, "tick_p99_ms is missing"},
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,"created":"2026-01-02T03:04:05Z","age_s":1.5,"tick_p99_ms":0,"metadata":{},"seq":3}`, "seq is unknown"},
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1.5,"max_players":4,"private":false,"paused":false,"created":"2026-01-02T03:04:05Z","age_s":1.5,"tick_p99_ms":0,"metadata":{}}`, "player_count is not an integer"},
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,"created":"yesterday","age_s":1.5,"tick_p99_ms":0,"metadata":{}}`, "created is not a date-time"},
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,"created":"2026-01-02T03:04:05Z","age_s":1.5,"tick_p99_ms":0,"metadata":{"k":1}}`, "a metadata value is not a string"},
		{"RoomSummary", `{"id":"a1b2c3d4e5f6","mode":"arena","player_count":1,"max_players":4,"private":false,"paused":false,"created":"2026-01-02T03:04:05Z","age_s":1.5,"tick_p99_ms":0,"metadata":null}`, "metadata is null"},
		{"Player", `{"id":1,"state":"gone","last_input_seq":0,"rtt_ms":null,"bytes_in":10,"bytes_out":20}`, "state is not in the enum"},
		{"Player", `{"id":1,"state":"held","last_input_seq":0,"bytes_in":10,"bytes_out":20}`, "rtt_ms is missing"},
		{"Player", `{"id":0,"state":"held","last_input_seq":0,"rtt_ms":null,"bytes_in":10,"bytes_out":20}`, "id is below its minimum"},
		{"Error", `{"error":{"code":"oops","message":"x"}}`, "the code is not in the enum"},
		{"Error", `{"error":{"code":"internal"}}`, "message is missing"},
		{"Error", `{"error":"internal"}`, "error is not an object"},
		{"Error", `[]`, "not an object"},
		{"WatchView", `{"room":"r","mode":"m","max_players":2,"tick_rate":60,"view":{"width":1}}`, "view fits neither View nor null"},
		{"RoomList", `{"rooms":[{}],"total":1}`, "a room misses its fields"},
		{"RoomList", `{"rooms":null,"total":0}`, "rooms is null"},
		{"KickResult", `{"room":"r","player":4294967296,"kicked":true}`, "player is above its maximum"},
		{"KickResult", `{"room":"r","player":1,"kicked":false}`, "kicked is not true"},
		{"Frame", `{"tick":1,"paused":false,"entities":[[1]]}`, "an entity has fewer than two numbers"},
		{"ClusterMember", `{"id":"a","name":"n","state":"gone","self":true,"gossipAddr":"g","gameUrl":"u","ready":true,"draining":false,"rooms":0,"players":0,"capacity":1,"since":"2026-01-02T03:04:05Z"}`, "state is not in the enum"},
		{"ClusterMember", `{"id":"a","name":"n","state":"alive","self":true,"gossipAddr":"g","gameUrl":"u","ready":true,"draining":false,"rooms":0,"players":0,"capacity":1}`, "since is missing"},
		{"ClusterMember", `{"id":"a","name":"n","state":"alive","self":true,"gossipAddr":"g","gameUrl":"u","ready":true,"draining":false,"rooms":0,"players":0,"capacity":1,"since":"2026-01-02T03:04:05Z","zone":"eu"}`, "zone is unknown"},
		{"NodePlacement", `{"node":"a","name":"n","rooms":1,"players":0,"roomIds":null}`, "roomIds is null"},
		{"DirectoryStatus", `{"rooms":-1,"tombstones":0,"lagSamples":0,"lagP50Ms":0,"lagP99Ms":0,"lagMaxMs":0}`, "rooms is negative"},
	}
	for name, body := range good {
		var val any
		require.NoError(t, oaDecodeStrict([]byte(body), &val))
		require.NoError(t, v.validate(map[string]any{"$ref": "#/components/schemas/" + name}, val), name)
	}
	for _, c := range bad {
		var val any
		require.NoError(t, oaDecodeStrict([]byte(c.body), &val))
		err := v.validate(map[string]any{"$ref": "#/components/schemas/" + c.schema}, val)
		require.Error(t, err, "%s: %s", c.schema, c.why)
		t.Logf("%s (%s): %v", c.schema, c.why, err)
	}
	require.ErrorContains(t, v.validate(map[string]any{"pattern": "^a"}, "a"), "unsupported schema keyword")
	require.ErrorContains(t, v.validate(map[string]any{"$ref": "#/components/schemas/Nope"}, "a"), "unresolvable")
}
