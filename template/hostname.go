package template

import (
	"strings"
)

// MaxComputerName is the NetBIOS limit on a Windows computer name.
const MaxComputerName = 15

// ValidateHostname reports an InvalidArgument error unless name is a host
// name by RFC 1123: dot-separated labels of 1 to 63 letters, digits and
// hyphens, not starting or ending with a hyphen, 253 characters at most,
// and not all digits (so that it cannot be read as an address).
func ValidateHostname(name string) error {
	if why := hostnameProblem(name); why != "" {
		return invalidf("template.ValidateHostname", "host name %s %s", quoteName(name), why)
	}
	return nil
}

// ValidateComputerName reports an InvalidArgument error unless name is
// usable as a Windows computer name: one RFC 1123 label, not all digits, and
// at most 15 characters (the NetBIOS limit).
func ValidateComputerName(name string) error {
	if why := computerNameProblem(name); why != "" {
		return invalidf("template.ValidateComputerName", "computer name %s %s", quoteName(name), why)
	}
	return nil
}

func hostnameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 253:
		return "is longer than 253 characters"
	}
	allDigits := true
	for _, label := range strings.Split(name, ".") {
		if why := labelProblem(label); why != "" {
			return why
		}
		for i := 0; i < len(label); i++ {
			if label[i] < '0' || label[i] > '9' {
				allDigits = false
			}
		}
	}
	if allDigits {
		return "is all digits"
	}
	return ""
}

func labelProblem(label string) string {
	switch {
	case label == "":
		return "has an empty label"
	case len(label) > 63:
		return "has a label longer than 63 characters"
	case label[0] == '-' || label[len(label)-1] == '-':
		return "has a label starting or ending with a hyphen"
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; !isASCIIAlnum(c) && c != '-' {
			return "contains a character other than a letter, digit or hyphen"
		}
	}
	return ""
}

// singleLabelProblem checks a host name without its domain.
func singleLabelProblem(name string) string {
	if name == "" {
		return "is empty"
	}
	if strings.Contains(name, ".") {
		return "must be a single label (put the domain in Domain)"
	}
	return hostnameProblem(name)
}

func computerNameProblem(name string) string {
	if why := singleLabelProblem(name); why != "" {
		return why
	}
	if len(name) > MaxComputerName {
		return "is longer than 15 characters (the NetBIOS limit)"
	}
	return ""
}
