package hyperv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// cursorState is what a Cursor holds: for every node, the record id of
// the last VMMS-Admin record it covers. Record ids are per node, so the
// cursor of a cluster is one per node.
type cursorState struct {
	V int              `json:"v"`
	N map[string]int64 `json:"n"`
	W map[string]int64 `json:"w"` // the same for each node's Hyper-V-Worker-Admin log
}

// encodeCursor writes cs as unpadded base64url of its JSON: printable,
// and about 30 bytes a node, far below provider.MaxCursor for any
// cluster (at most 64 nodes).
func encodeCursor(cs cursorState) provider.Cursor {
	cs.V = 1
	b, _ := json.Marshal(cs)
	return provider.Cursor(base64.RawURLEncoding.EncodeToString(b))
}

// decodeCursor reads a cursor of this driver; one that does not decode,
// or lacks one of the nodes, cannot be resumed: ErrCursorExpired.
func (d *Provider) decodeCursor(c provider.Cursor) (cursorState, error) {
	var cs cursorState
	b, err := base64.RawURLEncoding.DecodeString(string(c))
	if err == nil {
		err = json.Unmarshal(b, &cs)
	}
	if err != nil || cs.V != 1 {
		return cursorState{}, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: cursor %s is not one of this driver's: %w", limit.Quote(string(c)), provider.ErrCursorExpired))
	}
	for _, n := range d.nodes {
		_, okW := cs.W[strings.ToUpper(n.name)]
		if _, ok := cs.N[strings.ToUpper(n.name)]; !ok || !okW {
			return cursorState{}, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: cursor has no position for node %s: %w", limit.Quote(n.name), provider.ErrCursorExpired))
		}
	}
	return cs, nil
}

// Cursor is the position after every node's newest record.
func (d *Provider) Cursor(ctx context.Context) (provider.Cursor, error) {
	cs := cursorState{N: make(map[string]int64, len(d.nodes)), W: make(map[string]int64, len(d.nodes))}
	lasts := make([][2]int64, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	err := d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		for k, s := range []script{scriptEvents, scriptPowerEvents} {
			var a eventsAnswer
			if err := run(ctx, n.ex, n.name, s, eventsParams{After: 0, Max: 1}, &a); err != nil {
				return err
			}
			last, err := recordID(n.name, a.Last)
			if err != nil {
				return err
			}
			lasts[idx[n]][k] = last
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for i, n := range d.nodes {
		cs.N[strings.ToUpper(n.name)] = lasts[i][0]
		cs.W[strings.ToUpper(n.name)] = lasts[i][1]
	}
	return encodeCursor(cs), nil
}

type eventsParams struct {
	After int64 `json:"After"`
	Max   int   `json:"Max"`
}

// nodeEvent is one record of a node: 13002/13003 (VMMS-Admin) or a power
// record (Worker-Admin).
type nodeEvent struct {
	Record int64
	Type   provider.EventType  // Created (13002), Deleted (13003), Changed (power)
	Power  provider.PowerState // of a power record
	VMID   string
	VMName string
	Time   time.Time
}

// recordID parses a record id the events template wrote ("" is 0: an
// empty log).
func recordID(node, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, errs.Errorf(errs.Internal, "", "hyperv: node %s: record id %s is not a number", limit.Quote(node), limit.Quote(s))
	}
	return v, nil
}

// nodeEvents returns up to max created/deleted records of node n after
// record after, oldest first. When the log no longer holds the record
// right after `after` (it rolled over), or its newest record is older
// than `after` (emptied, cleared, or a cursor of another cluster),
// records may have been lost: ErrCursorExpired, and the caller resyncs.
//
// s is scriptEvents or scriptPowerEvents (the power records: Changed
// with the power state after them).
func (d *Provider) nodeEvents(ctx context.Context, n *nodeConn, s script, after int64, max int) ([]nodeEvent, error) {
	var a eventsAnswer
	if err := run(ctx, n.ex, n.name, s, eventsParams{After: after, Max: max}, &a); err != nil {
		return nil, err
	}
	oldest, err := recordID(n.name, a.Oldest)
	if err != nil {
		return nil, err
	}
	last, err := recordID(n.name, a.Last)
	if err != nil {
		return nil, err
	}
	if (a.Oldest != "" && oldest > after+1) || last < after {
		return nil, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: node %s: %s: the log no longer holds record %d (oldest %s, newest %s): %w",
			limit.Quote(n.name), s.name, after+1, limit.Quote(a.Oldest), limit.Quote(a.Last), provider.ErrCursorExpired))
	}
	out := make([]nodeEvent, 0, len(a.Events))
	for _, w := range a.Events {
		rec, err := recordID(n.name, w.RecordID)
		if err != nil {
			return nil, err
		}
		e := nodeEvent{Record: rec, VMID: strings.ToLower(w.VMID), VMName: w.VMName}
		switch w.ID {
		case "13002":
			e.Type = provider.Created
		case "13003":
			e.Type = provider.Deleted
		case "18500", "18596":
			e.Type, e.Power = provider.Changed, provider.PoweredOn
		case "18502", "18504", "18508":
			e.Type, e.Power = provider.Changed, provider.PoweredOff
		case "18510":
			e.Type, e.Power = provider.Changed, provider.Suspended
		default:
			continue
		}
		e.Time, _ = time.Parse(time.RFC3339Nano, w.Time)
		out = append(out, e)
	}
	return out, nil
}
