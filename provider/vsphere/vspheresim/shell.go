package vspheresim

import (
	"errors"
	"path"
	"strings"
)

// The scripted guest (Options.GuestHandler) does not run a shell: it reads
// the command line a program was started with as far as a POSIX shell
// would for the subset below, and hands each simple command to the
// handler. That subset is what guest-operation clients write to capture
// output (the vsphere driver's Executor among them):
//
//	/bin/sh -c 'exec </tmp/d/stdin >/tmp/d/stdout 2>/tmp/d/stderr; cd /srv && export A=1 && exec id -u'
//
// Words: unquoted text, '...' (literal), "..." (backslash escapes \ " $ `
// and newline), backslash escapes outside quotes. Operators: ";", "&&",
// and the redirections <file, >file, >>file, 2>file, 2>>file, 2>&1.
// Built-ins: exec (with only redirections it applies them to what
// follows; with a command it runs it and ends the line), cd DIR, export
// NAME=VALUE..., and NAME=VALUE prefixes. Anything else (pipes, ||, &,
// $ expansions, backquotes, globs, subshells, comments) is a syntax error
// here: the program exits with code 2, as sh does.

// errSyntax is a command line outside the supported subset.
var errSyntax = errors.New("unsupported shell syntax")

// token is one word or operator of a command line.
type token struct {
	op   string // ";", "&&", "<", ">", ">>", "2>", "2>>", "2>&1"; empty for a word
	word string
}

// tokenize splits a command line into words and operators.
func tokenize(line string) ([]token, error) {
	var toks []token
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			toks = append(toks, token{word: cur.String()})
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errSyntax
			}
			cur.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch line[i] {
				case '$', '`':
					return nil, errSyntax
				case '\\':
					if i+1 < len(line) && strings.IndexByte("\\\"$`\n", line[i+1]) >= 0 {
						i++
						if line[i] == '\n' {
							continue
						}
					}
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errSyntax
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errSyntax
			}
			i++
			if line[i] != '\n' {
				cur.WriteByte(line[i])
				inWord = true
			}
		case c == ';':
			flush()
			toks = append(toks, token{op: ";"})
		case c == '&':
			if i+1 < len(line) && line[i+1] == '&' {
				flush()
				toks = append(toks, token{op: "&&"})
				i++
				continue
			}
			return nil, errSyntax
		case c == '<':
			flush()
			toks = append(toks, token{op: "<"})
		case c == '>':
			fd2 := inWord && cur.String() == "2"
			if fd2 {
				cur.Reset()
				inWord = false
			} else {
				flush()
			}
			op := ">"
			switch rest := line[i:]; {
			case fd2 && strings.HasPrefix(rest, ">&1"):
				op = "&1"
				i += 2
			case strings.HasPrefix(rest, ">>"):
				op = ">>"
				i++
			}
			if fd2 {
				op = "2" + op
				if op == "2&1" {
					op = "2>&1"
				}
			}
			toks = append(toks, token{op: op})
		case strings.IndexByte("|$`()*?[", c) >= 0:
			return nil, errSyntax
		case (c == '#' || c == '~') && !inWord:
			return nil, errSyntax
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks, nil
}

// redirect is one redirection of a simple command.
type redirect struct {
	op, file string
}

// simple is one simple command: assignments, words and redirections, and
// the operator that follows it ("", ";" or "&&").
type simple struct {
	assign []string // NAME=VALUE
	words  []string
	redirs []redirect
	next   string
}

// parse groups the tokens of a command line into simple commands.
func parse(line string) ([]simple, error) {
	toks, err := tokenize(line)
	if err != nil {
		return nil, err
	}
	var out []simple
	var cur simple
	empty := func(s simple) bool { return len(s.assign) == 0 && len(s.words) == 0 && len(s.redirs) == 0 }
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.op {
		case "":
			if len(cur.words) == 0 && isAssignment(t.word) {
				cur.assign = append(cur.assign, t.word)
			} else {
				cur.words = append(cur.words, t.word)
			}
		case ";", "&&":
			if empty(cur) {
				return nil, errSyntax
			}
			cur.next = t.op
			out = append(out, cur)
			cur = simple{}
		case "2>&1":
			cur.redirs = append(cur.redirs, redirect{op: t.op})
		default:
			if i+1 >= len(toks) || toks[i+1].op != "" {
				return nil, errSyntax
			}
			i++
			cur.redirs = append(cur.redirs, redirect{op: t.op, file: toks[i].word})
		}
	}
	if !empty(cur) {
		out = append(out, cur)
	} else if len(out) > 0 && out[len(out)-1].next == "&&" {
		return nil, errSyntax
	}
	return out, nil
}

// isAssignment reports whether w is NAME=VALUE with a valid shell name.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && isName(name)
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// isShell reports whether program names a POSIX shell.
func isShell(program string) bool {
	switch path.Base(program) {
	case "sh", "bash", "dash":
		return true
	}
	return false
}
