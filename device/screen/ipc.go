package screen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// maxLine bounds one IPC message: mpv's are short (log lines are the longest); a runaway
// line must not grow memory without end.
const maxLine = 1 << 20

// message is one line from mpv's JSON IPC: a reply (request_id, error, data) or an event.
type message struct {
	Event     string          `json:"event"`
	RequestID *int64          `json:"request_id"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
	// property-change
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// start-file, end-file
	EntryID   int64  `json:"playlist_entry_id"`
	Reason    string `json:"reason"`
	FileError string `json:"file_error"`
	// log-message
	Prefix string `json:"prefix"`
	Level  string `json:"level"`
	Text   string `json:"text"`
}

// parseMessage reads one IPC line. mpv is outside input: a line that is not a JSON object,
// or a reply without an error field, is refused with what is wrong.
func parseMessage(line []byte) (message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return message{}, fmt.Errorf("mpv IPC: not a JSON message: %w", err)
	}
	if m.Event == "" && m.RequestID == nil {
		return message{}, fmt.Errorf("mpv IPC: message is neither an event nor a reply: %.80q", line)
	}
	if m.Event == "" && m.Error == "" {
		return message{}, fmt.Errorf("mpv IPC: reply %d has no error field", *m.RequestID)
	}
	return m, nil
}

// ipc is a connection to mpv's --input-ipc-server socket. Replies are matched to commands by
// request_id; events go, in order, to the handler given to dialIPC, called on the reader
// goroutine.
type ipc struct {
	conn net.Conn

	wmu  sync.Mutex // one command line at a time on the socket
	mu   sync.Mutex
	next int64
	wait map[int64]chan message
	err  error // set once the connection is gone

	closed chan struct{}
}

func newIPC(conn net.Conn, onEvent func(message), onBad func(error)) *ipc {
	c := &ipc{conn: conn, wait: map[int64]chan message{}, next: 1, closed: make(chan struct{})}
	go c.read(onEvent, onBad)
	return c
}

func (c *ipc) read(onEvent func(message), onBad func(error)) {
	r := bufio.NewReaderSize(c.conn, 64<<10)
	var err error
	for {
		var line []byte
		line, err = readLine(r)
		if err != nil {
			break
		}
		if len(line) == 0 {
			continue
		}
		m, perr := parseMessage(line)
		if perr != nil {
			onBad(perr)
			continue
		}
		if m.Event != "" {
			onEvent(m)
			continue
		}
		c.mu.Lock()
		ch := c.wait[*m.RequestID]
		delete(c.wait, *m.RequestID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = errors.New("mpv closed its IPC socket")
	}
	c.mu.Lock()
	c.err = err
	for id, ch := range c.wait {
		close(ch)
		delete(c.wait, id)
	}
	c.mu.Unlock()
	close(c.closed)
}

// readLine reads up to '\n', refusing lines over maxLine (the rest of such a line is skipped).
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			long = true
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		if long {
			return nil, nil
		}
		return line[:len(line)-1], nil
	}
}

// command sends one command and waits for its reply. An mpv error ("property unavailable",
// "error running command"…) comes back as an error naming the command.
func (c *ipc) command(ctx context.Context, args ...any) (json.RawMessage, error) {
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	id := c.next
	c.next++
	c.wait[id] = ch
	c.mu.Unlock()
	line, err := json.Marshal(struct {
		Command   []any `json:"command"`
		RequestID int64 `json:"request_id"`
	}{args, id})
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("mpv command %v: %w", args, err)
	}
	c.wmu.Lock()
	_, err = c.conn.Write(append(line, '\n'))
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("mpv command %s: %w", name(args), err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("mpv command %s: %w", name(args), c.closedErr())
		}
		if m.Error != "success" {
			return nil, fmt.Errorf("mpv command %s: %s", name(args), m.Error)
		}
		return m.Data, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("mpv command %s: %w", name(args), ctx.Err())
	}
}

func (c *ipc) forget(id int64) {
	c.mu.Lock()
	delete(c.wait, id)
	c.mu.Unlock()
}

func (c *ipc) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errors.New("mpv IPC closed")
	}
	return c.err
}

func (c *ipc) close() error { return c.conn.Close() }

// name is the command name and first argument, for error messages.
func name(args []any) string {
	if len(args) == 0 {
		return "(empty)"
	}
	s := fmt.Sprint(args[0])
	if len(args) > 1 {
		s += " " + strconv.Quote(fmt.Sprint(args[1]))
	}
	return s
}
