// Package cluster joins tickroom nodes into one gossip cluster
// (github.com/hashicorp/memberlist, SWIM with Lifeguard), places rooms on
// nodes, keeps a room directory on every node, and routes joins to the
// node that hosts the room.
//
// Membership: each node gossips a few hundred bytes of metadata (its
// human name, public game and admin URLs, draining and ready flags, and a
// coarse load). Its memberlist name is the human name plus a random suffix
// drawn at each start, so a node restarted at a new address is a new
// member, never refused as a dead name. No memberlist type leaves the
// package: members and events are this package's own.
//
// Directory: every room has one host, and only the host writes the room's
// entry (room, host, epoch, version, mode, seats, private). A host scans
// its registry a few times a second and broadcasts what changed; every
// node relays an entry the first time it learns it (memberlist does not
// relay by itself), and the full directory travels on memberlist's
// periodic push/pull for repair. Entries of a node that dies leave the
// directory with it, and a closed room leaves a tombstone for a while so
// that a late copy of an older entry cannot bring it back.
//
// Placement and routing: Node implements rooms.Router. A join for a room
// that lives elsewhere is redirected to its host; a join-or-create goes to
// a node with a free seat in a room of that mode, else to the least loaded
// of the top candidates by rendezvous hashing of the mode over the alive,
// ready, non-draining nodes, with a cap above the mean load. The chosen
// node fills or creates the room itself, from its exact local view, so
// concurrent join-or-creates through different nodes create at most one
// room too many per node.
//
// Goroutines: a Node owns two goroutines besides memberlist's own: the
// joiner, which joins the seeds (retrying until the first join succeeds,
// then rejoining periodically so that a split cluster heals), and the
// scanner, which publishes the host's directory changes and its metadata
// and sweeps entries of hosts that are gone. Close stops both and waits
// for them, then leaves the cluster and shuts memberlist down.
// memberlist calls the delegate from its own goroutines; the delegate
// never blocks.
package cluster
