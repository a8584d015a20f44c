package wire_test

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/wire"
)

func TestErrorCodeNames(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]wire.ErrorCode{}
	for c := wire.CodeBadRequest; c <= wire.CodeRoomMoving; c++ {
		name := c.String()
		assert.Regexp(t, snake, name, "code %d", c)
		if prev, dup := seen[name]; dup {
			t.Errorf("codes %d and %d are both named %q", prev, c, name)
		}
		seen[name] = c
	}
	assert.Equal(t, "room_full", wire.CodeRoomFull.String())
	assert.Equal(t, "error_code_0", wire.ErrorCode(0).String())
	assert.Equal(t, "error_code_999", wire.ErrorCode(999).String())
}

func TestCloseCodeReconnectable(t *testing.T) {
	cases := map[wire.CloseCode]bool{
		wire.CloseNormal:             false,
		wire.CloseGoingAway:          true,
		wire.CloseProtocolError:      false,
		wire.CloseUnsupportedData:    false,
		wire.CloseInvalidPayload:     false,
		wire.ClosePolicyViolation:    false,
		wire.CloseMessageTooBig:      false,
		wire.CloseInternalError:      true,
		wire.CloseHeartbeatTimeout:   true,
		wire.CloseSlowConsumer:       true,
		wire.CloseKicked:             false,
		wire.CloseSessionReplaced:    false,
		wire.CloseUnsupportedVersion: false,
		wire.CloseHandshakeTimeout:   false,
		wire.CloseRateLimited:        false,
	}
	for code, want := range cases {
		assert.Equal(t, want, code.Reconnectable(), "close code %d", code)
	}
}

func TestErrorReplyAsError(t *testing.T) {
	var err error = &wire.ErrorReply{Code: wire.CodeRoomNotFound, Message: "no room abc"}
	err = fmt.Errorf("join: %w", err)
	var reply *wire.ErrorReply
	require.True(t, errors.As(err, &reply))
	assert.Equal(t, wire.CodeRoomNotFound, reply.Code)
	assert.Contains(t, err.Error(), "room_not_found")
}
