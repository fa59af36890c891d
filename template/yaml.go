package template

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// encodeYAML renders v (structs with yaml tags, slices, string-keyed
// maps, pointers, strings, bools and ints) with go.yaml.in/yaml/v3, quoting
// every string value: double-quoted or, with literal set, as a literal
// block when it spans lines. cloud-init reads YAML with PyYAML, a YAML 1.1 parser that
// turns plain scalars such as yes, 1:20 or 2024-01-02 into booleans,
// numbers and dates; a quoted scalar is always a string, so nothing an
// operator types can change type or structure.
//
// The node tree is built here rather than by yaml.v3's own marshaller,
// which picks literal blocks it cannot always write (a string starting with
// a line break inside a sequence makes it fail).
func encodeYAML(v any, literal bool) ([]byte, error) {
	n, err := toNode(reflect.ValueOf(v), literal)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toNode(v reflect.Value, literal bool) (*yaml.Node, error) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return toNode(v.Elem(), literal)
	case reflect.String:
		s := v.String()
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
		if literal && strings.Contains(s, "\n") {
			n.Style = yaml.LiteralStyle
		}
		return n, nil
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range v.Len() {
			c, err := toNode(v.Index(i), literal)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, errors.New("yaml: map keys must be strings")
		}
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			c, err := toNode(v.MapIndex(k), literal)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, keyNode(k.String()), c)
		}
		return n, nil
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fv := v.Field(i)
			empty := fv.IsZero() || (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0
			if opts == "omitempty" && empty {
				continue
			}
			c, err := toNode(fv, literal)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, keyNode(name), c)
		}
		return n, nil
	}
	return nil, fmt.Errorf("yaml: cannot encode %s", v.Type())
}

// keyNode is a mapping key: plain when that reads back as the same string
// in YAML 1.1 and 1.2 (our keys are fixed identifiers and NIC ids),
// double-quoted otherwise.
func keyNode(k string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Style: yaml.DoubleQuotedStyle}
	if plainKeyRE.MatchString(k) && !isYAML11Special(k) {
		n.Style = 0
	}
	return n
}

var plainKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

func isYAML11Special(k string) bool {
	switch strings.ToLower(k) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return true
	}
	return false
}

// decodeYAMLStrict decodes exactly one YAML document into v, rejecting keys
// v has no field for.
func decodeYAMLStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// renderYAML renders *v, parses the output back into a fresh T and checks
// that it equals *v and renders to the same bytes: the output is valid
// YAML that means exactly v.
//
// Multi-line strings are first written as literal blocks, which read best;
// should yaml.v3 not write one back exactly, everything is written
// double-quoted instead.
func renderYAML[T any](op string, v *T) ([]byte, error) {
	out, err := renderYAMLStyle(v, true)
	if err != nil {
		out, err = renderYAMLStyle(v, false)
	}
	if err != nil {
		return nil, internalf(op, "%v", err)
	}
	return out, nil
}

func renderYAMLStyle[T any](v *T, literal bool) ([]byte, error) {
	out, err := encodeYAML(v, literal)
	if err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	var back T
	if err := decodeYAMLStrict(out, &back); err != nil {
		return nil, fmt.Errorf("rendered YAML does not parse back: %w", err)
	}
	if !reflect.DeepEqual(v, &back) {
		return nil, errors.New("rendered YAML parses back to a different value")
	}
	again, err := encodeYAML(&back, literal)
	if err != nil || !bytes.Equal(out, again) {
		return nil, errors.New("rendered YAML does not render back identically")
	}
	return out, nil
}

// decodeYAMLLoose decodes the first document of data into v, ignoring keys
// v has no field for (for reading configuration files written by others).
func decodeYAMLLoose(data []byte, v any) error {
	return yaml.NewDecoder(bytes.NewReader(data)).Decode(v)
}
