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
func (d *driver) decodeCursor(c provider.Cursor) (cursorState, error) {
	var cs cursorState
	b, err := base64.RawURLEncoding.DecodeString(string(c))
	if err == nil {
		err = json.Unmarshal(b, &cs)
	}
	if err != nil || cs.V != 1 {
		return cursorState{}, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: cursor %s is not one of this driver's: %w", limit.Quote(string(c)), provider.ErrCursorExpired))
	}
	for _, n := range d.nodes {
		if _, ok := cs.N[strings.ToUpper(n.name)]; !ok {
			return cursorState{}, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: cursor has no position for node %s: %w", limit.Quote(n.name), provider.ErrCursorExpired))
		}
	}
	return cs, nil
}

// Cursor is the position after every node's newest record.
func (d *driver) Cursor(ctx context.Context) (provider.Cursor, error) {
	cs := cursorState{N: make(map[string]int64, len(d.nodes))}
	lasts := make([]int64, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	err := d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		var a eventsAnswer
		if err := run(ctx, n.ex, n.name, scriptEvents, eventsParams{After: 0, Max: 1}, &a); err != nil {
			return err
		}
		last, err := recordID(n.name, a.Last)
		lasts[idx[n]] = last
		return err
	})
	if err != nil {
		return "", err
	}
	for i, n := range d.nodes {
		cs.N[strings.ToUpper(n.name)] = lasts[i]
	}
	return encodeCursor(cs), nil
}

type eventsParams struct {
	After int64 `json:"After"`
	Max   int   `json:"Max"`
}

// nodeEvent is one 13002/13003 record of a node.
type nodeEvent struct {
	Record int64
	Type   provider.EventType // Created (13002) or Deleted (13003)
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
func (d *driver) nodeEvents(ctx context.Context, n *nodeConn, after int64, max int) ([]nodeEvent, error) {
	var a eventsAnswer
	if err := run(ctx, n.ex, n.name, scriptEvents, eventsParams{After: after, Max: max}, &a); err != nil {
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
		return nil, errs.Wrap(errs.FailedPrecondition, "", fmt.Errorf("hyperv: node %s: the VMMS-Admin log no longer holds record %d (oldest %s, newest %s): %w",
			limit.Quote(n.name), after+1, limit.Quote(a.Oldest), limit.Quote(a.Last), provider.ErrCursorExpired))
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
		default:
			continue
		}
		e.Time, _ = time.Parse(time.RFC3339Nano, w.Time)
		out = append(out, e)
	}
	return out, nil
}
