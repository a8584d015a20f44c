package admin

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/rooms/roomstest"
)

// stillCluster is a Cluster that answers one status and places nothing.
type stillCluster struct{ st ClusterStatus }

func (c stillCluster) ClusterStatus() ClusterStatus               { return c.st }
func (stillCluster) PlaceRoom(string, int) (string, string, bool) { return "", "", false }
func (stillCluster) MoveRoom(context.Context, string, string) (RoomMove, error) {
	return RoomMove{}, &MoveError{Status: 409, Code: "not_replicated", Message: "still"}
}
func (stillCluster) RequestDrain() error         { return nil }
func (stillCluster) RecentRoomMoves() []RoomMove { return nil }

// The collector describes every metric it may collect, the cluster's too,
// though the Cluster comes after registration: a pedantic registry refuses
// a metric whose descriptor was not described.
func TestCollectorDescribesWhatItCollects(t *testing.T) {
	game := roomstest.StartDefault(t)
	var slot clusterSlot
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(newCollector(game.Registry, game.Net, &slot)))

	names := func() []string {
		t.Helper()
		families, err := reg.Gather()
		require.NoError(t, err)
		var cluster []string
		for _, f := range families {
			if strings.HasPrefix(f.GetName(), "tickroom_cluster_") {
				cluster = append(cluster, f.GetName())
			}
		}
		return cluster
	}
	require.Empty(t, names())

	var c Cluster = stillCluster{ClusterStatus{
		Members:   []ClusterMember{{State: "alive"}, {State: "suspect"}},
		Directory: DirectoryStatus{LagSamples: 1, LagP50Ms: 1, LagP99Ms: 2, LagMaxMs: 3},
		Ownership: OwnershipStatus{Enabled: true},
	}}
	slot.p.Store(&c)
	require.ElementsMatch(t, []string{
		"tickroom_cluster_members", "tickroom_cluster_directory_rooms", "tickroom_cluster_directory_tombstones",
		"tickroom_cluster_directory_lag_seconds", "tickroom_cluster_directory_lag_samples",
		"tickroom_cluster_gossip_bytes_total", "tickroom_cluster_gossip_packets_total", "tickroom_cluster_gossip_dropped_total",
		"tickroom_cluster_redirects_total", "tickroom_cluster_proxied_total",
		"tickroom_cluster_placements_total", "tickroom_cluster_placements_local_total",
		"tickroom_cluster_checkpoints_total", "tickroom_cluster_checkpoint_bytes_total", "tickroom_cluster_checkpoint_age_max_seconds",
		"tickroom_cluster_witnessed_rooms", "tickroom_cluster_failovers_total", "tickroom_cluster_handoffs_total",
		"tickroom_cluster_fenced_rooms_total", "tickroom_cluster_handoff_freeze_seconds",
	}, names())
}
