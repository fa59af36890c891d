package template_test

import (
	"reflect"
	"testing"

	"github.com/managedvm/managedvm/template"
)

func TestINIRoundTrip(t *testing.T) {
	f := template.INIFile{Sections: []template.INISection{
		{Name: "DEFAULT", Entries: []template.INIEntry{
			{Key: "username", Value: "Admin"},
			{Key: "logdir", Value: `C:\Program Files\Cloudbase Solutions\Cloudbase-Init\log\`},
			{Key: "levels", Value: "a=INFO,b=WARN"},
			{Key: "empty", Value: ""},
			{Key: "hash", Value: "#not a comment; neither"},
			{Key: "unicode", Value: "Größe 日本"},
		}},
		{Name: "vmwareguestinfo", Entries: []template.INIEntry{{Key: "vmware_rpctool_path", Value: "%ProgramFiles%/VMware/VMware Tools/rpctool.exe"}}},
		{Name: "empty section"},
	}}
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := template.ParseINI(out)
	if err != nil {
		t.Fatal(err)
	}
	// Sections without entries parse back with nil entries.
	if !reflect.DeepEqual(back, f) {
		t.Errorf("round trip:\n got %+v\nwant %+v\n%s", back, f, out)
	}
	if v, ok := back.Get("DEFAULT", "levels"); !ok || v != "a=INFO,b=WARN" {
		t.Errorf("Get = %q, %v", v, ok)
	}
	if _, ok := back.Get("DEFAULT", "missing"); ok {
		t.Error("Get found a missing key")
	}
}

func TestINIEncodeRejects(t *testing.T) {
	for name, f := range map[string]template.INIFile{
		"newline value":     {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "a\n[evil]\nx=y"}}}}},
		"cr value":          {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "a\rb"}}}}},
		"nul value":         {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "a\x00"}}}}},
		"tab value":         {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "a\tb"}}}}},
		"leading space":     {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: " a"}}}}},
		"trailing space":    {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "a "}}}}},
		"invalid utf8":      {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k", Value: "\xff"}}}}},
		"key with equals":   {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k=v", Value: "a"}}}}},
		"key with space":    {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "a b", Value: "a"}}}}},
		"empty key":         {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "", Value: "a"}}}}},
		"duplicate key":     {Sections: []template.INISection{{Name: "s", Entries: []template.INIEntry{{Key: "k"}, {Key: "k"}}}}},
		"section bracket":   {Sections: []template.INISection{{Name: "a]b"}}},
		"section newline":   {Sections: []template.INISection{{Name: "a\nb"}}},
		"empty section":     {Sections: []template.INISection{{Name: ""}}},
		"duplicate section": {Sections: []template.INISection{{Name: "s"}, {Name: "s"}}},
	} {
		if _, err := f.Encode(); !isInvalid(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestParseINIRejects(t *testing.T) {
	for _, in := range []string{
		"k=v\n",
		"[s\nk=v\n",
		"[]\n",
		"[s]\nnovalue\n",
		"[s]\nk=v\n  continued\n",
		"[s]\nk=1\nk=2\n",
		"[s]\n[s]\n",
		"[s]\n=v\n",
	} {
		if _, err := template.ParseINI([]byte(in)); !isInvalid(err) {
			t.Errorf("ParseINI(%q) = %v, want InvalidArgument", in, err)
		}
	}
	f, err := template.ParseINI([]byte("; comment\n# comment\n[DEFAULT]\r\nkey : value \r\n\n[b]\nx=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("DEFAULT", "key"); v != "value" {
		t.Errorf("key = %q", v)
	}
}
