package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// titler finds the titles of what confirmations name, once per thing per request: a
// programme's from the effective revision it was played from (a play_now's from its command),
// an item's from the library. Staff read titles; ids and hashes stay in the JSON beside them.
// Revisions pruned by housekeeping have no title left: the id is shown then.
type titler struct {
	s     *Server
	ctx   context.Context
	progs map[string]map[string]string // "device\x00revision" -> program id -> title
	items map[string]string            // content ref -> title
	// The schedule revisions each effective revision was composed from, and who approved each.
	sources   map[string][]store.SourceRevision // "device\x00revision" -> sources
	approvers map[string]string                 // "target\x00revision" -> approver
}

func newTitler(ctx context.Context, s *Server) *titler {
	return &titler{s: s, ctx: ctx, progs: map[string]map[string]string{}, items: map[string]string{},
		sources: map[string][]store.SourceRevision{}, approvers: map[string]string{}}
}

// statusTitles is the titles a connection's statuses are stored with (agentlink.Titles).
func (s *Server) statusTitles(ctx context.Context) agentlink.Titles {
	return statusTitler{newTitler(ctx, s)}
}

// statusTitler bounds its caches: a connection lives for days.
type statusTitler struct{ t *titler }

func (st statusTitler) ProgramOf(device string, revision int64, program string) string {
	st.t.bound(1000)
	return st.t.programOf(device, revision, program)
}

func (st statusTitler) Item(ref string) string { return st.t.item(ref) }

func (t *titler) program(c store.Confirmation) string {
	return t.programOf(c.Device, int64(c.Revision), c.Program)
}

// bound empties the caches when they grow past n entries (a long-lived connection).
func (t *titler) bound(n int) {
	if len(t.progs)+len(t.items) > n {
		clear(t.progs)
		clear(t.items)
		clear(t.sources)
		clear(t.approvers)
	}
}

func (t *titler) programOf(device string, revision int64, program string) string {
	if id := protocol.CommandOf(program); id != "" {
		key := "command\x00" + id
		if _, ok := t.progs[key]; !ok {
			t.progs[key] = map[string]string{}
			if cmd, err := t.s.st.GetCommand(t.ctx, id, ""); err == nil {
				t.progs[key][program] = cmd.Title
			}
		}
		return t.progs[key][program]
	}
	if revision == 0 {
		return ""
	}
	key := device + "\x00" + strconv.FormatInt(revision, 10)
	m, ok := t.progs[key]
	if !ok {
		m = map[string]string{}
		t.progs[key] = m
		if e, err := t.s.st.Effective(t.ctx, device, revision); err == nil {
			t.sources[key] = e.Sources
			var doc struct {
				Programs []struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"programs"`
			}
			if b, err := payloadDocument(e.Document); err == nil && json.Unmarshal(b, &doc) == nil {
				for _, pr := range doc.Programs {
					m[pr.ID] = pr.Title
				}
			}
		}
	}
	return m[program]
}

func (t *titler) item(ref string) string {
	if _, _, err := store.ParseRef(ref); err != nil {
		return ""
	}
	title, ok := t.items[ref]
	if !ok {
		if c, err := t.s.st.GetContent(t.ctx, ref); err == nil {
			title = c.Title
		}
		t.items[ref] = title
	}
	return title
}

// approver is who approved the schedule revision a confirmation's programme came from: the
// source whose program prefix is the longest that the programme's id starts with.
func (t *titler) approver(c store.Confirmation) string {
	if c.Revision == 0 || protocol.CommandOf(c.Program) != "" {
		return ""
	}
	t.programOf(c.Device, int64(c.Revision), c.Program) // reads the revision's sources once
	var best store.SourceRevision
	bestLen := 0
	for _, src := range t.sources[c.Device+"\x00"+strconv.FormatInt(int64(c.Revision), 10)] {
		if src.Target.Kind != store.TargetArea && src.Target.Kind != store.TargetDevice {
			continue // broadcasts are reviewed after the fact, not approved
		}
		if p := agentlink.ProgramPrefix(src.Target) + "/"; strings.HasPrefix(c.Program, p) && len(p) > bestLen {
			best, bestLen = src, len(p)
		}
	}
	if bestLen == 0 {
		return ""
	}
	key := best.Target.String() + "\x00" + strconv.FormatInt(best.Revision, 10)
	who, ok := t.approvers[key]
	if !ok {
		if sc, err := t.s.st.ScheduleRevision(t.ctx, best.Target, best.Revision); err == nil {
			who = sc.ApprovedBy
		}
		t.approvers[key] = who
	}
	return who
}
