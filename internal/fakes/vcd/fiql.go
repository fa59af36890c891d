package vcd

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// filter is a parsed FIQL expression: key op value conditions joined by
// ';' (and) and ',' (or), with parentheses; ';' binds tighter than ','.
type filter interface {
	match(get func(key string) (string, bool)) bool
}

type orFilter []filter
type andFilter []filter
type condFilter struct{ key, op, val string }

func (f orFilter) match(g func(string) (string, bool)) bool {
	for _, x := range f {
		if x.match(g) {
			return true
		}
	}
	return false
}

func (f andFilter) match(g func(string) (string, bool)) bool {
	for _, x := range f {
		if !x.match(g) {
			return false
		}
	}
	return true
}

func (c condFilter) match(g func(string) (string, bool)) bool {
	v, ok := g(c.key)
	if !ok {
		return c.op == "!="
	}
	switch c.op {
	case "==":
		if strings.Contains(c.val, "*") {
			m, _ := path.Match(c.val, v)
			return m
		}
		return v == c.val
	case "!=":
		return v != c.val
	}
	cmp := compareValues(v, c.val)
	switch c.op {
	case "=gt=":
		return cmp > 0
	case "=ge=":
		return cmp >= 0
	case "=lt=":
		return cmp < 0
	case "=le=":
		return cmp <= 0
	}
	return false
}

// compareValues compares as times, then numbers, then strings.
func compareValues(a, b string) int {
	if ta, err := time.Parse(time.RFC3339Nano, a); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, b); err == nil {
			return ta.Compare(tb)
		}
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		if fb, err := strconv.ParseFloat(b, 64); err == nil {
			switch {
			case fa < fb:
				return -1
			case fa > fb:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(a, b)
}

// parseFilter parses src; decode is applied to every value after the
// expression is split (for filters whose values are URL-encoded).
func parseFilter(src string, decode func(string) (string, error)) (filter, error) {
	p := &fiqlParser{s: src, decode: decode}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i:p.i+1], p.i)
	}
	return f, nil
}

type fiqlParser struct {
	s      string
	i      int
	decode func(string) (string, error)
}

func (p *fiqlParser) or() (filter, error) {
	var out orFilter
	for {
		a, err := p.and()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if len(out) == 1 {
			return out[0], nil
		}
		return out, nil
	}
}

func (p *fiqlParser) and() (filter, error) {
	var out andFilter
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		if p.i < len(p.s) && p.s[p.i] == ';' {
			p.i++
			continue
		}
		if len(out) == 1 {
			return out[0], nil
		}
		return out, nil
	}
}

var fiqlOps = []string{"==", "!=", "=gt=", "=ge=", "=lt=", "=le="}

func (p *fiqlParser) term() (filter, error) {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("missing ')'")
		}
		p.i++
		return f, nil
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '=' && p.s[p.i] != '!' {
		p.i++
	}
	key := p.s[start:p.i]
	if key == "" {
		return nil, fmt.Errorf("missing selector at %d", start)
	}
	op := ""
	for _, o := range fiqlOps {
		if strings.HasPrefix(p.s[p.i:], o) {
			op = o
			break
		}
	}
	if op == "" {
		return nil, fmt.Errorf("unknown comparison after %q", key)
	}
	p.i += len(op)
	vs := p.i
	for p.i < len(p.s) && p.s[p.i] != ';' && p.s[p.i] != ',' && p.s[p.i] != ')' {
		p.i++
	}
	val := p.s[vs:p.i]
	if p.decode != nil {
		d, err := p.decode(val)
		if err != nil {
			return nil, err
		}
		val = d
	}
	return condFilter{key: key, op: op, val: val}, nil
}
