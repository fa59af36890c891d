package template

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"io"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// SHA-512 crypt ("$6$"), as specified by Ulrich Drepper in "Unix crypt
// using SHA-256 and SHA-512" (the glibc algorithm, what cloud-init's passwd
// and /etc/shadow expect).
const (
	cryptPrefix        = "$6$"
	cryptRoundsPrefix  = "rounds="
	cryptDefaultRounds = 5000
	cryptMinRounds     = 1000
	cryptMaxRounds     = 999999999
	cryptMaxSalt       = 16
	cryptAlphabet      = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// CryptSHA512 hashes password with SHA-512 crypt. setting is "$6$salt" or
// "$6$rounds=N$salt" (a full hash works too: what follows the salt is
// ignored), as in crypt(3): the salt is cut to 16 characters, the rounds
// count is clamped to 1,000..999,999,999, and an explicit rounds count is
// kept in the result. A malformed setting is InvalidArgument.
func CryptSHA512(password, setting string) (string, error) {
	const op = "template.CryptSHA512"
	rest, ok := strings.CutPrefix(setting, cryptPrefix)
	if !ok {
		return "", errs.New(errs.InvalidArgument, op, `setting does not start with "$6$"`)
	}
	rounds, custom := cryptDefaultRounds, false
	if r, ok := strings.CutPrefix(rest, cryptRoundsPrefix); ok {
		num, after, found := strings.Cut(r, "$")
		if !found {
			return "", errs.New(errs.InvalidArgument, op, "rounds count is not followed by '$'")
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || num == "" || num[0] == '+' {
			return "", errs.New(errs.InvalidArgument, op, "rounds count is not a number")
		}
		switch {
		case n < cryptMinRounds:
			n = cryptMinRounds
		case n > cryptMaxRounds:
			n = cryptMaxRounds
		}
		rounds, custom, rest = int(n), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > cryptMaxSalt {
		salt = salt[:cryptMaxSalt]
	}
	for i := 0; i < len(salt); i++ {
		if salt[i] == ':' || salt[i] == '\n' || salt[i] == 0 {
			return "", errs.New(errs.InvalidArgument, op, "salt contains ':', a line feed or NUL")
		}
	}
	return sha512Crypt([]byte(password), []byte(salt), rounds, custom), nil
}

func sha512Crypt(pw, salt []byte, rounds int, customRounds bool) string {
	// Digest B: password, salt, password.
	hb := sha512.New()
	hb.Write(pw)
	hb.Write(salt)
	hb.Write(pw)
	b := hb.Sum(nil)

	// Digest A: password, salt, B once per 64 bytes of password (and the
	// leading part of B for the remainder), then B or the password for each
	// bit of the password's length, lowest first.
	ha := sha512.New()
	ha.Write(pw)
	ha.Write(salt)
	n := len(pw)
	for ; n > 64; n -= 64 {
		ha.Write(b)
	}
	ha.Write(b[:n])
	for l := len(pw); l > 0; l >>= 1 {
		if l&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(pw)
		}
	}
	a := ha.Sum(nil)

	// Digest DP: the password once per byte of the password; P is DP
	// repeated to the password's length.
	hdp := sha512.New()
	for range len(pw) {
		hdp.Write(pw)
	}
	p := repeatTo(hdp.Sum(nil), len(pw))

	// Digest DS: the salt 16+A[0] times; S is DS cut to the salt's length.
	hds := sha512.New()
	for range 16 + int(a[0]) {
		hds.Write(salt)
	}
	s := repeatTo(hds.Sum(nil), len(salt))

	c := a
	h := sha512.New()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString(cryptPrefix)
	if customRounds {
		out.WriteString(cryptRoundsPrefix)
		out.WriteString(strconv.Itoa(rounds))
		out.WriteByte('$')
	}
	out.Write(salt)
	out.WriteByte('$')
	// The spec's byte order: triples (i, i+21, i+42) rotated, then the
	// last byte alone.
	perm := [21][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
		{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
		{62, 20, 41},
	}
	for _, t := range perm {
		b64From24(&out, c[t[0]], c[t[1]], c[t[2]], 4)
	}
	b64From24(&out, 0, 0, c[63], 2)
	return out.String()
}

func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out)+len(d) <= n {
		out = append(out, d...)
	}
	return append(out, d[:n-len(out)]...)
}

func b64From24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}

// HashPassword returns the SHA-512 crypt hash of password with a fresh
// 16-character salt from opts.Rand (crypto/rand by default) and opts.Rounds
// rounds. An empty password is InvalidArgument.
func HashPassword(password guest.Secret, opts *Options) (string, error) {
	const op = "template.HashPassword"
	if password.IsZero() {
		return "", errs.New(errs.InvalidArgument, op, "password is empty")
	}
	var r io.Reader = rand.Reader
	rounds := 0
	if opts != nil {
		if opts.Rand != nil {
			r = opts.Rand
		}
		rounds = opts.Rounds
	}
	if rounds != 0 && (rounds < cryptMinRounds || rounds > cryptMaxRounds) {
		return "", errs.Errorf(errs.InvalidArgument, op, "rounds %d is outside %d..%d", rounds, cryptMinRounds, cryptMaxRounds)
	}
	var raw [cryptMaxSalt]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", errs.Wrap(errs.Internal, op, err)
	}
	salt := make([]byte, cryptMaxSalt)
	for i, v := range raw {
		salt[i] = cryptAlphabet[v&0x3f] // 256 is a multiple of 64: uniform
	}
	if rounds == 0 {
		return sha512Crypt([]byte(password.Reveal()), salt, cryptDefaultRounds, false), nil
	}
	return sha512Crypt([]byte(password.Reveal()), salt, rounds, true), nil
}

// CheckPassword reports whether password matches a SHA-512 crypt hash, in
// constant time with respect to the hash's content.
func CheckPassword(password guest.Secret, hash string) bool {
	got, err := CryptSHA512(password.Reveal(), hash)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}
