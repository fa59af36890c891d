package template

import (
	"bytes"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// Limits of the seed images this package writes and reads.
const (
	maxISOFile  = 16 << 20
	maxISOTotal = 64 << 20
	maxISODepth = 8
	// A directory record and the number of entries (files and
	// directories) read in all bound the work a hostile image can cause,
	// e.g. directories whose entries point back at themselves.
	maxISODir     = 64 << 10
	maxISOEntries = 1024
	maxISOFiles   = 256
)

var (
	isoLabelRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	// What survives github.com/kdomanski/iso9660's name mangling unchanged
	// and what Linux shows for it (lower case, ";1" dropped): directory
	// names without dots, file names with at most one dot.
	isoDirRE  = regexp.MustCompile(`^[a-z0-9_-]{1,31}$`)
	isoFileRE = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]{1,8})?$`)
)

// WriteISO writes files into an ISO 9660 image with volume label label,
// using github.com/kdomanski/iso9660. Paths are slash-separated and
// relative ("meta-data", "openstack/latest/user_data"); each part must be
// lower case letters, digits, '-' and '_' (file names may have one
// extension) so that the guest sees exactly that name. The image is read
// back and compared with files before it is written to w. Bad labels or
// paths, more than 256 files or more than 64 MiB are InvalidArgument.
//
// The library stages the files in a temporary directory, removed before
// WriteISO returns.
func WriteISO(w io.Writer, label string, files map[string][]byte) error {
	const op = "template.WriteISO"
	if !isoLabelRE.MatchString(label) {
		return invalidf(op, "volume label %s must be 1 to 32 letters, digits, '-' or '_'", quoteName(label))
	}
	if len(files) == 0 || len(files) > maxISOFiles {
		return invalidf(op, "%d files; a seed holds 1 to %d", len(files), maxISOFiles)
	}
	names := make([]string, 0, len(files))
	total := 0
	for name, data := range files {
		if why := isoPathProblem(name); why != "" {
			return invalidf(op, "path %s %s", quoteName(name), why)
		}
		if len(data) > maxISOFile {
			return invalidf(op, "file %s is larger than 16 MiB", quoteName(name))
		}
		total += len(data)
		names = append(names, name)
	}
	if total > maxISOTotal {
		return errs.New(errs.InvalidArgument, op, "files are larger than 64 MiB in all")
	}
	sort.Strings(names)
	for i := 1; i < len(names); i++ {
		if strings.HasPrefix(names[i], names[i-1]+"/") {
			return invalidf(op, "path %s is both a file and a directory", quoteName(names[i-1]))
		}
	}

	iw, err := iso9660.NewWriter()
	if err != nil {
		return errs.Wrap(errs.Internal, op, err)
	}
	defer func() { _ = iw.Cleanup() }()
	for _, name := range names {
		if err := iw.AddFile(bytes.NewReader(files[name]), name); err != nil {
			return errs.Wrap(errs.Internal, op, err)
		}
	}
	var img bytes.Buffer
	if err := iw.WriteTo(&img, label); err != nil {
		return errs.Wrap(errs.Internal, op, err)
	}

	gotLabel, got, err := ReadISO(bytes.NewReader(img.Bytes()))
	if err != nil {
		return internalf(op, "written image does not read back: %v", err)
	}
	if gotLabel != label {
		return internalf(op, "written image has label %s, want %s", limit.Quote(gotLabel), limit.Quote(label))
	}
	if len(got) != len(files) {
		return internalf(op, "written image has %d files, want %d", len(got), len(files))
	}
	for name, data := range files {
		if !bytes.Equal(got[name], data) {
			return internalf(op, "written image's %s differs from the input", name)
		}
	}
	if _, err := w.Write(img.Bytes()); err != nil {
		return errs.WrapOp(op, err)
	}
	return nil
}

func isoPathProblem(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) > maxISODepth {
		return "is nested too deep"
	}
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "":
			return "has an empty part (absolute, or a doubled or trailing '/')"
		case !last && !isoDirRE.MatchString(part):
			return "has a directory name other than 1 to 31 of [a-z0-9_-]"
		case last && (!isoFileRE.MatchString(part) || len(part) > 28):
			return "has a file name other than [a-z0-9_-] with at most one extension (28 characters at most)"
		}
	}
	return ""
}

// ReadISO reads an ISO 9660 image: its volume label and every file by
// slash-separated path, names as Linux shows them (lower case, version
// ";1" dropped). Malformed or oversized images are InvalidArgument.
func ReadISO(r io.ReaderAt) (label string, files map[string][]byte, err error) {
	const op = "template.ReadISO"
	// The ISO library indexes slices with values read from the image and
	// panics on some malformed images: that is a malformed input here.
	defer func() {
		if p := recover(); p != nil {
			label, files, err = "", nil, errs.New(errs.InvalidArgument, op, "malformed ISO 9660 image")
		}
	}()
	img, err := iso9660.OpenImage(r)
	if err != nil {
		return "", nil, errs.Wrap(errs.InvalidArgument, op, err)
	}
	label, err = img.Label()
	if err != nil {
		return "", nil, errs.Wrap(errs.InvalidArgument, op, err)
	}
	label = strings.TrimRight(label, " ")
	root, err := img.RootDir()
	if err != nil {
		return "", nil, errs.Wrap(errs.InvalidArgument, op, err)
	}
	files = map[string][]byte{}
	var b isoBudget
	if err := readISODir(root, "", 0, files, &b); err != nil {
		return "", nil, errs.Wrap(errs.InvalidArgument, op, err)
	}
	return label, files, nil
}

type isoBudget struct{ bytes, entries int }

func readISODir(dir *iso9660.File, prefix string, depth int, files map[string][]byte, b *isoBudget) error {
	if depth > maxISODepth {
		return errs.New(errs.InvalidArgument, "", "directories nested too deep")
	}
	if dir.Size() > maxISODir {
		return errs.New(errs.InvalidArgument, "", "directory record larger than 64 KiB")
	}
	children, err := dir.GetChildren()
	if err != nil {
		return err
	}
	for _, c := range children {
		if b.entries++; b.entries > maxISOEntries {
			return errs.New(errs.InvalidArgument, "", "image holds more entries than a seed may")
		}
		name := prefix + strings.ToLower(c.Name())
		if c.IsDir() {
			if err := readISODir(c, name+"/", depth+1, files, b); err != nil {
				return err
			}
			continue
		}
		if c.Size() > maxISOFile || b.bytes+int(c.Size()) > maxISOTotal {
			return errs.New(errs.InvalidArgument, "", "image holds more data than a seed may")
		}
		data, err := io.ReadAll(io.LimitReader(c.Reader(), c.Size()))
		if err != nil {
			return err
		}
		b.bytes += len(data)
		if _, dup := files[name]; dup {
			return errs.Errorf(errs.InvalidArgument, "", "file %s appears twice", limit.Quote(name))
		}
		files[name] = data
	}
	return nil
}
