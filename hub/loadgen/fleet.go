package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/protocol"
)

// One process cannot hold more connections than its open-file limit (20,000 in the bench's
// sandbox), so the agents are split into fleets: the coordinator (run) drives every fleet
// through the same steps, either in its own process (one fleet) or in `loadgen worker`
// processes, one fleet each, over JSON lines on the worker's stdin and stdout. Times cross
// processes as wall-clock unix nanoseconds: the processes share the machine's clock, so a
// receipt in one is measured from the push sent by another.

// step is one thing the coordinator asks of a fleet.
type step struct {
	Op string `json:"op"` // enrol, connect, receipts, ingest, close

	// enrol: agents First … First+Count-1 of the whole run, in Area, through the staff API.
	Hub    string `json:"hub,omitempty"`
	Token  string `json:"token,omitempty"`
	Area   string `json:"area,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	First  int    `json:"first,omitempty"`
	Count  int    `json:"count,omitempty"`
	Conc   int    `json:"conc,omitempty"` // enrol, connect, ingest: parallel requests of this fleet

	// connect: agent number i of the run dials URLs[i % len(URLs)] (the replicas, or the floors).
	URLs []string `json:"urls,omitempty"`

	// ingest: every agent sends Batches batches of Batch confirmations, each waiting for its ack.
	Batches int `json:"batches,omitempty"`
	Batch   int `json:"batch,omitempty"`
}

// result is a fleet's answer to a step; Err is set when the step failed.
type result struct {
	Err     string  `json:"err,omitempty"`
	N       int     `json:"n,omitempty"`      // agents the step was done for
	At      []int64 `json:"at,omitempty"`     // receipts: when each agent had its schedule (unix ns)
	Sample  []byte  `json:"sample,omitempty"` // receipts: one schedule message as received
	Records int     `json:"records,omitempty"`
	Start   int64   `json:"start,omitempty"` // ingest: first batch sent (unix ns)
	End     int64   `json:"end,omitempty"`   // ingest: last ack received (unix ns)
}

// fleet is one process's share of the simulated agents.
type fleet struct {
	first  int
	agents []*agent
	stop   chan struct{} // ends keepalive
	pinger sync.WaitGroup
}

// keepaliveEvery is how often each agent pings its hub, as loa-agent does: a hub closes a
// connection silent for three status intervals and 30 s (3.5 minutes by default), and a run
// of 50,000 agents lasts longer than that.
const keepaliveEvery = time.Minute

// keepalive pings every agent's connection until stopKeepalive.
func (f *fleet) keepalive() {
	f.stopKeepalive()
	f.stop = make(chan struct{})
	agents, stop := f.agents, f.stop
	f.pinger.Go(func() {
		t := time.NewTicker(keepaliveEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				for _, a := range agents {
					if ws := a.live.Load(); ws != nil {
						ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second))
					}
				}
			}
		}
	})
}

func (f *fleet) stopKeepalive() {
	if f.stop != nil {
		close(f.stop)
		f.stop = nil
	}
	f.pinger.Wait()
}

// receiptWait bounds how long a fleet waits for every agent's schedule, and an ack.
const receiptWait = 5 * time.Minute

func (f *fleet) do(s step) result {
	var r result
	var err error
	switch s.Op {
	case "enrol":
		err = f.enrol(s)
	case "connect":
		err = f.connect(s)
	case "receipts":
		r, err = f.receipts()
	case "ingest":
		r, err = f.ingest(s)
	case "close":
		f.stopKeepalive()
		for _, a := range f.agents {
			a.ws.Close()
		}
	default:
		err = fmt.Errorf("unknown step %q", s.Op)
	}
	if err != nil {
		return result{Err: err.Error()}
	}
	r.N = len(f.agents)
	return r
}

func (f *fleet) enrol(s step) error {
	ctx := context.Background()
	conc := max(1, s.Conc)
	cl := &client.Client{BaseURL: s.Hub, Token: s.Token, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	f.first, f.agents = s.First, make([]*agent, s.Count)
	err := parallel(s.Count, conc, func(i int) error {
		id := fmt.Sprintf("%s/a-%05d", s.Prefix, s.First+i)
		r, err := cl.Enrol(ctx, api.EnrolRequest{ID: id, Area: s.Area})
		f.agents[i] = &agent{id: id, secret: r.Secret}
		return err
	})
	if err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	return nil
}

// connect dials every agent; a fleet connected before is first closed (the floor after the hub).
func (f *fleet) connect(s step) error {
	if len(s.URLs) == 0 {
		return errors.New("connect: no URLs")
	}
	f.stopKeepalive()
	for i, old := range f.agents {
		if old.ws != nil {
			old.ws.Close()
		}
		// A new agent: the old connection's reader may still be closing the old one's channels.
		f.agents[i] = &agent{id: old.id, secret: old.secret}
	}
	// From the first dial on: connecting 50,000 agents takes minutes, longer than a hub
	// waits for a word from the first ones.
	f.keepalive()
	err := parallel(len(f.agents), max(1, s.Conc), func(i int) error {
		_, err := dial(s.URLs[(f.first+i)%len(s.URLs)], f.agents[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

func (f *fleet) receipts() (result, error) {
	var r result
	r.At = make([]int64, len(f.agents))
	timeout := time.After(receiptWait)
	for i, a := range f.agents {
		select {
		case at, ok := <-a.got:
			if !ok {
				return r, fmt.Errorf("agent %s lost its connection waiting for its schedule: %v", a.id, a.lost)
			}
			r.At[i] = at.UnixNano()
		case <-timeout:
			return r, fmt.Errorf("timed out after %s waiting for schedules (%d of %d agents had theirs)", receiptWait, i, len(f.agents))
		}
	}
	if len(f.agents) > 0 {
		r.Sample = *f.agents[0].sample.Load()
	}
	return r, nil
}

// ingest sends every agent's confirmations, waiting for each batch's ack.
func (f *fleet) ingest(s step) (result, error) {
	start := time.Now()
	err := parallel(len(f.agents), min(len(f.agents), max(1, s.Conc)), func(i int) error {
		a := f.agents[i]
		for b := range s.Batches {
			m := &protocol.Confirmations{Header: protocol.Header{ID: "c-" + strconv.Itoa(b)}}
			for k := range s.Batch {
				seq := uint64(b*s.Batch + k + 1)
				t := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
				pk, rms := -1.0, -18.0
				m.Records = append(m.Records, protocol.Confirmation{Device: a.id, Seq: seq, Output: "speakers", ScheduleID: "dev-" + a.id,
					Revision: 1, Program: "bench/relay", Item: "http://radio.example/qnr.mp3", Scheduled: t, Start: t, End: t.Add(time.Second),
					Proof: protocol.Proof{PlayedS: 1, PeakDBFS: &pk, RMSDBFS: &rms}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced})
			}
			bts, err := protocol.Encode(m)
			if err != nil {
				return err
			}
			if err := a.write(bts); err != nil {
				return err
			}
			select {
			case got := <-a.acks:
				if got != uint64((b+1)*s.Batch) && got != 0 {
					return fmt.Errorf("%s: ack %d after batch %d", a.id, got, b)
				}
			case <-a.gone:
				return fmt.Errorf("%s: connection lost waiting for the ack of batch %d: %v", a.id, b, a.lost)
			case <-time.After(receiptWait):
				return fmt.Errorf("%s: no ack", a.id)
			}
		}
		return nil
	})
	if err != nil {
		return result{}, fmt.Errorf("confirmations: %w", err)
	}
	return result{Records: len(f.agents) * s.Batches * s.Batch, Start: start.UnixNano(), End: time.Now().UnixNano()}, nil
}

// serveWorker runs one fleet for a coordinator: a step per line on stdin, its result on stdout.
func serveWorker(in io.Reader, out io.Writer) error {
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	f := &fleet{}
	defer f.stopKeepalive()
	for {
		var s step
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("step from the coordinator: %w", err)
		}
		if err := enc.Encode(f.do(s)); err != nil {
			return err
		}
	}
}

// worker is a fleet in a `loadgen worker` process.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

func startWorker() (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "worker")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a loadgen worker: %w", err)
	}
	return &worker{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out)}, nil
}

func (w *worker) do(s step) result {
	if err := w.enc.Encode(s); err != nil {
		return result{Err: fmt.Sprintf("worker %d: %v", w.cmd.Process.Pid, err)}
	}
	var r result
	if err := w.dec.Decode(&r); err != nil {
		return result{Err: fmt.Sprintf("worker %d: answer to %s: %v", w.cmd.Process.Pid, s.Op, err)}
	}
	return r
}

// stop ends the worker (its stdin closes) and waits for it.
func (w *worker) stop() error {
	w.in.Close()
	return w.cmd.Wait()
}
